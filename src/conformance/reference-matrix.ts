/**
 * The reference evaluator's verdict for every ordered pair of model pods:
 * what the randomized suite expects, and what the ported upstream tables
 * are checked against in the unit tests.
 *
 * @module
 */
import { evaluate, type World } from "../policy/index.ts";
import type { ProbeProtocol } from "./case.ts";
import type { Family } from "./model.ts";
import { pairKey, type Verdicts } from "./truth-table.ts";

/**
 * Verdicts for every ordered pair of distinct `pods` (`ns/name`, keys of
 * `world.pods`) on `port`/`protocol`, between their `family` addresses.
 *
 * @example
 * ```ts
 * referenceVerdicts(modelWorld(initialState(sampleAddresses()), policies), MODEL_PODS, "ipv4", 80, "TCP");
 * ```
 */
export function referenceVerdicts(world: World, pods: readonly string[], family: Family, port: number, protocol: ProbeProtocol): Verdicts {
  const address = (ref: string): string => {
    const ip = world.pods.get(ref)?.ips.find((candidate) => candidate.includes(":") === (family === "ipv6"));
    if (ip === undefined) throw new RangeError(`Cannot evaluate pod "${ref}": it has no ${family} address`);
    return ip;
  };
  const verdicts: Verdicts = new Map();
  for (const from of pods) {
    for (const to of pods) {
      if (from === to) continue;
      verdicts.set(pairKey(from, to), evaluate(world, { src: { ip: address(from) }, dst: { ip: address(to) }, protocol, port }).allowed);
    }
  }
  return verdicts;
}
