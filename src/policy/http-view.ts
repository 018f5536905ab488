/**
 * The HTTP view: what the node's proxy needs of the compiled policy to judge
 * requests and TLS connections, as the agent publishes it (a JSON file it
 * replaces atomically): the node's endpoints with their addresses, the policy
 * entries of every slot some of whose flows HTTP or TLS rules judge, and the
 * rules those entries name. The proxy answers a request, or a connection's
 * ClientHello, with the same lookups the datapath made for its flow
 * (lookup.ts), then the `http` entries or `tls` server names of the rules
 * they found; the meaning of rules stays here, in the policy layer.
 *
 * @module
 */
import { DIRECTION_EGRESS, DIRECTION_INGRESS, IDENTITY_HOST, policyKeyString } from "./desired-state.ts";
import type { Direction, EndpointState, PolicyEntry, RuleRef } from "./desired-state.ts";
import type { TlsClientCertificate, TlsRule, TlsTermination } from "./api-types.ts";
import { serverReadings } from "./http-path.ts";
import { compileHttpRules, validateHttpRules } from "./http-rule.ts";
import type { CompiledHttpRules, HttpRequestView } from "./http-rule.ts";
import { canonicalIp } from "./ip.ts";
import { lookupEndpointVerdict } from "./lookup.ts";
import { matchServerName } from "./tls-server-name.ts";
import { validatePolicy } from "./validate.ts";
import type { HttpJudges, LookupResult } from "./lookup.ts";

/** How long the verdicts of a connection's sides are reused for its requests. */
const SIDES_TTL_MS = 1000;
/** Connections whose sides are kept at most (then all are forgotten: a bound, not an LRU). */
const MAX_CACHED_SIDES = 4096;

/** Where the agent publishes the view and the proxy reads it, unless told otherwise. */
export const DEFAULT_HTTP_VIEW_PATH = "/run/palisade/http-view.json";

/** A local endpoint: its pod, addresses and state. */
export interface HttpViewEndpoint {
  pod: string;
  addresses: string[];
  state: EndpointState;
}

/** What the proxy judges requests by. Plain JSON. */
export interface HttpView {
  version: 1;
  endpoints: HttpViewEndpoint[];
  /** Every entry of the slots having an entry whose flows HTTP rules judge. */
  policy: PolicyEntry[];
  /** The rules those entries name, by id. */
  rules: [number, RuleRef][];
}

/** The addresses of one proxied connection. */
export interface HttpConnection {
  clientAddress: string;
  clientPort: number;
  /** The client's original destination. */
  serverAddress: string;
  serverPort: number;
  /**
   * For the requests inside a connection the proxy terminated: the ids of the rules that admitted it (its
   * {@link TlsTerminationPlan}'s rules whose client certificate requirement held). Its requests are judged at
   * the server's side: first their host against these rules' `serverNames` (see {@link HttpJudgement.misdirected}),
   * then by these rules' `http` (a rule without `http` admits every request) and the side's Deny rules with
   * `http`; the client's side judged the connection by its ClientHello already.
   */
  terminatedBy?: readonly number[];
}

/** A rule that admits a connection by terminating it, and the client certificate it asks for. */
export interface TerminatingRule {
  id: number;
  /** The policy and rule, as judgements name them (`ingress[0].tls`). */
  policy: string;
  rule: string;
  clientCertificate?: TlsClientCertificate;
  /** Whether the rule has `http`: the requests it admits are judged one by one. */
  http: boolean;
}

/**
 * How the proxy terminates a connection: one certificate and upstream, which every Allow rule admitting the
 * connection by termination names alike, and those rules (a connection is admitted when the client
 * certificate satisfies at least one of them).
 */
