/**
 * Verdict reasons: `enum pal_reason` of `bpf/include/palisade_abi.h` by name,
 * and the check of every constant against the enum in the object's BTF at
 * load, as the struct layouts are checked, so a reason renumbered or added
 * on one side only fails loudly instead of mislabelling flow events and
 * counters.
 *
 * @module
 */

/** Verdict reasons (enum pal_reason) by name. */
export const REASONS = {
  none: 0,
  "policy-allow": 1,
  "not-isolated": 2,
  host: 3,
  established: 4,
  reply: 5,
  related: 6,
  "not-ip": 7,
  fragment: 8,
  "to-proxy": 9,
  "policy-deny": 16,
  "default-deny": 17,
  "no-endpoint": 18,
  malformed: 19,
  "frag-unknown": 20,
  revoked: 21,
  "tcp-invalid": 22,
  "tcp-limit": 23,
  "proxy-unavailable": 24,
} as const;

/** The name of a verdict reason. */
export type ReasonName = keyof typeof REASONS;

/** PAL_REASON_FIRST_DROP: reasons below it pass the packet, the others drop it. */
export const REASON_FIRST_DROP = 16;

/** PAL_REASON_MAX: the size of the reason stats array; every reason is below it. */
export const REASON_MAX = 32;

const REASON_BY_CODE = new Map<number, ReasonName>(Object.entries(REASONS).map(([name, code]) => [code, name as ReasonName]));

/**
 * The name of reason `code`, or `unknown` for a code this build does not know.
 *
 * @example
 * ```ts
 * reasonName(17); // "default-deny"
 * ```
 */
export function reasonName(code: number): ReasonName | "unknown" {
  return REASON_BY_CODE.get(code) ?? "unknown";
}

/**
 * Whether the datapath passes packets with this reason (below {@link REASON_FIRST_DROP}) or drops them.
 *
 * @example
 * ```ts
 * reasonAllows(REASONS.established); // true
 * ```
 */
export function reasonAllows(code: number): boolean {
  return code < REASON_FIRST_DROP;
}

/** An enum as BTF describes it (the shape the native `btfEnum` returns). */
export interface BtfEnum {
  name: string;
  size: number;
  values: readonly { name: string; value: number }[];
}

/** Anything that can report an enum from BTF, such as a loaded BpfObject. */
export interface EnumSource {
  btfEnum(name: string): BtfEnum | null;
}

/** The object's BTF disagrees with {@link REASONS}: the header and reasons.ts have drifted apart. */
export class AbiEnumMismatchError extends Error {
  override name = "AbiEnumMismatchError";
  readonly enumName: string;
  /** The C constant that differs, e.g. `PAL_REASON_REVOKED`; empty when the enum itself is missing. */
  readonly constant: string;
  readonly expected: string;
  readonly actual: string;

  constructor(details: { enumName: string; constant: string; expected: string; actual: string }) {
    const subject = details.constant === "" ? "" : ` ${details.constant}`;
    super(`Enum ${details.enumName} does not match the ABI:${subject} is ${details.actual} in BTF, expected ${details.expected}`);
    this.enumName = details.enumName;
    this.constant = details.constant;
    this.expected = details.expected;
    this.actual = details.actual;
  }
}

/** The C name of a reason: `policy-allow` is PAL_REASON_POLICY_ALLOW. */
function constantOf(name: string): string {
  return `PAL_REASON_${name.toUpperCase().replaceAll("-", "_")}`;
}

/**
 * Compares `enum pal_reason` in the object's BTF with {@link REASONS},
 * {@link REASON_FIRST_DROP} and {@link REASON_MAX}; throws
 * {@link AbiEnumMismatchError} naming the constant on the first difference.
 *
 * @example
 * ```ts
 * checkReasons(openObject("bpf/out/endpoint.bpf.o", { pinRoot })); // throws if palisade_abi.h and reasons.ts disagree
 * ```
 */
export function checkReasons(object: EnumSource): void {
  const enumName = "pal_reason";
  const btf = object.btfEnum(enumName);
  if (btf === null) throw new AbiEnumMismatchError({ enumName, constant: "", expected: "an enum", actual: "absent" });
  const expected = new Map<string, number>([
    ...Object.entries(REASONS).map(([name, code]) => [constantOf(name), code] as const),
    ["PAL_REASON_FIRST_DROP", REASON_FIRST_DROP],
    ["PAL_REASON_MAX", REASON_MAX],
  ]);
  const actual = new Map(btf.values.map(({ name, value }) => [name, value]));
  for (const [constant, value] of expected) {
    const found = actual.get(constant);
    if (found !== value) throw new AbiEnumMismatchError({ enumName, constant, expected: String(value), actual: found === undefined ? "absent" : String(found) });
  }
  for (const [constant, value] of actual) {
    if (!expected.has(constant)) throw new AbiEnumMismatchError({ enumName, constant, expected: "absent", actual: String(value) });
  }
}
