/**
 * A deliberately simple reference for HTTP rule verdicts, written from the
 * text of issue 11, RFC 3986 and RFC 9110 and sharing no code with the
 * matcher (http-rule.ts) or the normalizer (http-path.ts, http-host.ts,
 * http-request.ts) beyond the rule types and the regex engine. Tests run both
 * on random rules and requests and compare. Speed is no concern here; being
 * obviously right is.
 *
 * Where the two are meant to differ only in words, they may: a refusal's
 * reason is not compared, only that the request is refused.
 *
 * @module
 */
import { RE2JS } from "re2js";
import type { HttpRule } from "./api-types.ts";
import type { RawHttpRequest } from "./http-request.ts";

/** The reference's answer: refused with 400, or the index of the first matching rule (-1: none). */
export type ReferenceHttpVerdict = { refused: true } | { refused: false; rule: number };

const UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
const SUB_DELIMS = "!$&'()*+,;=";
/** RFC 3986 §3.3: what a path may hold literally besides "%" escapes. */
const PATH_LITERALS = `${UNRESERVED}${SUB_DELIMS}:@/`;
/** RFC 3986 §3.4. */
const QUERY_LITERALS = `${PATH_LITERALS}?`;
const HEX_DIGITS = "0123456789abcdefABCDEF";

/** One byte of a path after reading its escapes: whether it was written as "%XX". */
interface PathByte {
  byte: number;
  escaped: boolean;
}

/** Reads a path into bytes; undefined when a literal character or an escape is not allowed. */
function readPathBytes(path: string): PathByte[] | undefined {
  const bytes: PathByte[] = [];
  for (let i = 0; i < path.length; i++) {
    const char = path.charAt(i);
    if (char === "%") {
      const hex = path.slice(i + 1, i + 3);
      if (hex.length !== 2 || !HEX_DIGITS.includes(hex.charAt(0)) || !HEX_DIGITS.includes(hex.charAt(1))) return undefined;
      bytes.push({ byte: parseInt(hex, 16), escaped: true });
      i += 2;
    } else if (PATH_LITERALS.includes(char)) bytes.push({ byte: char.charCodeAt(0), escaped: false });
    else return undefined;
  }
  return bytes;
}

/** Whether each run of escaped bytes is UTF-8 (RFC 3629), checked by the platform's strict decoder. */
function escapedRunsAreUtf8(bytes: PathByte[]): boolean {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let run: number[] = [];
  for (const item of [...bytes, { byte: 0, escaped: false }]) {
    if (item.escaped) {
      run.push(item.byte);
      continue;
    }
    try {
      decoder.decode(new Uint8Array(run));
    } catch {
      return false;
    }
    run = [];
  }
  return true;
}

