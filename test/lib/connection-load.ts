/**
 * A load generator of new TCP connections, run inside a pod's network
 * namespace: `node connection-load.js HOST PORT INTERVAL_MS TIMEOUT_MS`.
 * Every INTERVAL_MS it opens a connection, sends one byte and waits for the
 * echo, then closes; a connection that errs or has no echo within
 * TIMEOUT_MS fails. It also reads the namespace's TCP counters, since a
 * SYN lost and sent again succeeds a second later and would otherwise pass
 * for a good connection. On SIGTERM it prints one JSON line,
 * {@link LoadCounts}, and exits.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { connect } from "node:net";

/** What a run of the load generator counted. */
export interface LoadCounts {
  /** Connections opened. */
  started: number;
  /** Connections that echoed. */
  succeeded: number;
  /** Connections that erred or timed out. */
  failed: number;
  /** Why connections failed, by error code ("timeout" for no echo in time). */
  failures: Record<string, number>;
  /** SYNs the namespace sent again meanwhile (TcpExtTCPSynRetrans): each one a packet lost on the way. */
  synRetransmits: number;
  /** Segments the namespace sent again meanwhile (TcpRetransSegs). */
  retransmittedSegments: number;
}

/** The value of `field` in the `proto` table of a /proc/net file (header line, then value line). */
function netCounter(file: string, proto: string, field: string): number {
  const lines = readFileSync(file, "utf8").split("\n").filter((line) => line.startsWith(`${proto}:`));
  const names = lines[0]?.split(/\s+/) ?? [];
  const values = lines[1]?.split(/\s+/) ?? [];
  return Number(values[names.indexOf(field)] ?? 0);
}

function retransmits(): { syn: number; segments: number } {
  return { syn: netCounter("/proc/net/netstat", "TcpExt", "TCPSynRetrans"), segments: netCounter("/proc/net/snmp", "Tcp", "RetransSegs") };
}

function run(host: string, port: number, intervalMs: number, timeoutMs: number): void {
  const counts: LoadCounts = { started: 0, succeeded: 0, failed: 0, failures: {}, synRetransmits: 0, retransmittedSegments: 0 };
  const start = retransmits();
  const fail = (reason: string): void => {
    counts.failed++;
    counts.failures[reason] = (counts.failures[reason] ?? 0) + 1;
  };
  const once = (): void => {
    counts.started++;
    let done = false;
    const socket = connect({ host, port });
    const finish = (reason?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (reason === undefined) counts.succeeded++;
      else fail(reason);
    };
    const timer = setTimeout(() => finish("timeout"), timeoutMs);
    socket.once("connect", () => socket.write("x"));
    socket.once("data", () => finish());
    socket.once("error", (error: NodeJS.ErrnoException) => finish(error.code ?? error.message));
  };
  const ticker = setInterval(once, intervalMs);
  process.once("SIGTERM", () => {
    clearInterval(ticker);
    // Connections still open get their full time, so every one counted is decided.
    setTimeout(() => {
      const end = retransmits();
      counts.synRetransmits = end.syn - start.syn;
      counts.retransmittedSegments = end.segments - start.segments;
      process.stdout.write(`${JSON.stringify(counts)}\n`, () => process.exit(0));
    }, timeoutMs + 100);
  });
  process.stdout.write("started\n");
}

if (import.meta.main) {
  const [host = "", port = "", intervalMs = "", timeoutMs = ""] = process.argv.slice(2);
  run(host, Number(port), Number(intervalMs), Number(timeoutMs));
}
