/**
 * One long-lived prober process (prober.ts) per source network namespace,
 * started with `ip netns exec`, each with any number of probes in flight.
 * `palisade probe`, `palisade probe matrix` and `palisade conformance` all
 * probe through it.
 *
 * @module
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { ProberResponse } from "./prober.ts";
import type { ProbeReason, ProbeRequest } from "./send-probe.ts";

/** A prober process died or answered nonsense. */
export class ProberError extends Error {
  /** Names this error class in stack traces and messages. */
  override name = "ProberError";
}

interface Pending {
  resolve: (reason: ProbeReason) => void;
  reject: (error: Error) => void;
}

interface Prober {
  child: ChildProcessWithoutNullStreams;
  pending: Map<number, Pending>;
  stderr: string;
}

/** The prober's script (prober.ts, compiled), for `node PROBER_PATH` in a pod's network namespace. */
export const PROBER_PATH = fileURLToPath(new URL("./prober.js", import.meta.url));

/** Options of {@linkcode ProberPool}. */
export interface ProberPoolOptions {
  /** `palisade-sctp`, which sends SCTP probes; without it, SCTP probes fail with a {@linkcode ProberError}. */
  sctpBinary?: string;
}

/**
 * Probers by network namespace, started on first use; {@linkcode close}
 * ends them all.
 *
 * @example
 * ```ts
 * const pool = new ProberPool({ sctpBinary: "/opt/palisade/native/out/palisade-sctp" });
 * try {
 *   await pool.probe("pal-1-0123abcd", { protocol: "TCP", host: "10.244.1.12", port: 80, timeoutMs: 1000 }); // "connected"
 * } finally {
 *   pool.close();
 * }
 * ```
 */
export class ProberPool {
  readonly #probers = new Map<string, Prober>();
  readonly #proberArgs: string[];
  #nextId = 1;

  /** A pool whose probers send SCTP through `options.sctpBinary`, when given. */
  constructor(options: ProberPoolOptions = {}) {
    this.#proberArgs = options.sctpBinary === undefined ? [] : ["--sctp", options.sctpBinary];
  }

  /** Probes `host` from inside `netns`; resolves with how the probe ended. */
  probe(netns: string, request: ProbeRequest): Promise<ProbeReason> {
    const prober = this.#prober(netns);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      prober.pending.set(id, { resolve, reject });
      prober.child.stdin.write(`${JSON.stringify({ ...request, id })}\n`);
    });
  }

  /** Ends every prober; probes still in flight fail. */
  close(): void {
    for (const [netns, prober] of this.#probers) {
      this.#probers.delete(netns);
      prober.child.stdin.end();
      prober.child.kill();
    }
  }

  #prober(netns: string): Prober {
    const existing = this.#probers.get(netns);
    if (existing !== undefined) return existing;
    const child = spawn("ip", ["netns", "exec", netns, process.execPath, PROBER_PATH, ...this.#proberArgs], { stdio: ["pipe", "pipe", "pipe"] });
    const prober: Prober = { child, pending: new Map(), stderr: "" };
    this.#probers.set(netns, prober);
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      prober.stderr = (prober.stderr + chunk).slice(-2000);
    });
    createInterface({ input: child.stdout }).on("line", (line) => {
      let response: ProberResponse;
      try {
        response = JSON.parse(line) as ProberResponse;
      } catch (cause) {
        this.#fail(netns, prober, new ProberError(`Cannot read the prober in network namespace "${netns}": answer ${JSON.stringify(line)} is not JSON`, { cause }));
        return;
      }
      const pending = prober.pending.get(response.id);
      if (pending === undefined) return;
      prober.pending.delete(response.id);
      if (response.reason !== undefined) pending.resolve(response.reason);
      else pending.reject(new ProberError(`Cannot probe from network namespace "${netns}": ${response.error ?? "the prober gave no reason"}`));
    });
    child.on("error", (cause) => this.#fail(netns, prober, new ProberError(`Cannot start the prober in network namespace "${netns}": ${cause.message}`, { cause })));
    child.on("exit", (code, signal) => {
      this.#fail(netns, prober, new ProberError(`Cannot probe from network namespace "${netns}": the prober exited (${signal ?? `status ${code}`})${prober.stderr.trim() ? `: ${prober.stderr.trim()}` : ""}`));
    });
    return prober;
  }

  #fail(netns: string, prober: Prober, error: ProberError): void {
    if (this.#probers.get(netns) === prober) this.#probers.delete(netns);
    for (const pending of prober.pending.values()) pending.reject(error);
    prober.pending.clear();
  }
}
