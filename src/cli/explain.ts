/**
 * `palisade explain`: verdicts for traffic between pods of a world read from
 * manifests, answered from the compiled datapath state with the same lookups
 * the BPF program makes — not from the reference evaluator.
 *
 * @module
 */
import { isIP } from "node:net";
import {
  buildWorld,
  compileWorld,
  explainPacket,
  HttpViewIndex,
  IDENTITY_WORLD,
  lookupIpcache,
  type DesiredState,
  type LookupResult,
  type PacketProtocol,
  type PodInfo,
  type TcpLimits,
  type World,
} from "../policy/index.ts";
import { httpRequestView } from "../policy/http-request.ts";
import { readsRequests } from "../policy/http-view.ts";
import type { HttpJudgement } from "../policy/http-view.ts";
import { admittingRules } from "../policy/tls-client-certificate.ts";
import { hostNameProblem } from "../policy/tls-client-hello.ts";
import { loadManifests } from "./load-manifests.ts";
import { UsageError } from "./usage-error.ts";
import { verdictTable, type PairVerdict } from "./verdict-table.ts";

/** Options of `palisade explain`. */
export interface ExplainOptions {
  files: string[];
  from?: string;
  to?: string;
  port: number;
  protocol: PacketProtocol;
  family?: "ipv4" | "ipv6";
  output: "text" | "json" | "table";
  /** A request to judge as the node's proxy would (with --from/--to; TCP). */
  http?: { method: string; path: string; host?: string; headers: [string, string][] };
  /** A TLS connection's ClientHello server name to judge as the node's proxy would (with --from/--to; TCP). */
  tlsServerName?: string;
  /**
   * The subject alternative names of the client certificate of a TLS connection (`spiffe://...` URIs, DNS
   * names); the certificate is taken to chain to every CA the rules name and to be valid, which an offline
   * answer cannot check. With it (or a server name), the connection is judged as TLS; with `http` too, the
   * request is judged inside it when the proxy terminates it.
   */
  tlsClientSans?: string[];
}

interface End {
  label: string;
  ip: string;
}

function familyOf(ip: string): "ipv4" | "ipv6" {
  return isIP(ip) === 6 ? "ipv6" : "ipv4";
}

function podAddress(pod: PodInfo, family: "ipv4" | "ipv6" | undefined): string | undefined {
  return family ? pod.ips.find((ip) => familyOf(ip) === family) : pod.ips[0];
}

function resolveEnd(world: World, ref: string, family: "ipv4" | "ipv6" | undefined, flag: string): End {
  if (isIP(ref)) return { label: ref, ip: ref };
  const pod = world.pods.get(ref);
  if (!pod) throw new UsageError(`Cannot explain: ${flag} "${ref}" is neither a pod (namespace/name) of the manifests nor an IP address`);
  const ip = podAddress(pod, family);
  if (!ip) throw new UsageError(`Cannot explain: pod "${ref}" has no ${family ?? "IP"} address in status.podIPs`);
  return { label: ref, ip };
}

function describeRule(state: DesiredState, ruleId: number): string {
  const rule = state.rules.get(ruleId);
  if (!rule) return `rule #${ruleId}`;
  const mode = rule.mode === "Audit" ? " (audit)" : "";
  return `${rule.kind} ${rule.namespace}/${rule.name} ${rule.direction.toLowerCase()}[${rule.index}]${mode}`;
}

function describeLimits(limits: TcpLimits | undefined): string {
  if (!limits) return "limits unknown";
  const parts = [
    ...(limits.maxConnections > 0 ? [`at most ${limits.maxConnections} open connections`] : []),
    ...(limits.rate > 0 ? [`${limits.rate} new connections/s, burst ${limits.burst}`] : []),
  ];
  return parts.join(", ");
}

function describeLookup(state: DesiredState, where: string, result: LookupResult): string {
  switch (result.reason) {
    case "policy-allow":
      // Strict: only rules with tcp.strict allow it, so it opens by a SYN alone.
      // Limited: only rules with connection limits allow it, so the deciding rule's limits apply.
      return `${where}: allowed by ${describeRule(state, result.ruleId)}${result.tcpStrict ? " (tcp strict: a new flow must open with a SYN)" : ""}${
        result.tcpLimited ? ` (tcp limited: ${describeLimits(state.tcpLimits.get(result.ruleId))} per source address, charged to this rule)` : ""
      }${result.proxied ? " (steered to the node's proxy: HTTP or TLS rules judge it)" : ""}`;
    case "policy-deny":
      return `${where}: denied by ${describeRule(state, result.ruleId)}`;
    case "default-deny":
      return `${where}: denied, isolated by policy and no rule allows it`;
    case "not-isolated":
      return `${where}: allowed, no policy isolates it`;
    case "host":
      return `${where}: allowed, traffic from the node is always allowed`;
    case "no-endpoint":
      return `${where}: denied, no endpoint state (fail closed)`;
  }
}

function auditNote(state: DesiredState, where: string, result: LookupResult): string | undefined {
  if (!result.allowed || result.audit.allowed) return undefined;
  return `${where}: audit mode would deny it (${describeRule(state, result.audit.ruleId)})`;
}

