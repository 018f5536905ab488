/**
 * The agent's entry point behind `palisade agent --node-name X
 * [--kubeconfig P] [--pin-root P] [--metrics-port N] [--identities cluster|local] [--http-view-file P] [--proxy-port N]
 * [--policy-map-entries N]`: parses the flags,
 * runs the agent until SIGINT or SIGTERM, and stops it cleanly (pinned
 * state stays in the kernel, so enforcement continues meanwhile).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { DEFAULT_PROXY_PORT } from "../datapath/transparent-socket.ts";
import { KubeClient } from "../k8s/client.ts";
import { Agent, DEFAULT_METRICS_PORT, DEFAULT_PIN_ROOT } from "./agent.ts";
import type { IdentitySource } from "./agent.ts";
import { jsonLogger } from "../k8s/logger.ts";
import { stopSignal } from "../stop-signal.ts";

/** What `runAgent` needs; the flags of `palisade agent`. */
export interface RunAgentOptions {
  nodeName: string;
  /** Kubeconfig file; `$KUBECONFIG`, `~/.kube/config` or the in-cluster service account if absent. */
  kubeconfig?: string;
  pinRoot?: string;
  metricsPort?: number;
  /** Where identity numbers come from; `"cluster"` (the operator's PalisadeIdentity objects) by default. */
  identities?: IdentitySource;
  /** Where the HTTP view for the node's proxy goes. */
  httpViewFile?: string;
  /** The node proxy's port; 0 = no proxy (flows HTTP rules cover fail closed). */
  proxyPort?: number;
  /** `pal_policy`'s max_entries when the agent creates it; also `PALISADE_POLICY_MAP_ENTRIES`. */
  policyMapEntries?: number;
}

/** The command line is wrong; the message says which flag. */
export class AgentUsageError extends Error {
  override name = "AgentUsageError";
}

/**
 * Parses `palisade agent`'s flags.
 *
 * @example
 * ```ts
 * parseAgentArgs(["--node-name", "node-1", "--metrics-port", "9000"]); // { nodeName: "node-1", metricsPort: 9000 }
 * ```
 */
export function parseAgentArgs(args: string[]): RunAgentOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        "node-name": { type: "string" },
        kubeconfig: { type: "string" },
        "pin-root": { type: "string" },
        "metrics-port": { type: "string" },
        identities: { type: "string" },
        "http-view-file": { type: "string" },
        "proxy-port": { type: "string" },
        "policy-map-entries": { type: "string" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (cause) {
    throw new AgentUsageError(`Cannot run agent: ${(cause as Error).message}`, { cause });
  }
  const nodeName = values["node-name"] ?? process.env["NODE_NAME"];
  if (nodeName === undefined || nodeName === "") throw new AgentUsageError("Cannot run agent: --node-name is required (or NODE_NAME in the environment)");
  const options: RunAgentOptions = { nodeName };
  if (values.kubeconfig !== undefined) options.kubeconfig = values.kubeconfig;
  if (values["pin-root"] !== undefined) options.pinRoot = values["pin-root"];
  if (values["http-view-file"] !== undefined) options.httpViewFile = values["http-view-file"];
  const identities = values.identities;
  if (identities !== undefined) {
    if (identities !== "cluster" && identities !== "local") throw new AgentUsageError(`Cannot run agent: --identities "${identities}" is not cluster or local`);
    options.identities = identities;
  }
  for (const flag of ["metrics-port", "proxy-port"] as const) {
    const port = values[flag];
    if (port === undefined) continue;
    const n = Number(port);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new AgentUsageError(`Cannot run agent: --${flag} "${port}" is not a port number`);
    if (flag === "metrics-port") options.metricsPort = n;
    else options.proxyPort = n;
  }
  const entries = values["policy-map-entries"] ?? process.env["PALISADE_POLICY_MAP_ENTRIES"];
  if (entries !== undefined) {
    const n = Number(entries);
    // The kernel's limit for a map's entries is far above any node's need; 2^31 keeps it an int.
    if (!/^\d+$/.test(entries) || n < 1 || n > 2 ** 31) throw new AgentUsageError(`Cannot run agent: --policy-map-entries "${entries}" is not a whole number from 1 to 2147483648`);
    options.policyMapEntries = n;
  }
  return options;
}

/**
 * Runs the agent until SIGINT or SIGTERM; resolves after it stopped.
 *
 * @example
 * ```ts
 * await runAgent({ nodeName: "node-1", kubeconfig: "/var/lib/palisade/dev/admin.kubeconfig" });
 * ```
 */
export async function runAgent(options: RunAgentOptions): Promise<void> {
  // The agent's log (denied flows included) goes to stdout, where a DaemonSet's log collector reads it.
  const logger = jsonLogger("info", { component: "agent", node: options.nodeName }, (line) => process.stdout.write(line));
  const client = options.kubeconfig === undefined ? KubeClient.fromDefault() : KubeClient.fromFile(options.kubeconfig);
  const agent = await Agent.start({
    nodeName: options.nodeName,
    client,
    logger,
    pinRoot: options.pinRoot ?? DEFAULT_PIN_ROOT,
    metricsPort: options.metricsPort ?? DEFAULT_METRICS_PORT,
    identities: options.identities ?? "cluster",
    ...(options.httpViewFile === undefined ? {} : { httpViewFile: options.httpViewFile }),
    ...(options.proxyPort === 0 ? {} : { proxyPort: options.proxyPort ?? DEFAULT_PROXY_PORT }),
    ...(options.policyMapEntries === undefined ? {} : { policyMapEntries: options.policyMapEntries }),
  });
  logger.info({ signal: await stopSignal() }, "Stopping on signal");
  await agent.stop();
}

/** `palisade agent ARGS`: runs the agent from command-line flags. */
export async function agentMain(args: string[]): Promise<void> {
  await runAgent(parseAgentArgs(args));
}
