import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AgentUsageError, parseAgentArgs } from "./main.ts";

describe("parseAgentArgs", () => {
  it("reads every flag", () => {
    assert.deepEqual(parseAgentArgs(["--node-name", "n1", "--kubeconfig", "/k", "--pin-root", "/sys/fs/bpf/x", "--metrics-port", "9000", "--identities", "local", "--policy-map-entries", "4194304"]), {
      nodeName: "n1",
      policyMapEntries: 4194304,
      kubeconfig: "/k",
      pinRoot: "/sys/fs/bpf/x",
      metricsPort: 9000,
      identities: "local",
    });
  });

  it("refuses a bad port and a missing node name", () => {
    assert.throws(() => parseAgentArgs(["--node-name", "n1", "--metrics-port", "x"]), /--metrics-port "x" is not a port number/);
    assert.throws(() => parseAgentArgs(["--node-name", "n1", "--identities", "node"]), { message: 'Cannot run agent: --identities "node" is not cluster or local' });
    assert.throws(() => parseAgentArgs(["--node-name", "n1", "--policy-map-entries", "1e6"]), { message: 'Cannot run agent: --policy-map-entries "1e6" is not a whole number from 1 to 2147483648' });
    const saved = process.env["NODE_NAME"];
    delete process.env["NODE_NAME"];
    try {
      assert.throws(() => parseAgentArgs([]), AgentUsageError);
    } finally {
      if (saved !== undefined) process.env["NODE_NAME"] = saved;
    }
  });
});
