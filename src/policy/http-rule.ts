/**
 * HTTP rules of EBPFNetworkPolicy (issue 11): their shape, their validation,
 * and the compiled matcher the proxy asks for every request.
 *
 * A rule holds when every field it sets holds:
 * - `method`: the request method, exactly (methods are case-sensitive, RFC 9110 §9.1).
 * - `path`: exactly one of `exact`, `prefix`, `regex`, compared with the
 *   normalized path (http-path.ts); a regex must match the whole path.
 * - `host`: exactly one of `exact`, `suffix`, `regex`, compared with the host
 *   without its port, case-insensitively (DNS). `suffix: shop.example` matches
 *   `shop.example` and every name under it (`api.shop.example`), never
 *   `evilshop.example`: the suffix is whole labels.
 * - `headers`: all must hold. Names are case-insensitive. `exact`, `prefix` and
 *   `regex` compare the field value; when the request has several lines of the
 *   field they are compared as one value, the lines joined in order by ", "
 *   (RFC 9110 §5.3: that is the field's value), and `Cookie` lines by "; "
 *   (RFC 9113 §8.2.3). `present: true` holds when the request has at least one
 *   line of the field (even empty), `absent: true` when it has none.
 *
 * Regexes are RE2 syntax (re2js: linear time whatever the input), anchored at
 * both ends.
 *
 * @module
 */
import { RE2JS } from "re2js";
import type { HttpHeaderMatch, HttpHostMatch, HttpPathMatch, HttpRule } from "./api-types.ts";
import { parseHost } from "./http-host.ts";
import { normalizePath } from "./http-path.ts";

/** A request as rules see it. */
export interface HttpRequestView {
  method: string;
  /** Normalized (http-path.ts), or `*` for OPTIONS in asterisk form. */
  path: string;
  /** Lower case, no port (http-host.ts); undefined when the request names none. */
  host: string | undefined;
  /** Field lines by lower-case name, values in the order received. */
  headers: ReadonlyMap<string, readonly string[]>;
}

/** Rules compiled once, asked per request. */
export interface CompiledHttpRules {
  /** The index of the first rule that the request satisfies, or -1. */
  match(request: HttpRequestView): number;
}

/** Bounds that keep one policy from costing the proxy much: per `http` list, per rule, per string. */
export const HTTP_RULE_LIMITS = {
  rules: 64,
  headersPerRule: 16,
  methodLength: 32,
  headerNameLength: 128,
  valueLength: 1024,
  regexLength: 1024,
} as const;

/** RFC 9110 §5.6.2 tchar. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** RFC 9110 §5.5 field-value without leading or trailing whitespace (parsers strip it, so such a value could never match). */
const FIELD_VALUE = /^(?:[\x21-\x7e\x80-\xff](?:[\x20\x21-\x7e\x80-\xff\t]*[\x21-\x7e\x80-\xff])?)?$/;

const RULE_KEYS = ["method", "path", "host", "headers"];
const PATH_KEYS = ["exact", "prefix", "regex"];
const HOST_KEYS = ["exact", "suffix", "regex"];
const HEADER_TESTS = ["exact", "prefix", "regex", "present", "absent"];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (value === null) return "null";
  return typeof value === "object" ? "an object" : JSON.stringify(value);
}

/** Compiles an RE2 regex for whole-string matching, or says why it is not one. */
function compileRegex(source: string, flags = 0): RE2JS | string {
  try {
    return RE2JS.compile(source, flags);
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/**
 * Validates a policy rule's `http` list; returns one message per problem, each
 * starting with the field it is about (`spec.ingress[0].http[1].path.regex: ...`),
 * none when the list is valid.
 *
 * @example
 * ```ts
 * validateHttpRules([{ path: { prefix: "public/" } }], "spec.ingress[0].http");
 * // ['spec.ingress[0].http[0].path.prefix: "public/" does not start with "/": it could never match a path']
 * ```
 */
export function validateHttpRules(rules: unknown, field: string): string[] {
  const errors: string[] = [];
  const report = (at: string, message: string) => errors.push(`${at}: ${message}`);
  if (!Array.isArray(rules)) {
    report(field, `must be a list of HTTP rules, not ${describe(rules)}`);
    return errors;
  }
  if (rules.length === 0) report(field, "must hold at least one HTTP rule: an empty list would refuse every request");
  if (rules.length > HTTP_RULE_LIMITS.rules) report(field, `holds ${rules.length} HTTP rules, more than the limit of ${HTTP_RULE_LIMITS.rules}`);
  rules.forEach((rule, index) => validateRule(rule, `${field}[${index}]`, report));
  return errors;
}

type Report = (at: string, message: string) => void;

function unknownKeys(value: Record<string, unknown>, known: string[], at: string, report: Report): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) report(`${at}.${key}`, `is not a field of this object (expected one of ${known.join(", ")})`);
  }
}

