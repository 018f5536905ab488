/**
 * The certificates, keys and CA bundles TLS termination uses, as the proxy
 * holds them: the operator's copies in namespace `palisade-secrets`
 * (policy/tls-material.ts), kept in memory only (never written, never
 * logged), and turned into what Node's TLS needs once per copy version (its
 * resourceVersion): a new version is used by the next connection, while open
 * connections keep the context they started with. A reference whose copy is
 * missing or malformed throws {@link TlsMaterialError} naming the source
 * object, and the connection is refused.
 *
 * @example
 * ```ts
 * const store = new TlsMaterialStore();
 * informer.addHandlers({ onAdd: (s) => store.put(s), onUpdate: (_, s) => store.put(s), onDelete: (s) => store.remove(s) });
 * const context = store.serverContext(plan.namespace, plan.termination.certificate);
 * ```
 *
 * @module
 */
import { X509Certificate } from "node:crypto";
import tls from "node:tls";
import type { SecureContext } from "node:tls";
import type { ConfigMapKeyReference, SecretReference } from "../policy/api-types.ts";
import { formatTlsMaterialSource, pemCertificateBlocks, tlsMaterialName } from "../policy/tls-material.ts";
import type { TlsMaterialSource } from "../policy/tls-material.ts";

/** A copy as the API gives it: a Secret's name, version and base64 data. */
export interface TlsMaterialCopy {
  metadata?: { name?: string; resourceVersion?: string };
  data?: Record<string, string>;
}

/** Material a rule references cannot be used: missing (no copy) or malformed. The message names the source object. */
export class TlsMaterialError extends Error {
  override readonly name = "TlsMaterialError";
}

/** A CA bundle ready to check chains with and to verify an upstream with. */
export interface CaBundle {
  pem: string;
  certificates: X509Certificate[];
}

interface Held {
  version: string;
  data: Map<string, Buffer>;
  /** What was built from this version, by what it is (`server` and the versions of the CA bundles it trusts, `ca:KEY`). */
  built: Map<string, SecureContext | CaBundle | TlsMaterialError>;
}

export class TlsMaterialStore {
  readonly #copies = new Map<string, Held>();

  /** Takes a copy (added or updated); an unchanged version keeps what was built from it. */
  put(copy: TlsMaterialCopy): void {
    const name = copy.metadata?.name;
    if (name === undefined) return;
    const version = copy.metadata?.resourceVersion ?? "";
    if (this.#copies.get(name)?.version === version && version !== "") return;
    const data = new Map<string, Buffer>();
    for (const [key, value] of Object.entries(copy.data ?? {})) data.set(key, Buffer.from(value, "base64"));
    this.#copies.set(name, { version, data, built: new Map() });
  }

  /** Forgets a deleted copy. */
  remove(copy: TlsMaterialCopy): void {
    if (copy.metadata?.name !== undefined) this.#copies.delete(copy.metadata.name);
  }

  /** The version of the copy of `source`, or undefined without one (for logs and tests). */
  versionOf(source: TlsMaterialSource): string | undefined {
    const name = tlsMaterialName(source);
    return name === undefined ? undefined : this.#copies.get(name)?.version;
  }

  /**
   * The server context presenting the certificate and key of `secret` (a `kubernetes.io/tls` Secret of
   * `namespace`), trusting the CA bundles of `clientCas` for client certificates: OpenSSL then checks a
   * client's chain in full (RFC 5280: path length and name constraints, critical extensions, purpose),
   * and the proxy tells per rule which bundle it reaches. A bundle without a usable copy is left out (the
   * rules naming it are then not met, the others still are). Built once per version of each copy.
   */
  serverContext(namespace: string, secret: SecretReference, clientCas: readonly ConfigMapKeyReference[] = []): SecureContext {
    const source: TlsMaterialSource = { kind: "Secret", namespace, name: secret.secretName };
    const bundles = clientCas.flatMap((ref) => {
      try {
        return [{ ref, bundle: this.caBundle(namespace, ref) }];
      } catch {
        return [];
      }
    });
    const trusting = bundles.map(({ ref }) => `${ref.configMapName}/${ref.key}@${this.versionOf({ kind: "ConfigMap", namespace, name: ref.configMapName })}`).sort();
    return this.#build(source, ["server", ...new Set(trusting)].join(" "), (data) => {
      const cert = data.get("tls.crt");
      const key = data.get("tls.key");
      if (cert === undefined || key === undefined) throw new Error("it has no tls.crt or no tls.key");
      // Node checks that the key belongs to the certificate; a mismatch throws here, not per connection.
      return tls.createSecureContext({ cert, key, minVersion: "TLSv1.2", ...(bundles.length > 0 && { ca: bundles.map(({ bundle }) => bundle.pem) }) });
    }) as SecureContext;
  }

  /** The CA bundle at `ref.key` of a ConfigMap of `namespace`. */
  caBundle(namespace: string, ref: ConfigMapKeyReference): CaBundle {
    const source: TlsMaterialSource = { kind: "ConfigMap", namespace, name: ref.configMapName };
    return this.#build(source, `ca:${ref.key}`, (data) => {
      const pem = data.get(ref.key)?.toString("utf8");
      if (pem === undefined) throw new Error(`it has no key ${JSON.stringify(ref.key)}`);
      const blocks = pemCertificateBlocks(pem);
      if (blocks.length === 0) throw new Error(`${ref.key} holds no PEM certificate`);
      return { pem, certificates: blocks.map((block) => new X509Certificate(block)) };
    }) as CaBundle;
  }

  /** What `build` makes of the current copy of `source`, made once per version; a failure is remembered too. */
  #build(source: TlsMaterialSource, what: string, build: (data: Map<string, Buffer>) => SecureContext | CaBundle): SecureContext | CaBundle {
    const name = tlsMaterialName(source);
    const held = name === undefined ? undefined : this.#copies.get(name);
    if (held === undefined) throw new TlsMaterialError(`${formatTlsMaterialSource(source)} is missing (no copy ${name ?? "(name too long)"} in the material namespace)`);
    let built = held.built.get(what);
    if (built === undefined) {
      try {
        built = build(held.data);
      } catch (error) {
        // Never the error's own text for keys: OpenSSL's messages name no key bytes, but say only what failed.
        built = new TlsMaterialError(`${formatTlsMaterialSource(source)} is malformed: ${error instanceof Error && !(error instanceof TypeError) ? error.message.split("\n")[0] : "unreadable"}`);
      }
      held.built.set(what, built);
    }
    if (built instanceof TlsMaterialError) throw built;
    return built;
  }
}
