/**
 * One probe from the network namespace this process runs in: a TCP
 * connection, a UDP datagram to an echo server, or an SCTP INIT (through
 * `palisade-sctp probe`, raw sockets, since the kernel may have no SCTP
 * sockets), concluded as `connected` (the TCP handshake completed, the UDP
 * echo or the SCTP INIT ACK came back), `refused` (RST, ABORT or ICMP
 * unreachable) or `timeout`. A UDP probe sends its datagram several times
 * within its timeout and takes the first echo.
 *
 * @module
 */
import { execFile } from "node:child_process";
import { createSocket } from "node:dgram";
import { connect, isIP } from "node:net";

/** The protocols a probe can send. */
export type ProbeProtocol = "TCP" | "UDP" | "SCTP";

/** What one probe sends where. */
export interface ProbeRequest {
  protocol: ProbeProtocol;
  host: string;
  port: number;
  timeoutMs: number;
}

/** How a probe ended. */
export type ProbeReason = "connected" | "refused" | "timeout";

/** A probe that could not be sent at all (as opposed to one that ended `refused` or `timeout`). */
export class ProbeRequestError extends Error {
  /** Names this error class in stack traces and messages. */
  override name = "ProbeRequestError";
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

function probeTcp(request: ProbeRequest, done: (reason: ProbeReason) => void): void {
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

/**
 * How many times a UDP probe sends its datagram, spread evenly over its
 * timeout: nothing else resends a datagram that a busy node lost (the
 * kernel does for a SYN), and one loss would read as a drop.
 */
export const UDP_PROBE_SENDS = 4;

function probeUdp(request: ProbeRequest, done: (reason: ProbeReason) => void): void {
  // A connected socket, so that an ICMP port unreachable surfaces as ECONNREFUSED.
  const socket = createSocket(isIP(request.host) === 6 ? "udp6" : "udp4");
  const cancel = deadline(request.timeoutMs, () => finish("timeout"));
  let resend: NodeJS.Timeout | undefined;
  let finished = false;
  function finish(reason: ProbeReason): void {
    finished = true;
    cancel();
    clearInterval(resend);
    socket.close();
    done(reason);
  }
  // The first echo of any of the datagrams is the verdict: it crossed the datapath both ways, which a
  // denied path never lets through however often the datagram is sent.
  socket.on("message", () => finish("connected"));
  socket.on("error", (error) => finish(reasonOf(error)));
  socket.connect(request.port, request.host, () => {
    if (finished) return;
    let sent = 1;
    socket.send("ping");
    resend = setInterval(() => {
      socket.send("ping");
      if (++sent === UDP_PROBE_SENDS) clearInterval(resend);
    }, request.timeoutMs / UDP_PROBE_SENDS);
  });
}

function probeSctp(request: ProbeRequest, sctpBinary: string, done: (reason: ProbeReason) => void, fail: (error: ProbeRequestError) => void): void {
  const args = ["probe", request.host, String(request.port), String(request.timeoutMs)];
  execFile(sctpBinary, args, { timeout: request.timeoutMs + 10_000 }, (error, stdout, stderr) => {
    const reason = stdout.trim();
    if (reason === "connected" || reason === "refused" || reason === "timeout") done(reason);
    else fail(new ProbeRequestError(`palisade-sctp probe gave no verdict: ${stderr.trim() || error?.message || "no output"}`));
  });
}

/**
 * Sends one probe and resolves once with how it ended, whatever the sockets
 * report after the first verdict. SCTP goes through `sctpBinary`
 * (`palisade-sctp`); without one, or for another protocol, it rejects with
 * {@linkcode ProbeRequestError}.
 *
 * @example
 * ```ts
 * await sendProbe({ protocol: "TCP", host: "10.244.1.12", port: 80, timeoutMs: 1000 }, undefined); // "connected"
 * ```
 */
export function sendProbe(request: ProbeRequest, sctpBinary: string | undefined): Promise<ProbeReason> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const done = (reason: ProbeReason): void => {
      if (answered) return;
      answered = true;
      resolve(reason);
    };
    if (request.protocol === "TCP") probeTcp(request, done);
    else if (request.protocol === "UDP") probeUdp(request, done);
    else if (request.protocol !== "SCTP") reject(new ProbeRequestError(`protocol ${JSON.stringify(request.protocol)} is not TCP, UDP or SCTP`));
    else if (sctpBinary === undefined) reject(new ProbeRequestError("this prober has no SCTP prober (palisade-sctp)"));
    else probeSctp(request, sctpBinary, done, reject);
  });
}
