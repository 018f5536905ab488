/**
 * The agent's bookkeeping of local pods' host-side interfaces, and the order
 * in which it attaches and detaches the programs. An interface is attached
 * only once its endpoint entry is written (an attached interface without one
 * drops every packet); the interface of a pod that went away or left the
 * node is detached only after the commit that removed its endpoint entry;
 * a pod whose interface changed is detached from the old one (entry first)
 * before the new one is attached. After the first full sync, interfaces that
 * earlier runs attached and no local pod owns any more (pods deleted while
 * the agent was down) are detached.
 *
 * @module
 */
import type { Logger } from "../k8s/logger.ts";
import type { EndpointState } from "../policy/desired-state.ts";
import type { AgentDatapath } from "./agent-datapath.ts";
import type { PodInterface } from "./pod-interface.ts";

/** What {@linkcode PodAttachments} uses of the datapath. */
export type AttachmentDatapath = Pick<AgentDatapath, "setEndpoint" | "removeEndpoint" | "attach" | "detach" | "attachedInterfaces">;

/**
 * Local pods' interfaces, attached and waiting.
 *
 * @example
 * ```ts
 * const attachments = new PodAttachments(datapath, (pod) => compiler.endpointOf(pod), log);
 * attachments.found("x/a", { name: "veth1", ifindex: 7 }); // before the commit that computes x/a's endpoint
 * datapath.apply(compiler.commit(), (pod) => attachments.ifindexOf(pod));
 * attachments.committed(false); // attaches ifindex 7
 * ```
 */
export class PodAttachments {
  readonly #datapath: AttachmentDatapath;
  readonly #endpointOf: (pod: string) => EndpointState | undefined;
  readonly #log: Logger;
  /** Local pods' host-side interfaces, by pod key. */
  readonly #interfaces = new Map<string, PodInterface>();
  /** Pods whose interface is known but not attached yet (their endpoint entry comes with the next commit). */
  readonly #pendingAttach = new Set<string>();
  /** Interfaces of released pods, detached after the commit that removes their endpoint entries. */
  readonly #pendingDetach = new Map<string, number>();

  /**
   * @param endpointOf A pod's endpoint state as of the last commit (the compiler's), `undefined` while it has none.
   */
  constructor(datapath: AttachmentDatapath, endpointOf: (pod: string) => EndpointState | undefined, log: Logger) {
    this.#datapath = datapath;
    this.#endpointOf = endpointOf;
    this.#log = log;
  }

  /** The interface of local pod `pod`, if known: what the datapath writes the pod's endpoint entry for. */
  ifindexOf(pod: string): number | undefined {
    return this.#interfaces.get(pod)?.ifindex;
  }

  /**
   * A local pod's interface, as found now. If the pod has an endpoint state
   * already, its entry is written and the interface attached at once;
   * otherwise both wait for the commit that computes it (see
   * {@linkcode committed}). A pod found again on the same interface keeps it,
   * even if it was released since the last commit.
   */
  found(pod: string, found: PodInterface): void {
    const known = this.#interfaces.get(pod);
    this.#pendingDetach.delete(pod);
    if (known?.ifindex === found.ifindex) return;
    if (known !== undefined) this.#detach(pod, known.ifindex, true);
    this.#interfaces.set(pod, found);
    const endpoint = this.#endpointOf(pod);
    if (endpoint === undefined) {
      this.#pendingAttach.add(pod);
      return;
    }
    this.#datapath.setEndpoint(found.ifindex, endpoint);
    this.#attach(pod, found);
  }

  /** The pod went away or is no longer local: its interface is detached after the next commit removed its endpoint entry. */
  release(pod: string): void {
    const known = this.#interfaces.get(pod);
    this.#pendingAttach.delete(pod);
    if (known !== undefined) this.#pendingDetach.set(pod, known.ifindex);
  }

  /**
   * After a commit reached the datapath: attaches the waiting interfaces
   * whose endpoint state it computed, and detaches those of released pods.
   * After the first full sync (`fullSync`), also detaches the interfaces no
   * local pod owns.
   */
  committed(fullSync: boolean): void {
    for (const pod of [...this.#pendingAttach]) {
      const found = this.#interfaces.get(pod);
      const endpoint = this.#endpointOf(pod);
      if (found === undefined || endpoint === undefined) continue;
      this.#datapath.setEndpoint(found.ifindex, endpoint);
      this.#attach(pod, found);
      this.#pendingAttach.delete(pod);
    }
    for (const [pod, ifindex] of this.#pendingDetach) {
      this.#detach(pod, ifindex, false);
      this.#interfaces.delete(pod);
    }
    this.#pendingDetach.clear();
    if (fullSync) this.#detachStrays();
  }

  #detachStrays(): void {
    const owned = new Set([...this.#interfaces.values()].map((i) => i.ifindex));
    for (const ifindex of this.#datapath.attachedInterfaces()) {
      if (!owned.has(ifindex)) this.#detach("(none)", ifindex, true);
    }
  }

  #attach(pod: string, found: PodInterface): void {
    const mode = this.#datapath.attach(found.ifindex);
    this.#log.info({ pod, interface: found.name, ifindex: found.ifindex, mode }, "Attached to pod interface");
  }

  #detach(pod: string, ifindex: number, removeEndpoint: boolean): void {
    try {
      if (removeEndpoint) this.#datapath.removeEndpoint(ifindex);
      if (this.#datapath.detach(ifindex)) this.#log.info({ pod, ifindex }, "Detached from pod interface");
    } catch (e) {
      this.#log.warn({ pod, ifindex, err: e }, "Cannot detach from pod interface");
    }
  }
}
