/**
 * TLS termination and client certificates on the dev cluster with real
 * clients: `dev up --nodes 2`, pod b on node 1 serving plain HTTP/1.1 on 8443,
 * clients a on the same node and c on the other, and an ingress policy on b
 * terminating TLS with the certificate of Secret b-tls, asking for a client
 * certificate of CA shop-ca naming the frontend, and admitting GET /public/
 * only. Certificates are made here with openssl; the operator copies the
 * Secret and ConfigMap the test creates to palisade-secrets for the proxies.
 * Checked with curl and openssl s_client from the pods' namespaces, TLS 1.2
 * and 1.3, IPv4 and IPv6: the proxy's certificate, 200 and 403 from the
 * client's own address; 421 for a request naming another host than the
 * ClientHello's server name, over HTTP/1.1 and HTTP/2 (ALPN h2, to b's
 * HTTP/2 port); clients with a wrong name, an expired certificate,
 * another CA's or none are refused and the flow log says why; rotating the
 * certificate and the CA takes effect for new connections while an open one
 * goes on. Needs root and the cached control plane.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import { devNodeSpec, proxyMetricsUrl } from "../../src/devcluster/index.ts";
import { DevCli } from "../lib/dev-cli.ts";
import { issueCertificate, makeCa } from "../lib/tls-certificate.ts";
import type { TestCa, TestCertificate } from "../lib/tls-certificate.ts";
import { applyTlsSource } from "../lib/tls-material-source.ts";
import { testFolder } from "../lib/test-folder.ts";

const cluster = new DevCli(testFolder("tls-term"));
const x = `pl-tlst-${Math.random().toString(16).slice(2, 8)}`;
const PORT = 8443;
/** Where b serves HTTP/2 (h2c), behind a rule terminating TLS with ALPN h2. */
const H2_PORT = 9443;
const NAME = "api.shop.example";
const FRONTEND = "spiffe://cluster.local/ns/shop/sa/frontend";
let a: { netns: string; ips: string[] };
let b: { netns: string; ips: string[] };
let c: { netns: string; ips: string[] };
let serverCa: TestCa;
let clientCa: TestCa;
const clients = {} as Record<"good" | "wrongSan" | "expired" | "otherCa", TestCertificate>;
const held: ReturnType<typeof spawn>[] = [];

/**
 * curl https://api.shop.example:8443/PATH from `netns` to `ip`, with a client certificate or none; the status, body and
 * curl's error. `more`: another port, HTTP/2 (offered by ALPN, as the rule on H2_PORT asks), another Host (`:authority`).
 */
function curl(netns: string, ip: string, path: string, client: TestCertificate | undefined, tlsMax = "1.3", more: { port?: number; http2?: boolean; host?: string } = {}): { code: number | null; status: string; body: string; stderr: string } {
  const host = ip.includes(":") ? `[${ip}]` : ip;
  const port = more.port ?? PORT;
  const run = spawnSync("ip", [
    "netns", "exec", netns, "curl", "-sS", "--max-time", "10", more.http2 ? "--http2" : "--http1.1", "--tlsv1.2", "--tls-max", tlsMax, "--cacert", serverCa.certPath,
    ...(client ? ["--cert", client.certPath, "--key", client.keyPath] : []),
    ...(more.host ? ["-H", `Host: ${more.host}`] : []),
    "--resolve", `${NAME}:${port}:${host}`, "-w", "\n%{http_code}", `https://${NAME}:${port}${path}`,
  ], { encoding: "utf8" });
  const lines = run.stdout.split("\n");
  return { code: run.status, status: lines.at(-1) ?? "", body: lines.slice(0, -1).join("\n"), stderr: run.stderr };
}

/** Waits until `check` holds (the proxy learns a new copy by its watch, within seconds). */
function eventually(what: string, check: () => boolean): void {
  const deadline = Date.now() + 60_000;
  while (!check()) {
    assert.ok(Date.now() < deadline, `${what}: not within 60 s`);
    spawnSync("sleep", ["0.5"]);
  }
}

/**
 * A TLS connection held open from `netns` (a Node client): it sends a request at once and prints the
 * status and the fingerprint of the certificate it was served, then one more request per line written to
 * `next()`, on the same connection.
 */
