/**
 * The copies of TLS material for the node proxies (see
 * `policy/tls-material.ts`): the leading operator checks every Secret and
 * ConfigMap key that an EBPFNetworkPolicy's TLS termination references and
 * keeps one Secret per source in namespace `palisade-secrets` holding
 * exactly what checked out. A source that is missing or malformed has no
 * copy, so the proxies refuse what its rules would terminate (fail closed),
 * and the policies referencing it are reported not accepted, naming the
 * object and the problem. Copies nothing references any more are deleted.
 *
 * Only Secrets of type `kubernetes.io/tls` are watched (a field selector),
 * so the operator never receives the cluster's other Secrets. No message
 * or log line carries key material.
 *
 * @module
 */
import type { V1ConfigMap, V1Secret } from "@kubernetes/client-node";
import { X509Certificate, createPrivateKey } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import type { KubeClient } from "../k8s/client.ts";
import { objectKey } from "../k8s/cache.ts";
import { isAlreadyExists, isNotFound } from "../k8s/errors.ts";
import { Informer, onAny } from "../k8s/informer.ts";
import type { InformerHandlers } from "../k8s/informer.ts";
import type { Logger } from "../k8s/logger.ts";
import { Resources, resourcePath } from "../k8s/resource.ts";
import { WorkQueue } from "../k8s/workqueue.ts";
import type { EBPFNetworkPolicy } from "../policy/api-types.ts";
import {
  TLS_MATERIAL_LABEL,
  TLS_MATERIAL_NAMESPACE,
  TLS_MATERIAL_SOURCE_ANNOTATION,
  formatTlsMaterialSource,
  pemCertificateBlocks,
  tlsMaterialName,
  tlsMaterialReferences,
} from "../policy/tls-material.ts";
import type { TlsMaterialReference, TlsMaterialSource } from "../policy/tls-material.ts";
import type { ValidationIssue } from "../policy/validate.ts";

/** The Secret type a termination certificate must have. */
export const TLS_SECRET_TYPE = "kubernetes.io/tls";


/** What the controller reads and whom it tells. */
export interface TlsMaterialOptions {
  client: KubeClient;
  logger: Logger;
  /** The operator's policy cache (its handlers are added here). */
  policies: Informer<EBPFNetworkPolicy>;
  /** Called with the cache keys of the policies whose references changed state, to refresh their status. */
  onReferencesChanged: (policyKeys: readonly string[]) => void;
}

/**
 * Keeps the copies in step with the policies and their sources.
 *
 * @example
 * ```ts
 * const material = new TlsMaterialController({ client, logger, policies, onReferencesChanged: (keys) => keys.forEach(enqueue) });
 * for (const informer of material.informers()) informer.start();
 * material.issuesOf(policy); // [{ field: "spec.ingress[0].tls.termination.certificate.secretName", message: 'names Secret shop/api-tls, which does not exist or is not of type kubernetes.io/tls' }]
 * await material.run(signal); // while leading
 * ```
 */
export class TlsMaterialController {
  readonly #options: TlsMaterialOptions;
  readonly #log: Logger;
  readonly #secrets: Informer<V1Secret>;
  readonly #configMaps: Informer<V1ConfigMap>;
  readonly #copies: Informer<V1Secret>;
  /** Policy cache keys by copy name: who references each source. */
  readonly #referrers = new Map<string, Set<string>>();
  /** Each policy's references, as last seen. */
  readonly #references = new Map<string, TlsMaterialReference[]>();
  /** Checks by source object and key, valid while its resourceVersion is: a parse per version, not per status. */
  readonly #checks = new Map<string, { version: string; problem: string | undefined }>();
  #queue: WorkQueue<string> | undefined;

