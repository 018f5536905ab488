/**
 * `palisade wait --for=programmed`: blocks until what is in the API server
 * now is enforced everywhere, so scripts and tests can probe right after.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { notADuration, parseDuration } from "../duration.ts";
import { KubeClient } from "../k8s/client.ts";
import { waitProgrammed, WaitTimeoutError } from "../probe/index.ts";
import { UsageError } from "./usage-error.ts";

/** `palisade wait` help text. */
export const WAIT_HELP = `  palisade wait --for=programmed [--timeout 60s] [--kubeconfig PATH]
      Waits until every EBPFNetworkPolicy is Programmed at its current generation and every
      node's agent report lists every NetworkPolicy and EBPFNetworkPolicy at its current
      generation, no deleted one, and has caught up with every pod and namespace change
      (deletions too) made before the wait began.
      Exits 1 naming what lags when the timeout passes.`;

/** Runs `palisade wait`; returns the exit status. */
export async function runWait(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { for: { type: "string" }, timeout: { type: "string", default: "60s" }, kubeconfig: { type: "string" } },
  });
  if (values.for !== "programmed") throw new UsageError(`Cannot wait: --for "${values.for ?? ""}" is not "programmed"`);
  const timeoutMs = parseDuration(values.timeout);
  if (timeoutMs === undefined) throw new UsageError(`Cannot wait: ${notADuration("--timeout", values.timeout)}`);
  const client = values.kubeconfig === undefined ? KubeClient.fromDefault() : KubeClient.fromFile(values.kubeconfig);
  try {
    await waitProgrammed(client, timeoutMs);
  } catch (error) {
    if (!(error instanceof WaitTimeoutError)) throw error;
    process.stderr.write(`palisade: ${error.message}\n`);
    return 1;
  }
  process.stdout.write("programmed\n");
  return 0;
}
