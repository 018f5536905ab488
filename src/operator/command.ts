/**
 * `palisade operator`: runs one operator replica until SIGTERM or SIGINT.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { notADuration, parseDuration } from "../duration.ts";
import { DEFAULT_IDENTITY_GRACE_MS } from "./identities.ts";
import { DEFAULT_OPERATOR_METRICS_PORT, runOperator } from "./operator.ts";

/** Usage of `palisade operator`, for the CLI's help text. */
export const OPERATOR_HELP = `  palisade operator [--kubeconfig PATH] [--leader-election-namespace NS] [--leader-election-lease NAME]
                    [--metrics-port N] [--identity-grace-period D]
      Runs the operator (one replica leads through the Lease NS/NAME, palisade-system/palisade-operator
      by default): policy checks, status conditions, Events, and the cluster's security identities
      (PalisadeIdentity objects, deleted once unused for --identity-grace-period, ${DEFAULT_IDENTITY_GRACE_MS / 1000}s). Serves
      /healthz, /readyz and /metrics on --metrics-port (${DEFAULT_OPERATOR_METRICS_PORT}). Stops on SIGTERM or SIGINT, releasing the Lease.`;

/** A command line `palisade operator` cannot run with. */
export class OperatorUsageError extends Error {
  override readonly name = "OperatorUsageError";
}

/**
 * Runs `palisade operator <argv>` until SIGTERM or SIGINT and returns the
 * exit status. Throws {@linkcode OperatorUsageError} on a bad command line.
 *
 * @example
 * ```ts
 * process.exitCode = await runOperatorCommand(["--leader-election-namespace=palisade-system"]);
 * ```
 */
export async function runOperatorCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: "string" },
      "leader-election-namespace": { type: "string", default: "palisade-system" },
      "leader-election-lease": { type: "string", default: "palisade-operator" },
      "metrics-port": { type: "string", default: String(DEFAULT_OPERATOR_METRICS_PORT) },
      "identity-grace-period": { type: "string", default: `${DEFAULT_IDENTITY_GRACE_MS / 1000}s` },
    },
    allowPositionals: false,
  });
  const port = Number(values["metrics-port"]);
  if (!/^\d+$/.test(values["metrics-port"]) || port > 65535) {
    throw new OperatorUsageError(`Cannot run the operator: --metrics-port "${values["metrics-port"]}" is not a port number (0-65535)`);
  }
  const graceMs = parseDuration(values["identity-grace-period"]);
  if (graceMs === undefined) throw new OperatorUsageError(`Cannot run the operator: ${notADuration("--identity-grace-period", values["identity-grace-period"])}`);
  const operator = await runOperator({
    ...(values.kubeconfig !== undefined && { kubeconfig: values.kubeconfig }),
    namespace: values["leader-election-namespace"],
    leaseName: values["leader-election-lease"],
    metricsPort: port,
    identityGraceMs: graceMs,
  });
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  await operator.stop();
  return 0;
}
