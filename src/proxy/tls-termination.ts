/**
 * TLS termination at the proxy: the TLS front end hands over a connection the
 * view decided to terminate (a {@link TlsTerminationPlan}) with the
 * ClientHello bytes read so far. A server-side TLS socket takes them, with the
 * certificate of the plan's Secret (TLS 1.2 and 1.3), asks for a client
 * certificate when a rule of the plan wants one (OpenSSL itself refuses a
 * client sending none, with a TLS alert, when every rule wants one), and after
 * the handshake checks it (chain to the rule's CA, validity, names) against
 * each rule: the rules it meets admit the connection; none, and it is reset
 * with the reason and the names presented in the flow log (never key
 * material): Node's TLS has no way to answer those with an alert. The
 * decrypted stream then goes to the HTTP front end, whose requests are judged
 * by the admitting rules (`terminatedBy`: first their host against the rules'
 * `serverNames`, 421 when none names it), or, when no rule judges requests,
 * straight to the pod, unread; upstream in plain text, or re-encrypted and verified
 * with the plan's upstream CA (`upstreamTls`).
 *
 * @module
 */
import type { Socket } from "node:net";
import tls from "node:tls";
import type { TLSSocket } from "node:tls";
import { readsRequests } from "../policy/http-view.ts";
import type { TlsTerminationPlan } from "../policy/http-view.ts";
import { admittingRules } from "../policy/tls-client-certificate.ts";
import { presentedCertificate } from "./client-certificate.ts";
import type { ConnectionInfo, ConnectUpstream } from "./http-front-options.ts";
import { spliceSockets } from "./splice.ts";
import type { CountPassedBytes } from "./splice.ts";
import type { TlsMaterialStore } from "./tls-material-store.ts";

/** How a terminated connection came out, for the flow log and metrics. */
export type TerminationOutcome =
  | { verdict: "terminated"; rules: string[] }
  | { verdict: "refused"; reason: string; clientNames?: string[]; verifyError?: string; policy?: string; rule?: string }
  | { verdict: "failed"; reason: string };

/** Options of createTlsTerminator. */
export interface TlsTerminatorOptions {
  material: TlsMaterialStore;
  connectUpstream: ConnectUpstream;
  /** Serves the decrypted stream of a connection whose requests rules judge (the HTTP front end). */
  serveRequests: (socket: TLSSocket, connection: ConnectionInfo, alpn: string | undefined) => void;
  report: (connection: ConnectionInfo, serverName: string | undefined, outcome: TerminationOutcome) => void;
  /** Time for the handshake. */
  handshakeTimeoutMs: number;
  /** Counts the decrypted bytes each connection passes on unjudged, while it is open and at its end. */
  countPassedBytes?: CountPassedBytes;
}

/** Terminates connections the view decided to terminate. */
export interface TlsTerminator {
  serve(socket: Socket, head: Buffer, connection: ConnectionInfo, plan: TlsTerminationPlan, serverName: string | undefined): void;
}

/** Wraps a plain upstream connection in TLS when the connection asks for it (`upstreamTls`). */
export function connectWithUpstreamTls(connect: ConnectUpstream): ConnectUpstream {
  return async (connection) => {
    const socket = await connect(connection);
    const upstream = connection.upstreamTls;
    if (upstream === undefined) return socket;
    return tls.connect({
      socket,
      // The pod's certificate is verified for the client's server name, or the pod's address without one (SNI carries no addresses).
      ...(upstream.serverName !== undefined && { servername: upstream.serverName }),
      host: upstream.serverName ?? connection.serverAddress,
      ca: upstream.ca,
      ...(upstream.alpn !== undefined && { ALPNProtocols: [upstream.alpn] }),
      minVersion: "TLSv1.2",
    });
  };
}

