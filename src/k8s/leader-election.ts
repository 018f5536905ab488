/**
 * Leader election on a coordination.k8s.io/v1 Lease, following client-go:
 * candidates try to take the lease every retry period; the holder renews
 * it and steps down if it cannot renew within the renew deadline, which is
 * shorter than the lease duration, so two leaders never overlap. Expiry is
 * judged by the local clock from when a candidate last saw the lease
 * change, never by comparing clocks across machines.
 *
 * @module
 */
import { Backoff, sleep } from "./backoff.ts";
import type { KubeClient } from "./client.ts";
import { isConflict, isNotFound } from "./errors.ts";
import { formatMicroTime } from "./events.ts";
import { jsonLogger } from "./logger.ts";
import type { Logger } from "./logger.ts";
import { resourcePath, Resources } from "./resource.ts";

/** Options of a {@linkcode LeaderElector}. */
export interface LeaderElectorOptions {
  /** The API server holding the lease. */
  client: KubeClient;
  /** Namespace of the Lease. */
  namespace: string;
  /** Name of the Lease, e.g. `"palisade-operator"`. */
  name: string;
  /** This candidate's unique identity, e.g. pod name plus a random suffix. */
  identity: string;
  /** How long a lease stays valid without renewal; 15 s by default. */
  leaseDurationMs?: number;
  /** How long the leader keeps trying to renew before it steps down; 10 s by default. */
  renewDeadlineMs?: number;
  /** How often to try to acquire or renew; 2 s by default. */
  retryPeriodMs?: number;
  /** Called on becoming leader; `signal` fires when leadership ends. May return a promise (errors are logged). */
  onStartedLeading(signal: AbortSignal): void | Promise<void>;
  /** Called when leadership ends, after `onStartedLeading`'s signal fired. */
  onStoppedLeading?(): void;
  /** Called whenever a different holder is observed, this candidate included. */
  onNewLeader?(identity: string): void;
  /** Where to log; JSON lines on stderr by default. */
  logger?: Logger;
}

/** A Lease as on the wire (timestamps as MicroTime strings). */
interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

/** The outcome of one attempt to take or keep the lease. */
type Attempt = "held" | "heldByOther" | "failed";

/** Spread of the retry period, as client-go's JitterFactor: waits are in [period, 2.2·period). */
const JITTER_FACTOR = 1.2;

/**
 * One candidate in a Lease election. After {@linkcode start} it competes
 * until {@linkcode stop}; when it loses leadership it becomes a candidate
 * again. {@linkcode stop} releases a held lease so another candidate can
 * take over at once rather than after the lease duration.
 *
 * @example
 * ```ts
 * const elector = new LeaderElector({
 *   client, namespace: "palisade-system", name: "palisade-operator", identity: `${hostname()}-${process.pid}`,
 *   onStartedLeading: (signal) => runControllers(signal),
 * });
 * elector.start();
 * process.on("SIGTERM", () => elector.stop());
 * ```
 */
export class LeaderElector {
  readonly #options: LeaderElectorOptions;
  readonly #leaseDurationMs: number;
  readonly #renewDeadlineMs: number;
  readonly #retryPeriodMs: number;
  readonly #path: string;
  readonly #log: Logger;
  readonly #stop = new AbortController();
  #observed: LeaseSpec | undefined;
  #observedAt = 0;
  #leader = "";
  #leading = false;
  #running: Promise<void> | undefined;

  /** A candidate that does nothing until {@linkcode start}. Throws if the timings cannot work. */
  constructor(options: LeaderElectorOptions) {
    this.#options = options;
    this.#leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.#renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.#retryPeriodMs = options.retryPeriodMs ?? 2_000;
    const lease = `${options.namespace}/${options.name}`;
    if (this.#leaseDurationMs <= this.#renewDeadlineMs) {
      throw new Error(`Cannot elect on lease "${lease}": leaseDurationMs ${this.#leaseDurationMs} must exceed renewDeadlineMs ${this.#renewDeadlineMs}`);
    }
    if (this.#renewDeadlineMs <= JITTER_FACTOR * this.#retryPeriodMs) {
      throw new Error(`Cannot elect on lease "${lease}": renewDeadlineMs ${this.#renewDeadlineMs} must exceed ${JITTER_FACTOR} × retryPeriodMs ${this.#retryPeriodMs}`);
    }
    if (options.identity === "") throw new Error(`Cannot elect on lease "${lease}": identity is empty`);
    this.#path = resourcePath(Resources.leases, { namespace: options.namespace, name: options.name });
    this.#log = options.logger ?? jsonLogger();
  }

  /** Whether this candidate holds the lease right now. */
  isLeader(): boolean {
    return this.#leading;
  }

  /** The holder last observed (`""` if none yet or the lease was released). */
  get leader(): string {
    return this.#leader;
  }

