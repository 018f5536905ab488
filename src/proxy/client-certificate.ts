/**
 * Reads the certificate a client presented in a handshake the proxy
 * terminated, for policy/tls-client-certificate.ts to judge: its DNS and URI
 * names, whether it and the certificates it sent with it are valid now, and
 * whether it chains to a rule's CA bundle. The chain is checked here, per
 * rule, rather than by OpenSSL against the union of every rule's CAs, so that
 * a certificate of one rule's CA never counts for another rule.
 *
 * @module
 */
import { X509Certificate } from "node:crypto";
import type { DetailedPeerCertificate, TLSSocket } from "node:tls";
import type { ConfigMapKeyReference } from "../policy/api-types.ts";
import type { PresentedCertificate, PresentedNames } from "../policy/tls-client-certificate.ts";
import type { CaBundle } from "./tls-material-store.ts";

/** Certificates a client may send above its own, at most. */
const MAX_CHAIN = 8;

/**
 * The names of Node's `subjectAltName` text (`DNS:a, URI:spiffe://x, DNS:"b, c"`): values with a comma or
 * quote are JSON strings there. A text that cannot be read whole gives no names at all.
 */
export function parseSubjectAltNames(text: string | undefined): PresentedNames {
  const dns: string[] = [];
  const uri: string[] = [];
  const entry = /(?:^|, )([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,"]*)(?=, |$)/y;
  let at = 0;
  while (text !== undefined && at < text.length) {
    entry.lastIndex = at;
    const match = entry.exec(text);
    if (!match) return { dns: [], uri: [] };
    const raw = match[2] ?? "";
    let value: string;
    try {
      value = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
    } catch {
      return { dns: [], uri: [] };
    }
    if (match[1] === "DNS") dns.push(value);
    else if (match[1] === "URI") uri.push(value);
    at = entry.lastIndex;
  }
  return { dns, uri };
}

/** Extended key usages that let a certificate authenticate a TLS client (RFC 5280 §4.2.1.12): clientAuth, anyExtendedKeyUsage. */
const CLIENT_USAGES = ["1.3.6.1.5.5.7.3.2", "2.5.29.37.0"];

/** Whether a certificate may authenticate a TLS client: no extended key usage, or one allowing it. */
function forClients(certificate: X509Certificate): boolean {
  const usages = certificate.keyUsage as string[] | undefined;
  return usages === undefined || usages.some((usage) => CLIENT_USAGES.includes(usage));
}

/** OpenSSL's verification errors about time (RFC 5280 §6.1.3): the chain is sound but not valid now. */
const TIME_ERRORS = ["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID"];

/** Whether `now` is within a certificate's validity. */
function validAt(certificate: X509Certificate, now: number): boolean {
  return Date.parse(certificate.validFrom) <= now && now <= Date.parse(certificate.validTo);
}

/** The certificates the client sent: its own first, then the ones above it, as far as they link. */
function sentChain(socket: TLSSocket): X509Certificate[] {
  const chain: X509Certificate[] = [];
  let peer: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (peer?.raw !== undefined && chain.length <= MAX_CHAIN) {
    const certificate = new X509Certificate(peer.raw);
    if (chain.some((seen) => seen.fingerprint256 === certificate.fingerprint256)) break;
    chain.push(certificate);
    peer = peer.issuerCertificate;
  }
  return chain;
}

/**
 * OpenSSL's verdict on the chain a server-side socket received (its code), undefined when the chain verified.
 * Only `tls.Server` sets `authorized` on the sockets it makes; a socket made with `new TLSSocket(…, {isServer})`
 * is read where Node's server reads it. Should Node change that, every chain counts as unverified (closed, not open).
 */
function opensslVerifyError(socket: TLSSocket): string | undefined {
  const handle = (socket as unknown as { _handle?: { verifyError?: () => { code?: string } | null } })._handle;
  if (typeof handle?.verifyError !== "function") return "UNVERIFIABLE";
  const error = handle.verifyError();
  return error === null ? undefined : (error.code ?? "UNKNOWN");
}

/** A client certificate as the proxy read it, with OpenSSL's verification error (its code) when it had one, for the flow log. */
export interface ReadClientCertificate extends PresentedCertificate {
  verifyError?: string;
}

/**
 * The certificate a terminated connection's client presented, or undefined when it presented none.
 * `caBundle` gives a rule's bundle (it throws for missing material: the rule is then not met). Two checks
 * must both pass for a rule: OpenSSL's, against the CAs of all the connection's rules (the socket's
 * context trusts them: full RFC 5280 path validation, which a check by hand would only approximate), and
 * the one below, that the chain the client sent leads to this rule's own CA.
 */
export function presentedCertificate(socket: TLSSocket, caBundle: (ca: ConfigMapKeyReference) => CaBundle, now = Date.now()): ReadClientCertificate | undefined {
  const chain = sentChain(socket);
  const leaf = chain[0];
  if (leaf === undefined) return undefined;
  const opensslError = opensslVerifyError(socket);
  const expiredForOpenssl = opensslError !== undefined && TIME_ERRORS.includes(opensslError);
  const untrustedForOpenssl = opensslError !== undefined && !expiredForOpenssl;
  /**
   * How many certificates of the chain lead to an anchor of the bundle: 0 when none does. Only a CA
   * (basicConstraints CA:TRUE) signs: otherwise the holder of any certificate of the CA could sign
   * one naming whom it likes. (`checkIssued` also refuses an issuer whose key usage lacks keyCertSign.)
   */
  const anchoredLength = (bundle: CaBundle): number => {
    if (!forClients(leaf)) return 0;
    for (let i = 0; i < chain.length; i++) {
      const certificate = chain[i] as X509Certificate;
      if (i > 0 && !(certificate.ca && (chain[i - 1] as X509Certificate).checkIssued(certificate))) return 0;
      if (i > 0 && !(chain[i - 1] as X509Certificate).verify(certificate.publicKey)) return 0;
      if (bundle.certificates.some((anchor) => anchor.ca && certificate.checkIssued(anchor) && certificate.verify(anchor.publicKey))) return i + 1;
    }
    return 0;
  };
  let anchored = 0;
  return {
    ...(opensslError !== undefined && { verifyError: opensslError }),
    names: parseSubjectAltNames(leaf.subjectAltName),
    get valid() {
      const checked = anchored > 0 ? chain.slice(0, anchored) : [leaf];
      return !expiredForOpenssl && checked.every((certificate) => validAt(certificate, now));
    },
    chainsTo(ca) {
      let bundle: CaBundle;
      try {
        bundle = caBundle(ca);
      } catch {
        return false;
      }
      anchored = untrustedForOpenssl ? 0 : anchoredLength(bundle);
      return anchored > 0;
    },
  };
}