function checkString(value: unknown, at: string, limit: number, report: Report): value is string {
  if (typeof value !== "string") {
    report(at, `must be a string, not ${describe(value)}`);
    return false;
  }
  if (value.length > limit) {
    report(at, `is ${value.length} characters long, more than the limit of ${limit}`);
    return false;
  }
  return true;
}

function checkRegex(value: unknown, at: string, report: Report): void {
  if (!checkString(value, at, HTTP_RULE_LIMITS.regexLength, report)) return;
  const compiled = compileRegex(value);
  if (typeof compiled === "string") report(at, `${JSON.stringify(value)} is not RE2 syntax: ${compiled}`);
}

/** Which one of `keys` the object sets; reports none or several. */
function exactlyOne(value: unknown, keys: string[], at: string, report: Report): string | undefined {
  if (!isObject(value)) {
    report(at, `must be an object, not ${describe(value)}`);
    return undefined;
  }
  const set = keys.filter((key) => value[key] !== undefined);
  if (set.length !== 1) {
    report(at, set.length === 0 ? `must set one of ${keys.join(", ")}` : `sets ${set.join(" and ")}: it must set exactly one of ${keys.join(", ")}`);
    return undefined;
  }
  return set[0];
}

function validateRule(rule: unknown, at: string, report: Report): void {
  if (!isObject(rule)) {
    report(at, `must be an object, not ${describe(rule)}`);
    return;
  }
  unknownKeys(rule, RULE_KEYS, at, report);
  if (rule.method !== undefined && checkString(rule.method, `${at}.method`, HTTP_RULE_LIMITS.methodLength, report) && !TOKEN.test(rule.method)) {
    report(`${at}.method`, `${JSON.stringify(rule.method)} is not an HTTP method (RFC 9110 token)`);
  }
  if (rule.path !== undefined) validatePath(rule.path, `${at}.path`, report);
  if (rule.host !== undefined) validateHost(rule.host, `${at}.host`, report);
  if (rule.headers !== undefined) {
    if (!Array.isArray(rule.headers)) report(`${at}.headers`, `must be a list, not ${describe(rule.headers)}`);
    else {
      if (rule.headers.length > HTTP_RULE_LIMITS.headersPerRule) report(`${at}.headers`, `holds ${rule.headers.length} entries, more than the limit of ${HTTP_RULE_LIMITS.headersPerRule}`);
      rule.headers.forEach((header, index) => validateHeader(header, `${at}.headers[${index}]`, report));
    }
  }
}

/**
 * Checks a path or host match's shape (known keys, exactly one set) and its regex if that is the one;
 * returns the literal test it sets (exact, prefix, suffix) when that is a string in bounds, for the
 * caller's own checks, else undefined.
 */
function literalTest(match: unknown, keys: string[], at: string, report: Report): { key: string; value: string } | undefined {
  if (isObject(match)) unknownKeys(match, keys, at, report);
  const key = exactlyOne(match, keys, at, report);
  if (key === undefined || !isObject(match)) return undefined;
  const value = match[key];
  if (key === "regex") {
    checkRegex(value, `${at}.regex`, report);
    return undefined;
  }
  return checkString(value, `${at}.${key}`, HTTP_RULE_LIMITS.valueLength, report) ? { key, value } : undefined;
}

function validatePath(path: unknown, at: string, report: Report): void {
  const test = literalTest(path, PATH_KEYS, at, report);
  if (test === undefined) return;
  const { key, value } = test;
  if (!value.startsWith("/")) {
    report(`${at}.${key}`, `${JSON.stringify(value)} does not start with "/": it could never match a path`);
    return;
  }
  const normalized = normalizePath(value);
  if (!normalized.ok) report(`${at}.${key}`, `${JSON.stringify(value)} is not a path requests can have: ${normalized.reason}`);
  else if (normalized.path !== value) {
    report(`${at}.${key}`, `${JSON.stringify(value)} is not in normalized form, so it could never match a normalized path: write ${JSON.stringify(normalized.path)}`);
  }
}

function validateHost(host: unknown, at: string, report: Report): void {
  const test = literalTest(host, HOST_KEYS, at, report);
  if (test === undefined) return;
  const { key, value } = test;
  const parsed = parseHost(value);
  if (!parsed.ok) report(`${at}.${key}`, `${JSON.stringify(value)} is not a host: ${parsed.reason}`);
  else if (parsed.port !== undefined || value.endsWith(":")) report(`${at}.${key}`, `${JSON.stringify(value)} has a port: hosts are compared without it`);
  else if (key === "suffix" && value.startsWith(".")) report(`${at}.${key}`, `${JSON.stringify(value)} starts with ".": a suffix is whole labels, write ${JSON.stringify(value.slice(1))}`);
}

