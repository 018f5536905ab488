// Lint rules: typescript-eslint's recommended set, plus the layering of
// ARCHITECTURE.md: policy/ is pure (no Node I/O, no datapath), datapath/ does
// not reach up into the CLI.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const nodeIo = ["node:fs", "node:fs/promises", "node:child_process", "node:http", "node:dgram", "fs", "child_process"];

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", ".tools/", "native/out/", "bpf/out/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
    },
  },
  {
    files: ["src/policy/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        paths: nodeIo.map((name) => ({ name, message: "policy/ is pure: no I/O." })),
        patterns: [{ group: ["**/datapath/**", "**/cli/**"], message: "policy/ sits below datapath/ and cli/." }],
      }],
    },
  },
  {
    files: ["src/datapath/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: [{ group: ["**/cli/**"], message: "datapath/ sits below cli/." }],
      }],
    },
  },
  {
    files: ["scripts/**/*.js", "eslint.config.js"],
    languageOptions: { globals: { process: "readonly", console: "readonly" } },
  },
);
