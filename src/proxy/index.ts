/**
 * The proxy layer's public surface: the HTTP front end that judges requests
 * and forwards the allowed ones, the TLS front end that judges connections by
 * their ClientHello, and the types of what they are given.
 *
 * @module
 */
export * from "./http-front.ts";
export type * from "./http-front-options.ts";
export { HTTP_FRONT_DEFAULTS } from "./http-front-options.ts";
export * from "./main.ts";
export * from "./node-proxy.ts";
export * from "./proxy-metrics.ts";
export * from "./tls-front.ts";
export * from "./view-file.ts";
