/**
 * The `palisade` command.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { ExplainOptions } from "./explain.ts";
import { UsageError } from "./usage-error.ts";

const EXPLAIN_HELP = `  palisade explain -f PATH... [--from NS/POD|IP --to NS/POD|IP] [--port N] [--protocol TCP|UDP|SCTP|ICMP]
                   [--family ipv4|ipv6] [--http-method M] [--http-path P] [--http-host H]
                   [--http-header NAME=VALUE]... [--tls-server-name NAME] [--tls-client-san NAME]...
                   [-o text|json|table]
      Verdicts for traffic between the pods of manifests (Namespaces, Pods, NetworkPolicies,
      EBPFNetworkPolicies; YAML or JSON files or folders), answered from the compiled datapath
      state. With --from/--to: one verdict and the policy rules behind it; with --http-*, also the
      verdict the node's proxy gives that HTTP request (GET / and the destination as host by
      default) and the rule behind it; with --tls-server-name, the verdict it gives a TLS
      connection whose ClientHello asks for NAME; with --tls-client-san (URI or DNS name,
      repeatable), a client certificate with those names (taken to chain to the rules' CAs and to be
      valid) for rules that terminate TLS, and with --http-* as well, the request inside the
      terminated connection. Without: every ordered pair of pods (-o table: a matrix; -o json:
      {"port","protocol","pairs":[...]}).`;

const AGENT_HELP = `  palisade agent --node-name NODE [--kubeconfig PATH] [--pin-root DIR] [--metrics-port N] [--identities cluster|local]
                 [--http-view-file PATH] [--proxy-port N] [--policy-map-entries N]
      Runs the node agent: compiles the policies for NODE's pods into the eBPF maps pinned under
      DIR (/sys/fs/bpf/palisade), attaches the datapath to each local pod's interface, reports what
      it enforces in ConfigMap palisade-system/palisade-node-NODE, logs denied flows as JSON lines,
      and serves /healthz, /readyz and /metrics on --metrics-port (9962). Identity numbers come from
      the operator's PalisadeIdentity objects (cluster, the default) or from the agent alone (local,
      for an agent run without an operator). Flows that HTTP or TLS rules cover are steered to the
      node's proxy on --proxy-port (15001; 0: no proxy, such flows fail closed), which judges requests
      and ClientHellos by the view the agent writes to --http-view-file (/run/palisade/http-view.json).
      --policy-map-entries (or PALISADE_POLICY_MAP_ENTRIES) sizes the policy map when the agent creates
      it (1048576 by default; a pinned map keeps its size). Needs root.`;

/**
 * The commands: each one's module is loaded only when it runs (or its help is
 * asked for), so a process such as `palisade proxy` carries only its own code
 * (not the operator's and agent's Kubernetes client) in memory.
 */
interface Command {
  help(): Promise<string>;
  run(rest: string[]): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  explain: {
    help: async () => EXPLAIN_HELP,
    run: async (rest) => {
      const { runExplain } = await import("./explain.ts");
      process.stdout.write(`${runExplain(explainOptions(rest))}\n`);
      return 0;
    },
  },
  dev: { help: async () => (await import("./dev.ts")).DEV_HELP, run: async (rest) => (await import("./dev.ts")).runDev(rest) },
  wait: { help: async () => (await import("./wait.ts")).WAIT_HELP, run: async (rest) => (await import("./wait.ts")).runWait(rest) },
  probe: {
    help: async () => (await import("./probe.ts")).PROBE_HELP,
    run: async (rest) => {
      process.stdout.write(`${await (await import("./probe.ts")).runProbe(rest)}\n`);
      return 0;
    },
  },
  status: {
    help: async () => (await import("./status.ts")).STATUS_HELP,
    run: async (rest) => {
      process.stdout.write(`${await (await import("./status.ts")).runStatus(rest)}\n`);
      return 0;
    },
  },
  conformance: { help: async () => (await import("./conformance.ts")).CONFORMANCE_HELP, run: async (rest) => (await import("./conformance.ts")).runConformance(rest) },
  operator: { help: async () => (await import("../operator/index.ts")).OPERATOR_HELP, run: async (rest) => (await import("../operator/index.ts")).runOperatorCommand(rest) },
  agent: {
    help: async () => AGENT_HELP,
    run: async (rest) => {
      await (await import("../agent/index.ts")).agentMain(rest);
      return 0;
    },
  },
  proxy: {
    help: async () => (await import("../proxy/index.ts")).PROXY_HELP,
    run: async (rest) => {
      await (await import("../proxy/index.ts")).proxyMain(rest);
      return 0;
    },
  },
  "install-cni": { help: async () => (await import("./install-cni.ts")).INSTALL_CNI_HELP, run: async (rest) => (await import("./install-cni.ts")).runInstallCni(rest) },
};

/** Errors that mean the input was wrong (exit status 2), by name: their classes live in modules loaded only with their command. */
const USAGE_ERRORS = new Set(["UsageError", "ManifestError", "ProbeTargetError", "OperatorUsageError", "AgentUsageError", "ProxyUsageError"]);

async function help(): Promise<string> {
  const parts = await Promise.all(Object.values(COMMANDS).map((command) => command.help()));
  return `palisade: Kubernetes network policy engine with an eBPF datapath

Usage:
${parts.join("\n")}
  palisade help

Exit status: 0 on success, 2 on malformed input or usage errors, 1 on other failures (one line on stderr
says what failed; PALISADE_DEBUG=1 adds the stack trace).`;
}

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
      "tls-server-name": { type: "string" },
      "tls-client-san": { type: "string", multiple: true },
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
  const tlsServerName = values["tls-server-name"];
  const tlsClientSans = values["tls-client-san"];
  if ((tlsServerName !== undefined || tlsClientSans !== undefined) && (values.from === undefined || values.to === undefined)) throw new UsageError("Cannot explain: --tls-server-name and --tls-client-san need --from and --to");
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
    ...(tlsServerName !== undefined && { tlsServerName }),
    ...(tlsClientSans !== undefined && { tlsClientSans }),
    ...(wantsHttp && {
      http: { method: values["http-method"] ?? "GET", path: values["http-path"] ?? "/", ...(values["http-host"] !== undefined && { host: values["http-host"] }), headers },
    }),
  };
}

/** Runs the CLI and returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const command = name === undefined ? undefined : COMMANDS[name];
  try {
    if (command !== undefined && (rest.includes("--help") || rest.includes("-h"))) {
      process.stdout.write(`Usage:\n${await command.help()}\n`);
      return 0;
    }
    if (command !== undefined) return await command.run(rest);
    if (name === undefined || name === "help" || name === "--help" || name === "-h") {
      process.stdout.write(`${await help()}\n`);
      return 0;
    }
    throw new UsageError(`Unknown command "${name}"; see "palisade help"`);
  } catch (error) {
    const usage = (error instanceof Error && USAGE_ERRORS.has(error.name)) || String((error as { code?: unknown }).code).startsWith("ERR_PARSE_ARGS");
    // One line a user can act on (what could not be reached or read, or what failed); the stack only when asked for.
    process.stderr.write(`palisade: ${error instanceof Error ? error.message : String(error)}\n`);
    if (process.env.PALISADE_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    return usage ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