export function createTlsTerminator(options: TlsTerminatorOptions): TlsTerminator {
  return {
    serve(socket, head, connection, plan, serverName) {
      const refuse = (outcome: TerminationOutcome) => {
        options.report(connection, serverName, outcome);
        if (!socket.destroyed) socket.resetAndDestroy();
      };
      const { namespace, termination } = plan;
      const blamed = plan.rules[0] && { policy: plan.rules[0].policy, rule: plan.rules[0].rule };
      let secureContext;
      let upstreamCa: string | undefined;
      try {
        const clientCas = plan.rules.flatMap((rule) => (rule.clientCertificate ? [rule.clientCertificate.ca] : []));
        secureContext = options.material.serverContext(namespace, termination.certificate, clientCas);
        if (termination.upstream === "TLS" && termination.upstreamCA) upstreamCa = options.material.caBundle(namespace, termination.upstreamCA).pem;
      } catch (error) {
        refuse({ verdict: "refused", reason: `material-missing: ${(error as Error).message}`, ...blamed });
        return;
      }
      const judgesRequests = plan.judgesRequests;
      // The rules' protocols; by default HTTP/1.1 where requests are judged: a client offering h2 too (curl,
      // browsers) would have it sent on as HTTP/2 to a pod that may speak HTTP/1.1 only. A client that sends the
      // HTTP/2 preface without ALPN gets HTTP/2, as in plain text.
      const alpn = termination.alpn ?? (judgesRequests ? ["http/1.1"] : undefined);
      // The TLS socket reads what the client sent so far before it reads the connection itself.
      socket.unshift(head);
      const secure = new tls.TLSSocket(socket, {
        isServer: true,
        secureContext,
        requestCert: plan.rules.some((rule) => rule.clientCertificate !== undefined),
        // On a socket of its own (not made by tls.Server), this only has OpenSSL end the handshake of a client
        // sending no certificate, with an alert (certificate_required in TLS 1.3, handshake_failure in 1.2): right
        // when no rule admits a client without one. Node's verify callback accepts every chain, so OpenSSL sends
        // no alert for one it cannot verify: each rule is met only by a chain to its own CA, checked below.
        rejectUnauthorized: plan.rules.every((rule) => rule.clientCertificate !== undefined),
        ...(alpn && { ALPNProtocols: alpn }),
      });
      const timer = setTimeout(() => {
        refuse({ verdict: "failed", reason: `no TLS handshake within ${options.handshakeTimeoutMs} ms` });
      }, options.handshakeTimeoutMs);
      const onHandshakeError = (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        // OpenSSL has written its alert, and Node closes the connection after it (no reset, which could discard it).
        const outcome: TerminationOutcome = error.code === "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE"
          ? { verdict: "refused", reason: "no-client-certificate", clientNames: [], ...blamed }
          : { verdict: "failed", reason: `handshake failed: ${error.message}` };
        options.report(connection, serverName, outcome);
      };
      secure.once("error", onHandshakeError);
      socket.once("close", () => clearTimeout(timer));
      secure.once("secure", () => {
        clearTimeout(timer);
        const certificate = presentedCertificate(secure, (ca) => options.material.caBundle(namespace, ca));
        const { ids, failure } = admittingRules(plan.rules, certificate);
        const clientNames = certificate === undefined ? [] : [...certificate.names.dns.map((name) => `DNS:${name}`), ...certificate.names.uri.map((name) => `URI:${name}`)];
        if (failure !== undefined) {
          // The TCP connection is reset, and the TLS socket closes with it (destroying it as well, at once, crashes Node).
          refuse({ verdict: "refused", reason: failure, clientNames, ...(certificate?.verifyError !== undefined && { verifyError: certificate.verifyError }), ...blamed });
          return;
        }
        // From here the HTTP front end or the splice handles the socket's errors (Node's own listeners stay).
        secure.off("error", onHandshakeError);
        const admitting = plan.rules.filter((rule) => ids.includes(rule.id));
        options.report(connection, serverName, { verdict: "terminated", rules: admitting.map((rule) => `${rule.policy} ${rule.rule}`) });
        const alpn = typeof secure.alpnProtocol === "string" ? secure.alpnProtocol : undefined;
        const terminated: ConnectionInfo = {
          ...connection,
          terminatedBy: ids,
          ...(serverName !== undefined && { serverName }),
          ...(upstreamCa !== undefined && { upstreamTls: { ca: upstreamCa, ...(serverName !== undefined && { serverName }), ...(alpn !== undefined && { alpn }) } }),
        };
        if (readsRequests(plan, ids)) options.serveRequests(secure, terminated, alpn);
        // Its bytes count under the first rule admitting it, in reference order.
        else void splice(secure, terminated, admitting[0]?.policy ?? "", admitting[0]?.rule ?? "");
      });
    },
  };

  /** Passes the decrypted stream on to the pod both ways, half-closes and resets included. */
  async function splice(client: TLSSocket, connection: ConnectionInfo, policy: string, rule: string): Promise<void> {
    // Listened to before the upstream is open: an error with no listener would take the process down.
    client.on("error", () => undefined);
    let upstream: Socket;
    try {
      upstream = await options.connectUpstream(connection);
    } catch (error) {
      options.report(connection, connection.upstreamTls?.serverName, { verdict: "failed", reason: `upstream failed: ${(error as Error).message}` });
      client.destroy();
      return;
    }
    if (client.destroyed) {
      upstream.destroy();
      return;
    }
    spliceSockets(client, upstream, options.countPassedBytes?.(policy, rule));
  }
}