export interface TlsTerminationPlan {
  /** The namespace of the rules' policies, where the Secret and ConfigMaps they name are. */
  namespace: string;
  termination: TlsTermination;
  rules: TerminatingRule[];
  /** A Deny rule with `http` covers the connection: its requests are judged even if every admitting rule admits them all. */
  httpDenies: boolean;
  /** Whether any request is judged (a rule with `http`, or `httpDenies`): the proxy then offers HTTP/2 and HTTP/1.1 by ALPN. */
  judgesRequests: boolean;
}

/**
 * The answer for one request (forward it or refuse it with 403) or one connection (pass it on or reset it),
 * and whether it was let through only because its policy audits.
 */
export interface HttpJudgement {
  allow: boolean;
  /** Refused by a policy in audit mode: let through, and reported. */
  audit: boolean;
  /** The policy behind the verdict (`kind namespace/name`), when one is. */
  policy?: string;
  /**
   * The rule and entry behind it (`ingress[0].http[1]`, `egress[0].tls`: for what was let through, the
   * rule that allowed it), or why none is.
   */
  rule?: string;
  /** Why a request was judged by another reading of its path, for the flow log (it holds the path: never a metric label). */
  reason?: string;
  /**
   * A request inside a terminated connection refused because no `serverNames` entry of the rules that
   * terminated the connection names its host (RFC 9110 §7.4: the connection was admitted for those servers
   * only): answered 421 Misdirected Request (§15.5.20), not 403; the client may retry on a connection of its own.
   */
  misdirected?: boolean;
  /** For a TLS connection let through by rules with `tls.termination`: how to terminate it. */
  terminate?: TlsTerminationPlan;
}

/** What a connection's first bytes are: a whole ClientHello and the server name it asks for (undefined: none), or not TLS. */
export type ConnectionStart = { tls: true; serverName: string | undefined } | { tls: false };

class HttpViewError extends Error {
  constructor(message: string) {
    super(`Malformed HTTP view: ${message}`);
    this.name = "HttpViewError";
  }
}

