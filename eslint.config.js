// Lint rules: typescript-eslint's recommended set, plus the layering of
// ARCHITECTURE.md: every folder of src/ imports only from the layers below
// its own (and src/'s root files), policy/ is pure (no Node I/O), and the
// root files import no layer at all.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const nodeIo = ["node:fs", "node:fs/promises", "node:child_process", "node:http", "node:dgram", "fs", "child_process"];

// ARCHITECTURE.md's layers, top to bottom. api-objects/ (the API objects
// as the policy layer takes them, for the agent and the operator alike)
// joins policy/ and k8s/, so it sits above both.
const LAYERS = [
  ["cli"],
  ["operator", "agent", "proxy", "devcluster"],
  ["probe", "datapath", "crd", "conformance", "cni", "api-objects"],
  ["policy", "k8s"],
];

// Arrows between siblings of one layer, each for a reason; no other sibling imports another.
const SIBLING_ARROWS = {
  // ARCHITECTURE.md: probe/ is the library the conformance runner probes and waits with.
  conformance: ["probe"],
  // The chained CNI plugin attaches the agent's pinned programs, through the datapath's attach code.
  cni: ["datapath"],
};

const LAYERING = "ARCHITECTURE.md: cli → operator/agent/proxy/devcluster → probe/datapath/crd/conformance/cni/api-objects → policy/k8s";

/** The import patterns `folder` may not use: every folder of its own layer (but its allowed siblings) and of the layers above. */
function forbiddenFor(folder) {
  const level = LAYERS.findIndex((layer) => layer.includes(folder));
  const allowed = SIBLING_ARROWS[folder] ?? [];
  return LAYERS.slice(0, level + 1).flatMap((layer, index) => layer
    .filter((other) => other !== folder && !allowed.includes(other))
    .map((other) => ({
      group: [`**/${other}/**`],
      message: `${folder}/ may not import ${other}/: ${index === level ? "they are siblings" : `${other}/ sits above it`} (${LAYERING}).`,
    })));
}

function layerConfig(folder) {
  return {
    files: [`src/${folder}/**/*.ts`],
    rules: {
      "no-restricted-imports": ["error", {
        ...(folder === "policy" && { paths: nodeIo.map((name) => ({ name, message: "policy/ is pure: no I/O." })) }),
        patterns: forbiddenFor(folder),
      }],
    },
  };
}

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
  ...LAYERS.flat().map(layerConfig),
  {
    // src/'s root files (repository-root, shell-quote, duration) serve every layer and use none.
    files: ["src/*.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: LAYERS.flat().map((folder) => ({ group: [`**/${folder}/**`], message: `src/'s root files may not import ${folder}/: every layer imports them (${LAYERING}).` })),
      }],
    },
  },
  {
    // An ES import of a built-in module builds its namespace, which reads every export: node:http's include
    // WebSocket and its events, loaded from undici on first read, about 12 MiB of RSS in a process that uses none.
    files: ["src/**/*.ts"],
    ignores: ["src/**/*.test.ts"],
    rules: {
      "no-restricted-syntax": ["error", {
        selector: "ImportDeclaration[source.value='node:http'][importKind!='type']",
        message: "Take node:http from process.getBuiltinModule(\"node:http\"): an import reads its lazy exports (undici's WebSocket), about 12 MiB per process.",
      }],
    },
  },
  {
    files: ["scripts/**/*.js", "eslint.config.js"],
    languageOptions: { globals: { process: "readonly", console: "readonly", setTimeout: "readonly", clearTimeout: "readonly" } },
  },
);
