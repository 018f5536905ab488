/**
 * The prober process, run inside one pod's network namespace (`ip netns
 * exec NETNS node prober.js [--sctp PALISADE_SCTP] …`), the one probe
 * client there is:
 *
 * - without arguments it serves: reads JSON lines
 *   `{"id","protocol":"TCP"|"UDP"|"SCTP","host","port","timeoutMs"}` on stdin,
 *   runs every request at once ({@linkcode sendProbe}), and writes
 *   `{"id","reason"}` per request on stdout, or `{"id","error"}` for a
 *   request it cannot send. One process serves every probe from its pod;
 *   {@linkcode ProberPool} drives it.
 * - with `PROTOCOL HOST PORT TIMEOUT_MS` (protocol in any case) it sends that
 *   one probe, prints the reason, and exits 0 when it connected, 1 when it
 *   did not, 2 when it could not send it: the kernel and cluster suites run
 *   it so.
 *
 * @module
 */
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { sendProbe, type ProbeProtocol, type ProbeReason, type ProbeRequest } from "./send-probe.ts";

/** One request on the prober's stdin. */
export interface ProberRequest extends ProbeRequest {
  id: number;
}

/** One probe's answer; `error` instead of `reason` when the request could not be sent. */
export interface ProberResponse {
  id: number;
  reason?: ProbeReason;
  error?: string;
}

function answer(response: ProberResponse): void {
  process.stdout.write(`${JSON.stringify(response)}\n`);
}

function serve(sctpBinary: string | undefined): void {
  createInterface({ input: process.stdin }).on("line", (line) => {
    let request: ProberRequest;
    try {
      request = JSON.parse(line) as ProberRequest;
    } catch {
      answer({ id: -1, error: `request ${JSON.stringify(line)} is not JSON` });
      return;
    }
    sendProbe(request, sctpBinary).then(
      (reason) => answer({ id: request.id, reason }),
      (error: Error) => answer({ id: request.id, error: error.message }),
    );
  });
}

async function probeOnce(args: readonly string[], sctpBinary: string | undefined): Promise<number> {
  const [protocol = "", host = "", port = "", timeoutMs = ""] = args;
  if (args.length !== 4 || !/^\d+$/.test(port) || !/^\d+$/.test(timeoutMs)) {
    process.stderr.write("usage: prober.js [--sctp PALISADE_SCTP] [PROTOCOL HOST PORT TIMEOUT_MS]\n");
    return 2;
  }
  try {
    const reason = await sendProbe({ protocol: protocol.toUpperCase() as ProbeProtocol, host, port: Number(port), timeoutMs: Number(timeoutMs) }, sctpBinary);
    process.stdout.write(`${reason}\n`);
    return reason === "connected" ? 0 : 1;
  } catch (error) {
    process.stderr.write(`Cannot probe ${protocol} ${host} port ${port}: ${(error as Error).message}\n`);
    return 2;
  }
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({ options: { sctp: { type: "string" } }, allowPositionals: true });
  if (positionals.length === 0) serve(values.sctp);
  else process.exitCode = await probeOnce(positionals, values.sctp);
}
