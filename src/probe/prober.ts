/**
 * The prober process, run inside one pod's network namespace (`ip netns
 * exec NETNS node prober.js [--sctp PALISADE_SCTP]`): reads JSON lines
 * `{"id","protocol":"TCP"|"UDP"|"SCTP","host","port","timeoutMs"}` on stdin,
 * runs every request at once ({@linkcode sendProbe}), and writes
 * `{"id","reason"}` per request on stdout, or `{"id","error"}` for a request
 * it cannot send. One process serves every probe from its pod, instead of
 * one process per probe; {@linkcode ProberPool} drives it.
 *
 * @module
 */
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { sendProbe, type ProbeReason, type ProbeRequest } from "./send-probe.ts";

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

if (import.meta.main) {
  const { values } = parseArgs({ options: { sctp: { type: "string" } } });
  serve(values.sctp);
}
