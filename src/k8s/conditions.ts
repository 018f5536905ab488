/**
 * Standard status conditions (`metav1.Condition` on the wire), and the one
 * rule that makes them useful: `lastTransitionTime` moves only when a
 * condition's status changes.
 *
 * @module
 */

/** The status of a condition. */
export type ConditionStatus = "True" | "False" | "Unknown";

/** A condition as stored in an object's `status.conditions` (timestamps as RFC 3339 strings, as on the wire). */
export interface Condition {
  /** CamelCase kind of the condition, e.g. `"Accepted"`. */
  type: string;
  /** Whether the condition holds. */
  status: ConditionStatus;
  /** The `metadata.generation` the condition was computed from. */
  observedGeneration?: number;
  /** When `status` last changed, RFC 3339 in whole seconds. */
  lastTransitionTime: string;
  /** CamelCase machine-readable cause, e.g. `"InvalidPort"`. */
  reason: string;
  /** Human-readable detail; may be empty. */
  message: string;
}

/** What a controller decides about one condition; {@linkcode setCondition} adds the bookkeeping. */
export interface ConditionInput {
  /** CamelCase kind of the condition, e.g. `"Programmed"`. */
  type: string;
  /** Whether the condition holds. */
  status: ConditionStatus;
  /** CamelCase machine-readable cause. */
  reason: string;
  /** Human-readable detail. */
  message: string;
}

/** `date` as metav1.Time serialises it: RFC 3339 in whole seconds, UTC. */
export function formatTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** The condition of `type` in `conditions`, if present. */
export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/**
 * A copy of `conditions` with `input` set: replaced in place if a
 * condition of that type exists, appended otherwise. `lastTransitionTime`
 * is kept when the status is unchanged and set to `now` when it changes.
 *
 * @example
 * ```ts
 * const next = setCondition(obj.status?.conditions, { type: "Accepted", status: "True", reason: "Valid", message: "" }, obj.metadata.generation, new Date());
 * ```
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  input: ConditionInput,
  observedGeneration: number,
  now: Date,
): Condition[] {
  const previous = findCondition(conditions, input.type);
  const next: Condition = {
    type: input.type,
    status: input.status,
    observedGeneration,
    lastTransitionTime: previous && previous.status === input.status ? previous.lastTransitionTime : formatTime(now),
    reason: input.reason,
    message: input.message,
  };
  const out = (conditions ?? []).map((c) => (c.type === input.type ? next : c));
  if (!previous) out.push(next);
  return out;
}

/** {@linkcode setCondition} for each of `inputs` in turn. */
export function setConditions(
  conditions: readonly Condition[] | undefined,
  inputs: readonly ConditionInput[],
  observedGeneration: number,
  now: Date,
): Condition[] {
  let out = [...(conditions ?? [])];
  for (const input of inputs) out = setCondition(out, input, observedGeneration, now);
  return out;
}
