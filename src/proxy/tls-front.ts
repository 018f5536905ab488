/**
 * The proxy's TLS front end: judges a connection that starts with a TLS
 * handshake record by the server name its ClientHello asks for (SNI), without
 * terminating TLS, then passes it on to its original destination unchanged
 * or resets it. The ClientHello may span several records and TCP segments;
 * it is read (policy/tls-client-hello.ts) as bytes arrive, up to
 * MAX_CLIENT_HELLO and within the header timeout. An allowed connection is
 * spliced both ways: the bytes read so far first, then whatever either side
 * sends, half-closes (FIN) and resets (RST) passed on (in the kernel, by
 * splice.ts), and the bytes passed each way counted at its end.
 *
 * It also answers, for the HTTP front end, whether a connection whose first
 * bytes are not TLS may go on to have its requests judged: where only `tls`
 * rules admit the flow, it is reset instead.
 *
 * @example
 * ```ts
 * const tls = createTlsFront({
 *   judgeConnection: (start, connection) => index.judgeConnection(start, connection, identityOf),
 *   connectUpstream: async (connection) => net.connect(connection.serverPort, connection.serverAddress),
 *   flowLog: (entry) => logger.info(entry),
 * });
 * const front = createHttpFront(httpOptions, tls);
 * ```
 *
 * @module
 */
import type { Socket } from "node:net";
import type { Logger } from "../k8s/logger.ts";
import type { ConnectionStart } from "../policy/http-view.ts";
import { MAX_CLIENT_HELLO, readClientHello } from "../policy/tls-client-hello.ts";
import type { ConnectionInfo, ConnectUpstream, HttpVerdict } from "./http-front-options.ts";
import { HTTP_FRONT_DEFAULTS } from "./http-front-options.ts";
import { logFlow } from "./flow-log.ts";
import { judgeSafely } from "./safe-judge.ts";
import { resetSocket, spliceSockets } from "./splice.ts";
import type { CountPassedBytes } from "./splice.ts";
import type { TlsTerminator } from "./tls-termination.ts";

/**
 * The most bytes held while a ClientHello is incomplete: its 64 KiB and room for the headers of records
 * far smaller than real clients send. Tiny records cost a re-read of every one of them per segment.
 */
const MAX_HELD = 2 * MAX_CLIENT_HELLO;

/** The first byte of a TLS connection: a handshake record (RFC 8446 §5.1, content type 22). */
export const TLS_HANDSHAKE_RECORD = 0x16;

/** Judges a connection by its first bytes (the view's judgeConnection in production). */
export type ConnectionJudge = (start: ConnectionStart, connection: ConnectionInfo) => HttpVerdict;

/**
 * One flow-log line: a connection reset by the rules (`refused`), reset because its first bytes are not a
 * ClientHello the reader takes or none came in time (`malformed`), passed on only because its policy
 * audits (`audited`), or reset because its upstream could not be reached (`upstream-failed`).
 */
export interface TlsFlowLogEntry {
  verdict: "refused" | "malformed" | "audited" | "upstream-failed";
  connection: ConnectionInfo;
  /** Whether the connection started as TLS (false: bytes that are not TLS, where only tls rules admit the flow). */
  tls: boolean;
  /** The server name the ClientHello asked for (not secret: it crossed the network in clear); absent when none. */
  serverName?: string;
  policy?: string;
  rule?: string;
  /**
   * Why a ClientHello was malformed, why the judge failed, why the upstream failed, or why a terminated
   * connection was refused (`no-client-certificate`, `untrusted-client-certificate`,
   * `expired-client-certificate`, `san-not-allowed`, `material-missing: ...`).
   */
  reason?: string;
  /** The names of the client certificate of a terminated connection refused by them (`DNS:x`, `URI:y`). */
  clientNames?: string[];
  /** OpenSSL's verification error for that certificate's chain (its code, `CERT_HAS_EXPIRED`), when it had one. */
  verifyError?: string;
}

/** Options of createTlsFront. */
export interface TlsFrontOptions {
  judgeConnection: ConnectionJudge;
  connectUpstream: ConnectUpstream;
  flowLog: (entry: TlsFlowLogEntry) => void;
  /** Time to receive a whole ClientHello. Default: the HTTP front end's header timeout (10 s). */
  helloTimeoutMs?: number;
  /** Terminates the connections the judge says to terminate; without it they are reset. */
  terminator?: TlsTerminator;
  /** Counts the bytes each connection passes on unchanged, ClientHello included, while it is open and at its end. */
  countPassedBytes?: CountPassedBytes;
}

/** The proxy's TLS front end. */
export interface TlsFront {
  /** Serves a connection whose first bytes so far, `received`, start with a TLS handshake record, until it closes. */
  serve(socket: Socket, received: Buffer, connection: ConnectionInfo): void;
  /**
   * Whether a connection whose first bytes are not TLS is refused (only `tls` rules admit its flow): then
   * it is reset and logged here. False: the HTTP front end goes on with it (a judge that fails leaves it to
   * the HTTP front end too, which refuses its requests).
   */
  refusesPlain(socket: Socket, connection: ConnectionInfo): boolean;
  /** Resets every connection being served, and its upstream. */
  close(): void;
}

