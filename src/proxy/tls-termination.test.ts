/**
 * TLS termination through the node proxy over loopback, with real TLS and
 * certificates made by `openssl` in the test: a server CA and the proxy's
 * certificate from it, a client CA and clients (good, wrong SAN, expired,
 * another CA's, none), policies compiled into the view the agent publishes.
 * Checked: the certificate presented is the Secret's copy; TLS 1.2 and 1.3;
 * client certificates refused with the reason and the names presented in the
 * flow log; the decrypted requests judged by the rule's http (403 on the same
 * connection); plain and re-encrypted upstreams; missing material and rules
 * that disagree reset the connection; a rotated certificate is used by the
 * next connection while an open one goes on.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { once } from "node:events";
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import net from "node:net";
import type { AddressInfo } from "node:net";
import tls from "node:tls";
import { after, before, describe, test } from "node:test";
import { RawConnection } from "../../test/lib/http-proxy-harness.ts";
import { acceptKey, encodeFrame, FrameReader, echoWebSocket } from "../../test/lib/websocket-echo.ts";
import { startViewProxy } from "../../test/lib/view-proxy.ts";
import { issueCertificate, issueIntermediateCa, makeCa } from "../../test/lib/tls-certificate.ts";
import type { TestCa, TestCertificate } from "../../test/lib/tls-certificate.ts";
import { B, compileHttpWorld, ebpf, A } from "../../test/lib/http-world.ts";
import type { EBPFIngressRule, TlsRule } from "../policy/api-types.ts";
import type { CompiledHttpWorld } from "../../test/lib/http-world.ts";
import type { ConnectionInfo } from "./http-front-options.ts";
import type { NodeProxy } from "./node-proxy.ts";
import { TlsMaterialStore } from "./tls-material-store.ts";

/** What the view judges a loopback connection as: a connection from pod a to pod b on 8080. */
function asFlow(connection: ConnectionInfo): ConnectionInfo {
  return { ...connection, clientAddress: A, clientPort: 40000, serverAddress: B, serverPort: 8080 };
}

/** An ingress rule to b on 8080 with `tls` (and `http`). */
function rule(tls: TlsRule, http?: EBPFIngressRule["http"]): EBPFIngressRule {
  return { ports: [{ protocol: "TCP", port: 8080 }], tls, ...(http && { http }) };
}

const SPIFFE_FRONTEND = "spiffe://cluster.local/ns/x/sa/frontend";

/** The status and body of one HTTP/2 request on `session` (to `authority`, by default the session's; with a Host field if given). */
async function h2Answer(session: http2.ClientHttp2Session, path: string, authority?: string, host?: string): Promise<[number, string]> {
  const stream = session.request({ ":path": path, ...(authority !== undefined && { ":authority": authority }), ...(host !== undefined && { host }) });
  const [headers] = (await once(stream, "response")) as [http2.IncomingHttpHeaders];
  let body = "";
  stream.on("data", (chunk: Buffer) => (body += chunk.toString()));
  await once(stream, "end");
  return [Number(headers[":status"]), body];
}

/** A copy as the operator writes it into palisade-secrets. */
function copy(name: string, version: string, data: Record<string, Buffer>) {
  return { metadata: { name, resourceVersion: version }, data: Object.fromEntries(Object.entries(data).map(([key, value]) => [key, value.toString("base64")])) };
}

/** The answer to one request over a client TLS connection, the certificate it was served, and the connection. */
interface Exchange {
  status: number | "reset" | "closed" | string;
  body: string;
  protocol: string | null;
  serverCertificate: string;
  socket: tls.TLSSocket;
}

