/**
 * Asks the judge, failing closed: a judge that throws (a bug, a rule table
 * being swapped) refuses the request or connection instead of taking the
 * proxy down or letting it through.
 *
 * @module
 */
import type { HttpVerdict } from "./http-front-options.ts";

/** The judge's verdict, or a refusal whose reason says why the judge could not give one. */
export function judgeSafely<Args extends unknown[]>(judge: (...args: Args) => HttpVerdict, ...args: Args): HttpVerdict {
  try {
    return judge(...args);
  } catch (error) {
    return { allow: false, reason: `judge failed: ${error instanceof Error ? error.message : String(error)}` };
  }
}
