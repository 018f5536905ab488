/**
 * `tls.clientCertificate.subjectAltNames` of an EBPFNetworkPolicy rule (issue
 * 12): the names one of which a client certificate must carry. An entry with
 * a scheme (`spiffe://cluster.local/ns/shop/sa/frontend`) is a URI, matched
 * exactly against the certificate's URI names; any other entry is a DNS name
 * pattern, matched as `serverNames` entries are (case-insensitively, exactly
 * or with one leading `*.` label) against its DNS names. IP address and e-mail
 * names are never matched.
 *
 * @module
 */
import type { ConfigMapKeyReference, TlsClientCertificate } from "./api-types.ts";
import { hostNameProblem } from "./tls-client-hello.ts";
import { matchServerName, namePatternProblem } from "./tls-server-name.ts";

/** Entries of one `subjectAltNames` list at most. */
export const MAX_SUBJECT_ALT_NAMES = 64;

/** The longest entry. */
export const MAX_SUBJECT_ALT_NAME_LENGTH = 1024;

/** A URI entry: a scheme, a colon, and characters RFC 3986 allows, `%` only before two hex digits. */
export const URI_SUBJECT_ALT_NAME = /^[A-Za-z][A-Za-z0-9+.-]*:(?:[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+$/;

/** The names a client certificate carries, by type, as read from it. */
export interface PresentedNames {
  dns: readonly string[];
  uri: readonly string[];
}

/** Why a client certificate did not satisfy a rule, in the words of flow logs and metrics. */
export type ClientCertificateFailure = "no-client-certificate" | "untrusted-client-certificate" | "expired-client-certificate" | "san-not-allowed";

/**
 * Validates a `subjectAltNames` list; one message per problem, each starting with the field.
 *
 * @example
 * ```ts
 * validateSubjectAltNames(["spiffe://cluster.local/ns/shop/sa/frontend", "*.com"], "f");
 * // ['f[1]: "*.com" would match every name under a top-level domain']
 * ```
 */
export function validateSubjectAltNames(names: unknown, field: string): string[] {
  if (!Array.isArray(names)) return [`${field}: must be a list of subject alternative names`];
  const errors: string[] = [];
  if (names.length === 0) errors.push(`${field}: must hold at least one name: an empty list would refuse every client`);
  if (names.length > MAX_SUBJECT_ALT_NAMES) errors.push(`${field}: holds ${names.length} names, more than the limit of ${MAX_SUBJECT_ALT_NAMES}`);
  names.forEach((name, index) => {
    const at = `${field}[${index}]`;
    if (typeof name !== "string") errors.push(`${at}: must be a string`);
    else if (name.length > MAX_SUBJECT_ALT_NAME_LENGTH) errors.push(`${at}: is ${name.length} characters long, more than ${MAX_SUBJECT_ALT_NAME_LENGTH}`);
    else if (name.includes(":")) {
      if (!URI_SUBJECT_ALT_NAME.test(name)) errors.push(`${at}: ${JSON.stringify(name)} is not a URI: a scheme, ":", and characters RFC 3986 allows in a URI`);
    } else {
      const problem = namePatternProblem(name);
      if (/^[0-9.]+$/.test(name)) errors.push(`${at}: ${JSON.stringify(name)} is an IP address: only DNS and URI names are matched`);
      else if (problem) errors.push(`${at}: ${problem} (a DNS name; a URI has a scheme)`);
    }
  });
  return errors;
}

/**
 * The index of the first entry of `patterns` one of the presented names matches, or -1. A presented DNS
 * name that is no host name (a wildcard, an IP address) matches nothing: a certificate names one client.
 *
 * @example
 * ```ts
 * matchSubjectAltName(["spiffe://c/ns/shop/sa/a", "*.frontend.shop"], { dns: ["x.frontend.shop"], uri: [] }); // 1
 * ```
 */
export function matchSubjectAltName(patterns: readonly string[], presented: PresentedNames): number {
  return patterns.findIndex((pattern) => {
    if (pattern.includes(":")) return presented.uri.includes(pattern);
    return presented.dns.some((name) => hostNameProblem(name) === undefined && matchServerName([pattern], name) === 0);
  });
}

/** A client certificate as the proxy read it: its names, whether it is valid now, and which CA bundles it chains to. */
export interface PresentedCertificate {
  names: PresentedNames;
  /** Now is within its validity period (and its chain's). */
  valid: boolean;
  /** Whether it chains to the CA bundle of `ca`, a ConfigMap key of the rule's namespace. */
  chainsTo(ca: ConfigMapKeyReference): boolean;
}

/**
 * The rules a client certificate (undefined: none presented) meets, by id, in order: a rule without
 * `clientCertificate` admits any client. When it meets none, the failure of the rule it came closest to:
 * no certificate, one chaining to no rule's CA, one chaining but not valid now, or one whose names no rule
 * it chains to lists.
 *
 * @example
 * ```ts
 * admittingRules([{ id: 7, clientCertificate: { ca, subjectAltNames: ["spiffe://c/ns/a"] } }], undefined);
 * // { ids: [], failure: "no-client-certificate" }
 * ```
 */
export function admittingRules(rules: readonly { id: number; clientCertificate?: TlsClientCertificate }[], certificate: PresentedCertificate | undefined): { ids: number[]; failure?: ClientCertificateFailure } {
  const ids: number[] = [];
  let closest = 0;
  const failures: ClientCertificateFailure[] = ["no-client-certificate", "untrusted-client-certificate", "expired-client-certificate", "san-not-allowed"];
  for (const { id, clientCertificate } of rules) {
    if (clientCertificate === undefined) {
      ids.push(id);
      continue;
    }
    if (certificate === undefined) continue;
    closest = Math.max(closest, 1);
    if (!certificate.chainsTo(clientCertificate.ca)) continue;
    closest = Math.max(closest, 2);
    if (!certificate.valid) continue;
    closest = Math.max(closest, 3);
    if (matchSubjectAltName(clientCertificate.subjectAltNames, certificate.names) >= 0) ids.push(id);
  }
  return ids.length > 0 ? { ids } : { ids, failure: failures[closest] as ClientCertificateFailure };
}