/** Normalizes a path as issue 11 asks, or undefined when it must be refused. */
export function referenceNormalizePath(path: string): string | undefined {
  if (path.charAt(0) !== "/") return undefined;
  const bytes = readPathBytes(path);
  if (bytes === undefined) return undefined;
  for (const { byte, escaped } of bytes) {
    if (escaped && (byte === 0x2f || byte === 0x5c || byte < 0x20 || byte === 0x7f)) return undefined;
  }
  if (!escapedRunsAreUtf8(bytes)) return undefined;
  // Decoded once, does the path still hold an escape? Then a second decoding reads something else.
  const decodedOnce = bytes.map(({ byte }) => String.fromCharCode(byte)).join("");
  if (/%[0-9a-fA-F][0-9a-fA-F]/.test(decodedOnce)) return undefined;
  // Unreserved characters written as escapes are the characters; other escapes keep upper-case hex.
  const text = bytes.map(({ byte, escaped }) => {
    const char = String.fromCharCode(byte);
    if (!escaped || UNRESERVED.includes(char)) return char;
    return `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }).join("");
  // Segments: "." goes, ".." takes the one before it (never above the root); a dot segment with parameters is refused.
  const segments = text.split("/").slice(1);
  const kept: string[] = [];
  let endsInDirectory = false;
  segments.forEach((segment, index) => {
    const last = index === segments.length - 1;
    endsInDirectory = false;
    if (segment === ".") endsInDirectory = last;
    else if (segment === "..") {
      kept.pop();
      endsInDirectory = last;
    } else kept.push(segment);
  });
  if (segments.some((segment) => [".", ".."].includes(segment.split(";")[0] ?? "") && segment.includes(";"))) return undefined;
  if (kept.length === 0) return "/";
  return `/${kept.join("/")}${endsInDirectory ? "/" : ""}`;
}

/** A host as rules compare it (lower case, no port) and its port (80 when none), or undefined when refused. */
function referenceHost(value: string): { name: string; port: number } | undefined {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=]+)(?::([0-9]*))?$/.exec(value);
  if (!match) return undefined;
  const name = match[1] ?? "";
  const port = match[2] === undefined || match[2] === "" ? 80 : Number(match[2]);
  if (port > 65535 || (match[2] ?? "").length > 5) return undefined;
  if (!name.startsWith("[") && name.endsWith(".")) return undefined;
  return { name: name.toLowerCase(), port };
}

/**
 * The host a request names (lower case, no port): its `Host` field, else HTTP/2's `:authority`, else an
 * absolute-form target's authority; undefined when it names none or one that is no host. Meant for requests
 * the reference does not refuse, where every place naming a host names the same one.
 *
 * @example
 * ```ts
 * referenceRequestHost({ method: "GET", target: "/", fields: [["Host", "API.Shop:8443"]] }); // "api.shop"
 * ```
 */
export function referenceRequestHost(request: RawHttpRequest): string | undefined {
  const hostLine = request.fields.find(([name]) => name.toLowerCase() === "host")?.[1];
  const targetAuthority = /^http:\/\/([^/?#]*)/i.exec(request.target)?.[1];
  const value = hostLine ?? request.authority ?? targetAuthority;
  return value === undefined ? undefined : referenceHost(value)?.name;
}

/**
 * How a server reads the normalized path: as written; with repeated slashes merged (no empty segment but a
 * last one), as nginx and Apache do; or "bare", each segment's `;` parameters dropped and then merged so, as
 * Tomcat and Jetty do.
 */
export type PathReading = "written" | "merged" | "bare";

/** The reference verdict for a request under an ordered list of rules, its path read as `reading` says. */
export function referenceHttpVerdict(rules: readonly HttpRule[], request: RawHttpRequest, reading: PathReading = "written"): ReferenceHttpVerdict {
  const refused = { refused: true } as const;
  // The request target: origin form, absolute form (http), or "*" for OPTIONS; never CONNECT, never a fragment.
  if (request.method === "CONNECT" || request.target.includes("#")) return refused;
  let pathAndQuery = request.target;
  let targetAuthority: string | undefined;
  if (request.target === "*") {
    if (request.method !== "OPTIONS") return refused;
  } else if (!request.target.startsWith("/")) {
    const absolute = /^http:\/\/([^/?#]*)(.*)$/i.exec(request.target);
    if (!absolute) return refused;
    targetAuthority = absolute[1] ?? "";
    pathAndQuery = absolute[2] ?? "";
    if (!pathAndQuery.startsWith("/")) pathAndQuery = `/${pathAndQuery}`;
  }
  let path = "*";
  if (request.target !== "*") {
    const [rawPath = "", ...queryParts] = pathAndQuery.split("?");
    const query = queryParts.join("?");
    if (![...query].every((char) => QUERY_LITERALS.includes(char) || char === "%")) return refused;
    if (/%(?![0-9a-fA-F]{2})/.test(query)) return refused;
    const normalized = referenceNormalizePath(rawPath);
    if (normalized === undefined) return refused;
    const segments = normalized.split("/").slice(1).map((segment) => (reading === "bare" ? (segment.split(";")[0] ?? "") : segment));
    path = reading === "written" ? normalized : `/${segments.filter((segment, index) => segment !== "" || index === segments.length - 1).join("/")}`;
  }
  // The host: every place that names one must name the same host and port.
  const hostLines = request.fields.filter(([name]) => name.toLowerCase() === "host").map(([, value]) => value);
  if (hostLines.length > 1) return refused;
  const named = [...hostLines, ...(request.authority === undefined ? [] : [request.authority]), ...(targetAuthority === undefined ? [] : [targetAuthority])];
  const hosts = named.map(referenceHost);
  const first = hosts[0];
  if (first === undefined || hosts.some((host) => host === undefined || host.name !== first.name || host.port !== first.port)) return refused;
  const host = first.name;

  const fieldValue = (name: string): string | undefined => {
    const lines = request.fields.filter(([fieldName]) => fieldName.toLowerCase() === name.toLowerCase()).map(([, value]) => value);
    if (lines.length === 0) return undefined;
    return lines.join(name.toLowerCase() === "cookie" ? "; " : ", ");
  };
  const holds = (rule: HttpRule): boolean => {
    if (rule.method !== undefined && rule.method !== request.method) return false;
    if (rule.path?.exact !== undefined && path !== rule.path.exact) return false;
    if (rule.path?.prefix !== undefined && !path.startsWith(rule.path.prefix)) return false;
    if (rule.path?.regex !== undefined && !RE2JS.compile(`(?:${rule.path.regex})`).matches(path)) return false;
    if (rule.host?.exact !== undefined && host !== rule.host.exact.toLowerCase()) return false;
    if (rule.host?.suffix !== undefined) {
      const suffix = rule.host.suffix.toLowerCase();
      if (host !== suffix && !host.endsWith(`.${suffix}`)) return false;
    }
    if (rule.host?.regex !== undefined && !RE2JS.compile(`(?i:${rule.host.regex})`).matches(host)) return false;
    for (const header of rule.headers ?? []) {
      const value = fieldValue(header.name);
      if (header.present && value === undefined) return false;
      if (header.absent && value !== undefined) return false;
      if (header.exact !== undefined && value !== header.exact) return false;
      if (header.prefix !== undefined && (value === undefined || !value.startsWith(header.prefix))) return false;
      if (header.regex !== undefined && (value === undefined || !RE2JS.compile(header.regex).matches(value))) return false;
    }
    return true;
  };
  return { refused: false, rule: rules.findIndex(holds) };
}