function holdConnection(netns: string, ip: string, client: TestCertificate): { next(): Promise<string>; close(): void } {
  const script = `
    const tls = require("node:tls");
    const fs = require("node:fs");
    const socket = tls.connect({ host: ${JSON.stringify(ip)}, port: ${PORT}, servername: ${JSON.stringify(NAME)}, ca: fs.readFileSync(${JSON.stringify(serverCa.certPath)}),
      cert: fs.readFileSync(${JSON.stringify(client.certPath)}), key: fs.readFileSync(${JSON.stringify(client.keyPath)}), ALPNProtocols: ["http/1.1"] });
    const ask = () => socket.write("GET /public/held HTTP/1.1\\r\\nHost: ${NAME}\\r\\n\\r\\n");
    let served = "";
    socket.on("secureConnect", () => {
      served = socket.getPeerX509Certificate()?.fingerprint256 ?? "none";
      ask();
    });
    socket.on("data", (chunk) => { if (String(chunk).startsWith("HTTP/")) console.log(String(chunk).split(" ")[1] + " " + served); });
    socket.on("error", (error) => console.log("error " + error.code));
    socket.on("close", () => process.exit(0));
    require("node:readline").createInterface({ input: process.stdin }).on("line", ask);`;
  const child = spawn("nsenter", [`--net=/run/netns/${netns}`, process.execPath, "-e", script], { stdio: ["pipe", "pipe", "inherit"] });
  held.push(child);
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const waiting: ((line: string) => void)[] = [];
  const ready: string[] = [];
  const deliver = (line: string) => {
    const waiter = waiting.shift();
    if (waiter) waiter(line);
    else ready.push(line);
  };
  lines.on("line", deliver);
  // A client that is gone answers "exited" from then on, so that a test fails rather than waits.
  child.once("exit", (code) => {
    for (let i = 0; i < 8; i++) deliver(`exited ${String(code)}`);
  });
  let asked = false;
  return {
    next() {
      if (asked) child.stdin?.write("\n");
      asked = true;
      const line = ready.shift();
      return line !== undefined ? Promise.resolve(line) : new Promise((resolve) => waiting.push(resolve));
    },
    close: () => child.kill(),
  };
}

function fingerprintOf(certificate: TestCertificate): string {
  const run = spawnSync("openssl", ["x509", "-noout", "-fingerprint", "-sha256", "-in", certificate.certPath], { encoding: "utf8" });
  return run.stdout.trim().split("=")[1] ?? "";
}

before(() => {
  cluster.up(2);
  cluster.runPod(x, "a", 1, [80]);
  cluster.runPod(x, "b", 1, [{ port: PORT, name: "http" }, { port: H2_PORT, name: "http2" }]);
  cluster.runPod(x, "c", 2, [80]);
  [a, b, c] = [cluster.pod(x, "a"), cluster.pod(x, "b"), cluster.pod(x, "c")];
  serverCa = makeCa("server-ca");
  clientCa = makeCa("shop-ca");
  const otherCa = makeCa("other-ca");
  clients.good = issueCertificate(clientCa, { names: [`URI:${FRONTEND}`] });
  clients.wrongSan = issueCertificate(clientCa, { names: ["URI:spiffe://cluster.local/ns/shop/sa/intruder"] });
  clients.expired = issueCertificate(clientCa, { names: [`URI:${FRONTEND}`], startDate: "20200101000000Z", endDate: "20200102000000Z" });
  clients.otherCa = issueCertificate(otherCa, { names: [`URI:${FRONTEND}`] });
  const serverCertificate = issueCertificate(serverCa, { names: [`DNS:${NAME}`] });
  applyTlsSource(cluster, { kind: "Secret", namespace: x, name: "b-tls" }, { "tls.crt": serverCertificate.cert, "tls.key": serverCertificate.key });
  applyTlsSource(cluster, { kind: "ConfigMap", namespace: x, name: "shop-ca" }, { "ca.crt": clientCa.cert });
  cluster.apply({
    apiVersion: "palisade.dev/v1alpha1",
    kind: "EBPFNetworkPolicy",
    metadata: { name: "b-mtls", namespace: x },
    spec: {
      selector: { matchLabels: { app: "b" } },
      ingress: [{
        from: [{ podSelector: { matchExpressions: [{ key: "app", operator: "In", values: ["a", "c"] }] } }],
        ports: [{ protocol: "TCP", port: PORT }],
        tls: {
          serverNames: [NAME],
          termination: { certificate: { secretName: "b-tls" } },
          clientCertificate: { ca: { configMapName: "shop-ca", key: "ca.crt" }, subjectAltNames: [FRONTEND, "*.frontend.shop.example"] },
        },
        http: [{ method: "GET", path: { prefix: "/public/" } }],
      }, {
        from: [{ podSelector: { matchExpressions: [{ key: "app", operator: "In", values: ["a", "c"] }] } }],
        ports: [{ protocol: "TCP", port: H2_PORT }],
        tls: { serverNames: [NAME], termination: { certificate: { secretName: "b-tls" }, alpn: ["h2"] } },
        http: [{ path: { prefix: "/" } }],
      }],
    },
  });
  cluster.ok("wait", "--for=programmed", "--timeout", "60s");
  eventually("the operator copies the material and the proxies read it", () => curl(a.netns, b.ips[0] as string, "/public/a", clients.good).status === "200" && curl(c.netns, b.ips[0] as string, "/public/a", clients.good).status === "200");
});

