/**
 * TLS server-name rules on the dev cluster with real clients: `dev up --nodes
 * 2`, a TLS server in pod b on node 1 (Node's HTTPS server with a certificate
 * made here with openssl), clients a on the same node and c on the other, and
 * an egress EBPFNetworkPolicy on a and c allowing TLS to b:8443 only for
 * `api.shop.example` and `*.github.com`. Checked with curl and openssl
 * s_client from the pods' namespaces, over IPv4 and IPv6: allowed names reach
 * the server (its own certificate: TLS is not terminated; it sees the client's
 * own address), another name and no name are reset; a flow no tls rule covers
 * never reaches the proxy; the proxy's counters and flow log name the policy,
 * the rule and the name seen; a ClientHello split over many segments is read
 * whole. Needs root and the cached control plane.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { agentMetricsUrl, devNodeSpec, proxyMetricsUrl } from "../../src/devcluster/index.ts";
import type { DevNetwork } from "../../src/devcluster/index.ts";
import { DevCli } from "../lib/dev-cli.ts";
import { makeCertificate } from "../lib/tls-certificate.ts";
import { testFolder } from "../lib/test-folder.ts";

const cluster = new DevCli(testFolder("tls"));
const x = `pl-tls-${Math.random().toString(16).slice(2, 8)}`;
const PORT = 8443;
let network: DevNetwork;
let a: { netns: string; ips: string[] };
let b: { netns: string; ips: string[] };
let c: { netns: string; ips: string[] };
let server: ChildProcess | undefined;

/** curl https://NAME:PORT/ from `netns`, NAME resolved to `ip` (no name: the address itself, so no SNI). */
function curl(netns: string, ip: string, name: string | undefined): { status: number | null; body: string; stderr: string } {
  const host = ip.includes(":") ? `[${ip}]` : ip;
  const target = name === undefined ? [`https://${host}:${PORT}/`] : ["--resolve", `${name}:${PORT}:${host}`, `https://${name}:${PORT}/`];
  const run = spawnSync("ip", ["netns", "exec", netns, "curl", "-sS", "-k", "--max-time", "10", ...target], { encoding: "utf8" });
  return { status: run.status, body: run.stdout, stderr: run.stderr };
}

async function metric(base: string, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return text.split("\n").filter((line) => pattern.test(line)).reduce((sum, line) => sum + Number(line.split(" ").at(-1)), 0);
}

