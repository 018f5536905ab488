/**
 * HTTP rules on the dev cluster with real clients: `dev up --nodes 2`, a
 * server pod b on node 1 answering HTTP/1.1 and HTTP/2 (prior knowledge), a
 * client a on the same node and c on the other, and an EBPFNetworkPolicy on b
 * with HTTP rules. Checked with curl from the pods' namespaces, over IPv4 and
 * IPv6: allowed requests get the server's 200 (and the server sees the
 * client's own address), refused ones the proxy's 403 on the same kept-alive
 * connection, a Deny rule refuses whatever allows, `/public/../admin` is
 * `/admin`; flows on ports without HTTP rules never reach the proxy; the
 * proxy's flow log and counters name the policy and rule; the proxy down
 * fails closed for ruled flows only; a WebSocket (Node's client in the pod)
 * through the rule echoes, and one to a denied path is refused. Needs root
 * and the cached control plane.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { agentMetricsUrl, devNodeSpec, proxyMetricsUrl } from "../../src/devcluster/index.ts";
import type { DevNetwork } from "../../src/devcluster/index.ts";
import { DevCli } from "../lib/dev-cli.ts";
import { eventually } from "../lib/eventually.ts";
import { testFolder } from "../lib/test-folder.ts";

const cluster = new DevCli(testFolder("http"));
const x = `pl-http-${Math.random().toString(16).slice(2, 8)}`;
let network: DevNetwork;
let a: { netns: string; ips: string[] };
let b: { netns: string; ips: string[] };
let c: { netns: string; ips: string[] };

interface CurlResult {
  status: number;
  body: string;
  connects: number;
}

/** curl from `netns`: one status line per URL, then the bodies; `connects` counts connections opened. */
function curl(netns: string, urls: string[], options: { http2?: boolean; headers?: string[]; method?: string } = {}): CurlResult[] {
  const args = ["netns", "exec", netns, "curl", "-sS", "--path-as-is", "--max-time", "10", options.http2 ? "--http2-prior-knowledge" : "--http1.1"];
  for (const header of options.headers ?? []) args.push("-H", header);
  if (options.method) args.push("-X", options.method);
  args.push("-w", "\n@@%{http_code} %{num_connects}@@\n", ...urls);
  const run = spawnSync("ip", args, { encoding: "utf8" });
  assert.equal(run.status, 0, `curl ${urls.join(" ")} from ${netns} failed: ${run.stderr}`);
  return [...run.stdout.matchAll(/([\s\S]*?)\n@@(\d+) (\d+)@@\n/g)].map((m) => ({ body: (m[1] ?? "").trim(), status: Number(m[2]), connects: Number(m[3]) }));
}

const url = (ip: string, port: number, path: string): string => `http://${ip.includes(":") ? `[${ip}]` : ip}:${port}${path}`;

async function metric(base: string, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return text.split("\n").filter((line) => pattern.test(line)).reduce((sum, line) => sum + Number(line.split(" ").at(-1)), 0);
}

before(() => {
  cluster.up(2);
  network = cluster.network();
  cluster.runPod(x, "a", 1, [80]);
  cluster.runPod(x, "b", 1, [80, { port: 8080, name: "http" }, { port: 8082, name: "http2" }]);
  cluster.runPod(x, "c", 2, [80]);
  [a, b, c] = [cluster.pod(x, "a"), cluster.pod(x, "b"), cluster.pod(x, "c")];
  cluster.apply({
    apiVersion: "palisade.dev/v1alpha1",
    kind: "EBPFNetworkPolicy",
    metadata: { name: "web", namespace: x },
    spec: {
      selector: { matchLabels: { app: "b" } },
      ingress: [
        {
          from: [{ podSelector: {} }],
          ports: [{ protocol: "TCP", port: 8080 }],
          http: [
            { method: "GET", path: { prefix: "/public/" } },
            { method: "POST", path: { exact: "/orders" }, headers: [{ name: "X-Tenant", exact: "blue" }] },
          ],
        },
        { from: [{ podSelector: {} }], ports: [{ protocol: "TCP", port: 8082 }], http: [{ method: "GET" }] },
        { action: "Deny", ports: [{ protocol: "TCP", port: 8080 }, { protocol: "TCP", port: 8082 }], http: [{ path: { prefix: "/admin" } }] },
        { from: [{ podSelector: {} }], ports: [{ protocol: "TCP", port: 80 }] },
      ],
    },
  });
  cluster.ok("wait", "--for=programmed", "--timeout", "60s");
});

after(() => cluster.folder.remove());

