/**
 * Kubernetes label selector matching: `matchLabels` and `matchExpressions`
 * (In, NotIn, Exists, DoesNotExist), all requirements ANDed.
 *
 * @module
 */
import type { LabelSelector, LabelSelectorRequirement } from "./api-types.ts";

/** Labels of an object. */
export type Labels = Readonly<Record<string, string>>;

function hasLabel(labels: Labels, key: string): boolean {
  return Object.hasOwn(labels, key);
}

function matchesRequirement(req: LabelSelectorRequirement, labels: Labels): boolean {
  const present = hasLabel(labels, req.key);
  switch (req.operator) {
    case "In":
      return present && (req.values ?? []).includes(labels[req.key] as string);
    case "NotIn":
      // As in Kubernetes: an object without the key satisfies NotIn.
      return !present || !(req.values ?? []).includes(labels[req.key] as string);
    case "Exists":
      return present;
    case "DoesNotExist":
      return !present;
  }
}

/**
 * Whether a label selector selects an object with these labels. The empty
 * selector `{}` selects everything.
 *
 * @example
 * ```ts
 * matchesSelector({ matchLabels: { app: "api" } }, { app: "api", tier: "be" }); // true
 * matchesSelector({ matchExpressions: [{ key: "app", operator: "NotIn", values: ["db"] }] }, {}); // true
 * ```
 */
export function matchesSelector(selector: LabelSelector, labels: Labels): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (!hasLabel(labels, key) || labels[key] !== value) return false;
  }
  return (selector.matchExpressions ?? []).every((req) => matchesRequirement(req, labels));
}

/**
 * A canonical text form of a label set (keys sorted), for building keys
 * that must not depend on property order.
 *
 * @example
 * ```ts
 * canonicalLabels({ b: "2", a: "1" }); // "a=1,b=2"
 * ```
 */
export function canonicalLabels(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((key) => `${key}=${labels[key]}`)
    .join(",");
}
