/**
 * What a case has made of the model so far: the policies it applied (by
 * namespace and name, in the kind the run writes them) and the labels it
 * changed. The runner keeps it beside the cluster; the unit tests replay
 * cases on it alone.
 *
 * @module
 */
import type { AnyPolicy, NetworkPolicy } from "../policy/index.ts";
import type { StepAction } from "./case.ts";
import { initialState, modelWorld, type Family, type ModelState } from "./model.ts";
import { fillPlaceholders } from "./ip-placeholders.ts";
import { asKind, policyKindFor, type ApiMode } from "./to-ebpfnp.ts";
import type { World } from "../policy/index.ts";

/** One case's view of the model. */
export class CaseState {
  /** Labels and addresses now. */
  readonly model: ModelState;
  /** Applied policies by `ns/name`, as written to the cluster. */
  readonly policies = new Map<string, AnyPolicy>();
  readonly #names: string[] = [];
  readonly #api: ApiMode;
  readonly #caseIndex: number;
  readonly #families: readonly Family[];
  readonly #addresses: ReadonlyMap<string, string[]>;

  /** A fresh model (initial labels, no policy) with these pod addresses, for case `caseIndex` of a run on `api` and `families`. */
  constructor(addresses: ReadonlyMap<string, string[]>, families: readonly Family[], api: ApiMode, caseIndex: number) {
    this.model = initialState(addresses);
    this.#addresses = addresses;
    this.#families = families;
    this.#api = api;
    this.#caseIndex = caseIndex;
  }

  /** The policy `policy` becomes in this run: placeholders filled, in its kind. */
  written(policy: NetworkPolicy): AnyPolicy {
    const key = `${policy.metadata.namespace}/${policy.metadata.name}`;
    let index = this.#names.indexOf(key);
    if (index < 0) index = this.#names.push(key) - 1;
    return asKind(fillPlaceholders(policy, this.#families, this.#addresses), policyKindFor(this.#api, this.#caseIndex, index));
  }

  /** Records `action`; returns the policy to write for an `apply`. */
  record(action: StepAction): AnyPolicy | undefined {
    if ("apply" in action) {
      const policy = this.written(action.apply);
      this.policies.set(`${policy.metadata.namespace}/${policy.metadata.name}`, policy);
      return policy;
    }
    if ("deleteAllPolicies" in action) {
      this.policies.clear();
    } else if ("labelNamespace" in action) {
      const labels = this.model.namespaces.get(action.labelNamespace);
      if (labels === undefined) throw new RangeError(`Cannot label namespace "${action.labelNamespace}": it is not in the model`);
      Object.assign(labels, action.labels);
    } else {
      const pod = this.model.pods.get(action.labelPod);
      if (pod === undefined) throw new RangeError(`Cannot label pod "${action.labelPod}": it is not in the model`);
      Object.assign(pod.labels, action.labels);
    }
    return undefined;
  }

  /** The reference evaluator's world for the state now. */
  world(): World {
    return modelWorld(this.model, [...this.policies.values()]);
  }
}