interface Explained {
  allowed: boolean;
  lines: string[];
}

function explainOne(state: DesiredState, world: World, from: End, to: End, options: ExplainOptions, view?: HttpViewIndex): Explained {
  const verdict = explainPacket(state, world, {
    src: { ip: from.ip },
    dst: { ip: to.ip },
    protocol: options.protocol,
    port: options.protocol === "ICMP" ? 0 : options.port,
  });
  const lines: string[] = [];
  const notes: string[] = [];
  for (const [dir, result] of [["egress", verdict.egress], ["ingress", verdict.ingress]] as const) {
    if (!result) continue;
    const where = `${dir} at ${result.endpoint}`;
    lines.push(describeLookup(state, where, result));
    const note = auditNote(state, where, result);
    if (note) notes.push(note);
  }
  if (lines.length === 0) lines.push("neither end is a pod: no policy applies");
  let allowed = verdict.allowed;
  if (view && verdict.allowed && (options.http || judgesTls(options))) {
    const proxied = (verdict.egress?.proxied ?? false) || (verdict.ingress?.proxied ?? false);
    const judged = judgesTls(options) ? explainTls(state, view, proxied, from, to, options) : explainRequest(state, view, proxied, from, to, options.port, options.http as NonNullable<ExplainOptions["http"]>);
    allowed = judged.allowed;
    lines.push(...judged.lines);
  }
  return { allowed, lines: [...lines, ...notes] };
}

/** Whether the connection is judged as TLS: a server name or a client certificate was given. */
function judgesTls(options: ExplainOptions): boolean {
  return options.tlsServerName !== undefined || options.tlsClientSans !== undefined;
}

/**
 * The proxy's verdict for one request on an allowed flow, from the HTTP view the agent would publish; inside a
 * terminated connection, `terminated` names the rules that admitted it and the ClientHello's server name, which is
 * the request's host unless --http-host says otherwise (as curl sends it).
 */
function explainRequest(state: DesiredState, view: HttpViewIndex, proxied: boolean, from: End, to: End, port: number, http: NonNullable<ExplainOptions["http"]>, terminated?: { by: number[]; serverName: string | undefined }): { allowed: boolean; lines: string[] } {
  const what = `http ${http.method} ${http.path}`;
  if (!proxied) return { allowed: true, lines: [`${what}: not judged, no HTTP rule covers this flow (it never reaches the proxy)`] };
  const host = http.host ?? terminated?.serverName ?? (to.ip.includes(":") ? `[${to.ip}]` : to.ip);
  const accepted = httpRequestView({ method: http.method, target: http.path, fields: [["Host", host], ...http.headers] });
  if (!accepted.ok) return { allowed: false, lines: [`${what}: refused with 400 before any rule: ${accepted.reason}`] };
  const judged = view.judge(accepted.view, { ...connectionOf(from, to, port), ...(terminated && { terminatedBy: terminated.by }) }, identityOf(state));
  const refused = judged.misdirected ? `answered 421 Misdirected Request (host ${accepted.view.host}, server name ${terminated?.serverName ?? "none"})` : "refused with 403";
  return describeJudgement(what, judged, refused, "no HTTP Deny entry matches and a rule without http allows the flow");
}

/**
 * The proxy's verdict for a TLS connection on an allowed flow: by its ClientHello's server name (none
 * without --tls-server-name), then, where rules terminate it, by the client certificate's names, and the
 * request inside it (--http-*).
 */
function explainTls(state: DesiredState, view: HttpViewIndex, proxied: boolean, from: End, to: End, options: ExplainOptions): { allowed: boolean; lines: string[] } {
  const serverName = options.tlsServerName;
  const what = `tls ${serverName ?? "(no server name)"}`;
  if (!proxied) return { allowed: true, lines: [`${what}: not judged, no HTTP or TLS rule covers this flow (it never reaches the proxy)`] };
  const problem = serverName === undefined ? undefined : hostNameProblem(serverName);
  if (problem) return { allowed: false, lines: [`${what}: reset before any rule: a ClientHello naming ${problem} is malformed`] };
  const judged = view.judgeConnection({ tls: true, serverName: serverName?.toLowerCase() }, connectionOf(from, to, options.port), identityOf(state));
  const plan = judged.terminate;
  if (!judged.allow || plan === undefined) {
    const described = describeJudgement(what, judged, "reset", "no TLS Deny rule matches and a rule without http or tls allows the flow");
    if (!described.allowed || !options.http) return described;
    return { allowed: true, lines: [...described.lines, `http ${options.http.method} ${options.http.path}: not judged, the connection is passed on without terminating TLS`] };
  }
  const sans = options.tlsClientSans ?? [];
  const certificate = sans.length === 0 ? undefined : {
    names: { dns: sans.filter((name) => !name.includes(":")), uri: sans.filter((name) => name.includes(":")) },
    valid: true,
    chainsTo: () => true,
  };
  const { ids, failure } = admittingRules(plan.rules, certificate);
  const source = `Secret ${plan.namespace}/${plan.termination.certificate.secretName}`;
  if (failure !== undefined) return { allowed: false, lines: [`${what}: reset after the handshake: ${failure} (no rule terminating it with ${source} admits the client certificate)`] };
  const by = plan.rules.filter((rule) => ids.includes(rule.id)).map((rule) => `${rule.policy} ${rule.rule}`);
  const lines = [`${what}: terminated with ${source} (upstream ${plan.termination.upstream ?? "Plain"}), admitted by ${by.join(", ")}`];
  if (!options.http) return { allowed: true, lines };
  if (!readsRequests(plan, ids)) return { allowed: true, lines: [...lines, `http ${options.http.method} ${options.http.path}: not judged, no rule reads the requests of this connection: the decrypted bytes go to the pod unread, their host not held to the server name`] };
  const request = explainRequest(state, view, proxied, from, to, options.port, options.http, { by: ids, serverName });
  return { allowed: request.allowed, lines: [...lines, ...request.lines] };
}

