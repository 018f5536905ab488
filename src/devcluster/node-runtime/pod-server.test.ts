import assert from "node:assert/strict";
import { test } from "node:test";
import { httpModeOfPortName, parsePodServerPorts, podServerPortArg } from "./pod-server.ts";

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

test("a TCP port may answer HTTP/1.1 or HTTP/2, by its container port's name", () => {
  assert.deepEqual(parsePodServerPorts(["8080/TCP/http", "9090/TCP/http2"]), [
    { port: 8080, protocol: "TCP", mode: "http" },
    { port: 9090, protocol: "TCP", mode: "http2" },
  ]);
  for (const port of parsePodServerPorts(["8080/TCP/http", "9090/TCP/http2", "81/UDP"])) assert.deepEqual(parsePodServerPorts([podServerPortArg(port)]), [port]);
  assert.throws(() => parsePodServerPorts(["80/UDP/http"]), /Cannot serve port "80\/UDP\/http": a mode is PORT\/TCP\/http or PORT\/TCP\/http2/);
  assert.throws(() => parsePodServerPorts(["80/TCP/grpc"]), /a mode is PORT\/TCP\/http or PORT\/TCP\/http2/);
  assert.deepEqual(
    ["http", "http-api", "http2", "http2-x", "grpc", "grpc-web", "web", "h2c", undefined].map(httpModeOfPortName),
    ["http", "http", "http2", "http2", "http2", "http2", undefined, undefined, undefined],
  );
});
