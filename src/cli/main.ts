/**
 * The `palisade` command.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ManifestError } from "./load-manifests.ts";
import { runExplain, type ExplainOptions } from "./explain.ts";
import { UsageError } from "./usage-error.ts";
import { DEV_HELP, runDev } from "./dev.ts";
import { OPERATOR_HELP, OperatorUsageError, runOperatorCommand } from "../operator/index.ts";
import { AgentUsageError, agentMain } from "../agent/index.ts";
import { PROXY_HELP, ProxyUsageError, proxyMain } from "../proxy/index.ts";
import { PROBE_HELP, runProbe } from "./probe.ts";
import { STATUS_HELP, runStatus } from "./status.ts";
import { WAIT_HELP, runWait } from "./wait.ts";
import { CONFORMANCE_HELP, runConformance } from "./conformance.ts";
import { INSTALL_CNI_HELP, runInstallCni } from "./install-cni.ts";
import { ProbeTargetError } from "../probe/index.ts";

const EXPLAIN_HELP = `  palisade explain -f PATH... [--from NS/POD|IP --to NS/POD|IP] [--port N] [--protocol TCP|UDP|SCTP|ICMP]
                   [--family ipv4|ipv6] [--http-method M] [--http-path P] [--http-host H]
                   [--http-header NAME=VALUE]... [-o text|json|table]
      Verdicts for traffic between the pods of manifests (Namespaces, Pods, NetworkPolicies,
      EBPFNetworkPolicies; YAML or JSON files or folders), answered from the compiled datapath
      state. With --from/--to: one verdict and the policy rules behind it; with --http-*, also the
      verdict the node's proxy gives that HTTP request (GET / and the destination as host by
      default) and the rule behind it. Without: every ordered pair of pods (-o table: a matrix;
      -o json: {"port","protocol","pairs":[...]}).`;

const AGENT_HELP = `  palisade agent --node-name NODE [--kubeconfig PATH] [--pin-root DIR] [--metrics-port N] [--identities cluster|local]
                 [--http-view-file PATH] [--proxy-port N]
      Runs the node agent: compiles the policies for NODE's pods into the eBPF maps pinned under
      DIR (/sys/fs/bpf/palisade), attaches the datapath to each local pod's interface, reports what
      it enforces in ConfigMap palisade-system/palisade-node-NODE, logs denied flows as JSON lines,
      and serves /healthz, /readyz and /metrics on --metrics-port (9962). Identity numbers come from
      the operator's PalisadeIdentity objects (cluster, the default) or from the agent alone (local,
      for an agent run without an operator). Flows that HTTP rules cover are steered to the node's
      proxy on --proxy-port (15001; 0: no proxy, such flows fail closed), which judges requests by
      the view the agent writes to --http-view-file (/run/palisade/http-view.json). Needs root.`;

/** Each command's part of the help, for `palisade COMMAND --help`. */
const COMMAND_HELP: Record<string, string> = {
  explain: EXPLAIN_HELP,
  dev: DEV_HELP,
  wait: WAIT_HELP,
  probe: PROBE_HELP,
  status: STATUS_HELP,
  conformance: CONFORMANCE_HELP,
  operator: OPERATOR_HELP,
  agent: AGENT_HELP,
  proxy: PROXY_HELP,
  "install-cni": INSTALL_CNI_HELP,
};

const HELP = `palisade: Kubernetes network policy engine with an eBPF datapath

Usage:
${Object.values(COMMAND_HELP).join("\n")}
  palisade help

Exit status: 0 on success, 2 on malformed input or usage errors, 1 on other failures (one line on stderr
says what failed; PALISADE_DEBUG=1 adds the stack trace).`;

const PROTOCOLS = new Set(["TCP", "UDP", "SCTP", "ICMP"]);

