import assert from "node:assert/strict";
import { test } from "node:test";
import { parseProbeArgs } from "./probe.ts";
import { UsageError } from "./usage-error.ts";

test("probe flags are parsed and checked", () => {
  assert.deepEqual(parseProbeArgs(["--from", "x/a", "--to", "y/b", "--port", "80", "--protocol", "udp", "-o", "json"]), {
    port: 80, protocol: "UDP", family: "ipv4", timeoutMs: 1000, output: "json", from: "x/a", to: "y/b",
  });
  assert.deepEqual(parseProbeArgs(["matrix", "--namespaces", "x,y", "--port", "8080"]).matrix, { namespaces: ["x", "y"] });
  assert.throws(() => parseProbeArgs(["--from", "x/a", "--to", "y/b", "--port", "70000"]), UsageError);
  assert.equal(parseProbeArgs(["--from", "x/a", "--to", "y/b", "--port", "80", "--protocol", "sctp"]).protocol, "SCTP");
  assert.equal(parseProbeArgs(["matrix", "--namespaces", "x", "--port", "81", "--protocol", "SCTP"]).protocol, "SCTP");
  assert.throws(() => parseProbeArgs(["--from", "x/a", "--to", "y/b", "--port", "80", "--protocol", "ICMP"]), /--protocol "ICMP" is not TCP, UDP or SCTP/);
  assert.throws(() => parseProbeArgs(["matrix", "--port", "80"]), /--namespaces X,Y is required/);
  assert.throws(() => parseProbeArgs(["matrix", "--namespaces", "x", "--port", "80", "-o", "text"]), /-o "text" is not table or json/);
  for (const ref of ["x", "x/", "/a", "x/a/b"]) {
    assert.throws(() => parseProbeArgs(["--from", ref, "--to", "y/b", "--port", "80"]), { name: "UsageError", message: `Cannot probe: --from "${ref}" is not NAMESPACE/POD` });
  }
});
