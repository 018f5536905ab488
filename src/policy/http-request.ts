/**
 * From a parsed request's raw parts to the view HTTP rules match
 * (http-rule.ts), refusing what the parsers let through but a server could
 * read in another way than the rules did: two `Host` lines, an absolute-form
 * target or HTTP/2 `:authority` that names another host than `Host`, a request
 * that names no host at all, and every refusal of the request target
 * (http-path.ts) and host (http-host.ts).
 *
 * @example
 * ```ts
 * httpRequestView({ method: "GET", target: "/public/../admin", fields: [["Host", "api.shop"]] });
 * // { ok: true, view: { method: "GET", path: "/admin", host: "api.shop", headers: Map { "host" => ["api.shop"] } }, query: undefined }
 * ```
 *
 * @module
 */
import type { ParsedHost } from "./http-host.ts";
import { parseHost, sameAuthority } from "./http-host.ts";
import type { Refusal } from "./http-path.ts";
import { parseRequestTarget } from "./http-path.ts";
import type { HttpRequestView } from "./http-rule.ts";

/** A request as the HTTP/1.1 or HTTP/2 parser gives it. */
export interface RawHttpRequest {
  method: string;
  /** The request target (HTTP/1.1) or `:path` (HTTP/2). */
  target: string;
  /** HTTP/2's `:authority`, when the request has one; undefined for HTTP/1.1. */
  authority?: string | undefined;
  /** Field lines in order, names as received (pseudo-header fields excluded). */
  fields: readonly (readonly [string, string])[];
}

/** A request ready for matching, with what forwarding needs besides. */
export interface AcceptedHttpRequest {
  ok: true;
  view: HttpRequestView;
  /** The query, without its `?`, as received; undefined when there is none. */
  query: string | undefined;
}

/** Builds the rule view of a request, or says why the request is refused with 400. */
export function httpRequestView(raw: RawHttpRequest): AcceptedHttpRequest | Refusal {
  const target = parseRequestTarget(raw.target, raw.method);
  if (!target.ok) return target;
  const headers = new Map<string, string[]>();
  for (const [name, value] of raw.fields) {
    const key = name.toLowerCase();
    const lines = headers.get(key);
    if (lines) lines.push(value);
    else headers.set(key, [value]);
  }
  const hostLines = headers.get("host") ?? [];
  if (hostLines.length > 1) return { ok: false, reason: "more than one Host field line" };
  const named: { what: string; value: string }[] = [];
  if (hostLines[0] !== undefined) named.push({ what: "Host", value: hostLines[0] });
  if (raw.authority !== undefined) named.push({ what: ":authority", value: raw.authority });
  if (target.authority !== undefined) named.push({ what: "absolute-form authority", value: target.authority });
  if (named.length === 0) return { ok: false, reason: "request names no host" };
  let host: ParsedHost | undefined;
  for (const { what, value } of named) {
    const parsed = parseHost(value);
    if (!parsed.ok) return { ok: false, reason: `${what}: ${parsed.reason}` };
    if (host !== undefined && !sameAuthority(host, parsed)) return { ok: false, reason: `${what} names another host than ${named[0]?.what}` };
    host ??= parsed;
  }
  return { ok: true, view: { method: raw.method, path: target.path, host: host?.host, headers }, query: target.query };
}
