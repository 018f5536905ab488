/**
 * `tls.serverNames` of an EBPFNetworkPolicy rule (issue 12): which server
 * names a ClientHello may ask for. An entry is a host name, matched exactly
 * (DNS names compare case-insensitively), or `*.` and a host name, matching
 * names with exactly one more label in front (`*.github.com` matches
 * `api.github.com`, not `github.com` nor `a.b.github.com`).
 *
 * @module
 */
import { hostNameProblem } from "./tls-client-hello.ts";

/** Entries of one `serverNames` list at most. */
export const MAX_SERVER_NAMES = 64;

/**
 * Validates a `serverNames` list; one message per problem, each starting with
 * the field (`spec.egress[0].tls.serverNames[1]: ...`).
 *
 * @example
 * ```ts
 * validateServerNames(["*.github.com", "api.stripe.com."], "spec.egress[0].tls.serverNames");
 * // ['spec.egress[0].tls.serverNames[1]: "api.stripe.com." is a host name with a trailing dot']
 * ```
 */
export function validateServerNames(names: unknown, field: string): string[] {
  if (!Array.isArray(names)) return [`${field}: must be a list of server names`];
  const errors: string[] = [];
  if (names.length === 0) errors.push(`${field}: must hold at least one server name: an empty list would refuse every connection`);
  if (names.length > MAX_SERVER_NAMES) errors.push(`${field}: holds ${names.length} names, more than the limit of ${MAX_SERVER_NAMES}`);
  names.forEach((name, index) => {
    const at = `${field}[${index}]`;
    if (typeof name !== "string") {
      errors.push(`${at}: must be a string`);
      return;
    }
    const problem = namePatternProblem(name);
    if (problem) errors.push(`${at}: ${problem}`);
  });
  return errors;
}

/**
 * Why `name` is no host-name pattern (a host name, or `*.` and a host name of at least two labels), or
 * undefined when it is one; the message starts with the name. Also the DNS entries of a client
 * certificate's `subjectAltNames`.
 *
 * @example
 * ```ts
 * namePatternProblem("*.com"); // '"*.com" would match every name under a top-level domain'
 * ```
 */
export function namePatternProblem(name: string): string | undefined {
  const wildcard = name.startsWith("*.");
  const problem = hostNameProblem(wildcard ? name.slice(2) : name);
  if (problem) return `${JSON.stringify(name)} is ${problem}`;
  if (name.slice(wildcard ? 2 : 0).includes("*")) return `${JSON.stringify(name)} has a wildcard elsewhere than one leading "*." label`;
  if (wildcard && !name.slice(2).includes(".")) return `${JSON.stringify(name)} would match every name under a top-level domain`;
  return undefined;
}

/**
 * The index of the first entry of `patterns` that `serverName` matches, or -1 (also without a name).
 *
 * @example
 * ```ts
 * matchServerName(["api.stripe.com", "*.github.com"], "API.GitHub.com"); // 1
 * ```
 */
export function matchServerName(patterns: readonly string[], serverName: string | undefined): number {
  if (serverName === undefined) return -1;
  const name = serverName.toLowerCase();
  return patterns.findIndex((pattern) => {
    const wanted = pattern.toLowerCase();
    if (!wanted.startsWith("*.")) return name === wanted;
    const dot = name.indexOf(".");
    return dot > 0 && name.slice(dot + 1) === wanted.slice(2);
  });
}