after(async () => {
  for (const child of held) child.kill();
  await cluster.folder.remove();
});

test("a client certificate naming the frontend: the proxy's certificate, 200 for /public/ and 403 for the rest, from the client's own address, TLS 1.2 and 1.3, IPv4 and IPv6", () => {
  for (const [client, family] of [[a, 0], [c, 0], [a, 1], [c, 1]] as const) {
    for (const tlsMax of ["1.2", "1.3"]) {
      const ip = b.ips[family] as string;
      const allowed = curl(client.netns, ip, "/public/a", clients.good, tlsMax);
      assert.equal(allowed.status, "200", `from ${client.ips[family]} TLS ${tlsMax}: ${allowed.stderr}`);
      const body = JSON.parse(allowed.body) as { path: string; client: string };
      assert.equal(body.path, "/public/a");
      assert.equal(body.client.replace(/^::ffff:/, ""), client.ips[family], "the pod sees the client's own address, in plain text");
      assert.equal(curl(client.netns, ip, "/admin", clients.good, tlsMax).status, "403");
    }
  }
});

test("openssl s_client, TLS 1.2 and 1.3: the certificate of Secret b-tls, and a request judged inside", () => {
  for (const version of ["-tls1_2", "-tls1_3"]) {
    const run = spawnSync("ip", ["netns", "exec", a.netns, "openssl", "s_client", version, "-servername", NAME, "-connect", `${b.ips[0]}:${PORT}`, "-CAfile", serverCa.certPath,
      "-cert", clients.good.certPath, "-key", clients.good.keyPath, "-ign_eof"], { encoding: "utf8", input: `GET /public/s HTTP/1.1\r\nHost: ${NAME}\r\nConnection: close\r\n\r\n`, timeout: 15_000 });
    assert.match(run.stdout, /Verify return code: 0 \(ok\)/, `${version}: ${run.stderr}`);
    assert.match(run.stdout, /issuer=CN ?= ?server-ca/, version);
    assert.match(run.stdout, /HTTP\/1\.1 200/, version);
  }
});

test("a request for another host than the ClientHello's server name gets 421 and the connection goes on, HTTP/1.1 and HTTP/2 (ALPN h2); the flow log names both", () => {
  const ip = b.ips[0] as string;
  assert.equal(curl(a.netns, ip, "/public/a", clients.good, "1.3", { host: "admin.shop.example" }).status, "421");
  assert.equal(curl(a.netns, ip, "/public/a", clients.good, "1.3", { host: `${NAME.toUpperCase()}:${PORT}` }).status, "200", "the same name, upper case, with the port");
  const h2 = curl(a.netns, ip, "/public/a", undefined, "1.3", { port: H2_PORT, http2: true, host: "admin.shop.example" });
  assert.equal(h2.status, "421", h2.stderr);
  const h2Allowed = curl(a.netns, ip, "/public/a", undefined, "1.3", { port: H2_PORT, http2: true });
  assert.equal(h2Allowed.status, "200", h2Allowed.stderr);
  // One connection: the 421 for the other host, then 200 for the ClientHello's.
  const run = spawnSync("ip", ["netns", "exec", a.netns, "openssl", "s_client", "-servername", NAME, "-connect", `${ip}:${PORT}`, "-CAfile", serverCa.certPath,
    "-cert", clients.good.certPath, "-key", clients.good.keyPath, "-ign_eof"], { encoding: "utf8", input: `GET /public/s HTTP/1.1\r\nHost: admin.shop.example\r\n\r\nGET /public/s HTTP/1.1\r\nHost: ${NAME}\r\nConnection: close\r\n\r\n`, timeout: 15_000 });
  assert.match(run.stdout, /HTTP\/1\.1 421 Misdirected Request[^]*HTTP\/1\.1 200/, run.stderr);
  const log = readFileSync(join(cluster.folder.layout.logs, `proxy-${devNodeSpec(cluster.network(), 1).name}.log`), "utf8");
  const lines = log.split("\n").filter((line) => line.includes('"verdict":"misdirected"'));
  assert.ok(lines.some((line) => line.includes('"protocol":"HTTP/2"')), "an HTTP/2 line");
  for (const line of lines) {
    assert.match(line, /"status":421/);
    assert.match(line, /"host":"admin\.shop\.example"/);
    assert.match(line, new RegExp(`"serverName":"${NAME.replace(/\./g, "\\.")}"`));
    assert.match(line, /"policy":"EBPFNetworkPolicy [^"]+\/b-mtls","rule":"ingress\[[01]\]\.tls"/);
  }
  assert.equal(lines.length, 3, "one line per 421");
});

