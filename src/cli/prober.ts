/**
 * The long-lived prober run inside one pod's network namespace (`ip netns
 * exec NETNS node prober.js`): reads JSON lines
 * `{"id","protocol":"TCP"|"UDP","host","port","timeoutMs"}` on stdin, runs
 * every request at once, and writes `{"id","reason"}` per request on stdout,
 * with reason `connected` (the echo came back), `refused` (RST or ICMP
 * unreachable) or `timeout`. One process serves every probe from its pod,
 * instead of one process per probe.
 *
 * @module
 */
import { createSocket } from "node:dgram";
import { connect, isIP } from "node:net";
import { createInterface } from "node:readline";

/** One probe request. */
export interface ProberRequest {
  id: number;
  protocol: "TCP" | "UDP";
  host: string;
  port: number;
  timeoutMs: number;
}

/** How a probe ended. */
export type ProbeReason = "connected" | "refused" | "timeout";

/** One probe's answer; `error` instead of `reason` when the request was malformed. */
export interface ProberResponse {
  id: number;
  reason?: ProbeReason;
  error?: string;
}

function reasonOf(error: NodeJS.ErrnoException): ProbeReason {
  return error.code === "ECONNREFUSED" || error.code === "EHOSTUNREACH" || error.code === "ENETUNREACH" ? "refused" : "timeout";
}

function probeTcp(request: ProberRequest, done: (reason: ProbeReason) => void): void {
  const socket = connect({ host: request.host, port: request.port });
  const timer = setTimeout(() => finish("timeout"), request.timeoutMs);
  function finish(reason: ProbeReason): void {
    clearTimeout(timer);
    socket.destroy();
    done(reason);
  }
  socket.on("connect", () => socket.write("ping"));
  socket.on("data", () => finish("connected"));
  socket.on("error", (error) => finish(reasonOf(error)));
}

function probeUdp(request: ProberRequest, done: (reason: ProbeReason) => void): void {
  // A connected socket, so that an ICMP port unreachable surfaces as ECONNREFUSED.
  const socket = createSocket(isIP(request.host) === 6 ? "udp6" : "udp4");
  const timer = setTimeout(() => finish("timeout"), request.timeoutMs);
  function finish(reason: ProbeReason): void {
    clearTimeout(timer);
    socket.close();
    done(reason);
  }
  socket.on("message", () => finish("connected"));
  socket.on("error", (error) => finish(reasonOf(error)));
  socket.connect(request.port, request.host, () => socket.send("ping"));
}

function answer(response: ProberResponse): void {
  process.stdout.write(`${JSON.stringify(response)}\n`);
}

/** Runs one request and answers it once, whatever the sockets report after the first verdict. */
export function handle(line: string): void {
  let request: ProberRequest;
  try {
    request = JSON.parse(line) as ProberRequest;
  } catch {
    answer({ id: -1, error: `request ${JSON.stringify(line)} is not JSON` });
    return;
  }
  let answered = false;
  const done = (reason: ProbeReason): void => {
    if (answered) return;
    answered = true;
    answer({ id: request.id, reason });
  };
  if (request.protocol === "TCP") probeTcp(request, done);
  else if (request.protocol === "UDP") probeUdp(request, done);
  else answer({ id: request.id, error: `protocol ${JSON.stringify(request.protocol)} is not TCP or UDP` });
}

if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) {
  createInterface({ input: process.stdin }).on("line", handle);
}
