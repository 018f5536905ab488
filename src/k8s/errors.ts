/**
 * Errors of the Kubernetes runtime: {@linkcode KubeApiError} when the API
 * server answered with a failure status, {@linkcode KubeTransportError} when
 * no answer came at all. Predicates such as {@linkcode isNotFound} let
 * callers branch without parsing messages.
 *
 * @module
 */
import type { V1Status } from "@kubernetes/client-node";

/**
 * The API server answered a request with a non-2xx status, or a watch
 * stream carried an `ERROR` event. `code` is the HTTP status (410 for an
 * expired resourceVersion), `reason` the `Status.reason` such as
 * `"NotFound"`, `"Conflict"` or `"Expired"`.
 *
 * @example
 * ```ts
 * try { await client.request("GET", "/api/v1/namespaces/x"); }
 * catch (e) { if (isNotFound(e)) console.log("no namespace x"); else throw e; }
 * ```
 */
export class KubeApiError extends Error {
  override name = "KubeApiError";
  /** HTTP status code of the answer (or of the `Status` in a watch `ERROR` event). */
  readonly code: number;
  /** `Status.reason`, e.g. `"NotFound"`; empty when the server sent none. */
  readonly reason: string;
  /** The `Status` object the server sent, when it sent one. */
  readonly status: V1Status | undefined;
  /** The request, e.g. `GET /api/v1/pods`. */
  readonly request: string;

  /** Builds the error from the request line, the HTTP status and the server's `Status`, if any. */
  constructor(request: string, code: number, status: V1Status | undefined, options?: ErrorOptions) {
    const reason = status?.reason ?? "";
    const detail = status?.message ?? "";
    super(`Kubernetes API request "${request}" failed: ${code}${reason ? ` ${reason}` : ""}${detail ? `: ${detail}` : ""}`, options);
    this.code = code;
    this.reason = reason;
    this.status = status;
    this.request = request;
  }
}

/**
 * A request to the API server got no answer: connection refused or reset,
 * TLS failure, timeout, or a response that was not JSON. `cause` holds the
 * underlying error.
 */
export class KubeTransportError extends Error {
  override name = "KubeTransportError";
}

/** Whether `e` is a {@linkcode KubeApiError} with HTTP status 404. */
export function isNotFound(e: unknown): boolean {
  return e instanceof KubeApiError && e.code === 404;
}

/** Whether `e` is a {@linkcode KubeApiError} with HTTP status 409 (a conflict or an already existing object). */
export function isConflict(e: unknown): boolean {
  return e instanceof KubeApiError && e.code === 409;
}

/** Whether `e` is a {@linkcode KubeApiError} saying an object of that name already exists. */
export function isAlreadyExists(e: unknown): boolean {
  return e instanceof KubeApiError && e.code === 409 && e.reason === "AlreadyExists";
}

/** Whether `e` says a resourceVersion is too old to list or watch from (HTTP 410 Gone, reason `Expired` or `Gone`). */
export function isGone(e: unknown): boolean {
  return e instanceof KubeApiError && e.code === 410;
}

/** The longest wait a server's Retry-After is followed for; anything longer is treated as this. */
export const MAX_RETRY_AFTER_MS = 10_000;

/**
 * How long the server asked to wait before asking again, when `e` is a
 * {@linkcode KubeApiError} with HTTP status 429 whose `Status` says (e.g.
 * "storage is (re)initializing" while a CRD's storage is rebuilt): between
 * 100 ms and {@linkcode MAX_RETRY_AFTER_MS}. `undefined` for anything else.
 *
 * @example
 * ```ts
 * catch (e) { const wait = retryAfterMs(e) ?? backoff.next(); await sleep(wait, signal); }
 * ```
 */
export function retryAfterMs(e: unknown): number | undefined {
  if (!(e instanceof KubeApiError) || e.code !== 429) return undefined;
  const seconds = Number(e.status?.details?.retryAfterSeconds ?? NaN);
  return Number.isFinite(seconds) ? Math.min(Math.max(seconds * 1000, 100), MAX_RETRY_AFTER_MS) : undefined;
}