  constructor(options: TlsMaterialOptions) {
    this.#options = options;
    this.#log = options.logger;
    const { client, logger } = options;
    this.#secrets = new Informer<V1Secret>({ client, logger, resource: Resources.secrets, fieldSelector: `type=${TLS_SECRET_TYPE}` });
    // ConfigMaps are many and mostly not ours: keep only what a check reads.
    this.#configMaps = new Informer<V1ConfigMap>({
      client, logger, resource: Resources.configMaps,
      transform: (configMap) => ({ metadata: configMap.metadata, data: configMap.data }) as V1ConfigMap,
    });
    this.#copies = new Informer<V1Secret>({ client, logger, resource: Resources.secrets, namespace: TLS_MATERIAL_NAMESPACE, labelSelector: `${TLS_MATERIAL_LABEL}=true` });
    const policyChanged = (policy: EBPFNetworkPolicy): void => this.#policyChanged(objectKey(policy), policy);
    options.policies.addHandlers({
      onAdd: policyChanged,
      onUpdate: (_, policy) => policyChanged(policy),
      onDelete: (policy) => this.#policyChanged(objectKey(policy), undefined),
    });
    const sourceChanged = (kind: TlsMaterialSource["kind"]) => (obj: V1Secret | V1ConfigMap): void => {
      const name = tlsMaterialName({ kind, namespace: obj.metadata?.namespace ?? "", name: obj.metadata?.name ?? "" });
      const referrers = name === undefined ? undefined : this.#referrers.get(name);
      if (name === undefined || referrers === undefined) return;
      this.#queue?.add(name);
      options.onReferencesChanged([...referrers]);
    };
    const sourceHandlers = (kind: TlsMaterialSource["kind"]): InformerHandlers<V1Secret | V1ConfigMap> => {
      const changed = sourceChanged(kind);
      return {
        onAdd: changed,
        onUpdate: (_, obj) => changed(obj),
        onDelete: (obj) => {
          for (const id of this.#checks.keys()) if (id.startsWith(`${kind}/${objectKey(obj)}#`)) this.#checks.delete(id);
          changed(obj);
        },
      };
    };
    this.#secrets.addHandlers(sourceHandlers("Secret"));
    this.#configMaps.addHandlers(sourceHandlers("ConfigMap"));
    this.#copies.addHandlers(onAny((copy: V1Secret) => this.#queue?.add(copy.metadata?.name ?? "")));
  }

  /** The informers to start, stop and wait for with the operator's others. */
  informers(): Informer<V1Secret | V1ConfigMap>[] {
    return [this.#secrets, this.#configMaps, this.#copies] as Informer<V1Secret | V1ConfigMap>[];
  }

  /** What is wrong with the material `policy` references, one issue per bad reference (empty when all check out). */
  issuesOf(policy: EBPFNetworkPolicy): ValidationIssue[] {
    return tlsMaterialReferences(policy).flatMap((reference) => {
      const problem = this.#problemOf(reference);
      return problem === undefined ? [] : [{ field: reference.field, message: problem }];
    });
  }

  /** One leadership term, once the informers synced: write and collect copies until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const queue = new WorkQueue<string>({ name: "tls-material", logger: this.#log, baseDelayMs: 200, maxDelayMs: 30_000 });
    this.#queue = queue;
    signal.addEventListener("abort", () => queue.shutdown(), { once: true });
    for (const name of this.#referrers.keys()) queue.add(name);
    for (const copy of this.#copies.cache.list()) queue.add(copy.metadata?.name ?? "");
    try {
      await queue.runWorkers(1, (name) => this.#sync(name, signal));
    } finally {
      if (this.#queue === queue) this.#queue = undefined;
    }
  }

  #policyChanged(key: string, policy: EBPFNetworkPolicy | undefined): void {
    const before = this.#references.get(key) ?? [];
    const after = policy === undefined ? [] : tlsMaterialReferences(policy);
    if (isDeepStrictEqual(before, after)) return;
    for (const reference of before) {
      const name = tlsMaterialName(reference.source);
      const referrers = name === undefined ? undefined : this.#referrers.get(name);
      referrers?.delete(key);
      if (referrers?.size === 0) this.#referrers.delete(name!);
    }
    for (const reference of after) {
      const name = tlsMaterialName(reference.source);
      if (name === undefined) continue;
      const referrers = this.#referrers.get(name) ?? new Set<string>();
      referrers.add(key);
      this.#referrers.set(name, referrers);
    }
    if (after.length === 0) this.#references.delete(key);
    else this.#references.set(key, after);
    for (const reference of [...before, ...after]) {
      const name = tlsMaterialName(reference.source);
      if (name !== undefined) this.#queue?.add(name);
    }
  }

  /** The problem of one reference, or undefined when its source checks out. */
  #problemOf(reference: TlsMaterialReference): string | undefined {
    const { source, key } = reference;
    const named = formatTlsMaterialSource(source);
    if (tlsMaterialName(source) === undefined) return `names ${named}, whose name is too long to copy to namespace ${TLS_MATERIAL_NAMESPACE}`;
    if (source.kind === "Secret") {
      const secret = this.#secrets.cache.getByName(source.namespace, source.name);
      if (secret === undefined) return `names ${named}, which does not exist or is not of type ${TLS_SECRET_TYPE}`;
      const problem = this.#memo(`Secret/${objectKey(secret)}#`, secret, () => tlsSecretProblem(secret));
      return problem === undefined ? undefined : `names ${named}, which ${problem}`;
    }
    const configMap = this.#configMaps.cache.getByName(source.namespace, source.name);
    if (configMap === undefined) return `names ${named}, which does not exist`;
    const problem = this.#memo(`ConfigMap/${objectKey(configMap)}#${key}`, configMap, () => caBundleProblem(configMap.data?.[key ?? ""], key ?? ""));
    return problem === undefined ? undefined : `names ${named}, which ${problem}`;
  }

  #memo(id: string, obj: V1Secret | V1ConfigMap, check: () => string | undefined): string | undefined {
    const version = `${obj.metadata?.uid}/${obj.metadata?.resourceVersion}`;
    const cached = this.#checks.get(id);
    if (cached?.version === version) return cached.problem;
    const problem = check();
    this.#checks.set(id, { version, problem });
    return problem;
  }

  /** Brings copy `name` in line: the checked-out data of its source while referenced, no copy otherwise. */
  async #sync(name: string, signal: AbortSignal): Promise<void> {
    if (signal.aborted || name === "") return;
    const copy = this.#copies.cache.getByName(TLS_MATERIAL_NAMESPACE, name);
    const desired = this.#desired(name);
    if (desired === undefined) {
      if (copy !== undefined) await this.#delete(name, signal);
      return;
    }
    if (copy !== undefined && isDeepStrictEqual(copy.data ?? {}, desired.data) && copy.metadata?.annotations?.[TLS_MATERIAL_SOURCE_ANNOTATION] === desired.source) return;
    const body: V1Secret = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name,
        namespace: TLS_MATERIAL_NAMESPACE,
        labels: { [TLS_MATERIAL_LABEL]: "true", "app.kubernetes.io/managed-by": "palisade-operator" },
        annotations: { [TLS_MATERIAL_SOURCE_ANNOTATION]: desired.source },
        ...(copy?.metadata?.resourceVersion ? { resourceVersion: copy.metadata.resourceVersion } : {}),
      },
      type: "Opaque",
      data: desired.data,
    };
    const path = resourcePath(Resources.secrets, { namespace: TLS_MATERIAL_NAMESPACE });
    if (copy === undefined) {
      try {
        await this.#options.client.request("POST", path, { body, signal });
      } catch (e) {
        // Made by a previous leader and not cached yet: the watch brings it and this key comes back.
        if (!isAlreadyExists(e)) throw e;
      }
    } else {
      await this.#options.client.request("PUT", resourcePath(Resources.secrets, { namespace: TLS_MATERIAL_NAMESPACE, name }), { body, signal });
    }
    this.#log.info({ copy: name, source: desired.source, keys: Object.keys(desired.data) }, "TLS material copied for the node proxies");
  }

  async #delete(name: string, signal: AbortSignal): Promise<void> {
    try {
      await this.#options.client.request("DELETE", resourcePath(Resources.secrets, { namespace: TLS_MATERIAL_NAMESPACE, name }), { signal });
      this.#log.info({ copy: name }, "TLS material copy deleted: its source is unreferenced, missing or malformed");
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  /** The copy `name` should hold, or undefined when it should not exist. */
  #desired(name: string): { source: string; data: Record<string, string> } | undefined {
    const references = [...(this.#referrers.get(name) ?? [])].flatMap((key) => this.#references.get(key) ?? []).filter((r) => tlsMaterialName(r.source) === name);
    const first = references[0];
    if (first === undefined) return undefined;
    const good = references.filter((r) => this.#problemOf(r) === undefined);
    if (good.length === 0) return undefined;
    const { source } = first;
    if (source.kind === "Secret") {
      const data = this.#secrets.cache.getByName(source.namespace, source.name)?.data ?? {};
      return { source: formatTlsMaterialSource(source), data: { "tls.crt": data["tls.crt"]!, "tls.key": data["tls.key"]! } };
    }
    const configMap = this.#configMaps.cache.getByName(source.namespace, source.name);
    const data: Record<string, string> = {};
    for (const { key } of good) data[key!] = Buffer.from(configMap?.data?.[key!] ?? "", "utf8").toString("base64");
    return { source: formatTlsMaterialSource(source), data };
  }
}

/** What is wrong with certificates in PEM text, or undefined; the first is returned parsed. */
function parseCertificates(text: string, where: string): { problem: string } | { leaf: X509Certificate } {
  const blocks = pemCertificateBlocks(text);
  if (blocks.length === 0) return { problem: `holds no PEM certificate in ${where}` };
  let leaf: X509Certificate | undefined;
  for (const [i, block] of blocks.entries()) {
    try {
      const certificate = new X509Certificate(block);
      leaf ??= certificate;
    } catch {
      return { problem: `holds a certificate that does not parse in ${where} (block ${i + 1})` };
    }
  }
  return { leaf: leaf! };
}

/**
 * What is wrong with a `kubernetes.io/tls` Secret as a termination
 * certificate, or undefined: `tls.crt` must hold PEM certificates (the
 * server's first, then its chain) and `tls.key` the private key of the first.
 * Messages never quote the data.
 */
export function tlsSecretProblem(secret: V1Secret): string | undefined {
  const crt = secret.data?.["tls.crt"];
  const key = secret.data?.["tls.key"];
  if (!crt) return 'has no "tls.crt"';
  if (!key) return 'has no "tls.key"';
  const parsed = parseCertificates(Buffer.from(crt, "base64").toString("utf8"), '"tls.crt"');
  if ("problem" in parsed) return parsed.problem;
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(Buffer.from(key, "base64").toString("utf8"));
  } catch {
    return 'holds no PEM private key (unencrypted) in "tls.key"';
  }
  return parsed.leaf.checkPrivateKey(privateKey) ? undefined : 'holds a "tls.key" that is not the private key of the first certificate of "tls.crt"';
}

/** What is wrong with a ConfigMap value as a CA bundle (PEM certificates), or undefined. */
export function caBundleProblem(value: string | undefined, key: string): string | undefined {
  if (value === undefined) return `has no key ${JSON.stringify(key)}`;
  const parsed = parseCertificates(value, JSON.stringify(key));
  return "problem" in parsed ? parsed.problem : undefined;
}