test("allowed requests reach the server, which sees the client's own address; refused ones get 403 on the same connection", () => {
  for (const [client, family] of [[a, 0], [c, 0], [a, 1], [c, 1]] as const) {
    const server = b.ips[family] as string;
    const [allowed, refused, again] = curl(client.netns, [url(server, 8080, "/public/x"), url(server, 8080, "/private"), url(server, 8080, "/public/y")]);
    assert.equal(allowed?.status, 200, `GET /public/x from ${client.ips[family]}`);
    const answer = JSON.parse(allowed?.body ?? "{}") as { client: string; path: string };
    assert.deepEqual([answer.client, answer.path], [client.ips[family], "/public/x"], "the server saw the client's own address");
    assert.deepEqual([refused?.status, refused?.body], [403, "Access denied"]);
    assert.equal(again?.status, 200);
    assert.deepEqual([allowed?.connects, refused?.connects, again?.connects], [1, 0, 0], "one kept-alive connection for the three requests");
  }
});

test("method, exact path and header must all hold; a Deny rule refuses whatever allows; dot segments are resolved first; Deny rules match repeated slashes merged too", () => {
  const server = b.ips[0] as string;
  assert.equal(curl(a.netns, [url(server, 8080, "/orders")], { method: "POST", headers: ["X-Tenant: blue"] })[0]?.status, 200);
  assert.equal(curl(a.netns, [url(server, 8080, "/orders")], { method: "POST", headers: ["X-Tenant: red"] })[0]?.status, 403);
  assert.equal(curl(a.netns, [url(server, 8080, "/orders")], { method: "GET", headers: ["X-Tenant: blue"] })[0]?.status, 403);
  assert.equal(curl(a.netns, [url(server, 8080, "/public/../admin/users")])[0]?.status, 403, "/public/../admin is /admin");
  assert.equal(curl(a.netns, [url(server, 8080, "/public/%2e%2e/admin")])[0]?.status, 403, "an encoded dot is a dot (RFC 3986 §6.2.2.2): /admin");
  assert.equal(curl(a.netns, [url(server, 8080, "/public/%2fadmin")])[0]?.status, 400, "an encoded slash could be read two ways: refused");
  assert.equal(curl(a.netns, [url(server, 8082, "//admin/users")])[0]?.status, 403, "servers that merge repeated slashes serve //admin as /admin");
});

/** Requests `paths` as streams of one HTTP/2 (prior knowledge) connection from `netns`, with Node's client; their statuses. */
function http2Streams(netns: string, ip: string, port: number, paths: string[]): number[] {
  const script = `
    const http2 = require("node:http2");
    const session = http2.connect(${JSON.stringify(url(ip, port, ""))});
    session.on("error", (e) => { console.error(e.message); process.exit(1); });
    (async () => {
      const statuses = [];
      for (const path of ${JSON.stringify(paths)}) {
        statuses.push(await new Promise((resolve, reject) => {
          const stream = session.request({ ":path": path });
          let status = 0;
          stream.on("response", (headers) => { status = headers[":status"]; });
          stream.on("error", reject);
          stream.resume();
          stream.on("close", () => resolve(status));
        }));
      }
      console.log(JSON.stringify({ statuses, sessions: 1 }));
      session.close();
    })();`;
  const run = spawnSync("nsenter", [`--net=/run/netns/${netns}`, process.execPath, "-e", script], { encoding: "utf8", timeout: 30_000 });
  assert.equal(run.status, 0, `HTTP/2 streams from ${netns}: ${run.stderr}`);
  return (JSON.parse(run.stdout) as { statuses: number[] }).statuses;
}

test("HTTP/2 with prior knowledge: each stream is judged, and the connection carries on after a 403", () => {
  for (const client of [a, c]) {
    // curl 7.88 (Debian 12) breaks HTTP/2 prior knowledge with several URLs even against a plain Node server: one request per run.
    const [allowed] = curl(client.netns, [url(b.ips[0] as string, 8082, "/anything")], { http2: true });
    assert.equal(allowed?.status, 200);
    assert.equal((JSON.parse(allowed?.body ?? "{}") as { protocol: string }).protocol, "HTTP/2");
    assert.equal(curl(client.netns, [url(b.ips[1] as string, 8082, "/admin")], { http2: true })[0]?.status, 403, "IPv6, denied path");
    // Servers that merge repeated slashes or drop ;parameters serve //admin/x and /;x/admin as /admin...: the Deny rule refuses them too.
    assert.deepEqual(http2Streams(client.netns, b.ips[0] as string, 8082, ["/a", "/admin/x", "//admin/x", "/;x/admin", "/b//c;d"]), [200, 403, 403, 403, 200]);
  }
});

