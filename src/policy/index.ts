/**
 * The policy layer's public surface: the policy APIs, their validation and
 * normalized form, manifests to the world model, selectors, addresses,
 * identities and their keys, the compiler to desired datapath state (and its
 * ipcache half, which the operator runs alone), the lookup emulation that
 * explains verdicts from that state, and the reference evaluator that checks
 * it.
 *
 * @module
 */
export type * from "./api-types.ts";
export * from "./world.ts";
export * from "./validate.ts";
export * from "./normalize.ts";
export * from "./normalized-policy.ts";
export * from "./desired-state.ts";
export * from "./selector.ts";
export * from "./ip.ts";
export * from "./port-ranges.ts";
export * from "./identity.ts";
export * from "./identity-key.ts";
export * from "./ipcache-compiler.ts";
export * from "./compiler.ts";
export * from "./lookup.ts";
export * from "./http-view.ts";
export * from "./reference-evaluator.ts";
export * from "./identity-object.ts";
export * from "./tls-material.ts";
