/**
 * The randomized suite, in the style of cyclonus: seeded cases of one to
 * three generated policies over the model (selectors with expressions,
 * namespace and pod selectors together, ipBlock with except around live pod
 * addresses, numeric and named ports, endPort, protocol-only ports, mixed
 * policyTypes), often followed by a second step that relabels pods
 * (`role`) and namespaces (`team`) and rewrites a policy in place, each step
 * probed on TCP, UDP and SCTP ports 80 and 81, the expectation being whatever
 * the reference evaluator says. The same seed and count give the same cases,
 * so any failure replays with `--seed`.
 *
 * @module
 */
import type { LabelSelector, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, PolicyPeer, PolicyPort, PolicyType } from "../policy/index.ts";
import type { CaseStep, ConformanceCase, MatrixProbe, StepAction } from "./case.ts";
import { MODEL_NAMESPACES, MODEL_PODS, MODEL_POD_NAMES, NAMESPACE_NAME_LABEL } from "./model.ts";

/** A deterministic generator of numbers in [0, 1) from a 32-bit seed (mulberry32). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Picker {
  readonly #next: () => number;
  constructor(seed: number) {
    this.#next = seededRandom(seed);
  }
  int(below: number): number {
    return Math.floor(this.#next() * below);
  }
  one<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
  chance(p: number): boolean {
    return this.#next() < p;
  }
  some<T>(items: readonly T[]): T[] {
    const chosen = items.filter(() => this.chance(0.5));
    return chosen.length > 0 ? chosen : [this.one(items)];
  }
}

/** Values of the pod label `role` and the namespace label `team`: the model has neither until a second step adds them. */
const ROLES = ["web", "db"] as const;
const TEAMS = ["blue", "green"] as const;

function podSelector(pick: Picker): LabelSelector {
  switch (pick.int(7)) {
    case 0:
      return {};
    case 1:
      return { matchLabels: { pod: pick.one(MODEL_POD_NAMES) } };
    case 2:
      return { matchExpressions: [{ key: "pod", operator: pick.one(["In", "NotIn"] as const), values: pick.some(MODEL_POD_NAMES) }] };
    case 3:
      return { matchExpressions: [{ key: "pod", operator: pick.one(["Exists", "DoesNotExist"] as const) }] };
    case 4:
      return { matchLabels: { pod: pick.one(MODEL_POD_NAMES) }, matchExpressions: [{ key: "pod", operator: "Exists" }] };
    case 5:
      return { matchLabels: { role: pick.one(ROLES) } };
    default:
      return { matchExpressions: [{ key: "role", operator: pick.one(["In", "NotIn"] as const), values: pick.some(ROLES) }] };
  }
}

function namespaceSelector(pick: Picker): LabelSelector {
  switch (pick.int(4)) {
    case 0:
      return {};
    case 1:
      return { matchLabels: { [NAMESPACE_NAME_LABEL]: pick.one(MODEL_NAMESPACES) } };
    case 2:
      return { matchLabels: { team: pick.one(TEAMS) } };
    default:
      return { matchExpressions: [{ key: NAMESPACE_NAME_LABEL, operator: pick.one(["In", "NotIn"] as const), values: pick.some(MODEL_NAMESPACES) }] };
  }
}

function peer(pick: Picker): PolicyPeer {
  switch (pick.int(4)) {
    case 0:
      return { podSelector: podSelector(pick) };
    case 1:
      return { namespaceSelector: namespaceSelector(pick) };
    case 2:
      return { podSelector: podSelector(pick), namespaceSelector: namespaceSelector(pick) };
    default: {
      const pod = pick.one(MODEL_PODS);
      const prefix = pick.one([8, 16, 24]);
      const except = pick.one<string[]>([[], [`@${pod}`], [`@${pod}/28`]]);
      if (pick.chance(0.3)) return { ipBlock: { cidr: `@${pod}` } };
      return { ipBlock: { cidr: `@${pod}/${prefix}`, ...(except.length > 0 && { except }) } };
    }
  }
}

