/**
 * The host an HTTP request names (the `Host` field, HTTP/2's `:authority`, or
 * an absolute-form target's authority), as HTTP rules compare it: without the
 * port, in lower case (DNS names are case-insensitive, RFC 4343). A value that
 * is not an RFC 3986 §3.2.2 host is refused, and so is one that DNS or a
 * virtual-host table could read two ways: a percent-encoded name, a trailing
 * dot (`api.shop.` is `api.shop` to DNS but not to every server's host table),
 * userinfo.
 *
 * @example
 * ```ts
 * parseHost("API.Shop:8080"); // { ok: true, host: "api.shop", port: 8080 }
 * parseHost("[::1]"); // { ok: true, host: "[::1]", port: undefined }
 * ```
 *
 * @module
 */
import type { Refusal } from "./http-path.ts";

/** A host as rules compare it. */
export interface ParsedHost {
  ok: true;
  /** Lower case, no port; an IPv6 literal keeps its brackets. */
  host: string;
  /** The port when one was written, else undefined. */
  port: number | undefined;
}

const REG_NAME = /^[A-Za-z0-9\-._~!$&'()*+,;=]+$/;
const IPV6_LITERAL = /^\[[0-9A-Fa-f:.]+\]$/;

/** Parses a `Host` / `:authority` value (RFC 9110 §7.2, RFC 3986 §3.2.2-3). */
export function parseHost(value: string): ParsedHost | Refusal {
  if (value === "") return { ok: false, reason: "empty host" };
  if (value.includes("@")) return { ok: false, reason: "userinfo in host" };
  let name = value;
  let port: number | undefined;
  const close = value.lastIndexOf("]");
  const colon = value.lastIndexOf(":");
  if (colon > close) {
    name = value.slice(0, colon);
    const digits = value.slice(colon + 1);
    if (!/^[0-9]{0,5}$/.test(digits) || (digits !== "" && Number(digits) > 65535)) return { ok: false, reason: "invalid port in host" };
    // RFC 3986 §3.2.3: an empty port is the same as none.
    port = digits === "" ? undefined : Number(digits);
  }
  if (name === "") return { ok: false, reason: "empty host" };
  if (name.startsWith("[")) {
    if (!IPV6_LITERAL.test(name)) return { ok: false, reason: "invalid IP literal in host" };
  } else {
    if (name.includes("%")) return { ok: false, reason: "percent-encoded host" };
    if (!REG_NAME.test(name)) return { ok: false, reason: "invalid character in host" };
    if (name.endsWith(".")) return { ok: false, reason: "host with a trailing dot" };
  }
  return { ok: true, host: name.toLowerCase(), port };
}

/**
 * Whether two authorities name the same host and port, the port defaulting to
 * 80 (cleartext HTTP, RFC 9110 §4.2.1): used to refuse an absolute-form target
 * whose authority is not the request's `Host`.
 */
export function sameAuthority(a: ParsedHost, b: ParsedHost): boolean {
  return a.host === b.host && (a.port ?? 80) === (b.port ?? 80);
}
