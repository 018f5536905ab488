import assert from "node:assert/strict";
import { test } from "node:test";
import { AbiEnumMismatchError, checkReasons, reasonName, type BtfEnum, type EnumSource } from "./reasons.ts";

/** enum pal_reason as palisade_abi.h declares it, written out by hand from the header. */
const HEADER_ENUM: BtfEnum = {
  name: "pal_reason",
  size: 4,
  values: [
    ["NONE", 0], ["POLICY_ALLOW", 1], ["NOT_ISOLATED", 2], ["HOST", 3], ["ESTABLISHED", 4], ["REPLY", 5], ["RELATED", 6], ["NOT_IP", 7],
    ["FRAGMENT", 8], ["TO_PROXY", 9], ["POLICY_DENY", 16], ["DEFAULT_DENY", 17], ["NO_ENDPOINT", 18], ["MALFORMED", 19], ["FRAG_UNKNOWN", 20],
    ["REVOKED", 21], ["TCP_INVALID", 22], ["TCP_LIMIT", 23], ["PROXY_UNAVAILABLE", 24], ["FIRST_DROP", 16], ["MAX", 32],
  ].map(([name, value]) => ({ name: `PAL_REASON_${name}`, value: value as number })),
};

function source(values: BtfEnum["values"] | null): EnumSource {
  return { btfEnum: (name) => (name === "pal_reason" && values !== null ? { ...HEADER_ENUM, values } : null) };
}

test("the header's enum passes the check", () => {
  assert.doesNotThrow(() => checkReasons(source(HEADER_ENUM.values)));
});

test("a renumbered, missing, extra or moved constant, or no enum at all, is refused naming the constant", () => {
  const refused = (values: BtfEnum["values"] | null, constant: string, expected: string, actual: string): void => {
    assert.throws(
      () => checkReasons(source(values)),
      (e: unknown) => e instanceof AbiEnumMismatchError && e.enumName === "pal_reason" && e.constant === constant && e.expected === expected && e.actual === actual,
    );
  };
  refused(HEADER_ENUM.values.map((v) => (v.name === "PAL_REASON_REVOKED" ? { ...v, value: 22 } : v)), "PAL_REASON_REVOKED", "21", "22");
  refused(HEADER_ENUM.values.filter((v) => v.name !== "PAL_REASON_HOST"), "PAL_REASON_HOST", "3", "absent");
  refused([...HEADER_ENUM.values, { name: "PAL_REASON_RATE_LIMITED", value: 30 }], "PAL_REASON_RATE_LIMITED", "absent", "30");
  refused(HEADER_ENUM.values.map((v) => (v.name === "PAL_REASON_FIRST_DROP" ? { ...v, value: 17 } : v)), "PAL_REASON_FIRST_DROP", "16", "17");
  refused(null, "", "an enum", "absent");
  assert.throws(
    () => checkReasons(source(HEADER_ENUM.values.map((v) => (v.name === "PAL_REASON_MAX" ? { ...v, value: 16 } : v)))),
    { name: "AbiEnumMismatchError", message: "Enum pal_reason does not match the ABI: PAL_REASON_MAX is 16 in BTF, expected 32" },
  );
});

test("reasons are named by code, steering's included", () => {
  assert.equal(reasonName(21), "revoked");
  assert.equal(reasonName(22), "tcp-invalid");
  assert.equal(reasonName(23), "tcp-limit");
  assert.equal(reasonName(9), "to-proxy");
  assert.equal(reasonName(24), "proxy-unavailable");
  assert.equal(reasonName(31), "unknown");
});