test("a wrong name, an expired certificate, another CA's and none are refused, and the flow log says why with the names presented", async () => {
  // No certificate fails the handshake with OpenSSL's alert; the others are reset after it (docs/tls.md says why).
  const alerts: Record<string, RegExp> = { "1.2": /sslv3 alert handshake failure/, "1.3": /tlsv13 alert certificate required/ };
  for (const tlsMax of ["1.2", "1.3"]) {
    for (const client of [clients.wrongSan, clients.expired, clients.otherCa, undefined]) {
      const refused = curl(a.netns, b.ips[0] as string, "/public/a", client, tlsMax);
      assert.notEqual(refused.status, "200", `TLS ${tlsMax}`);
      assert.notEqual(refused.code, 0, `TLS ${tlsMax}: curl failed`);
      // A reset meets curl at its last handshake read, its first read after, or its getpeername() ("not connected").
      assert.match(refused.stderr, client ? /Connection reset by peer|not connected/ : (alerts[tlsMax] as RegExp), `TLS ${tlsMax}`);
      if (client) assert.doesNotMatch(refused.stderr, /alert/, `TLS ${tlsMax}`);
    }
  }
  const node = devNodeSpec(cluster.network(), 1);
  const log = readFileSync(join(cluster.folder.layout.logs, `proxy-${node.name}.log`), "utf8");
  for (const [reason, names] of [["san-not-allowed", "URI:spiffe://cluster.local/ns/shop/sa/intruder"], ["expired-client-certificate", `URI:${FRONTEND}`], ["untrusted-client-certificate", `URI:${FRONTEND}`]]) {
    assert.match(log, new RegExp(`"flow":"tls","verdict":"refused".*"reason":"${reason}".*"clientNames":\\["${names?.replace(/[/.]/g, "\\$&")}"\\]`), reason);
  }
  assert.match(log, /"reason":"no-client-certificate","clientNames":\[\]/);
  assert.doesNotMatch(log, /PRIVATE KEY/);
  const metrics = await (await fetch(`${proxyMetricsUrl(node)}/metrics`)).text();
  assert.match(metrics, /palisade_proxy_tls_terminations_total\{result="refused",reason="san-not-allowed"\} [1-9]/);
});

test("rotation: a new certificate and a new CA apply to new connections while an open connection goes on", async () => {
  const open = holdConnection(a.netns, b.ips[0] as string, clients.good);
  const [status, first] = (await open.next()).split(" ");
  assert.equal(status, "200", "the held connection got its answer");
  const rotated = issueCertificate(serverCa, { names: [`DNS:${NAME}`, "DNS:rotated.shop.example"] });
  applyTlsSource(cluster, { kind: "Secret", namespace: x, name: "b-tls" }, { "tls.crt": rotated.cert, "tls.key": rotated.key });
  const served = (): string => {
    const run = spawnSync("ip", ["netns", "exec", a.netns, "openssl", "s_client", "-servername", NAME, "-connect", `${b.ips[0]}:${PORT}`, "-cert", clients.good.certPath, "-key", clients.good.keyPath], { encoding: "utf8", input: "", timeout: 15_000 });
    const pem = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/.exec(run.stdout)?.[0] ?? "";
    return spawnSync("openssl", ["x509", "-noout", "-fingerprint", "-sha256"], { input: pem, encoding: "utf8" }).stdout.trim().split("=")[1] ?? "";
  };
  eventually("the rotated certificate is served", () => served() === fingerprintOf(rotated));
  assert.deepEqual((await open.next()).split(" "), ["200", first], "the open connection goes on, with the certificate it started with");
  // A new client CA: its clients pass, the old CA's are refused; the connection opened under the old CA goes on.
  const newCa = makeCa("shop-ca-2");
  const newClient = issueCertificate(newCa, { names: [`URI:${FRONTEND}`] });
  applyTlsSource(cluster, { kind: "ConfigMap", namespace: x, name: "shop-ca" }, { "ca.crt": newCa.cert });
  eventually("the new CA's client passes", () => curl(a.netns, b.ips[0] as string, "/public/a", newClient).status === "200");
  assert.notEqual(curl(a.netns, b.ips[0] as string, "/public/a", clients.good).status, "200", "the old CA's client is refused");
  assert.deepEqual((await open.next()).split(" "), ["200", first], "the connection opened under the old CA goes on");
  open.close();
});
