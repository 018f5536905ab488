/**
 * The long-lived prober run inside one pod's network namespace (`ip netns
 * exec NETNS node prober.js`): reads JSON lines
 * `{"id","protocol":"TCP"|"UDP"|"SCTP","host","port","timeoutMs"}` on stdin,
 * runs every request at once, and writes `{"id","reason"}` per request on
 * stdout, with reason `connected` (the TCP handshake completed, the UDP echo
 * or the SCTP INIT ACK came back), `refused` (RST, ABORT or ICMP
 * unreachable) or `timeout`. One process
 * serves every TCP and UDP probe from its pod, instead of one process per
 * probe; SCTP, which the kernel may have no sockets for, goes through
 * `palisade-sctp probe` (raw sockets), one short process per probe.
 *
 * @module
 */
import { execFile } from "node:child_process";
import { createSocket } from "node:dgram";
import { connect, isIP } from "node:net";
import { createInterface } from "node:readline";
import { sctpRawBinary } from "../devcluster/node-runtime/sctp-raw.ts";

/** One probe request. */
export interface ProberRequest {
  id: number;
  protocol: "TCP" | "UDP" | "SCTP";
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

/**
 * Calls `onTimeout` after `ms` unless the returned function cancels it
 * first, and only once the I/O that completed meanwhile has been handled:
 * on a busy machine this process may wake after the deadline with both the
 * timer and a connection's answer ready, and timers run before I/O
 * callbacks, so a reachable peer would read as a timeout. `setImmediate`
 * runs after the I/O phase.
 */
function deadline(ms: number, onTimeout: () => void): () => void {
  let immediate: NodeJS.Immediate | undefined;
  const timer = setTimeout(() => {
    immediate = setImmediate(onTimeout);
  }, ms);
  return () => {
    clearTimeout(timer);
    if (immediate !== undefined) clearImmediate(immediate);
  };
}

function probeTcp(request: ProberRequest, done: (reason: ProbeReason) => void): void {
  const socket = connect({ host: request.host, port: request.port });
  const cancel = deadline(request.timeoutMs, () => finish("timeout"));
  function finish(reason: ProbeReason): void {
    cancel();
    socket.destroy();
    done(reason);
  }
  // The handshake is the verdict (both directions passed the datapath); waiting for the echo too
  // would make a pod server slowed down by a busy machine look like a drop.
  socket.on("connect", () => finish("connected"));
  socket.on("error", (error) => finish(reasonOf(error)));
}

function probeUdp(request: ProberRequest, done: (reason: ProbeReason) => void): void {
  // A connected socket, so that an ICMP port unreachable surfaces as ECONNREFUSED.
  const socket = createSocket(isIP(request.host) === 6 ? "udp6" : "udp4");
  const cancel = deadline(request.timeoutMs, () => finish("timeout"));
  function finish(reason: ProbeReason): void {
    cancel();
    socket.close();
    done(reason);
  }
  socket.on("message", () => finish("connected"));
  socket.on("error", (error) => finish(reasonOf(error)));
  socket.connect(request.port, request.host, () => socket.send("ping"));
}

function probeSctp(request: ProberRequest, done: (reason: ProbeReason) => void, fail: (message: string) => void): void {
  const args = ["probe", request.host, String(request.port), String(request.timeoutMs)];
  execFile(sctpRawBinary(), args, { timeout: request.timeoutMs + 10_000 }, (error, stdout, stderr) => {
    const reason = stdout.trim();
    if (reason === "connected" || reason === "refused" || reason === "timeout") done(reason);
    else fail(`palisade-sctp probe gave no verdict: ${stderr.trim() || error?.message || "no output"}`);
  });
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
  else if (request.protocol === "SCTP") probeSctp(request, done, (error) => answer({ id: request.id, error }));
  else answer({ id: request.id, error: `protocol ${JSON.stringify(request.protocol)} is not TCP, UDP or SCTP` });
}

if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) {
  createInterface({ input: process.stdin }).on("line", handle);
}
