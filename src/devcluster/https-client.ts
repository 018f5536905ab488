/**
 * A small HTTPS client for the dev cluster's own requests (health checks,
 * registering Nodes) that authenticates with a client certificate and trusts
 * only the dev CA. The operator and agents use k8s/ instead.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { DevClusterError } from "./errors.ts";
import type { CertificateFiles } from "./pki.ts";

/** Whom to trust and who we are. */
export interface TlsIdentity {
  caCertFile: string;
  /** The client certificate; without it the request is anonymous. */
  client?: CertificateFiles;
}

/** A finished response. */
export interface HttpsResponse {
  status: number;
  body: string;
}

/** One request's method, body and limits. */
export interface HttpsRequestOptions {
  method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** Sent as JSON, or as-is when a string. */
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
}

/**
 * Sends one request to `url` and resolves with the status and body, whatever
 * the status; rejects only when there is no response (refused, TLS, timeout).
 *
 * @example
 * ```ts
 * const { status } = await httpsRequest("https://127.0.0.1:6443/readyz", { caCertFile, client: admin });
 * ```
 */
export function httpsRequest(url: string, identity: TlsIdentity, options: HttpsRequestOptions = {}): Promise<HttpsResponse> {
  const body = options.body === undefined ? undefined : typeof options.body === "string" ? options.body : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? "GET",
        ca: readFileSync(identity.caCertFile),
        ...(identity.client && { cert: readFileSync(identity.client.certFile), key: readFileSync(identity.client.keyFile) }),
        headers: {
          accept: "application/json",
          ...(body !== undefined && { "content-type": options.contentType ?? "application/json", "content-length": Buffer.byteLength(body) }),
        },
        timeout: options.timeoutMs ?? 10_000,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new DevClusterError(`Cannot reach ${url}: no response within ${options.timeoutMs ?? 10_000} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}