const FLOW_MESSAGES: Record<TlsFlowLogEntry["verdict"], string> = {
  refused: "TLS connection refused",
  malformed: "TLS connection malformed",
  audited: "TLS connection audited (would be refused)",
  "upstream-failed": "TLS connection not passed on: upstream failed",
};

/** Writes one flow-log line of the TLS front end: the entry flattened, `flow: "tls"`. */
export function logTlsFlow(logger: Logger, entry: TlsFlowLogEntry): void {
  logFlow(logger, "tls", FLOW_MESSAGES, entry);
}

export function createTlsFront(options: TlsFrontOptions): TlsFront {
  /** Client sockets being served, and the upstream sockets of those spliced. */
  const served = new Set<Socket>();
  const helloTimeout = options.helloTimeoutMs ?? HTTP_FRONT_DEFAULTS.headersTimeoutMs;

  const reset = (socket: Socket, entry: TlsFlowLogEntry) => {
    options.flowLog(entry);
    resetSocket(socket);
  };

  /** Opens the upstream and splices the two sockets; `head` is what the client sent so far. */
  const splice = async (client: Socket, head: Buffer, connection: ConnectionInfo, serverName: string | undefined, verdict: HttpVerdict) => {
    const failed = (error: unknown) => reset(client, { verdict: "upstream-failed", connection, tls: true, ...(serverName !== undefined && { serverName }), reason: error instanceof Error ? error.message : String(error) });
    let upstream: Socket;
    try {
      upstream = await options.connectUpstream(connection);
    } catch (error) {
      failed(error);
      return;
    }
    if (client.destroyed) {
      resetSocket(upstream);
      return;
    }
    served.add(upstream);
    upstream.once("close", () => served.delete(upstream));
    let connected = !upstream.connecting;
    upstream.once("connect", () => (connected = true));
    upstream.once("error", (error) => {
      if (!connected) failed(error);
    });
    spliceSockets(client, upstream, options.countPassedBytes?.(verdict.policy ?? "", verdict.rule ?? ""), { toUpstream: head });
  };

  return {
    serve(socket, received, connection) {
      served.add(socket);
      socket.once("close", () => served.delete(socket));
      socket.allowHalfOpen = true;
      let bytes = received;
      const stop = () => {
        clearTimeout(timer);
        socket.off("data", onData);
        socket.off("close", stop);
      };
      const read = () => {
        const reading = bytes.length > MAX_HELD ? { state: "refused" as const, reason: `no whole ClientHello in the first ${MAX_HELD} bytes` } : readClientHello(bytes);
        if (reading.state === "incomplete") return;
        // No more bytes until the verdict: the splice resumes the socket.
        socket.pause();
        stop();
        if (reading.state === "refused") {
          reset(socket, { verdict: "malformed", connection, tls: true, reason: reading.reason });
          return;
        }
        const { serverName } = reading;
        const named = serverName !== undefined ? { serverName } : {};
        const verdict = judgeSafely(options.judgeConnection, { tls: true, serverName }, connection);
        const judged = { connection, tls: true, ...named, ...(verdict.policy !== undefined && { policy: verdict.policy }), ...(verdict.rule !== undefined && { rule: verdict.rule }), ...(verdict.reason !== undefined && { reason: verdict.reason }) };
        if (!verdict.allow) {
          reset(socket, { verdict: "refused", ...judged });
          return;
        }
        if (verdict.audit) options.flowLog({ verdict: "audited", ...judged });
        if (verdict.terminate === undefined) void splice(socket, bytes, connection, serverName, verdict);
        else if (options.terminator) options.terminator.serve(socket, bytes, connection, verdict.terminate, serverName);
        else reset(socket, { verdict: "refused", ...judged, reason: "material-missing: this proxy has no access to TLS material (no --kubeconfig)" });
      };
      const onData = (chunk: Buffer) => {
        bytes = Buffer.concat([bytes, chunk]);
        read();
      };
      const timer = setTimeout(() => {
        stop();
        reset(socket, { verdict: "malformed", connection, tls: true, reason: `no whole ClientHello within ${helloTimeout} ms` });
      }, helloTimeout);
      // An error before the splice is the client's own reset or a broken connection: nothing to pass on.
      socket.on("error", () => undefined);
      socket.on("data", onData);
      socket.on("close", stop);
      read();
    },

    refusesPlain(socket, connection) {
      let verdict: HttpVerdict;
      try {
        verdict = options.judgeConnection({ tls: false }, connection);
      } catch {
        return false;
      }
      if (verdict.allow) return false;
      reset(socket, { verdict: "refused", connection, tls: false, ...(verdict.policy !== undefined && { policy: verdict.policy }), ...(verdict.rule !== undefined && { rule: verdict.rule }) });
      return true;
    },

    close() {
      for (const socket of served) resetSocket(socket);
      served.clear();
    },
  };
}
