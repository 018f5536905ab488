/**
 * The agents' per-node reports, watched (not polled): the latest report of
 * each node, and promises that resolve once a node's report satisfies a
 * condition, each report checked as it arrives.
 *
 * @module
 */
import type { V1ConfigMap } from "@kubernetes/client-node";
import { Informer, parseNodeReport, REPORT_NAME_PREFIX, REPORT_NAMESPACE, Resources } from "../../src/k8s/index.ts";
import type { KubeClient, NodeReport } from "../../src/k8s/index.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** A report that arrived, and when (this process's `performance.now()`). */
export interface SeenReport {
  report: NodeReport;
  seenAt: number;
}

/** The latest report of every node, as the watch delivers them. */
export class ReportWatch {
  readonly #informer: Informer<V1ConfigMap>;
  readonly #latest = new Map<string, SeenReport>();
  #waiters: { node: string; check: (report: NodeReport) => boolean; resolve: (seen: SeenReport) => void }[] = [];

  private constructor(client: KubeClient) {
    this.#informer = new Informer<V1ConfigMap>({ client, resource: Resources.configMaps, namespace: REPORT_NAMESPACE, logger: quiet });
    const seen = (cm: V1ConfigMap): void => {
      if (!cm.metadata?.name?.startsWith(REPORT_NAME_PREFIX)) return;
      const entry = { report: parseNodeReport(cm), seenAt: performance.now() };
      this.#latest.set(entry.report.node, entry);
      this.#waiters = this.#waiters.filter((w) => {
        if (w.node !== entry.report.node || !w.check(entry.report)) return true;
        w.resolve(entry);
        return false;
      });
    };
    this.#informer.addHandlers({ onAdd: seen, onUpdate: (_, cm) => seen(cm) });
  }

  /**
   * Starts watching `client`'s reports; resolves once the first list is in.
   *
   * @example
   * ```ts
   * const reports = await ReportWatch.start(client);
   * const { report } = await reports.until("palisade-node-1", (r) => r.policies.length === 100);
   * await reports.stop();
   * ```
   */
  static async start(client: KubeClient): Promise<ReportWatch> {
    const watch = new ReportWatch(client);
    watch.#informer.start();
    await watch.#informer.waitForSync();
    return watch;
  }

  /** `node`'s latest report, if one arrived. */
  latest(node: string): SeenReport | undefined {
    return this.#latest.get(node);
  }

  /** Resolves with the first report of `node` (the latest one included) that satisfies `check`. */
  until(node: string, check: (report: NodeReport) => boolean): Promise<SeenReport> {
    const latest = this.#latest.get(node);
    if (latest !== undefined && check(latest.report)) return Promise.resolve(latest);
    return new Promise((resolve) => this.#waiters.push({ node, check, resolve }));
  }

  async stop(): Promise<void> {
    await this.#informer.stop();
  }
}

/**
 * Whether `report` lists every policy of `policies` at exactly its generation, and nothing else among them.
 *
 * @example
 * ```ts
 * await reports.until(node, (r) => listsEvery(r, loaded));
 * ```
 */
export function listsEvery(report: NodeReport, policies: readonly { kind: string; namespace: string; name: string; generation: number }[]): boolean {
  const listed = new Map(report.policies.map((p) => [`${p.kind}/${p.namespace}/${p.name}`, p.generation]));
  return policies.every((p) => listed.get(`${p.kind}/${p.namespace}/${p.name}`) === p.generation);
}
