/**
 * Asks the judge, failing closed: a judge that throws (a bug, a rule table
 * being swapped) refuses the request instead of taking the proxy down or
 * letting the request through.
 *
 * @module
 */
import type { HttpRequestView } from "../policy/http-rule.ts";
import type { ConnectionInfo, HttpJudge, HttpVerdict } from "./http-front-options.ts";

/** A verdict, with why the judge could not give one when it threw. */
export type SafeVerdict = HttpVerdict & { reason?: string };

export function judgeSafely(judge: HttpJudge, request: HttpRequestView, connection: ConnectionInfo): SafeVerdict {
  try {
    return judge(request, connection);
  } catch (error) {
    return { allow: false, reason: `judge failed: ${error instanceof Error ? error.message : String(error)}` };
  }
}