  /** Starts competing in the background. Throws if started before. */
  start(): void {
    if (this.#running) throw new Error(`Cannot start leader election of "${this.#options.identity}": it was started before`);
    this.#running = this.#run();
  }

  /** Stops competing: ends leadership (signal, then `onStoppedLeading`), releases the lease if held, and resolves when done. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#running;
  }

  async #run(): Promise<void> {
    const stop = this.#stop.signal;
    while (!stop.aborted) {
      if (!(await this.#acquire())) break;
      const leading = new AbortController();
      this.#leading = true;
      this.#log.info({ lease: this.#options.name, identity: this.#options.identity }, "Became leader");
      void this.#startLeading(leading.signal);
      await this.#renew();
      this.#leading = false;
      leading.abort();
      this.#log.info({ lease: this.#options.name, identity: this.#options.identity }, "Stopped leading");
      try {
        this.#options.onStoppedLeading?.();
      } catch (e) {
        this.#log.error({ lease: this.#options.name, err: e }, "onStoppedLeading threw");
      }
      if (stop.aborted) await this.#release();
    }
  }

  async #startLeading(signal: AbortSignal): Promise<void> {
    try {
      await this.#options.onStartedLeading(signal);
    } catch (e) {
      this.#log.error({ lease: this.#options.name, err: e }, "onStartedLeading failed");
    }
  }

  /** Tries every retry period until the lease is ours (true) or we are stopped (false). */
  async #acquire(): Promise<boolean> {
    const stop = this.#stop.signal;
    while (!stop.aborted) {
      if ((await this.#tryAcquireOrRenew(this.#retryPeriodMs * 5)) === "held") return true;
      await sleep(this.#retryPeriodMs * (1 + JITTER_FACTOR * Math.random()), stop);
    }
    return false;
  }

  /** Renews every retry period; returns when renewal fails past the deadline, another holder appears, or we are stopped. */
  async #renew(): Promise<void> {
    const stop = this.#stop.signal;
    let renewedAt = Date.now();
    const backoff = new Backoff({ initialMs: this.#retryPeriodMs / 4, maxMs: this.#retryPeriodMs, jitter: 0.2 });
    let wait = this.#retryPeriodMs;
    while (await sleep(wait, stop)) {
      const remaining = this.#renewDeadlineMs - (Date.now() - renewedAt);
      const outcome = remaining > 0 ? await this.#tryAcquireOrRenew(remaining) : "failed";
      if (outcome === "held") {
        renewedAt = Date.now();
        backoff.reset();
        wait = this.#retryPeriodMs;
        continue;
      }
      if (outcome === "heldByOther" || Date.now() - renewedAt >= this.#renewDeadlineMs) {
        this.#log.warn({ lease: this.#options.name, identity: this.#options.identity, holder: this.#leader }, "Lost the lease");
        return;
      }
      wait = Math.min(backoff.next(), Math.max(0, this.#renewDeadlineMs - (Date.now() - renewedAt)));
    }
  }

  async #tryAcquireOrRenew(timeoutMs: number): Promise<Attempt> {
    const { client, identity } = this.#options;
    const now = new Date();
    const leaseDurationSeconds = Math.max(1, Math.ceil(this.#leaseDurationMs / 1000));
    try {
      let lease: Lease;
      try {
        lease = await client.request<Lease>("GET", this.#path, { timeoutMs });
      } catch (e) {
        if (!isNotFound(e)) throw e;
        const spec: LeaseSpec = {
          holderIdentity: identity,
          leaseDurationSeconds,
          acquireTime: formatMicroTime(now),
          renewTime: formatMicroTime(now),
          leaseTransitions: 0,
        };
        const created = await client.request<Lease>("POST", resourcePath(Resources.leases, { namespace: this.#options.namespace }), {
          body: { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: this.#options.name, namespace: this.#options.namespace }, spec },
          timeoutMs,
        });
        this.#observe(created);
        return "held";
      }
      this.#observe(lease);
      const spec = lease.spec ?? {};
      const holder = spec.holderIdentity ?? "";
      const validForMs = (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
      if (holder !== "" && holder !== identity && this.#observedAt + validForMs > Date.now()) return "heldByOther";
      const ours = holder === identity;
      const next: LeaseSpec = {
        holderIdentity: identity,
        leaseDurationSeconds,
        acquireTime: ours && spec.acquireTime ? spec.acquireTime : formatMicroTime(now),
        renewTime: formatMicroTime(now),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (ours ? 0 : 1),
      };
      const updated = await client.request<Lease>("PUT", this.#path, {
        body: { ...lease, spec: next },
        timeoutMs,
      });
      this.#observe(updated);
      return "held";
    } catch (e) {
      if (!isConflict(e)) {
        this.#log.warn({ lease: this.#options.name, identity, err: e }, "Cannot acquire or renew the lease");
      }
      return "failed";
    }
  }

  /** Records the lease as seen now if its spec changed, and reports a new holder. */
  #observe(lease: Lease): void {
    const spec = lease.spec ?? {};
    if (JSON.stringify(spec) !== JSON.stringify(this.#observed)) {
      this.#observed = spec;
      this.#observedAt = Date.now();
    }
    const holder = spec.holderIdentity ?? "";
    if (holder !== this.#leader) {
      this.#leader = holder;
      if (holder !== "") {
        try {
          this.#options.onNewLeader?.(holder);
        } catch (e) {
          this.#log.error({ lease: this.#options.name, err: e }, "onNewLeader threw");
        }
      }
    }
  }

  /** Gives the lease up so that another candidate need not wait for it to expire. */
  async #release(): Promise<void> {
    try {
      const lease = await this.#options.client.request<Lease>("GET", this.#path, { timeoutMs: this.#renewDeadlineMs });
      if (lease.spec?.holderIdentity !== this.#options.identity) return;
      const now = formatMicroTime(new Date());
      const released: LeaseSpec = {
        holderIdentity: "",
        leaseDurationSeconds: 1,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: lease.spec.leaseTransitions ?? 0,
      };
      await this.#options.client.request<Lease>("PUT", this.#path, { body: { ...lease, spec: released }, timeoutMs: this.#renewDeadlineMs });
      this.#leader = "";
      this.#log.info({ lease: this.#options.name, identity: this.#options.identity }, "Released the lease");
    } catch (e) {
      this.#log.warn({ lease: this.#options.name, identity: this.#options.identity, err: e }, "Cannot release the lease; others take over once it expires");
    }
  }
}
