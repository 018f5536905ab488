/**
 * The datapath layer's public surface: the {@link Datapath} façade, the ABI
 * codecs and constants, and the native binding's errors.
 *
 * @module
 */
export * from "./abi.ts";
export * from "./reasons.ts";
export * from "./bpf-map.ts";
export * from "./datapath.ts";
export * from "./datapath-error.ts";
export * from "./tcp-sources.ts";
export * from "./policy-capacity.ts";
export { BpfError, linkGet, NativeAddonError, releaseFreeMemory, routeGet, RTN_UNICAST } from "./native.ts";
export type { LinkAnswer, RouteAnswer } from "./native.ts";
export * from "./pinned-ipcache.ts";
export * from "./proxy-routing.ts";
export * from "./transparent-socket.ts";
