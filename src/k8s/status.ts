/**
 * Writes an object's status through its `status` subresource: conditions
 * with `observedGeneration` and stable `lastTransitionTime`, plus any other
 * status fields, with optimistic concurrency and no write when nothing
 * changed (so a controller watching its own objects does not loop).
 *
 * @module
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { isDeepStrictEqual } from "node:util";
import type { KubeClient } from "./client.ts";
import { PatchType } from "./client.ts";
import { setConditions } from "./conditions.ts";
import type { Condition, ConditionInput } from "./conditions.ts";
import { isConflict } from "./errors.ts";
import { resourcePath } from "./resource.ts";
import type { ResourceRef } from "./resource.ts";

/** What to write into `status`. */
export interface StatusUpdate {
  /** The `metadata.generation` the status was computed from; stamped on every condition set here. */
  observedGeneration: number;
  /** Conditions to set; others already present are kept. */
  conditions?: readonly ConditionInput[];
  /** Other top-level `status` fields to set, e.g. `{ selectedPods: 3 }`. */
  fields?: Record<string, unknown>;
}

/** Options of {@linkcode patchStatus}. */
export interface PatchStatusOptions {
  /** The time for changed conditions; the current time by default. */
  now?: Date;
  /** Attempts when another writer wins the race; 5 by default. */
  attempts?: number;
  /** Cancels the requests. */
  signal?: AbortSignal;
}

/** The outcome of {@linkcode patchStatus}. */
export interface PatchStatusResult<T> {
  /** The object after the write (or as read, if nothing changed). */
  object: T;
  /** Whether a write happened. */
  changed: boolean;
}

type WithStatus = KubernetesObject & { status?: { conditions?: Condition[] } & Record<string, unknown> };

/**
 * Reads the object, merges `update` into its status and, if that changes
 * anything, writes it with a JSON merge patch to the status subresource,
 * conditional on the resourceVersion read. On a conflict it reads again and
 * retries. Throws {@linkcode KubeApiError} (404 if the object is gone).
 *
 * @example
 * ```ts
 * await patchStatus(client, Resources.ebpfNetworkPolicies, "x", "deny-all", {
 *   observedGeneration: policy.metadata.generation,
 *   conditions: [{ type: "Accepted", status: "True", reason: "Valid", message: "" }],
 *   fields: { selectedPods: 3 },
 * });
 * ```
 */
export async function patchStatus<T extends KubernetesObject>(
  client: KubeClient,
  resource: ResourceRef,
  namespace: string | undefined,
  name: string,
  update: StatusUpdate,
  options: PatchStatusOptions = {},
): Promise<PatchStatusResult<T>> {
  const attempts = options.attempts ?? 5;
  const signal = options.signal;
  for (let attempt = 1; ; attempt++) {
    const current = await client.request<WithStatus>("GET", resourcePath(resource, { namespace, name }), signal ? { signal } : {});
    const status = current.status ?? {};
    const next: Record<string, unknown> = { ...update.fields };
    if (update.conditions) {
      next["conditions"] = setConditions(status.conditions, update.conditions, update.observedGeneration, options.now ?? new Date());
    }
    if (Object.entries(next).every(([key, value]) => isDeepStrictEqual(status[key], value))) {
      return { object: current as T, changed: false };
    }
    try {
      const object = await client.request<T>("PATCH", resourcePath(resource, { namespace, name, subresource: "status" }), {
        body: { metadata: { resourceVersion: current.metadata?.resourceVersion }, status: next },
        contentType: PatchType.merge,
        ...(signal ? { signal } : {}),
      });
      return { object, changed: true };
    } catch (e) {
      if (!isConflict(e) || attempt >= attempts) throw e;
    }
  }
}
