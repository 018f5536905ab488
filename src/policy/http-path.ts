/**
 * Request targets and the paths that HTTP rules match (issue 11).
 *
 * A rule is only as good as the agreement between what the proxy matched and
 * what the server behind it serves. So the path is brought to the RFC 3986
 * §6.2.2 normal form before matching (percent-encoded unreserved characters
 * decoded, other escapes in upper case, `.` and `..` segments removed as in
 * §5.2.4, empty segments kept), and a request target that servers are known
 * to read in more than one way is refused rather than guessed at: an encoded
 * `/` or `\`, a backslash, a double encoding (`%252e`), percent-encoded bytes
 * that are not UTF-8 (the overlong `%C0%AE` that some decoders turn into `.`),
 * a dot segment with parameters (`..;x`, which Tomcat reads as `..`), control
 * characters and raw non-ASCII bytes. Each refusal carries a short reason for
 * the 400 response's log line.
 *
 * @example
 * ```ts
 * parseRequestTarget("/public/%2e%2e/admin?x=1", "GET");
 * // { ok: true, form: "origin", path: "/admin", query: "x=1" }
 * ```
 *
 * @module
 */

/** The request-target forms of RFC 9112 §3.2 that the proxy accepts. */
export type RequestTargetForm = "origin" | "absolute" | "asterisk";

/** A request target taken apart, its path normalized for matching. */
export interface ParsedRequestTarget {
  ok: true;
  form: RequestTargetForm;
  /** The normalized path; `*` for the asterisk form. */
  path: string;
  /** The query without its `?`, not normalized (rules do not match it); undefined when there is none. */
  query: string | undefined;
  /** The absolute form's authority as written (host and optional port); undefined for the other forms. */
  authority: string | undefined;
}

/** Why a request target, path or host was refused (the 400's log reason). */
export interface Refusal {
  ok: false;
  reason: string;
}

/** A normalized path. */
export interface NormalizedPath {
  ok: true;
  path: string;
}

const HEX = "0123456789ABCDEF";