function port(pick: Picker): PolicyPort {
  const protocol = pick.one(["TCP", "UDP", "SCTP"] as const);
  switch (pick.int(5)) {
    case 0:
      return { protocol };
    case 1:
      return { protocol, port: pick.one([80, 81]) };
    case 2:
      return { protocol, port: 80, endPort: 81 };
    case 3:
      return { protocol, port: `serve-${pick.one([80, 81])}-${pick.one(["tcp", "udp", "sctp"])}` };
    default:
      return { port: pick.one([80, 81]) };
  }
}

function rule(pick: Picker): { peers?: PolicyPeer[]; ports?: PolicyPort[] } {
  return {
    ...(pick.chance(0.75) && { peers: Array.from({ length: 1 + pick.int(2) }, () => peer(pick)) }),
    ...(pick.chance(0.6) && { ports: Array.from({ length: 1 + pick.int(2) }, () => port(pick)) }),
  };
}

/** Where a generated policy lives. */
interface PolicyPlace {
  name: string;
  namespace: string;
}

function randomPolicy(pick: Picker, { name, namespace }: PolicyPlace): NetworkPolicy {
  const ingress: NetworkPolicyIngressRule[] = Array.from({ length: pick.int(3) }, () => {
    const r = rule(pick);
    return { ...(r.peers && { from: r.peers }), ...(r.ports && { ports: r.ports }) };
  });
  const egress: NetworkPolicyEgressRule[] = Array.from({ length: pick.int(3) }, () => {
    const r = rule(pick);
    return { ...(r.peers && { to: r.peers }), ...(r.ports && { ports: r.ports }) };
  });
  const policyTypes = pick.one<PolicyType[] | undefined>([undefined, ["Ingress"], ["Egress"], ["Ingress", "Egress"]]);
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name, namespace },
    spec: {
      podSelector: podSelector(pick),
      ...(policyTypes !== undefined && { policyTypes }),
      ...((policyTypes === undefined || policyTypes.includes("Ingress")) && { ingress }),
      ...((policyTypes === undefined ? egress.length > 0 : policyTypes.includes("Egress")) && { egress }),
    },
  };
}

/** One to three changes after the first step: a pod's `role`, a namespace's `team`, or a policy replaced by a new one of the same name. */
function changes(pick: Picker, places: readonly PolicyPlace[]): StepAction[] {
  return Array.from({ length: 1 + pick.int(3) }, (): StepAction => {
    switch (pick.int(3)) {
      case 0:
        return { labelPod: pick.one(MODEL_PODS), labels: { role: pick.one(ROLES) } };
      case 1:
        return { labelNamespace: pick.one(MODEL_NAMESPACES), labels: { team: pick.one(TEAMS) } };
      default:
        return { apply: randomPolicy(pick, pick.one(places)) };
    }
  });
}

const PROBES: MatrixProbe[] = [80, 81].flatMap((p) => (["TCP", "UDP", "SCTP"] as const).map((protocol) => ({ port: p, protocol, expect: "reference-evaluator" as const })));

/**
 * `count` random cases from `seed`; case i is the same for every count above i.
 *
 * @example
 * ```ts
 * randomCases(42, 20).length; // 20
 * ```
 */
export function randomCases(seed: number, count: number): ConformanceCase[] {
  return Array.from({ length: count }, (_, i) => {
    // One generator per case, so a case does not depend on how many came before it.
    const pick = new Picker((seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
    const places = Array.from({ length: 1 + pick.int(3) }, (_, j) => ({ name: `random-${j}`, namespace: pick.one(MODEL_NAMESPACES) }));
    const steps: CaseStep[] = [{ description: "random policies applied", actions: places.map((place) => ({ apply: randomPolicy(pick, place) })), probes: PROBES }];
    if (pick.chance(0.6)) steps.push({ description: "pods and namespaces relabelled, a policy rewritten", actions: changes(pick, places), probes: PROBES });
    return { title: `random #${i + 1} (seed ${seed})`, context: "TCP", steps };
  });
}