/**
 * Node's WebSocket client run in `netns`, once per URL: three messages and their echoes, then a close;
 * `refused` when the handshake fails (a 403 is no 101).
 */
function webSockets(netns: string, urls: string[]): ({ echoes: string[]; code: number } | "refused")[] {
  const script = `
    const results = [];
    for (const url of JSON.parse(process.argv[1])) {
      results.push(await new Promise((resolve) => {
        const socket = new WebSocket(url);
        const echoes = [];
        socket.onerror = () => resolve("refused");
        socket.onopen = () => socket.send("m0");
        socket.onmessage = (event) => {
          echoes.push(event.data);
          if (echoes.length < 3) socket.send("m" + echoes.length);
          else socket.close(1000);
        };
        socket.onclose = (event) => event.wasClean && resolve({ echoes, code: event.code });
      }));
    }
    console.log(JSON.stringify(results));`;
  const run = spawnSync("ip", ["netns", "exec", netns, process.execPath, "--input-type=module", "-e", script, JSON.stringify(urls)], { encoding: "utf8", timeout: 20_000 });
  assert.equal(run.status, 0, `WebSockets from ${netns} failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as ({ echoes: string[]; code: number } | "refused")[];
}

test("a WebSocket through the HTTP rule: its handshake judged, its messages echoed both ways; the Deny rule refuses one", async () => {
  const node = devNodeSpec(network, 1);
  const before = await metric(proxyMetricsUrl(node), /^palisade_proxy_upgrades_total /);
  for (const [client, family] of [[a, 0], [c, 1]] as const) {
    const server = b.ips[family] as string;
    const ws = (path: string) => url(server, 8080, path).replace(/^http:/, "ws:");
    assert.deepEqual(webSockets(client.netns, [ws("/public/ws"), ws("/admin/ws")]), [{ echoes: ["m0", "m1", "m2"], code: 1000 }, "refused"], `from ${client.ips[family]}`);
  }
  assert.equal(await metric(proxyMetricsUrl(node), /^palisade_proxy_upgrades_total /), before + 2, "both switched connections counted on the server's node");
  const log = readFileSync(join(cluster.folder.layout.logs, `proxy-${node.name}.log`), "utf8");
  assert.match(log, /"verdict":"refused".*"path":"\/admin\/ws"/);
});

test("flows on a port without HTTP rules stay in the kernel; the proxy's counters and flow log name the rule", async () => {
  const node = devNodeSpec(network, 1);
  const steered = await metric(agentMetricsUrl(node), /^palisade_verdicts_total\{reason="to-proxy"\}/);
  assert.equal(cluster.reaches(`${x}/a`, `${x}/b`, 80), true);
  assert.equal(await metric(agentMetricsUrl(node), /^palisade_verdicts_total\{reason="to-proxy"\}/), steered, "port 80 has no HTTP rule: nothing steered");
  curl(a.netns, [url(b.ips[0] as string, 8080, "/private")]);
  assert.ok((await metric(agentMetricsUrl(node), /^palisade_verdicts_total\{reason="to-proxy"\}/)) > steered, "port 8080 is steered");
  const refused = await metric(proxyMetricsUrl(node), new RegExp(`^palisade_proxy_requests_total\\{.*verdict="refused".*policy="EBPFNetworkPolicy ${x}/web"`));
  assert.ok(refused >= 1, "refusals counted by policy");
  const log = readFileSync(join(cluster.folder.layout.logs, `proxy-${node.name}.log`), "utf8");
  assert.match(log, /"verdict":"refused".*"path":"\/private"/);
});

test("with the proxy down, ruled flows fail closed and others pass; dev up brings it back", async () => {
  const node = devNodeSpec(network, 1);
  const stopped = spawnSync("pkill", ["-f", `proxy --http-view-file .*${node.name}`]);
  assert.equal(stopped.status, 0, "the proxy of node 1 was running");
  await eventually("no answer on a ruled port without the proxy", () => {
    const run = spawnSync("ip", ["netns", "exec", a.netns, "curl", "-sS", "--max-time", "2", url(b.ips[0] as string, 8080, "/public/x")], { encoding: "utf8" });
    return run.status !== 0;
  });
  assert.equal(cluster.reaches(`${x}/a`, `${x}/b`, 80), true, "port 80 is not steered");
  cluster.ok("dev", "up", "--nodes", "2");
  await eventually("an answer again once the proxy is back", () => curl(a.netns, [url(b.ips[0] as string, 8080, "/public/x")])[0]?.status === 200);
});
