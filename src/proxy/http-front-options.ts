/**
 * What the HTTP front end of the proxy is given: who judges a request, how to
 * reach the upstream server, where refused and audited requests are logged,
 * and the parser bounds.
 *
 * @module
 */
import type { Socket } from "node:net";
import type { HttpRequestView } from "../policy/http-rule.ts";
import type { TlsTerminationPlan } from "../policy/http-view.ts";
import type { CountPassedBytes } from "./splice.ts";

/** The addresses of one proxied connection: the client's, and the server it was going to. */
export interface ConnectionInfo {
  clientAddress: string;
  clientPort: number;
  /** The original destination (a transparent socket's local address). */
  serverAddress: string;
  serverPort: number;
  /** A connection the proxy terminated: the rules that admitted it, which judge its requests (see HttpConnection). */
  terminatedBy?: readonly number[];
  /** A connection the proxy terminated: the server name its ClientHello asked for, if any (for the flow log). */
  serverName?: string;
  /** A terminated connection re-encrypted to the pod: how to verify it. */
  upstreamTls?: UpstreamTls;
}

/** How the proxy re-encrypts a terminated connection to the pod. */
export interface UpstreamTls {
  /** The CA bundle (PEM) the pod's certificate must chain to. */
  ca: string;
  /** The client's server name, sent on and verified; absent: the pod's address is verified. */
  serverName?: string;
  /** The protocol the client negotiated (ALPN), asked of the pod too. */
  alpn?: string;
}

/** A judge's answer for one request. */
export interface HttpVerdict {
  /** Forward the request (true) or answer 403 (false). */
  allow: boolean;
  /** The request would have been refused, but its policy is in audit mode: it is forwarded and logged. */
  audit?: boolean;
  /** The policy (namespace/name) and rule behind the verdict, for the flow log. */
  policy?: string;
  rule?: string;
  /** Why, for the flow log, where the rule alone does not say it (a path judged with its slashes merged, a judge that failed). */
  reason?: string;
  /** Refused (allow false) because the terminated connection was not admitted for the request's host: answered 421, not 403. */
  misdirected?: boolean;
  /** A TLS connection to terminate (connection judgements only): how. */
  terminate?: TlsTerminationPlan;
}

/** Judges one request of one connection (the matcher of policy/http-rule.ts behind the proxy's rule table). */
export type HttpJudge = (request: HttpRequestView, connection: ConnectionInfo) => HttpVerdict;

/**
 * Opens the upstream connection for a client connection, to its original
 * destination (the transparent connect in production: the server sees the
 * client's address). Called again when the upstream closes a kept-alive
 * connection and another request follows. The socket may still be
 * connecting when the promise resolves; a rejection (or a connect error on
 * the socket) answers 502.
 */
export type ConnectUpstream = (connection: ConnectionInfo) => Promise<Socket>;

/**
 * One flow-log line: a request that was refused (403), misdirected (421: a terminated connection's request for a
 * host its rules' `serverNames` do not name), malformed (400), audited, or could not be forwarded (502).
 */
export interface HttpFlowLogEntry {
  verdict: "refused" | "misdirected" | "malformed" | "audited" | "upstream-failed";
  protocol: "HTTP/1.1" | "HTTP/2";
  connection: ConnectionInfo;
  /** What the parser gave; a malformed request may lack them. */
  method?: string;
  host?: string;
  /** The normalized path when there is one, else the request target as received. */
  path?: string;
  /** The status answered; 0 when the connection was closed without an answer (bytes that are not HTTP). */
  status: number;
  policy?: string;
  rule?: string;
  /** Why a request was malformed, could not be forwarded, or was judged as it was when its rule does not say (the verdict's reason). */
  reason?: string;
}

/** Options of createHttpFront. */
export interface HttpFrontOptions {
  judge: HttpJudge;
  connectUpstream: ConnectUpstream;
  flowLog: (entry: HttpFlowLogEntry) => void;
  /** Hears of each client connection switched to WebSocket (the server's 101 passed on, the sockets spliced). */
  upgraded?: (connection: ConnectionInfo) => void;
  /** Counts the bytes of each WebSocket after its 101, under its upgrade request's policy and rule, while it is open and at its end. */
  countPassedBytes?: CountPassedBytes;
  /** Bytes of one request's header block (request line and fields); more is refused with 400. Default 16 KiB. */
  maxHeaderSize?: number;
  /** Time to receive a complete header block (and, before it, the bytes that tell HTTP/1.1 from HTTP/2). Default 10 s. */
  headersTimeoutMs?: number;
  /** Time to receive a whole request, body included (0: none). Default 300 s. */
  requestTimeoutMs?: number;
  /** Idle time of a kept-alive client connection between requests. Default 60 s. */
  keepAliveTimeoutMs?: number;
  /** How often the header and request deadlines are checked. Default 1 s. */
  timeoutCheckIntervalMs?: number;
}

/** The defaults of HttpFrontOptions's bounds. */
export const HTTP_FRONT_DEFAULTS = {
  maxHeaderSize: 16 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: 60_000,
  timeoutCheckIntervalMs: 1_000,
} as const;

/** How the front ends answer, log and count a request the judge refused. */
export interface Refusal {
  verdict: "refused" | "misdirected";
  status: 403 | 421;
  /** The status line's reason phrase. */
  reasonPhrase: string;
  body: string;
}

/** A refused request's answer: 421 when the verdict says misdirected (RFC 9110 §15.5.20), else 403 `Access denied`. */
export function refusalOf(verdict: HttpVerdict): Refusal {
  return verdict.misdirected
    ? { verdict: "misdirected", status: 421, reasonPhrase: "Misdirected Request", body: "Misdirected Request" }
    : { verdict: "refused", status: 403, reasonPhrase: "Forbidden", body: "Access denied" };
}