before(async () => {
  cluster.up(2);
  network = cluster.network();
  cluster.runPod(x, "a", 1, [80]);
  cluster.runPod(x, "b", 1, [80]);
  cluster.runPod(x, "c", 2, [80]);
  [a, b, c] = [cluster.pod(x, "a"), cluster.pod(x, "b"), cluster.pod(x, "c")];
  const certificate = makeCertificate(["api.shop.example", "*.github.com", "other.example"], cluster.folder.root);
  const script = `
    const https = require("node:https");
    const fs = require("node:fs");
    const server = https.createServer({ key: fs.readFileSync(${JSON.stringify(certificate.keyPath)}), cert: fs.readFileSync(${JSON.stringify(certificate.certPath)}) }, (request, response) =>
      response.end(JSON.stringify({ servername: request.socket.servername, client: request.socket.remoteAddress.replace(/^::ffff:/, "") })));
    server.listen(${PORT}, "::", () => console.log("listening"));`;
  server = spawn("nsenter", [`--net=/run/netns/${b.netns}`, process.execPath, "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  const started = server;
  await new Promise<void>((resolve, reject) => {
    started.stdout?.once("data", () => resolve());
    started.once("exit", (code) => reject(new Error(`the TLS server in pod b exited (${String(code)}) before listening`)));
  });
  cluster.apply({
    apiVersion: "palisade.dev/v1alpha1",
    kind: "EBPFNetworkPolicy",
    metadata: { name: "sni", namespace: x },
    spec: {
      selector: { matchExpressions: [{ key: "app", operator: "In", values: ["a", "c"] }] },
      policyTypes: ["Egress"],
      egress: [
        { to: [{ podSelector: { matchLabels: { app: "b" } } }], ports: [{ protocol: "TCP", port: PORT }], tls: { serverNames: ["api.shop.example", "*.github.com"] } },
        { to: [{ podSelector: { matchLabels: { app: "b" } } }], ports: [{ protocol: "TCP", port: 80 }] },
      ],
    },
  });
  cluster.ok("wait", "--for=programmed", "--timeout", "60s");
});

after(async () => {
  server?.kill();
  await cluster.folder.remove();
});

test("an allowed name reaches the server through TLS it does not terminate, from the client's own address; another name and no name are reset", () => {
  for (const [client, family] of [[a, 0], [c, 0], [a, 1], [c, 1]] as const) {
    const ip = b.ips[family] as string;
    for (const name of ["api.shop.example", "API.GitHub.com"]) {
      const allowed = curl(client.netns, ip, name);
      assert.equal(allowed.status, 0, `${name} from ${client.ips[family]}: ${allowed.stderr}`);
      // curl sends the URL's host in lower case.
      assert.deepEqual(JSON.parse(allowed.body), { servername: name.toLowerCase(), client: client.ips[family] }, "the server got the ClientHello, from the client's address");
    }
    for (const name of ["other.example", "github.com", undefined]) {
      const refused = curl(client.netns, ip, name);
      assert.notEqual(refused.status, 0, `${name ?? "no SNI"} from ${client.ips[family]} passed`);
      assert.match(refused.stderr, /reset by peer/i, `${name ?? "no SNI"} from ${client.ips[family]}`);
    }
  }
});

test("openssl s_client, TLS 1.2 and 1.3: -servername passes, -noservername is reset", () => {
  for (const version of ["-tls1_2", "-tls1_3"]) {
    const run = (sni: string[]) => spawnSync("ip", ["netns", "exec", a.netns, "openssl", "s_client", version, ...sni, "-connect", `${b.ips[0]}:${PORT}`], { encoding: "utf8", input: "", timeout: 15_000 });
    const named = run(["-servername", "x.github.com"]);
    assert.match(named.stdout, /BEGIN CERTIFICATE/, `${version} -servername got no certificate: ${named.stderr}`);
    const unnamed = run(["-noservername"]);
    assert.doesNotMatch(unnamed.stdout, /BEGIN CERTIFICATE/, `${version} -noservername got the server's certificate`);
    assert.match(unnamed.stdout, /handshake has read 0 bytes/, `${version} -noservername`);
  }
});

/**
 * A Node TLS client in `netns` whose ClientHello leaves in 40-byte TCP segments a few milliseconds apart
 * (a Duplex between TLS and the socket splits its writes); what the server answered, or the error.
 */
function splitHelloClient(netns: string, ip: string, name: string): string {
  const script = `
    const net = require("node:net");
    const tls = require("node:tls");
    const { Duplex } = require("node:stream");
    const raw = net.connect(${PORT}, ${JSON.stringify(ip)});
    raw.setNoDelay(true);
    const pace = () => new Promise((resolve) => setTimeout(resolve, 5));
    const split = new Duplex({
      async write(chunk, _encoding, done) {
        for (let at = 0; at < chunk.length; at += 40) { raw.write(chunk.subarray(at, at + 40)); await pace(); }
        done();
      },
      final(done) { raw.end(); done(); },
      read() { raw.resume(); },
    });
    raw.on("data", (chunk) => { if (!split.push(chunk)) raw.pause(); });
    raw.on("end", () => split.push(null));
    raw.on("error", (error) => split.destroy(error));
    const client = tls.connect({ socket: split, servername: ${JSON.stringify(name)}, rejectUnauthorized: false }, () => client.write("GET / HTTP/1.0\\r\\n\\r\\n"));
    let answer = "";
    client.on("data", (chunk) => (answer += chunk));
    client.on("end", () => console.log(answer.split("\\r\\n\\r\\n").at(-1)));
    client.on("error", (error) => console.log("error " + error.code));`;
  const run = spawnSync("nsenter", [`--net=/run/netns/${netns}`, process.execPath, "-e", script], { encoding: "utf8", timeout: 20_000 });
  assert.equal(run.status, 0, `the split-hello client failed: ${run.stderr}`);
  return run.stdout.trim();
}

test("a ClientHello split over many TCP segments is read whole: allowed and refused as when sent at once", () => {
  const allowed = splitHelloClient(a.netns, b.ips[0] as string, "api.shop.example");
  assert.deepEqual(JSON.parse(allowed), { servername: "api.shop.example", client: a.ips[0] });
  assert.equal(splitHelloClient(a.netns, b.ips[0] as string, "other.example"), "error ECONNRESET");
});

test("a flow no tls rule covers stays in the kernel; the proxy's counters and flow log name the policy, rule and name seen", async () => {
  const node = devNodeSpec(network, 1);
  const steered = await metric(agentMetricsUrl(node), /^palisade_verdicts_total\{reason="to-proxy"\}/);
  assert.equal(cluster.reaches(`${x}/a`, `${x}/b`, 80), true);
  assert.equal(await metric(agentMetricsUrl(node), /^palisade_verdicts_total\{reason="to-proxy"\}/), steered, "port 80 has no tls rule: nothing steered");
  curl(a.netns, b.ips[0] as string, "other.example");
  assert.ok((await metric(agentMetricsUrl(node), /^palisade_verdicts_total\{reason="to-proxy"\}/)) > steered, `port ${PORT} is steered`);
  const policy = `EBPFNetworkPolicy ${x}/sni`;
  assert.ok((await metric(proxyMetricsUrl(node), new RegExp(`^palisade_proxy_tls_connections_total\\{verdict="refused",policy="${policy}"`))) >= 1, "refusals counted by policy");
  assert.ok((await metric(proxyMetricsUrl(node), new RegExp(`^palisade_proxy_tls_connections_total\\{verdict="allowed",policy="${policy}",rule="egress\\[0\\]\\.tls"`))) >= 1, "allowed connections counted by rule");
  // The allowed connections spliced in the kernel have ended: a ClientHello and more up, a certificate and more down, each.
  for (const direction of ["to-upstream", "to-client"]) {
    assert.ok((await metric(proxyMetricsUrl(node), new RegExp(`^palisade_proxy_passed_bytes_total\\{direction="${direction}",policy="${policy}",rule="egress\\[0\\]\\.tls"`))) > 500, `spliced bytes ${direction} counted by rule`);
  }
  const log = readFileSync(join(cluster.folder.layout.logs, `proxy-${node.name}.log`), "utf8");
  assert.match(log, /"flow":"tls","verdict":"refused".*"serverName":"other\.example"/);
});