function explainOptions(argv: string[]): ExplainOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      filename: { type: "string", short: "f", multiple: true },
      from: { type: "string" },
      to: { type: "string" },
      port: { type: "string", default: "80" },
      protocol: { type: "string", default: "TCP" },
      family: { type: "string" },
      output: { type: "string", short: "o" },
      "http-method": { type: "string" },
      "http-path": { type: "string" },
      "http-host": { type: "string" },
      "http-header": { type: "string", multiple: true },
    },
    allowPositionals: false,
  });
  const files = values.filename ?? [];
  const headers = (values["http-header"] ?? []).map((text): [string, string] => {
    const at = text.indexOf("=");
    if (at <= 0) throw new UsageError(`Cannot explain: --http-header "${text}" is not NAME=VALUE`);
    return [text.slice(0, at), text.slice(at + 1)];
  });
  const wantsHttp = values["http-method"] !== undefined || values["http-path"] !== undefined || values["http-host"] !== undefined || headers.length > 0;
  if (wantsHttp && (values.from === undefined || values.to === undefined)) throw new UsageError("Cannot explain: --http-* need --from and --to");
  if (files.length === 0) throw new UsageError("Cannot explain: -f PATH is required (a manifest file or folder)");
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`Cannot explain: --port "${values.port}" is not a port number (0-65535)`);
  }
  const protocol = values.protocol.toUpperCase();
  if (!PROTOCOLS.has(protocol)) throw new UsageError(`Cannot explain: --protocol "${values.protocol}" is not one of TCP, UDP, SCTP, ICMP`);
  const family = values.family;
  if (family !== undefined && family !== "ipv4" && family !== "ipv6") {
    throw new UsageError(`Cannot explain: --family "${family}" is not ipv4 or ipv6`);
  }
  const single = values.from !== undefined || values.to !== undefined;
  const output = values.output ?? (single ? "text" : "table");
  if (output !== "text" && output !== "json" && output !== "table") {
    throw new UsageError(`Cannot explain: -o "${output}" is not text, json or table`);
  }
  return {
    files,
    port,
    protocol: protocol as ExplainOptions["protocol"],
    output,
    ...(family !== undefined && { family }),
    ...(values.from !== undefined && { from: values.from }),
    ...(values.to !== undefined && { to: values.to }),
    ...(wantsHttp && {
      http: { method: values["http-method"] ?? "GET", path: values["http-path"] ?? "/", ...(values["http-host"] !== undefined && { host: values["http-host"] }), headers },
    }),
  };
}

/** Runs the CLI and returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const commandHelp = command === undefined ? undefined : COMMAND_HELP[command];
  if (commandHelp !== undefined && (rest.includes("--help") || rest.includes("-h"))) {
    process.stdout.write(`Usage:\n${commandHelp}\n`);
    return 0;
  }
  try {
    switch (command) {
      case "dev":
        return await runDev(rest);
      case "operator":
        return await runOperatorCommand(rest);
      case "agent":
        await agentMain(rest);
        return 0;
      case "proxy":
        await proxyMain(rest);
        return 0;
      case "wait":
        return await runWait(rest);
      case "probe":
        process.stdout.write(`${await runProbe(rest)}\n`);
        return 0;
      case "conformance":
        return await runConformance(rest);
      case "install-cni":
        return await runInstallCni(rest);
      case "status":
        process.stdout.write(`${await runStatus(rest)}\n`);
        return 0;
      case "explain":
        process.stdout.write(`${runExplain(explainOptions(rest))}\n`);
        return 0;
      case undefined:
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(`${HELP}\n`);
        return 0;
      default:
        throw new UsageError(`Unknown command "${command}"; see "palisade help"`);
    }
  } catch (error) {
    const usage = error instanceof UsageError || error instanceof ManifestError || error instanceof ProbeTargetError || error instanceof OperatorUsageError || error instanceof AgentUsageError || error instanceof ProxyUsageError || String((error as { code?: unknown }).code).startsWith("ERR_PARSE_ARGS");
    // One line a user can act on (what could not be reached or read, or what failed); the stack only when asked for.
    process.stderr.write(`palisade: ${error instanceof Error ? error.message : String(error)}\n`);
    if (process.env.PALISADE_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    return usage ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
