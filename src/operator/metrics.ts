/**
 * The operator's Prometheus metrics: reconciles by result, whether this
 * replica leads, and its identity table, in the text exposition format.
 *
 * @module
 */
import { renderPrometheus } from "../k8s/prometheus.ts";

/** Outcome of one reconcile, the `result` label of `palisade_operator_reconciles_total`. */
export type ReconcileResult = "success" | "error";

/**
 * Counters and gauges of one operator replica.
 *
 * @example
 * ```ts
 * const metrics = new OperatorMetrics();
 * metrics.countReconcile("success");
 * metrics.setLeader(true);
 * metrics.render(); // "# HELP palisade_operator_reconciles_total ...\n..."
 * ```
 */
export class OperatorMetrics {
  readonly #reconciles: Record<ReconcileResult, number> = { success: 0, error: 0 };
  #leader = false;
  #identities = { inUse: 0, unused: 0 };

  /** Counts one reconcile with `result`. */
  countReconcile(result: ReconcileResult): void {
    this.#reconciles[result]++;
  }

  /** Reconciles counted with `result` so far. */
  reconciles(result: ReconcileResult): number {
    return this.#reconciles[result];
  }

  /** Records whether this replica holds the lease. */
  setLeader(leader: boolean): void {
    this.#leader = leader;
  }

  /** Records the identity table's size: numbers in use, and numbers unused but not collected yet. */
  setIdentities(inUse: number, unused: number): void {
    this.#identities = { inUse, unused };
  }

  /** The metrics in the Prometheus text format. */
  render(): string {
    return renderPrometheus([
      {
        name: "palisade_operator_reconciles_total",
        type: "counter",
        help: "Policy reconciles by result.",
        samples: (["success", "error"] as const).map((result) => ({ labels: { result }, value: this.#reconciles[result] })),
      },
      { name: "palisade_operator_is_leader", type: "gauge", help: "1 while this replica holds the leader-election lease, else 0.", samples: [{ value: this.#leader ? 1 : 0 }] },
      {
        name: "palisade_operator_identities",
        type: "gauge",
        help: "PalisadeIdentity numbers this leader keeps: in use, or unused and waiting out the grace period.",
        samples: [
          { labels: { state: "in-use" }, value: this.#identities.inUse },
          { labels: { state: "unused" }, value: this.#identities.unused },
        ],
      },
    ]);
  }
}
