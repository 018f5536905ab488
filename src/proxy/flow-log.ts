/**
 * One flow-log line of the proxy's front ends: what a front end reported,
 * flattened, with the flow's kind (`http`, `tls`) and nothing else (never a
 * field value of a request: they may hold secrets). An upstream failure is a
 * warning, the rest information.
 *
 * @module
 */
import type { Logger } from "../k8s/logger.ts";
import type { ConnectionInfo } from "./http-front-options.ts";

export function logFlow<Verdict extends string>(logger: Logger, flow: "http" | "tls", messages: Record<Verdict, string>, entry: { verdict: Verdict; connection: ConnectionInfo }): void {
  const { connection, verdict, ...rest } = entry;
  const fields = { flow, verdict, ...rest, ...connection };
  if (verdict === "upstream-failed") logger.warn(fields, messages[verdict]);
  else logger.info(fields, messages[verdict]);
}