function connectionOf(from: End, to: End, port: number) {
  return { clientAddress: from.ip, clientPort: 40000, serverAddress: to.ip, serverPort: port };
}

function identityOf(state: DesiredState): (ip: string) => number {
  return (ip) => lookupIpcache(state, ip)?.value.identity ?? IDENTITY_WORLD;
}

/** One line for the proxy's judgement of a request or connection: `refused` says how it is refused, `open` why nothing judged it. */
function describeJudgement(what: string, judged: HttpJudgement, refused: string, open: string): { allowed: boolean; lines: string[] } {
  if (judged.allow && !judged.audit && judged.rule === undefined) return { allowed: true, lines: [`${what}: allowed, ${open}`] };
  const by = `${judged.policy ? ` by ${judged.policy} ${judged.rule}` : ` (${judged.rule})`}${judged.reason ? `, ${judged.reason}` : ""}`;
  if (!judged.allow) return { allowed: false, lines: [`${what}: ${refused}${by}`] };
  return { allowed: true, lines: [judged.audit ? `${what}: allowed; audit mode would have it ${refused}${by}` : `${what}: allowed${by}`] };
}

function pairs(world: World, options: ExplainOptions): [End, End][] {
  const pods = [...world.pods.values()].sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  const out: [End, End][] = [];
  for (const a of pods) {
    for (const b of pods) {
      if (a === b) continue; // loopback never crosses the pod's interface
      const family = options.family ?? (a.ips[0] ? familyOf(a.ips[0]) : undefined);
      const src = podAddress(a, family);
      const dst = podAddress(b, family);
      if (!src || !dst) continue;
      out.push([
        { label: `${a.namespace}/${a.name}`, ip: src },
        { label: `${b.namespace}/${b.name}`, ip: dst },
      ]);
    }
  }
  return out;
}

/**
 * Runs `palisade explain` and returns what to print.
 *
 * @example
 * ```ts
 * const out = runExplain({ files: ["examples/demo.yaml"], port: 8080, protocol: "TCP", output: "json" });
 * ```
 */
export function runExplain(options: ExplainOptions): string {
  const manifests = loadManifests(options.files);
  const { world, errors } = buildWorld(
    manifests.map((m) => m.object),
    { source: (index) => manifests[index]?.source ?? "" },
  );
  if (errors.length > 0) throw new UsageError(errors.map((error) => error.message).join("\n"));
  const { compiler, state } = compileWorld(world);

  if (options.from !== undefined || options.to !== undefined) {
    if (options.from === undefined || options.to === undefined) {
      throw new UsageError("Cannot explain: --from and --to go together");
    }
    const from = resolveEnd(world, options.from, options.family, "--from");
    const to = resolveEnd(world, options.to, options.family ?? familyOf(from.ip), "--to");
    if (familyOf(from.ip) !== familyOf(to.ip)) {
      throw new UsageError(`Cannot explain: ${from.ip} and ${to.ip} are of different address families`);
    }
    const judged = options.http !== undefined || judgesTls(options);
    const result = explainOne(state, world, from, to, options, judged ? new HttpViewIndex(compiler.httpView()) : undefined);
    if (options.output === "json") {
      return JSON.stringify({
        from: from.label,
        to: to.label,
        port: options.port,
        protocol: options.protocol,
        allowed: result.allowed,
        reasons: result.lines,
      }, null, 2);
    }
    const head = `${from.label} (${from.ip}) -> ${to.label} (${to.ip}) ${options.protocol}/${options.port}: ${result.allowed ? "ALLOWED" : "DENIED"}`;
    return [head, ...result.lines.map((l) => `  ${l}`)].join("\n");
  }

  const verdicts: PairVerdict[] = pairs(world, options).map(([from, to]) => {
    const result = explainOne(state, world, from, to, options);
    return { from: from.label, to: to.label, allowed: result.allowed, reason: result.lines.join("; ") };
  });
  if (options.output === "json") {
    return JSON.stringify({ port: options.port, protocol: options.protocol, pairs: verdicts });
  }
  return verdictTable(verdicts);
}
