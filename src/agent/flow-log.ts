/**
 * The flow log: denied and audit events from the datapath's ring buffer as
 * JSON log lines, rate-limited so a flood of drops cannot flood the log.
 * Events over the limit are counted and reported in one summary line when
 * logging resumes.
 *
 * @module
 */
import type { FlowEvent } from "../datapath/abi.ts";
import type { EventSubscription } from "../datapath/datapath.ts";
import type { Logger } from "../k8s/logger.ts";
import type { RuleRef } from "../policy/desired-state.ts";
import type { AgentDatapath } from "./agent-datapath.ts";

/** What a flow log line says about the local endpoint and the rule behind an event. */
export interface FlowContext {
  /** The pod key (`namespace/name`) of an endpoint id, if it is known. */
  podOf(endpointId: number): string | undefined;
  /** What a rule id stands for, if it is known. */
  ruleOf(ruleId: number): RuleRef | undefined;
}

/** Options of {@linkcode FlowLogger}. */
export interface FlowLoggerOptions {
  /** Lines per second on average; 50 by default. */
  ratePerSecond?: number;
  /** Lines allowed in one burst; 100 by default. */
  burst?: number;
  /** The clock, in milliseconds; `Date.now` by default. */
  now?: () => number;
}

const PROTOCOLS: Record<number, string> = { 1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP" };

/**
 * Logs denied and audit flow events through a token bucket.
 *
 * @example
 * ```ts
 * const flows = new FlowLogger(log, { podOf, ruleOf });
 * flows.record(event);
 * ```
 */
export class FlowLogger {
  readonly #log: Logger;
  readonly #context: FlowContext;
  readonly #rate: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;
  #suppressed = 0;

  /** A logger with a full bucket. */
  constructor(log: Logger, context: FlowContext, options: FlowLoggerOptions = {}) {
    this.#log = log;
    this.#context = context;
    this.#rate = options.ratePerSecond ?? 50;
    this.#burst = options.burst ?? 100;
    this.#now = options.now ?? Date.now;
    this.#tokens = this.#burst;
    this.#last = this.#now();
  }

  /** Events dropped by the rate limit since the last summary. */
  get suppressed(): number {
    return this.#suppressed;
  }

  /** Logs `event` if it is a denial or an audit finding and the rate allows; allowed flows are not logged. */
  record(event: FlowEvent): void {
    if (event.kind !== "denied" && event.kind !== "audit") return;
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#rate);
    this.#last = now;
    if (this.#tokens < 1) {
      this.#suppressed++;
      return;
    }
    this.#tokens--;
    if (this.#suppressed > 0) {
      this.#log.warn({ suppressed: this.#suppressed }, "Flow events were not logged: over the rate limit");
      this.#suppressed = 0;
    }
    const rule = event.ruleId === 0 ? undefined : this.#context.ruleOf(event.ruleId);
    this.#log.info(
      {
        flow: event.kind,
        pod: this.#context.podOf(event.endpointId),
        direction: event.direction,
        src: event.src,
        dst: event.dst,
        sport: event.sport,
        dport: event.dport,
        protocol: PROTOCOLS[event.protocol] ?? event.protocol,
        reason: event.reason,
        ...(rule === undefined
          ? {}
          : { policy: `${rule.namespace}/${rule.name}`, policyKind: rule.kind, rule: `${rule.direction.toLowerCase()}[${rule.index}]` }),
      },
      event.kind === "denied" ? "Flow denied" : "Flow would be denied (audit)",
    );
  }
}

/**
 * Logs the datapath's flow events through a {@linkcode FlowLogger} until the
 * subscription is closed; a record that cannot be decoded is logged as a
 * warning.
 *
 * @example
 * ```ts
 * const subscription = logFlows(datapath, log, { podOf: (id) => compiler.podOfEndpoint(id), ruleOf: (id) => compiler.rule(id) });
 * // on shutdown
 * subscription.close();
 * ```
 */
export function logFlows(datapath: Pick<AgentDatapath, "events">, log: Logger, context: FlowContext): EventSubscription {
  const flows = new FlowLogger(log, context);
  return datapath.events((event) => flows.record(event), { onError: (e) => log.warn({ err: e }, "Cannot decode a flow event") });
}
