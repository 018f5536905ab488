/**
 * `palisade probe`: real packets between the dev cluster's pods, through
 * src/probe/. A prober runs inside the source pod's network namespace (the
 * one the dev node runtime made for it) and connects to the target pod's
 * IP, where the node runtime's pod server answers on the declared ports.
 * TCP and UDP are sent from Node; SCTP through `palisade-sctp probe`, which
 * sends an INIT over a raw socket (the kernel may have no SCTP sockets).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { sctpRawBinary } from "../devcluster/node-runtime/index.ts";
import { parseObjectKey } from "../k8s/cache.ts";
import { KubeClient } from "../k8s/client.ts";
import { probeMatrix, probePods, type ProbeEnvironment, type ProbeTarget } from "../probe/index.ts";
import { UsageError } from "./usage-error.ts";
import { verdictTable } from "./verdict-table.ts";

/** The parsed flags of `palisade probe` / `palisade probe matrix`. */
export interface ProbeOptions extends ProbeTarget {
  kubeconfig?: string;
  output: "text" | "json" | "table";
  matrix?: { namespaces: string[] };
  from?: string;
  to?: string;
}

/** `palisade probe` help text. */
export const PROBE_HELP = `  palisade probe --from NS/POD --to NS/POD --port N [--protocol TCP|UDP|SCTP] [--family ipv4|ipv6]
                 [--timeout-ms 1000] [--kubeconfig PATH] [-o text|json]
      Sends real packets from one dev cluster pod to another (inside the source pod's network
      namespace) and prints allowed or denied; -o json prints {"allowed": true|false}. SCTP sends
      an INIT over a raw socket and is allowed when the INIT ACK comes back.
  palisade probe matrix --namespaces X,Y --port N [--protocol TCP|UDP|SCTP] [-o table|json]
      Probes every ordered pair of Running pods of the namespaces (all at once); -o json prints
      {"port","protocol","pairs":[{"from","to","allowed","reason"}]} (connected, timeout, refused).`;

function podRef(ref: string, flag: string): string {
  const { namespace, name } = parseObjectKey(ref);
  if (!namespace || !name || name.includes("/")) throw new UsageError(`Cannot probe: ${flag} "${ref}" is not NAMESPACE/POD`);
  return ref;
}

/**
 * Parses the flags of `palisade probe [matrix]`.
 *
 * @example
 * ```ts
 * parseProbeArgs(["--from", "x/a", "--to", "x/b", "--port", "80"]);
 * ```
 */
export function parseProbeArgs(argv: string[]): ProbeOptions {
  const matrix = argv[0] === "matrix";
  const { values } = parseArgs({
    args: matrix ? argv.slice(1) : argv,
    options: {
      from: { type: "string" },
      to: { type: "string" },
      namespaces: { type: "string" },
      port: { type: "string" },
      protocol: { type: "string", default: "TCP" },
      family: { type: "string", default: "ipv4" },
      "timeout-ms": { type: "string", default: "1000" },
      kubeconfig: { type: "string" },
      output: { type: "string", short: "o" },
    },
  });
  const port = Number(values.port);
  if (values.port === undefined || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`Cannot probe: --port "${values.port ?? ""}" is not a port number (1-65535)`);
  }
  const protocol = values.protocol.toUpperCase();
  if (protocol !== "TCP" && protocol !== "UDP" && protocol !== "SCTP") throw new UsageError(`Cannot probe: --protocol "${values.protocol}" is not TCP, UDP or SCTP`);
  if (values.family !== "ipv4" && values.family !== "ipv6") throw new UsageError(`Cannot probe: --family "${values.family}" is not ipv4 or ipv6`);
  const timeoutMs = Number(values["timeout-ms"]);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new UsageError(`Cannot probe: --timeout-ms "${values["timeout-ms"]}" is not a positive integer`);
  const output = values.output ?? (matrix ? "table" : "text");
  const allowedOutputs = matrix ? ["table", "json"] : ["text", "json"];
  if (!allowedOutputs.includes(output)) throw new UsageError(`Cannot probe: -o "${output}" is not ${allowedOutputs.join(" or ")}`);
  const base = { port, protocol: protocol as ProbeTarget["protocol"], family: values.family as ProbeTarget["family"], timeoutMs, output: output as ProbeOptions["output"], ...(values.kubeconfig !== undefined && { kubeconfig: values.kubeconfig }) };
  if (matrix) {
    const namespaces = (values.namespaces ?? "").split(",").filter((ns) => ns !== "");
    if (namespaces.length === 0) throw new UsageError("Cannot probe matrix: --namespaces X,Y is required");
    return { ...base, matrix: { namespaces } };
  }
  if (values.from === undefined || values.to === undefined) throw new UsageError("Cannot probe: --from NS/POD and --to NS/POD are required");
  return { ...base, from: podRef(values.from, "--from"), to: podRef(values.to, "--to") };
}

/** Runs `palisade probe [matrix]` and returns what to print. */
export async function runProbe(argv: string[]): Promise<string> {
  const options = parseProbeArgs(argv);
  const client = options.kubeconfig === undefined ? KubeClient.fromDefault() : KubeClient.fromFile(options.kubeconfig);
  // The dev cluster's pods: their namespaces as its node runtime names them, SCTP through its palisade-sctp.
  const environment: ProbeEnvironment = { sctpBinary: sctpRawBinary() };
  if (options.matrix) {
    const pairs = await probeMatrix(client, options.matrix.namespaces, options, environment);
    return options.output === "json" ? JSON.stringify({ port: options.port, protocol: options.protocol, pairs }) : verdictTable(pairs);
  }
  const result = await probePods(client, options.from as string, options.to as string, options, environment);
  if (options.output === "json") return JSON.stringify({ allowed: result.allowed });
  return `${options.from} -> ${options.to} ${options.protocol}/${options.port}: ${result.allowed ? "allowed" : "denied"} (${result.reason})`;
}
