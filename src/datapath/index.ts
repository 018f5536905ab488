/**
 * The datapath layer's public surface: the {@link Datapath} façade, the ABI
 * codecs and constants, and the native binding's errors.
 *
 * @module
 */
export * from "./abi.ts";
export * from "./datapath.ts";
export { BpfError, NativeAddonError } from "./native.ts";