describe("TLS termination through the node proxy", () => {
  let serverCa: TestCa;
  let clientCa: TestCa;
  let otherCa: TestCa;
  let proxyCert: TestCertificate;
  let rotatedCert: TestCertificate;
  const clients: Record<string, TestCertificate> = {};
  const material = new TlsMaterialStore();
  let world: CompiledHttpWorld;
  let proxy: NodeProxy;
  let plainUpstream: http.Server;
  let tlsUpstream: https.Server;
  let upstreamPort = 0;
  let h2cUpstream: http2.Http2Server;
  /** Where plain upstream connections go: the HTTP/1.1 pod, or the h2c one. */
  let plainPort = () => upstreamPort;
  const logLines: Record<string, unknown>[] = [];

  before(async () => {
    serverCa = makeCa("server-ca");
    clientCa = makeCa("client-ca");
    otherCa = makeCa("other-ca");
    proxyCert = issueCertificate(serverCa, { names: ["DNS:api.shop.example"] });
    rotatedCert = issueCertificate(serverCa, { names: ["DNS:api.shop.example", "DNS:rotated.shop.example"] });
    clients.good = issueCertificate(clientCa, { names: [`URI:${SPIFFE_FRONTEND}`, "DNS:web.frontend.shop.example"] });
    clients.dnsOnly = issueCertificate(clientCa, { names: ["DNS:a.frontend.shop.example"] });
    clients.wrongSan = issueCertificate(clientCa, { names: ["URI:spiffe://cluster.local/ns/x/sa/intruder", "DNS:a.b.frontend.shop.example"] });
    clients.expired = issueCertificate(clientCa, { names: [`URI:${SPIFFE_FRONTEND}`], startDate: "20200101000000Z", endDate: "20200102000000Z" });
    clients.otherCa = issueCertificate(otherCa, { names: [`URI:${SPIFFE_FRONTEND}`] });
    material.put(copy("secret.x.api-tls", "1", { "tls.crt": proxyCert.cert, "tls.key": proxyCert.key }));
    material.put(copy("configmap.x.client-ca", "1", { "ca.crt": clientCa.cert }));
    material.put(copy("configmap.x.server-ca", "1", { "ca.crt": serverCa.cert }));
    material.put(copy("secret.x.broken-tls", "1", { "tls.crt": proxyCert.cert, "tls.key": rotatedCert.key }));

    const answer = (scheme: string) => (request: http.IncomingMessage, response: http.ServerResponse) => {
      request.resume();
      request.on("end", () => response.end(`${scheme} ${request.method} ${request.url}`));
    };
    plainUpstream = http.createServer(answer("plain"));
    plainUpstream.on("upgrade", (request: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      if (request.url !== "/public/ws-reset") return echoWebSocket(request, socket, head);
      // Switches, then resets the connection at the first frame.
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(String(request.headers["sec-websocket-key"]))}\r\n\r\n`);
      socket.once("data", () => socket.resetAndDestroy());
    });
    plainUpstream.listen(0, "127.0.0.1");
    await once(plainUpstream, "listening");
    upstreamPort = (plainUpstream.address() as AddressInfo).port;
    const podCert = issueCertificate(serverCa, { names: ["DNS:api.shop.example"] });
    h2cUpstream = http2.createServer((request, response) => {
      request.resume();
      request.on("end", () => response.end(`h2c ${request.method} ${request.url}`));
    });
    h2cUpstream.listen(0, "127.0.0.1");
    await once(h2cUpstream, "listening");
    tlsUpstream = https.createServer({ key: podCert.key, cert: podCert.cert }, answer("tls"));
    tlsUpstream.listen(0, "127.0.0.1");
    await once(tlsUpstream, "listening");

    proxy = await startViewProxy({
      world: () => world,
      flow: asFlow,
      // Re-encrypted connections go to the TLS pod, plain ones to the plain pod.
      connectUpstream: async (connection) => net.connect(connection.upstreamTls ? (tlsUpstream.address() as AddressInfo).port : plainPort(), "127.0.0.1"),
      material,
      log: (line) => logLines.push(JSON.parse(line) as Record<string, unknown>),
    });
  });

  after(async () => {
    await proxy.stop();
    plainUpstream.closeAllConnections();
    tlsUpstream.closeAllConnections();
    await Promise.all([new Promise((resolve) => plainUpstream.close(resolve)), new Promise((resolve) => tlsUpstream.close(resolve)), new Promise((resolve) => h2cUpstream.close(resolve))]);
  });

  const proxyPort = () => proxy.addresses()[0]?.port ?? 0;

  /** Opens a TLS connection through the proxy (verifying the proxy with the server CA) and sends `requests` on it, one after the other. */
  async function exchange(options: { client?: TestCertificate; version?: tls.SecureVersion; servername?: string; paths?: string[]; hosts?: string[]; alpn?: string[]; keepOpen?: boolean }): Promise<Exchange[]> {
    const socket = tls.connect({
      port: proxyPort(),
      host: "127.0.0.1",
      servername: options.servername ?? "api.shop.example",
      ca: serverCa.cert,
      ...(options.client && { cert: options.client.cert, key: options.client.key }),
      ...(options.version && { minVersion: options.version, maxVersion: options.version }),
      ALPNProtocols: options.alpn ?? ["http/1.1"],
    });
    const results: Exchange[] = [];
    const fail = (error: NodeJS.ErrnoException) => (error.code === "ECONNRESET" ? "reset" : `error ${error.code ?? error.message}`);
    // A TLS 1.3 client learns of an alert about its certificate after its side of the handshake, on reading.
    let failure: string | undefined;
    socket.on("error", (error: NodeJS.ErrnoException) => (failure ??= fail(error)));
    try {
      await once(socket, "secureConnect");
    } catch (error) {
      return [{ status: fail(error as NodeJS.ErrnoException), body: "", protocol: null, serverCertificate: "", socket }];
    }
    const serverCertificate = socket.getPeerX509Certificate()?.subjectAltName ?? "";
    const raw = RawConnection.over(socket);
    for (const [index, path] of (options.paths ?? ["/public/a"]).entries()) {
      raw.send(`GET ${path} HTTP/1.1\r\nHost: ${options.hosts?.[index] ?? "api.shop.example"}\r\n\r\n`);
      const response = await raw.next();
      const status = response !== "closed" ? response.status : (failure ?? "closed");
      results.push({ status, body: response === "closed" ? "" : response.body, protocol: socket.getProtocol(), serverCertificate, socket });
      if (response === "closed") break;
    }
    if (!options.keepOpen) socket.destroy();
    return results;
  }

  const termination = { certificate: { secretName: "api-tls" } };
  const clientCertificate = { ca: { configMapName: "client-ca", key: "ca.crt" }, subjectAltNames: [SPIFFE_FRONTEND, "*.frontend.shop.example"] };
  const publicGets = [{ method: "GET", path: { prefix: "/public/" } }];

  test("the proxy presents the Secret's certificate, TLS 1.2 and 1.3, and judges the decrypted requests on one connection", async () => {
    world = compileHttpWorld([ebpf("api", { ingress: [rule({ serverNames: ["api.shop.example"], termination }, publicGets)] })]);
    for (const version of ["TLSv1.2", "TLSv1.3"] as const) {
      const results = await exchange({ version, paths: ["/public/a", "/admin", "/public/../admin", "/public/b"] });
      assert.deepEqual(results.map((r) => r.status), [200, 403, 403, 200], version);
      assert.equal(results[0]?.protocol, version);
      assert.equal(results[0]?.serverCertificate, "DNS:api.shop.example");
      assert.equal(results[0]?.body, "plain GET /public/a", "sent on in plain text");
    }
    assert.equal((await exchange({ servername: "other.shop.example" }))[0]?.status, "reset", "a name serverNames does not list is reset before any handshake");
  });

  test("a request for a host the rules' serverNames do not name gets 421 on a connection that goes on, HTTP/1.1 and HTTP/2; one flow-log line and a count each", async () => {
    const names = ["api.shop.example", "*.internal.shop.example"];
    world = compileHttpWorld([ebpf("api", { ingress: [rule({ serverNames: names, termination: { ...termination, alpn: ["h2", "http/1.1"] } }, publicGets)] })]);
    logLines.length = 0;
    const hosts = ["api.shop.example", "admin.shop.example", "API.SHOP.EXAMPLE:8443", "db.internal.shop.example", "internal.shop.example", "a.b.internal.shop.example", "127.0.0.1", "[::1]", "api.shop.example."];
    const results = await exchange({ paths: hosts.map(() => "/public/a"), hosts });
    // The trailing dot is malformed (400, the connection closes); until then the connection went on after each 421.
    assert.deepEqual(results.map((r) => r.status), [200, 421, 200, 200, 421, 421, 421, 421, 400]);
    assert.equal(results[1]?.body, "Misdirected Request");
    const first = await exchange({ paths: ["/admin", "/public/a"], hosts: ["admin.shop.example", "api.shop.example:443"] });
    assert.deepEqual(first.map((r) => r.status), [421, 200], "421 before the http rules: /admin for another host is misdirected, not refused");
    // HTTP/1.0 without Host names no host: malformed before any rule, not misdirected.
    const bare = tls.connect({ port: proxyPort(), host: "127.0.0.1", servername: "api.shop.example", ca: serverCa.cert, ALPNProtocols: ["http/1.1"] });
    await once(bare, "secureConnect");
    const raw = RawConnection.over(bare);
    raw.send("GET /public/a HTTP/1.0\r\n\r\n");
    const answer = await raw.next();
    raw.destroy();
    assert.equal(answer === "closed" ? answer : answer.status, 400);
    plainPort = () => (h2cUpstream.address() as AddressInfo).port;
    const session = http2.connect("https://api.shop.example", {
      createConnection: () => tls.connect({ port: proxyPort(), host: "127.0.0.1", servername: "api.shop.example", ca: serverCa.cert, ALPNProtocols: ["h2"] }),
    });
    session.on("error", () => undefined);
    try {
      assert.deepEqual(await h2Answer(session, "/public/a", "admin.shop.example"), [421, "Misdirected Request"]);
      assert.deepEqual(await h2Answer(session, "/public/a", "db.internal.shop.example"), [200, "h2c GET /public/a"], "the session goes on after the 421");
      assert.deepEqual(await h2Answer(session, "/admin", "api.shop.example"), [403, "Access denied"]);
      assert.deepEqual(await h2Answer(session, "/public/a", "api.shop.example", "admin.shop.example"), [400, "Bad Request"], ":authority and Host naming two hosts");
      assert.deepEqual(await h2Answer(session, "/public/a", "admin.shop.example", "admin.shop.example"), [421, "Misdirected Request"], ":authority and Host agreeing on another host");
    } finally {
      session.close();
      await once(session, "close");
      plainPort = () => upstreamPort;
    }
    const misdirected = logLines.filter((line) => line.verdict === "misdirected");
    assert.equal(misdirected.length, 8, "one line per 421");
    assert.deepEqual(
      [misdirected[0]?.flow, misdirected[0]?.status, misdirected[0]?.host, misdirected[0]?.serverName, misdirected[0]?.policy, misdirected[0]?.rule, misdirected[0]?.protocol],
      ["http", 421, "admin.shop.example", "api.shop.example", "EBPFNetworkPolicy x/api", "ingress[0].tls", "HTTP/1.1"],
    );
    assert.match(String(misdirected[0]?.reason), /^misdirected: /);
    assert.equal(misdirected.at(-1)?.protocol, "HTTP/2");
    assert.match(proxy.renderMetrics(), /palisade_proxy_requests_total\{verdict="misdirected",policy="EBPFNetworkPolicy x\/api",rule="ingress\[0\]\.tls"\} 8/);
  });

  test("client certificates: the good one passes; none fails the handshake with an alert; another CA's, an expired one and a wrong SAN are reset, with the reason and names logged", async () => {
    world = compileHttpWorld([ebpf("api", { ingress: [rule({ termination, clientCertificate }, publicGets)] })]);
    logLines.length = 0;
    const noCertificateAlert = { "TLSv1.2": "error ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE", "TLSv1.3": "error ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED" };
    for (const version of ["TLSv1.2", "TLSv1.3"] as const) {
      assert.deepEqual((await exchange({ version, client: clients.good })).map((r) => r.status), [200], version);
      assert.deepEqual((await exchange({ version, client: clients.dnsOnly })).map((r) => r.status), [200], `${version}: a DNS name under the wildcard`);
      for (const name of ["wrongSan", "expired", "otherCa"]) {
        assert.equal((await exchange({ version, client: clients[name] }))[0]?.status, "reset", `${version} ${name}`);
      }
      assert.equal((await exchange({ version }))[0]?.status, noCertificateAlert[version], `${version}: no certificate`);
    }
    const refusals = logLines.filter((line) => line.flow === "tls" && line.verdict === "refused").map((line) => [line.reason, line.clientNames, line.verifyError]);
    const once = [
      ["san-not-allowed", ["DNS:a.b.frontend.shop.example", "URI:spiffe://cluster.local/ns/x/sa/intruder"], undefined],
      ["expired-client-certificate", [`URI:${SPIFFE_FRONTEND}`], "CERT_HAS_EXPIRED"],
      ["untrusted-client-certificate", [`URI:${SPIFFE_FRONTEND}`], "UNABLE_TO_VERIFY_LEAF_SIGNATURE"],
      ["no-client-certificate", [], undefined],
    ];
    assert.deepEqual(refusals, [...once, ...once]);
    assert.ok(logLines.every((line) => !JSON.stringify(line).includes("PRIVATE KEY")), "no key material in the log");
    const metrics = proxy.renderMetrics();
    assert.match(metrics, /palisade_proxy_tls_terminations_total\{result="refused",reason="san-not-allowed"\} 2/);
    assert.match(metrics, /palisade_proxy_tls_terminations_total\{result="terminated",reason=""\} \d+/);
  });

  test("what openssl s_client and curl report, TLS 1.2 and 1.3: the alert of a handshake without a certificate, a reset for the others; no connection left open", async () => {
    world = compileHttpWorld([ebpf("api", { ingress: [rule({ termination, clientCertificate }, publicGets)] })]);
    const sClient = async (version: string, client: TestCertificate | undefined) => {
      const args = ["s_client", version, "-connect", `127.0.0.1:${proxyPort()}`, "-servername", "api.shop.example", "-CAfile", serverCa.certPath, ...(client ? ["-cert", client.certPath, "-key", client.keyPath] : []), "-ign_eof"];
      const child = execFile("openssl", args, { timeout: 15_000 });
      child.stdin?.end("GET /public/a HTTP/1.1\r\nHost: api.shop.example\r\nConnection: close\r\n\r\n");
      let output = "";
      child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
      child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
      await once(child, "close");
      return output;
    };
    const curl = async (tlsMax: string, client: TestCertificate | undefined) => {
      const args = ["-sS", "--max-time", "10", "--http1.1", "--tlsv1.2", "--tls-max", tlsMax, "--cacert", serverCa.certPath, ...(client ? ["--cert", client.certPath, "--key", client.keyPath] : []),
        "--resolve", `api.shop.example:${proxyPort()}:127.0.0.1`, `https://api.shop.example:${proxyPort()}/public/a`];
      return new Promise<string>((resolve) => execFile("curl", args, (error, stdout, stderr) => resolve(error ? stderr.trim() : `ok ${stdout}`)));
    };
    // OpenSSL's alert for a missing certificate: handshake_failure (40) in TLS 1.2, certificate_required (116) in 1.3.
    const alerts = [["-tls1_2", "1.2", /sslv3 alert handshake failure.*SSL alert number 40/, /^curl: \(35\) .*sslv3 alert handshake failure/], ["-tls1_3", "1.3", /tlsv13 alert certificate required.*SSL alert number 116/, /^curl: \(56\) .*tlsv13 alert certificate required/]] as const;
    for (const [flag, tlsMax, sClientAlert, curlAlert] of alerts) {
      assert.match(await sClient(flag, clients.good), /HTTP\/1\.1 200/, flag);
      assert.equal(await curl(tlsMax, clients.good), "ok plain GET /public/a", tlsMax);
      assert.match(await sClient(flag, undefined), sClientAlert, `${flag}: no certificate`);
      assert.match(await curl(tlsMax, undefined), curlAlert, `TLS ${tlsMax}: no certificate`);
      for (const name of ["wrongSan", "expired", "otherCa"]) {
        const seen = await sClient(flag, clients[name]);
        assert.match(seen, /errno=104|Connection reset by peer/, `${flag} ${name}`);
        assert.doesNotMatch(seen, /HTTP\/1\.1|alert/, `${flag} ${name}`);
        // Where the reset meets curl 7.88 varies: its last handshake read (35), its first read after (56), or its
        // getpeername() after the handshake (55, "not connected"). No alert, either way.
        const reported = await curl(tlsMax, clients[name]);
        assert.match(reported, /^curl: \((35|55|56)\) .*(Connection reset by peer|not connected)/, `TLS ${tlsMax} ${name}`);
        assert.doesNotMatch(reported, /alert/, `TLS ${tlsMax} ${name}`);
      }
    }
    const deadline = Date.now() + 5_000;
    while (proxy.openConnections > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(proxy.openConnections, 0, "every refused connection is closed");
  });

  test("a certificate signed by another client's certificate, which is no CA, or one for servers only, is refused, whatever it names", async () => {
    world = compileHttpWorld([ebpf("api", { ingress: [rule({ termination, clientCertificate }, publicGets)] })]);
    logLines.length = 0;
    // The holder of any certificate of the CA (here one naming an intruder) signs a certificate naming the frontend.
    const signer = { dir: clientCa.dir, cert: clients.wrongSan!.cert, certPath: clients.wrongSan!.certPath, keyPath: clients.wrongSan!.keyPath };
    const forged = issueCertificate(signer, { names: [`URI:${SPIFFE_FRONTEND}`] });
    const chain = { ...forged, cert: Buffer.concat([forged.cert, clients.wrongSan!.cert]) };
    // A certificate of the CA whose extended key usage is for servers only does not authenticate a client.
    const serverOnly = issueCertificate(clientCa, { names: [`URI:${SPIFFE_FRONTEND}`], serverAuthOnly: true });
    for (const version of ["TLSv1.2", "TLSv1.3"] as const) {
      assert.equal((await exchange({ version, client: chain }))[0]?.status, "reset", `${version}: forged`);
      assert.equal((await exchange({ version, client: serverOnly }))[0]?.status, "reset", `${version}: serverAuth only`);
    }
    const refusals = logLines.filter((line) => line.flow === "tls" && line.verdict === "refused").map((line) => line.reason);
    assert.deepEqual(refusals, Array(4).fill("untrusted-client-certificate"));
  });

  test("chains through intermediate CAs: a sound one passes; one breaking a path length or name constraint is refused", async () => {
    world = compileHttpWorld([ebpf("api", { ingress: [rule({ termination, clientCertificate }, publicGets)] })]);
    logLines.length = 0;
    const withChain = (leaf: TestCertificate, ...above: TestCa[]) => ({ ...leaf, cert: Buffer.concat([leaf.cert, ...above.map((ca) => ca.cert)]) });
    const intermediate = issueIntermediateCa(clientCa, "issuing-ca");
    const sound = withChain(issueCertificate(intermediate, { names: ["DNS:web.frontend.shop.example"] }), intermediate);
    // The CA below the root may sign leaves only (path length 0), yet it made another CA.
    const leavesOnly = issueIntermediateCa(clientCa, "leaves-only-ca", { pathLen: 0 });
    const tooDeep = issueIntermediateCa(leavesOnly, "too-deep-ca");
    const overLength = withChain(issueCertificate(tooDeep, { names: ["DNS:web.frontend.shop.example"] }), tooDeep, leavesOnly);
    // The CA may name hosts under other.example only, yet it names one the rule lists.
    const constrained = issueIntermediateCa(clientCa, "other-example-ca", { extensions: ["nameConstraints = critical,permitted;DNS:.other.example"] });
    const outsideConstraint = withChain(issueCertificate(constrained, { names: ["DNS:web.frontend.shop.example"] }), constrained);
    for (const version of ["TLSv1.2", "TLSv1.3"] as const) {
      assert.deepEqual((await exchange({ version, client: sound })).map((r) => r.status), [200], `${version}: through an intermediate`);
      assert.equal((await exchange({ version, client: overLength }))[0]?.status, "reset", `${version}: path length exceeded`);
      assert.equal((await exchange({ version, client: outsideConstraint }))[0]?.status, "reset", `${version}: outside the name constraint`);
    }
    const refusals = logLines.filter((line) => line.flow === "tls" && line.verdict === "refused").map((line) => line.reason);
    assert.deepEqual(refusals, Array(4).fill("untrusted-client-certificate"));
  });

  test("rules add up: a rule without clientCertificate admits clients without one, and its http judges their requests only", async () => {
    world = compileHttpWorld([
      ebpf("api", { ingress: [rule({ termination, clientCertificate }), rule({ termination }, publicGets)] }),
    ]);
    assert.deepEqual((await exchange({ client: clients.good, paths: ["/admin"] })).map((r) => r.status), [200], "the certificate's rule admits every request");
    assert.deepEqual((await exchange({ paths: ["/admin", "/public/a"] })).map((r) => r.status), [403, 200], "without one, only the other rule's requests");
  });

  test("rules of two CAs on one port: a certificate meets only the rules of its own CA, with their names only; none fails the handshake", async () => {
    material.put(copy("configmap.x.other-ca", "1", { "ca.crt": otherCa.cert }));
    const otherCaRule = { ca: { configMapName: "other-ca", key: "ca.crt" }, subjectAltNames: ["*.other.shop.example"] };
    world = compileHttpWorld([ebpf("api", { ingress: [rule({ termination, clientCertificate }), rule({ termination, clientCertificate: otherCaRule })] })]);
    logLines.length = 0;
    const ofOtherCa = issueCertificate(otherCa, { names: ["DNS:web.other.shop.example"] });
    // Each names what the other CA's rule lists: a chain to one CA never counts for the other rule's names.
    const crossed = [issueCertificate(clientCa, { names: ["DNS:web.other.shop.example"] }), clients.otherCa as TestCertificate];
    for (const version of ["TLSv1.2", "TLSv1.3"] as const) {
      assert.deepEqual((await exchange({ version, client: clients.good })).map((r) => r.status), [200], `${version}: the first CA's`);
      assert.deepEqual((await exchange({ version, client: ofOtherCa })).map((r) => r.status), [200], `${version}: the second CA's`);
      for (const client of crossed) assert.equal((await exchange({ version, client }))[0]?.status, "reset", version);
      assert.match(String((await exchange({ version }))[0]?.status), /^error ERR_SSL_.*ALERT/, `${version}: no certificate`);
    }
    const refusals = logLines.filter((line) => line.flow === "tls" && line.verdict === "refused").map((line) => line.reason);
    assert.deepEqual(refusals, Array(2).fill(["san-not-allowed", "san-not-allowed", "no-client-certificate"]).flat());
  });

  test("ALPN: HTTP/1.1 is chosen over h2; HTTP/2 with prior knowledge inside TLS is judged per stream", async () => {
    world = compileHttpWorld([ebpf("api", { ingress: [rule({ termination }, publicGets)] })]);
    const [offered] = await exchange({ alpn: ["h2", "http/1.1"] });
    assert.equal(offered?.status, 200);
    assert.equal(offered?.socket.alpnProtocol, "http/1.1");
    plainPort = () => (h2cUpstream.address() as AddressInfo).port;
    const session = http2.connect("https://api.shop.example", {
      createConnection: () => tls.connect({ port: proxyPort(), host: "127.0.0.1", servername: "api.shop.example", ca: serverCa.cert, ALPNProtocols: [] }),
    });
    session.on("error", () => undefined);
    try {
      const statuses = await Promise.all(["/admin", "/public/a"].map((path) => h2Answer(session, path)));
      assert.deepEqual(statuses, [[403, "Access denied"], [200, "h2c GET /public/a"]]);
    } finally {
      session.close();
      await once(session, "close");
      plainPort = () => upstreamPort;
    }
  });

  test("alpn: [h2]: a client offering only h2 (as gRPC clients do) negotiates it, its streams judged and sent on as h2c; one offering only http/1.1 fails the handshake", { timeout: 20_000 }, async () => {
    world = compileHttpWorld([ebpf("api", { ingress: [rule({ termination: { ...termination, alpn: ["h2"] } }, publicGets)] })]);
    plainPort = () => (h2cUpstream.address() as AddressInfo).port;
    let negotiated: string | false | null = null;
    const session = http2.connect("https://api.shop.example", {
      createConnection: () => {
        const socket = tls.connect({ port: proxyPort(), host: "127.0.0.1", servername: "api.shop.example", ca: serverCa.cert, ALPNProtocols: ["h2"] });
        socket.once("secureConnect", () => (negotiated = socket.alpnProtocol));
        return socket;
      },
    });
    session.on("error", () => undefined);
    try {
      const statuses = await Promise.all(["/admin", "/public/a"].map((path) => h2Answer(session, path)));
      assert.equal(negotiated, "h2");
      assert.deepEqual(statuses, [[403, "Access denied"], [200, "h2c GET /public/a"]]);
    } finally {
      session.close();
      await once(session, "close");
      plainPort = () => upstreamPort;
    }
    const [refused] = await exchange({ alpn: ["http/1.1"] });
    assert.match(String(refused?.status), /^error|reset/, "no protocol in common: the handshake fails");
  });

  test("re-encrypted to the pod, verified with upstreamCA", async () => {
    const upstreamCA = { configMapName: "server-ca", key: "ca.crt" };
    world = compileHttpWorld([ebpf("api", { ingress: [rule({ termination: { ...termination, upstream: "TLS", upstreamCA } }, publicGets)] })]);
    const [result] = await exchange({});
    assert.equal(result?.status, 200);
    assert.equal(result?.body, "tls GET /public/a");
    world = compileHttpWorld([ebpf("api", { ingress: [rule({ termination: { ...termination, upstream: "TLS", upstreamCA: { configMapName: "client-ca", key: "ca.crt" } } }, publicGets)] })]);
    assert.equal((await exchange({}))[0]?.status, 502, "a pod certificate the upstream CA does not sign is refused: 502");
  });

  test("no http on the rule: the decrypted stream is passed on as it is, its bytes counted each way under the rule", async () => {
    world = compileHttpWorld([ebpf("api", { ingress: [rule({ termination, clientCertificate })] })]);
    const atPod: Promise<[number, number]>[] = [];
    const counting = (socket: net.Socket) => atPod.push(once(socket, "close").then(() => [socket.bytesRead, socket.bytesWritten]));
    /** The counts of the rule's series now (earlier tests' connections count under the same rule). */
    const counted = () => ["to-upstream", "to-client"].map((direction) => {
      const series = new RegExp(`palisade_proxy_passed_bytes_total\\{direction="${direction}",policy="EBPFNetworkPolicy x/api",rule="ingress\\[0\\]\\.tls"\\} (\\d+)`);
      return Number(series.exec(proxy.renderMetrics())?.[1] ?? 0);
    });
    const before = counted();
    plainUpstream.on("connection", counting);
    try {
      assert.deepEqual((await exchange({ client: clients.good, paths: ["/admin", "/anything"] })).map((r) => [r.status, r.body]), [[200, "plain GET /admin"], [200, "plain GET /anything"]]);
      assert.equal(atPod.length, 1);
      const [[read, written]] = (await Promise.all(atPod)) as [[number, number]];
      assert.ok(read > 0 && written > 0);
      // Counted when the connection has ended: exactly the plain text the pod read and wrote.
      for (let waited = 0; counted()[1] === before[1] && waited < 5000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
      const after = counted();
      assert.deepEqual([(after[0] ?? 0) - (before[0] ?? 0), (after[1] ?? 0) - (before[1] ?? 0)], [read, written]);
    } finally {
      plainUpstream.off("connection", counting);
    }
  });

  test("missing or malformed material, and rules that disagree, reset the connection and say why", async () => {
    logLines.length = 0;
    world = compileHttpWorld([ebpf("api", { ingress: [rule({ termination: { certificate: { secretName: "absent-tls" } } })] })]);
    assert.equal((await exchange({}))[0]?.status, "reset");
    world = compileHttpWorld([ebpf("api", { ingress: [rule({ termination: { certificate: { secretName: "broken-tls" } } })] })]);
    assert.equal((await exchange({}))[0]?.status, "reset");
    world = compileHttpWorld([ebpf("api", { ingress: [rule({ termination }), rule({ termination: { certificate: { secretName: "other-tls" } } })] })]);
    assert.equal((await exchange({}))[0]?.status, "reset");
    world = compileHttpWorld([ebpf("api", { ingress: [rule({ termination }), rule({ serverNames: ["api.shop.example"] })] })]);
    assert.equal((await exchange({}))[0]?.status, "reset");
    const reasons = logLines.filter((line) => line.flow === "tls").map((line) => String(line.reason ?? line.rule));
    assert.match(reasons[0] ?? "", /^material-missing: Secret x\/absent-tls is missing/);
    assert.match(reasons[1] ?? "", /^material-missing: Secret x\/broken-tls is malformed/);
    assert.match(reasons[2] ?? "", /rules terminating the connection name different certificates, upstreams or ALPN protocols/);
    assert.match(reasons[3] ?? "", /rules passing the connection on unchanged and rules terminating it both admit it/);
  });

  test("a rotated certificate is presented to the next connection, while an open connection goes on", async () => {
    world = compileHttpWorld([ebpf("api", { ingress: [rule({ termination }, publicGets)] })]);
    const [before] = await exchange({ keepOpen: true });
    assert.equal(before?.serverCertificate, "DNS:api.shop.example");
    material.put(copy("secret.x.api-tls", "2", { "tls.crt": rotatedCert.cert, "tls.key": rotatedCert.key }));
    const [afterRotation] = await exchange({});
    assert.equal(afterRotation?.serverCertificate, "DNS:api.shop.example, DNS:rotated.shop.example");
    // The connection opened before goes on with the certificate it started with.
    const socket = before?.socket as tls.TLSSocket;
    socket.write("GET /public/again HTTP/1.1\r\nHost: api.shop.example\r\n\r\n");
    const [chunk] = (await once(socket, "data")) as [Buffer];
    assert.match(chunk.toString(), /^HTTP\/1\.1 200/);
    socket.destroy();
    material.put(copy("secret.x.api-tls", "3", { "tls.crt": proxyCert.cert, "tls.key": proxyCert.key }));
  });

  test("a WebSocket inside a terminated connection: judged, switched, echoed; the pod's reset ends the client's TLS connection", async () => {
    world = compileHttpWorld([ebpf("api", { ingress: [rule({ termination }, publicGets)] })]);
    for (const [path, resets] of [["/public/ws", false], ["/public/ws-reset", true]] as const) {
      const socket = tls.connect({ port: proxyPort(), host: "127.0.0.1", servername: "api.shop.example", ca: serverCa.cert, ALPNProtocols: ["http/1.1"] });
      socket.on("error", () => undefined);
      await once(socket, "secureConnect");
      socket.write(`GET ${path} HTTP/1.1\r\nHost: api.shop.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      let received = Buffer.alloc(0);
      while (!received.includes("\r\n\r\n")) received = Buffer.concat([received, (await once(socket, "data"))[0] as Buffer]);
      assert.match(received.toString("latin1"), /^HTTP\/1\.1 101 /);
      const closed = once(socket, "close");
      socket.write(encodeFrame({ fin: true, opcode: 0x1, payload: Buffer.from("inside TLS") }, Buffer.from([1, 2, 3, 4])));
      if (resets) {
        await closed;
        continue;
      }
      const reader = new FrameReader();
      let frames = reader.push(received.subarray(received.indexOf("\r\n\r\n") + 4));
      while (frames.length === 0) frames = reader.push((await once(socket, "data"))[0] as Buffer);
      assert.equal(frames[0]?.payload.toString(), "inside TLS");
      socket.destroy();
    }
    assert.deepEqual((await exchange({})).map((r) => r.status), [200], "the proxy goes on");
  });
});