function isAlpha(code: number): boolean {
  return (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a);
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

/** RFC 3986 §2.3 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
export function isUnreserved(code: number): boolean {
  return isAlpha(code) || isDigit(code) || code === 0x2d || code === 0x2e || code === 0x5f || code === 0x7e;
}

/** RFC 3986 §2.2 sub-delims: "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "=". */
function isSubDelim(code: number): boolean {
  return "!$&'()*+,;=".includes(String.fromCharCode(code));
}

/** RFC 3986 §3.3 pchar without pct-encoded (handled apart): unreserved / sub-delims / ":" / "@". */
function isPcharLiteral(code: number): boolean {
  return isUnreserved(code) || isSubDelim(code) || code === 0x3a || code === 0x40;
}

function hexValue(code: number): number {
  if (isDigit(code)) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x41 + 10;
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10;
  return -1;
}

/** Why a character that RFC 3986 does not allow literally in a path or query is there, in words. */
function literalReason(code: number): string {
  if (code === 0) return "NUL byte";
  if (code < 0x20 || code === 0x7f) return "control character";
  if (code === 0x5c) return "backslash";
  if (code === 0x20) return "space";
  if (code === 0x23) return "fragment (#) in request target";
  if (code > 0x7f) return "non-ASCII byte (must be percent-encoded)";
  return `character ${JSON.stringify(String.fromCharCode(code))} not allowed by RFC 3986`;
}

/**
 * The length of the UTF-8 sequence that `bytes` starts at `index`, or 0 when
 * what is there is not well-formed UTF-8 (RFC 3629 §4: no overlong forms, no
 * surrogates, nothing above U+10FFFF).
 */
function utf8SequenceLength(bytes: number[], index: number): number {
  const first = bytes[index] ?? -1;
  let length: number;
  let low = 0x80;
  let high = 0xbf;
  if (first >= 0xc2 && first <= 0xdf) length = 2;
  else if (first >= 0xe0 && first <= 0xef) {
    length = 3;
    if (first === 0xe0) low = 0xa0; // overlong
    if (first === 0xed) high = 0x9f; // surrogates
  } else if (first >= 0xf0 && first <= 0xf4) {
    length = 4;
    if (first === 0xf0) low = 0x90; // overlong
    if (first === 0xf4) high = 0x8f; // above U+10FFFF
  } else return 0;
  for (let k = 1; k < length; k++) {
    const next = bytes[index + k] ?? -1;
    const min = k === 1 ? low : 0x80;
    const max = k === 1 ? high : 0xbf;
    if (next < min || next > max) return 0;
  }
  return length;
}

/**
 * Percent-encoding normalization of one path (RFC 3986 §6.2.2.1-2) with the
 * refusals described in the module doc. Returns the path with unreserved
 * characters decoded and every remaining escape in upper case.
 */
function normalizeEncoding(raw: string): NormalizedPath | Refusal {
  let out = "";
  let index = 0;
  while (index < raw.length) {
    const code = raw.charCodeAt(index);
    if (code === 0x2f || isPcharLiteral(code)) {
      out += raw[index];
      index++;
      continue;
    }
    if (code !== 0x25) return { ok: false, reason: literalReason(code) };
    // A run of escapes is read as bytes at once, so that multi-byte UTF-8 can be checked whole.
    const bytes: number[] = [];
    while (raw.charCodeAt(index) === 0x25) {
      const high = hexValue(raw.charCodeAt(index + 1));
      const low = hexValue(raw.charCodeAt(index + 2));
      if (high < 0 || low < 0) return { ok: false, reason: "malformed percent-encoding" };
      bytes.push(high * 16 + low);
      index += 3;
    }
    for (let at = 0; at < bytes.length;) {
      const byte = bytes[at] ?? 0;
      if (byte >= 0x80) {
        const length = utf8SequenceLength(bytes, at);
        if (length === 0) return { ok: false, reason: "percent-encoded bytes that are not UTF-8 (overlong or malformed)" };
        for (let k = 0; k < length; k++) out += escape(bytes[at + k] ?? 0);
        at += length;
        continue;
      }
      if (byte === 0x2f) return { ok: false, reason: "encoded slash (%2F)" };
      if (byte === 0x5c) return { ok: false, reason: "encoded backslash (%5C)" };
      if (byte < 0x20 || byte === 0x7f) return { ok: false, reason: "encoded control character" };
      out += isUnreserved(byte) ? String.fromCharCode(byte) : escape(byte);
      at++;
    }
  }
  // Checked last, so that a malformed escape is reported as such ("%%32e" is malformed, not "%2e" twice).
  if (/%[0-9A-Fa-f]{2}/.test(decodeOnce(raw))) return { ok: false, reason: "double percent-encoding (an escape that decodes to an escape)" };
  return { ok: true, path: out };
}

/**
 * The string after one pass of percent-decoding, byte by byte (as Latin-1, which
 * keeps "%", hex digits and their positions). A server that decodes twice reads
 * an escape in it as a second character: `%252e` is `%2e` once and `.` twice.
 */
function decodeOnce(raw: string): string {
  return raw.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

function escape(byte: number): string {
  return `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
}

/**
 * RFC 3986 §5.2.4 remove_dot_segments, written as the RFC's loop over an
 * input buffer so that it can be read against the text line by line.
 */
export function removeDotSegments(path: string): string {
  let input = path;
  let output = "";
  while (input.length > 0) {
    if (input.startsWith("../")) input = input.slice(3); // A
    else if (input.startsWith("./")) input = input.slice(2); // A
    else if (input.startsWith("/./")) input = input.slice(2); // B
    else if (input === "/.") input = "/"; // B
    else if (input.startsWith("/../") || input === "/..") { // C
      input = input === "/.." ? "/" : input.slice(3);
      const last = output.lastIndexOf("/");
      output = last < 0 ? "" : output.slice(0, last);
    } else if (input === "." || input === "..") input = ""; // D
    else { // E
      const next = input.indexOf("/", input.startsWith("/") ? 1 : 0);
      const segment = next < 0 ? input : input.slice(0, next);
      output += segment;
      input = input.slice(segment.length);
    }
  }
  return output;
}

/**
 * Normalizes an origin-form path (no query) for matching. Refuses a path that
 * does not start with `/`, that holds what RFC 3986 does not allow in a path,
 * or that servers read in more than one way (see the module doc).
 *
 * @example
 * ```ts
 * normalizePath("/a/%7euser/./b/../c"); // { ok: true, path: "/a/~user/c" }
 * normalizePath("/a%2fb"); // { ok: false, reason: "encoded slash (%2F)" }
 * ```
 */
export function normalizePath(raw: string): NormalizedPath | Refusal {
  if (!raw.startsWith("/")) return { ok: false, reason: "path does not start with /" };
  const encoded = normalizeEncoding(raw);
  if (!encoded.ok) return encoded;
  for (const segment of encoded.path.split("/")) {
    const beforeParameters = segment.split(";")[0];
    if (segment.includes(";") && (beforeParameters === "." || beforeParameters === "..")) {
      return { ok: false, reason: "dot segment with parameters (;)" };
    }
  }
  return { ok: true, path: removeDotSegments(encoded.path) };
}

/**
 * The other paths that servers read in a normalized path, which Deny rules match as well: with repeated
 * slashes merged (nginx's and Apache's default; Go's ServeMux redirects there), and with each segment's
 * `;` parameters dropped first (Tomcat, Jetty: `/;x/admin` is their `/admin`, `/admin;x` their `/admin`).
 * Empty for a path that holds neither.
 *
 * @example
 * ```ts
 * serverReadings("//admin;v=1/users"); // ["/admin;v=1/users", "/admin/users"]
 * serverReadings("/public/a"); // []
 * ```
 */
export function serverReadings(path: string): string[] {
  if (!path.includes("//") && !path.includes(";")) return [];
  const merged = path.replace(/\/{2,}/g, "/");
  const bare = path.replace(/;[^/]*/g, "").replace(/\/{2,}/g, "/");
  return [...new Set([merged, bare])].filter((reading) => reading !== path);
}

/** Checks a query against RFC 3986 §3.4 (pchar / "/" / "?", escapes well-formed); it is forwarded as it is. */
function checkQuery(query: string): Refusal | undefined {
  for (let index = 0; index < query.length; index++) {
    const code = query.charCodeAt(index);
    if (code === 0x2f || code === 0x3f || isPcharLiteral(code)) continue;
    if (code !== 0x25) return { ok: false, reason: `${literalReason(code)} in query` };
    if (hexValue(query.charCodeAt(index + 1)) < 0 || hexValue(query.charCodeAt(index + 2)) < 0) {
      return { ok: false, reason: "malformed percent-encoding in query" };
    }
    index += 2;
  }
  return undefined;
}

/** Splits `path?query`, checks the query and normalizes the path. */
function pathAndQuery(target: string, form: RequestTargetForm, authority: string | undefined): ParsedRequestTarget | Refusal {
  if (target.includes("#")) return { ok: false, reason: "fragment (#) in request target" };
  const mark = target.indexOf("?");
  const rawPath = mark < 0 ? target : target.slice(0, mark);
  const query = mark < 0 ? undefined : target.slice(mark + 1);
  if (query !== undefined) {
    const refusal = checkQuery(query);
    if (refusal) return refusal;
  }
  const normalized = normalizePath(rawPath);
  if (!normalized.ok) return normalized;
  return { ok: true, form, path: normalized.path, query, authority };
}

/**
 * Parses an HTTP/1.1 request target (RFC 9112 §3.2) or an HTTP/2 `:path`:
 * origin form (`/path?query`); absolute form (`http://authority/path?query`,
 * the caller then checks that the authority is the request's host); the
 * asterisk form for OPTIONS only. The authority form (CONNECT) is refused:
 * the proxy judges requests, not tunnels.
 *
 * @example
 * ```ts
 * parseRequestTarget("http://api.shop/orders", "POST");
 * // { ok: true, form: "absolute", path: "/orders", query: undefined, authority: "api.shop" }
 * parseRequestTarget("*", "GET"); // { ok: false, reason: "asterisk form is for OPTIONS only" }
 * ```
 */
export function parseRequestTarget(target: string, method: string): ParsedRequestTarget | Refusal {
  if (method === "CONNECT") return { ok: false, reason: "CONNECT (authority form) is not proxied" };
  if (target === "*") {
    if (method !== "OPTIONS") return { ok: false, reason: "asterisk form is for OPTIONS only" };
    return { ok: true, form: "asterisk", path: "*", query: undefined, authority: undefined };
  }
  if (target.startsWith("/")) return pathAndQuery(target, "origin", undefined);
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(target);
  if (!scheme) return { ok: false, reason: "request target is not in origin, absolute or asterisk form" };
  if (scheme[1]?.toLowerCase() !== "http") return { ok: false, reason: `absolute form with scheme "${scheme[1]}" (cleartext proxy: http only)` };
  const rest = target.slice(scheme[0].length);
  const end = rest.search(/[/?#]/);
  const authority = end < 0 ? rest : rest.slice(0, end);
  if (authority.includes("@")) return { ok: false, reason: "userinfo in absolute-form authority" };
  if (authority === "") return { ok: false, reason: "empty authority in absolute form" };
  // RFC 9112 §3.2.2 with RFC 3986 §6.2.3: an empty path is "/".
  const afterAuthority = end < 0 ? "" : rest.slice(end);
  return pathAndQuery(afterAuthority.startsWith("/") ? afterAuthority : `/${afterAuthority}`, "absolute", authority);
}
