import assert from "node:assert/strict";
import { test } from "node:test";
import { podSandboxNetns, sandboxName } from "./sandbox.ts";

test("a pod's network namespace on a dev node is the sandbox the node runtime names for it", () => {
  assert.equal(podSandboxNetns("palisade-node-12", "0123456789abcdef"), "pal-12-01234567");
  assert.equal(podSandboxNetns("palisade-node-12", "0123456789abcdef"), sandboxName(12, "0123456789abcdef"));
  assert.equal(podSandboxNetns("worker-1", "0123456789abcdef"), undefined);
});