function validateHeader(header: unknown, at: string, report: Report): void {
  if (!isObject(header)) {
    report(at, `must be an object, not ${describe(header)}`);
    return;
  }
  unknownKeys(header, ["name", ...HEADER_TESTS], at, report);
  if (checkString(header.name, `${at}.name`, HTTP_RULE_LIMITS.headerNameLength, report) && !TOKEN.test(header.name)) {
    report(`${at}.name`, `${JSON.stringify(header.name)} is not a field name (RFC 9110 token)`);
  }
  const key = exactlyOne(header, HEADER_TESTS, at, report);
  if (key === undefined) return;
  const value = header[key];
  if (key === "present" || key === "absent") {
    if (value !== true) report(`${at}.${key}`, `must be true, not ${describe(value)}`);
  } else if (key === "regex") checkRegex(value, `${at}.regex`, report);
  else if (checkString(value, `${at}.${key}`, HTTP_RULE_LIMITS.valueLength, report) && !FIELD_VALUE.test(value)) {
    report(`${at}.${key}`, `${JSON.stringify(value)} is not a field value (control characters, or leading or trailing whitespace, which parsers strip): it could never match`);
  }
}

type Test<T> = (value: T) => boolean;

function mustCompile(source: string, flags = 0): RE2JS {
  const compiled = compileRegex(source, flags);
  if (typeof compiled === "string") throw new Error(`Cannot compile HTTP rules: regex ${JSON.stringify(source)} is not RE2 syntax: ${compiled}`);
  return compiled;
}

function pathTest(path: HttpPathMatch): Test<string> {
  if (path.exact !== undefined) {
    const exact = path.exact;
    return (value) => value === exact;
  }
  if (path.prefix !== undefined) {
    const prefix = path.prefix;
    return (value) => value.startsWith(prefix);
  }
  const regex = mustCompile(path.regex ?? "");
  return (value) => regex.matches(value);
}

function hostTest(host: HttpHostMatch): Test<string | undefined> {
  if (host.exact !== undefined) {
    const exact = host.exact.toLowerCase();
    return (value) => value === exact;
  }
  if (host.suffix !== undefined) {
    const suffix = host.suffix.toLowerCase();
    return (value) => value !== undefined && (value === suffix || value.endsWith(`.${suffix}`));
  }
  const regex = mustCompile(host.regex ?? "", RE2JS.CASE_INSENSITIVE);
  return (value) => value !== undefined && regex.matches(value);
}

/** The value of a field with several lines, as RFC 9110 §5.3 (and RFC 9113 §8.2.3 for Cookie) defines it. */
export function combinedFieldValue(name: string, lines: readonly string[]): string {
  return lines.join(name === "cookie" ? "; " : ", ");
}

function headerTest(header: HttpHeaderMatch): Test<ReadonlyMap<string, readonly string[]>> {
  const name = header.name.toLowerCase();
  if (header.present) return (headers) => (headers.get(name)?.length ?? 0) > 0;
  if (header.absent) return (headers) => (headers.get(name)?.length ?? 0) === 0;
  let valueTest: Test<string>;
  if (header.exact !== undefined) {
    const exact = header.exact;
    valueTest = (value) => value === exact;
  } else if (header.prefix !== undefined) {
    const prefix = header.prefix;
    valueTest = (value) => value.startsWith(prefix);
  } else {
    const regex = mustCompile(header.regex ?? "");
    valueTest = (value) => regex.matches(value);
  }
  return (headers) => {
    const lines = headers.get(name);
    return lines !== undefined && lines.length > 0 && valueTest(combinedFieldValue(name, lines));
  };
}

/**
 * Compiles validated rules (validateHttpRules) into a matcher. Throws on a
 * regex that is not RE2 syntax: validation refuses such rules first.
 *
 * @example
 * ```ts
 * const rules = compileHttpRules([{ method: "GET", path: { prefix: "/public/" } }]);
 * rules.match({ method: "GET", path: "/public/a", host: "api.shop", headers: new Map() }); // 0
 * ```
 */
export function compileHttpRules(rules: readonly HttpRule[]): CompiledHttpRules {
  const compiled = rules.map((rule) => {
    const tests: Test<HttpRequestView>[] = [];
    if (rule.method !== undefined) {
      const method = rule.method;
      tests.push((request) => request.method === method);
    }
    if (rule.path !== undefined) {
      const test = pathTest(rule.path);
      tests.push((request) => test(request.path));
    }
    if (rule.host !== undefined) {
      const test = hostTest(rule.host);
      tests.push((request) => test(request.host));
    }
    for (const header of rule.headers ?? []) {
      const test = headerTest(header);
      tests.push((request) => test(request.headers));
    }
    return tests;
  });
  return {
    match(request) {
      return compiled.findIndex((tests) => tests.every((test) => test(request)));
    },
  };
}