/** The canonical text of an address, or undefined when it is not one. */
function addressKey(text: string): string | undefined {
  try {
    return canonicalIp(text);
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function listAt(value: unknown, field: string): unknown[] {
  if (!Array.isArray(value)) throw new HttpViewError(`${field} is not a list`);
  return value;
}

function numbersAt(value: unknown, field: string, keys: readonly string[]): void {
  if (!isObject(value)) throw new HttpViewError(`${field} is not an object`);
  for (const key of keys) {
    if (!Number.isInteger(value[key])) throw new HttpViewError(`${field}.${key} is not an integer`);
  }
}

/**
 * Checks a view read from a file: its shape, and every rule's `http` list as the
 * API validates it (so a matcher can be built for each). Throws with the field at fault.
 *
 * @example
 * ```ts
 * const view = parseHttpView(JSON.parse(await readFile(path, "utf8")));
 * ```
 */
export function parseHttpView(json: unknown): HttpView {
  if (!isObject(json) || json.version !== 1) throw new HttpViewError("not a version 1 HTTP view");
  listAt(json.endpoints, "endpoints").forEach((endpoint, i) => {
    if (!isObject(endpoint) || typeof endpoint.pod !== "string") throw new HttpViewError(`endpoints[${i}].pod is not a string`);
    listAt(endpoint.addresses, `endpoints[${i}].addresses`).forEach((address, j) => {
      if (typeof address !== "string" || addressKey(address) === undefined) throw new HttpViewError(`endpoints[${i}].addresses[${j}] is not an IP address`);
    });
    numbersAt(endpoint.state, `endpoints[${i}].state`, ["endpointId", "identity", "slot", "flags"]);
  });
  listAt(json.policy, "policy").forEach((entry, i) => {
    if (!isObject(entry)) throw new HttpViewError(`policy[${i}] is not an object`);
    numbersAt(entry.key, `policy[${i}].key`, ["slot", "identity", "direction", "protocol", "port", "portPrefixLen"]);
    numbersAt(entry.value, `policy[${i}].value`, ["verdict", "auditVerdict", "ruleId", "auditRuleId", "flags"]);
    const http = (entry.value as Record<string, unknown>).http;
    if (http !== undefined) {
      for (const key of ["allows", "denies", "auditAllows", "auditDenies"]) {
        listAt((http as Record<string, unknown>)[key], `policy[${i}].value.http.${key}`).forEach((id) => {
          if (!Number.isInteger(id)) throw new HttpViewError(`policy[${i}].value.http.${key} holds ${JSON.stringify(id)}, not a rule id`);
        });
      }
    }
  });
  listAt(json.rules, "rules").forEach((pair, i) => {
    const [id, ref] = listAt(pair, `rules[${i}]`);
    if (!Number.isInteger(id) || !isObject(ref) || typeof ref.namespace !== "string" || typeof ref.name !== "string") {
      throw new HttpViewError(`rules[${i}] is not a rule id and its reference`);
    }
    if (ref.http !== undefined) {
      const problems = validateHttpRules(ref.http, `rules[${i}].http`);
      if (problems.length > 0) throw new HttpViewError(problems.join("; "));
    }
    if (ref.tls !== undefined) {
      // The rule as the API validates it: its server names, termination and client certificate.
      const problems = validatePolicy({
        apiVersion: "palisade.dev/v1alpha1",
        kind: "EBPFNetworkPolicy",
        metadata: { name: "view", namespace: "view" },
        spec: { selector: {}, ingress: [{ ports: [{ port: 1 }], tls: ref.tls, action: ref.action === "Deny" ? "Deny" : "Allow" }] },
      });
      if (problems.length > 0) throw new HttpViewError(problems.map((issue) => `rules[${i}].tls${issue.field.replace(/^spec\.ingress\[0\]\.tls/, "")}: ${issue.message}`).join("; "));
    }
  });
  return json as unknown as HttpView;
}

/** The name of a rule's policy, as flow logs and metrics give it. */
export function policyNameOf(ref: RuleRef): string {
  return `${ref.kind === "NetworkPolicy" ? "NetworkPolicy" : "EBPFNetworkPolicy"} ${ref.namespace}/${ref.name}`;
}

function ruleNameOf(ref: RuleRef): string {
  return `${ref.direction === "Ingress" ? "ingress" : "egress"}[${ref.index}]`;
}

/** One side's answer: refused or let through (by terminating it), and the policy and rule behind it; undefined when no rule of the side judged. */
type SideJudgement = { refused: boolean; names: Pick<HttpJudgement, "policy" | "rule" | "reason" | "misdirected">; terminate?: TlsTerminationPlan } | undefined;

/**
 * A view, indexed for judging requests: endpoints by address, entries by key,
 * each rule's `http` list compiled once.
 *
 * @example
 * ```ts
 * const index = new HttpViewIndex(view);
 * index.judge(request, { clientAddress: "10.0.0.1", clientPort: 40000, serverAddress: "10.0.0.2", serverPort: 8080 }, (ip) => ipcache.identityOf(ip));
 * // { allow: false, audit: false, policy: "EBPFNetworkPolicy shop/api", rule: "ingress[1].http[0]" }
 * ```
 */
export class HttpViewIndex {
  readonly #endpoints = new Map<string, HttpViewEndpoint>();
  readonly #state: { policy: Map<string, PolicyEntry>; rules: Map<number, RuleRef> };
  readonly #matchers = new Map<number, CompiledHttpRules>();
  /** The sides' verdicts of recent connections, see #sidesOf. */
  readonly #sides = new Map<string, { at: number; sides: (LookupResult | "host")[] }>();
  /** The slots the view has entries of: an endpoint in another slot has no HTTP or TLS rules (its flows are the datapath's alone). */
  readonly #httpSlots = new Set<number>();

  /** Indexes a view; throws if a rule's `http` list cannot be compiled (parseHttpView refuses such views first). */
  constructor(view: HttpView) {
    for (const endpoint of view.endpoints) {
      for (const address of endpoint.addresses) this.#endpoints.set(addressKey(address) ?? address, endpoint);
    }
    this.#state = {
      policy: new Map(view.policy.map((entry) => [policyKeyString(entry.key), entry])),
      rules: new Map(view.rules),
    };
    for (const entry of view.policy) this.#httpSlots.add(entry.key.slot);
    for (const [id, ref] of view.rules) {
      if (ref.http) this.#matchers.set(id, compileHttpRules(ref.http));
    }
  }

  /**
   * Judges one request of a connection: at the egress of the client's endpoint and at the ingress of the
   * server's, where they are on this node, as the datapath looked the flow up. A request must pass both;
   * an audit refusal is reported only when the enforced verdict forwards it. A connection for which
   * the view has no HTTP rules is refused: the datapath steered it by state the view does not have yet.
   * Deny entries match the path as written and as servers also read it (http-path.ts `serverReadings`),
   * Allow entries the path as written. Inside a terminated connection, a request whose host the terminating
   * rules' `serverNames` do not name is refused as misdirected before any `http` entry is matched: it is
   * not for this connection at all, whatever the entries would say of it.
   */
  judge(request: HttpRequestView, connection: HttpConnection, identityOf: (address: string) => number): HttpJudgement {
    const readings = serverReadings(request.path).map((path) => ({ ...request, path }));
    const sides = this.#sidesOf(connection, identityOf);
    // The datapath steered the flow by HTTP rules this view does not have (yet): fail closed.
    if (sides.length === 0) return { allow: false, audit: false, rule: "no HTTP rule of this node covers the connection" };
    const terminatedBy = connection.terminatedBy;
    if (terminatedBy !== undefined) {
      // The side whose Allow rules terminated the connection judges its requests by them; the other judged its ClientHello.
      const terminating = (judges: HttpJudges | undefined) => judges?.allows?.some((id) => terminatedBy.includes(id)) === true;
      if (!sides.some((side) => side !== "host" && terminating(side.http))) return { allow: false, audit: false, rule: "the rules that terminated the connection no longer cover it" };
      return this.#combine(sides, (judges, audit) => (audit || !terminating(judges) ? undefined : (this.#misdirected(request.host, terminatedBy) ?? this.#judgeSide({ allows: [...terminatedBy], denies: judges?.denies ?? [] }, request, readings, true))));
    }
    return this.#combine(sides, (judges) => this.#judgeSide(judges, request, readings));
  }

  /**
   * Judges a connection by its first bytes, before any request, at both sides as judge() does. A TLS
   * connection is judged by the server name its ClientHello asks for: a Deny rule with `tls` naming it
   * refuses it, a Deny rule with `http` refuses every TLS connection (it cannot see their requests), and
   * where only rules with `http` or `tls` allow the flow, one with `tls` must name it (so a ClientHello
   * without a name passes no such rule). Bytes that are not TLS are refused only where every rule
   * allowing the flow has `tls` (no request could pass); otherwise `allow` says the HTTP front end goes on
   * to judge their requests (judge(), which reports audit refusals request by request).
   */
  judgeConnection(start: ConnectionStart, connection: HttpConnection, identityOf: (address: string) => number): HttpJudgement {
    const sides = this.#sidesOf(connection, identityOf);
    if (sides.length === 0) return start.tls ? { allow: false, audit: false, rule: "no HTTP or TLS rule of this node covers the connection" } : { allow: true, audit: false };
    return this.#combine(sides, (judges, audit) => (audit && !start.tls ? undefined : this.#judgeStart(judges, start, audit)));
  }

  /**
   * The sides' answers together: refused by the first side that refuses (at L3/L4 or by its rules), else
   * let through and reported if an audit verdict refuses, else let through (by the first rule that allowed).
   */
  #combine(sides: (LookupResult | "host")[], judgeSide: (judges: HttpJudges | undefined, audit: boolean) => SideJudgement): HttpJudgement {
    let audited: HttpJudgement | undefined;
    let allowedBy: HttpJudgement | undefined;
    for (const verdict of sides) {
      if (verdict === "host") continue;
      if (!verdict.allowed) return { allow: false, audit: false, ...this.#names(verdict.ruleId, -1, "the flow is not allowed") };
      const enforced = judgeSide(verdict.http, false);
      if (enforced?.refused) return { allow: false, audit: false, ...enforced.names };
      if (enforced) allowedBy ??= { allow: true, audit: false, ...enforced.names };
      // Whichever side's rules terminate the connection (the server's), the connection is terminated.
      if (enforced?.terminate && allowedBy) allowedBy.terminate ??= enforced.terminate;
      // A flow the audit verdict refuses at L3/L4 was reported by the datapath already.
      const audit = verdict.audit.allowed ? judgeSide(verdict.audit.http, true) : undefined;
      if (audit?.refused && !audited) audited = { allow: true, audit: true, ...audit.names };
    }
    if (audited && allowedBy?.terminate) audited.terminate = allowedBy.terminate;
    return audited ?? allowedBy ?? { allow: true, audit: false };
  }

  /**
   * One side's judgement of a connection's start. A TLS connection is refused by a Deny rule with `tls`
   * naming its server; else the Allow rules that admit it are those with `tls` whose `serverNames` name it
   * (a rule with `termination` and no `serverNames`: any connection). They must agree: all pass it on
   * unchanged (no `termination`), or all terminate it with the same certificate and upstream; rules that
   * disagree reset it, fail-closed. A Deny rule with `http` refuses the connections not terminated (it cannot
   * see their requests). For the audit verdict, rules with `termination` admit by their `serverNames` alone:
   * an Audit-mode policy terminates nothing.
   */
  #judgeStart(judges: HttpJudges | undefined, start: ConnectionStart, audit: boolean): SideJudgement {
    if (!judges) return undefined;
    const rules = this.#state.rules;
    if (!start.tls) {
      if (judges.allows === undefined || judges.allows.some((id) => rules.get(id)?.http !== undefined && rules.get(id)?.tls === undefined)) return undefined;
      return { refused: true, names: this.#named(judges.allows[0] ?? 0, ": the connection is not TLS, and only rules with tls allow the flow") };
    }
    // Only a rule with termination may leave serverNames out: it then admits any server name, or none.
    const names = (tls: TlsRule) => tls.serverNames === undefined || matchServerName(tls.serverNames, start.serverName) >= 0;
    for (const id of judges.denies) {
      const tls = rules.get(id)?.tls;
      if (tls && names(tls)) return { refused: true, names: this.#named(id, ".tls") };
    }
    const httpDeny = judges.denies.find((id) => rules.get(id)?.http !== undefined);
    const refusedByHttpDeny = (): SideJudgement => ({ refused: true, names: this.#named(httpDeny ?? 0, ".http: the requests of a TLS connection cannot be judged without terminating TLS") });
    if (judges.allows === undefined) return httpDeny === undefined ? undefined : refusedByHttpDeny();
    const admitting = judges.allows.filter((id) => {
      const tls = rules.get(id)?.tls;
      return tls !== undefined && names(tls);
    });
    const first = admitting[0];
    if (first === undefined) {
      const why = start.serverName === undefined ? "the ClientHello names no server" : "no tls serverNames entry of the rules allowing the flow matched";
      return { refused: true, names: this.#named(judges.allows[0] ?? 0, `: ${why}`) };
    }
    const terminating = admitting.filter((id) => rules.get(id)?.tls?.termination !== undefined);
    if (audit || terminating.length === 0) return httpDeny === undefined || audit ? { refused: false, names: this.#named(first, ".tls") } : refusedByHttpDeny();
    if (terminating.length < admitting.length) {
      return { refused: true, names: this.#named(first, ": rules passing the connection on unchanged and rules terminating it both admit it") };
    }
    const plans = terminating.map((id) => {
      const ref = rules.get(id) as RuleRef;
      return { id, key: terminationKey(ref), ref };
    });
    const disagreeing = plans.find((plan) => plan.key !== plans[0]?.key);
    if (disagreeing) return { refused: true, names: this.#named(disagreeing.id, ": rules terminating the connection name different certificates, upstreams or ALPN protocols") };
    const chosen = plans[0]?.ref as RuleRef;
    const terminate: TlsTerminationPlan = {
      namespace: chosen.namespace,
      termination: chosen.tls?.termination as TlsTermination,
      rules: plans.map(({ id, ref }) => ({ id, ...this.#named(id, ".tls"), http: ref.http !== undefined, ...(ref.tls?.clientCertificate && { clientCertificate: ref.tls.clientCertificate }) }) as TerminatingRule),
      httpDenies: httpDeny !== undefined,
      judgesRequests: httpDeny !== undefined || plans.some(({ ref }) => ref.http !== undefined),
    };
    return { refused: false, names: this.#named(first, ".tls"), terminate };
  }

  /**
   * The verdicts of the connection's sides with HTTP rules (`host`: ingress from the node, which no
   * policy judges). They depend on the connection only, not on the request: kept for a second, so the
   * requests of a kept-alive connection cost no lookups, while an address whose identity changed
   * without changing the view is seen again soon.
   */
  #sidesOf(connection: HttpConnection, identityOf: (address: string) => number): (LookupResult | "host")[] {
    const key = `${connection.clientAddress} ${connection.serverAddress} ${connection.serverPort}`;
    const now = performance.now();
    const cached = this.#sides.get(key);
    if (cached && now - cached.at < SIDES_TTL_MS) return cached.sides;
    const sides: (LookupResult | "host")[] = [];
    const ends: [HttpViewEndpoint | undefined, Direction, string][] = [
      [this.#endpoints.get(addressKey(connection.clientAddress) ?? ""), DIRECTION_EGRESS, connection.serverAddress],
      [this.#endpoints.get(addressKey(connection.serverAddress) ?? ""), DIRECTION_INGRESS, connection.clientAddress],
    ];
    for (const [endpoint, direction, remote] of ends) {
      if (!endpoint || !this.#httpSlots.has(endpoint.state.slot)) continue;
      const remoteIdentity = identityOf(remote);
      // The node itself reaches its pods before any policy (the datapath's `host` reason).
      if (direction === DIRECTION_INGRESS && remoteIdentity === IDENTITY_HOST) {
        sides.push("host");
        continue;
      }
      const family = remote.includes(":") ? 6 : 4;
      sides.push(lookupEndpointVerdict(this.#state, endpoint.state, { direction, remoteIdentity, protocol: "TCP", family, port: connection.serverPort }));
    }
    if (this.#sides.size >= MAX_CACHED_SIDES) this.#sides.clear();
    this.#sides.set(key, { at: now, sides });
    return sides;
  }

  /**
   * One side's judgement of a request. In a terminated connection (`terminated`), the allows are the rules
   * that terminated it, and one without `http` admits every request; elsewhere a rule with `tls` admits no
   * request (its `http` is for the requests inside the connections it terminates). Deny entries also match
   * the request as read with the other paths of `readings`: a server serving one of them serves what they deny.
   */
  #judgeSide(judges: HttpJudges | undefined, request: HttpRequestView, readings: readonly HttpRequestView[], terminated = false): SideJudgement {
    if (!judges) return undefined;
    for (const id of judges.denies) {
      const matcher = this.#matchers.get(id);
      const entry = matcher?.match(request) ?? -1;
      if (entry >= 0) return { refused: true, names: this.#names(id, entry, "") };
      for (const reading of readings) {
        const other = matcher?.match(reading) ?? -1;
        if (other >= 0) return { refused: true, names: { ...this.#names(id, other, ""), reason: `the path read as ${reading.path}, as some servers read it` } };
      }
    }
    if (judges.allows === undefined) return undefined;
    for (const id of judges.allows) {
      const matcher = this.#matchers.get(id);
      if (terminated && matcher === undefined) return { refused: false, names: this.#named(id, ".tls") };
      const entry = terminated || this.#state.rules.get(id)?.tls === undefined ? (matcher?.match(request) ?? -1) : -1;
      if (entry >= 0) return { refused: false, names: this.#names(id, entry, "") };
    }
    return { refused: true, names: this.#names(judges.allows[0] ?? 0, -1, "no http entry of the rules allowing the flow matched") };
  }

  /**
   * A request inside a connection the rules `terminatedBy` terminated, refused as misdirected when none of them
   * names its host in `serverNames`, compared as a ClientHello's name is (a rule without `serverNames` admits
   * any host, as it admits any ClientHello); undefined when one names it.
   */
  #misdirected(host: string | undefined, terminatedBy: readonly number[]): SideJudgement {
    const rules = terminatedBy.flatMap((id) => {
      const tls = this.#state.rules.get(id)?.tls;
      return tls ? [{ id, serverNames: tls.serverNames }] : [];
    });
    if (rules.some(({ serverNames }) => serverNames === undefined || matchServerName(serverNames, host) >= 0)) return undefined;
    return { refused: true, names: { ...this.#named(rules[0]?.id ?? 0, ".tls"), misdirected: true, reason: "misdirected: no tls.serverNames entry of the rules that terminated the connection names the request's host" } };
  }

  #names(ruleId: number, entry: number, noEntry: string): Pick<HttpJudgement, "policy" | "rule"> {
    return this.#named(ruleId, entry >= 0 ? `.http[${entry}]` : `: ${noEntry}`, noEntry);
  }

  /** The policy and rule of `ruleId`, the rule's name followed by `suffix` (an entry, or `: why`); `orElse` without such a rule. */
  #named(ruleId: number, suffix: string, orElse = suffix.replace(/^(: |\.)/, "")): Pick<HttpJudgement, "policy" | "rule"> {
    const ref = this.#state.rules.get(ruleId);
    if (!ref) return { rule: orElse };
    return { policy: policyNameOf(ref), rule: `${ruleNameOf(ref)}${suffix}` };
  }
}

/**
 * Whether the proxy reads the requests of a connection `plan` terminates and the rules `admitting` (their ids)
 * admitted: when one of those rules has `http`, or a Deny rule with `http` covers it. Otherwise the decrypted
 * bytes go to the pod unread, and nothing holds their requests to the rules' `serverNames` (docs/tls.md says why).
 */
export function readsRequests(plan: TlsTerminationPlan, admitting: readonly number[]): boolean {
  return plan.httpDenies || plan.rules.some((rule) => rule.http && admitting.includes(rule.id));
}

/** What rules terminating one connection must agree on: the namespace of their objects, the certificate, the upstream and its CA, the ALPN protocols. */
function terminationKey(ref: RuleRef): string {
  const termination = ref.tls?.termination;
  return JSON.stringify([ref.namespace, termination?.certificate.secretName, termination?.upstream ?? "Plain", termination?.upstreamCA?.configMapName, termination?.upstreamCA?.key, termination?.alpn]);
}

/** The rule ids a view's entries name. */
export function ruleIdsOf(entries: readonly PolicyEntry[]): Set<number> {
  const ids = new Set<number>();
  for (const { value } of entries) {
    ids.add(value.ruleId).add(value.auditRuleId);
    for (const list of value.http ? [value.http.allows, value.http.denies, value.http.auditAllows, value.http.auditDenies] : []) {
      for (const id of list) ids.add(id);
    }
  }
  ids.delete(0);
  return ids;
}
