import assert from "node:assert/strict";
import { test } from "node:test";
import { parsePodServerPorts } from "./pod-server.ts";

test("pod server ports are PORT/TCP, PORT/UDP or PORT/SCTP", () => {
  assert.deepEqual(parsePodServerPorts(["80/TCP", "81/UDP", "80/SCTP"]), [
    { port: 80, protocol: "TCP" },
    { port: 81, protocol: "UDP" },
    { port: 80, protocol: "SCTP" },
  ]);
  assert.throws(() => parsePodServerPorts(["80/ICMP"]), /Cannot serve port "80\/ICMP": expected PORT\/TCP, PORT\/UDP or PORT\/SCTP/);
  assert.throws(() => parsePodServerPorts(["0/SCTP"]), /Cannot serve port "0\/SCTP"/);
  assert.throws(() => parsePodServerPorts(["80/sctp"]), /Cannot serve port "80\/sctp"/);
});
