import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { CniConfigError, primaryConfigFile, readNetworkList } from "./config.ts";

const dir = mkdtempSync(join(tmpdir(), "pl-cni-config-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
}

describe("CNI network configuration", () => {
  test("the primary file is the first by name among .conf, .conflist and .json files", () => {
    assert.equal(primaryConfigFile(join(dir, "missing")), undefined);
    file("README.md", "#");
    assert.equal(primaryConfigFile(dir), undefined);
    file("20-b.conflist", "{}");
    file("10-a.conf", "{}");
    assert.equal(primaryConfigFile(dir), join(dir, "10-a.conf"));
  });

  test("a .conf is a chain of its one plugin; a .conflist keeps its fields", () => {
    assert.deepEqual(readNetworkList(file("one.conf", { cniVersion: "0.4.0", name: "n", type: "bridge", bridge: "br0" })), {
      cniVersion: "0.4.0",
      name: "n",
      plugins: [{ cniVersion: "0.4.0", type: "bridge", bridge: "br0" }],
    });
    const list = { cniVersion: "1.0.0", name: "n", disableCheck: true, plugins: [{ type: "ptp" }, { type: "portmap" }] };
    assert.deepEqual(readNetworkList(file("list.conflist", list)), list);
  });

  test("refuses what a runtime could not run, naming the file and field", () => {
    const cases: [unknown, RegExp][] = [
      ["{", /in JSON at position 1/],
      [[], /not a JSON object/],
      [{ type: "ptp" }, /name is missing/],
      [{ name: "n", plugins: [] }, /plugins is not a non-empty list/],
      [{ name: "n", plugins: [{ ipam: {} }] }, /plugins\[0\]\.type is missing/],
    ];
    for (const [content, message] of cases) {
      const path = file("bad.conflist", content);
      assert.throws(() => readNetworkList(path), (e: unknown) => e instanceof CniConfigError && e.message.startsWith(`Cannot read CNI network configuration "${path}"`) && message.test(e.message));
    }
  });
});
