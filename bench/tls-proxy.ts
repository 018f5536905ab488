/**
 * `npm run bench:tls`: the node proxy's TLS paths against direct TLS to the
 * pod, run by hand (never as timed tests). Prints the machine, then
 * requests per second, MiB/s and p50/p99 latency of wrk (HTTPS, in the
 * client pod) against nginx in the server pod under five policy sets:
 *  - no policy: direct TLS to nginx (the baseline);
 *  - an L4 allow of the TLS port;
 *  - a TLS rule naming the server (`tls.serverNames`): the proxy reads the
 *    ClientHello and splices the connection without terminating it;
 *  - a terminating rule (`tls.termination`, upstream Plain to a plain port
 *    of the same nginx), without `http` rules;
 *  - the same with an HTTP rule allowing every `GET` (another plain port).
 * Each keep-alive (requests), with a new TLS connection per request
 * (`Connection: close`: handshakes per second; whether each path resumes
 * sessions is probed after, with `openssl s_client -reconnect`) and
 * keep-alive fetching a bulk file (bytes per second), in interleaved rounds; the packets steered to the proxy per row prove which
 * rows went through it. The termination certificate reaches the real
 * `palisade proxy` as in a cluster, from the operator's copy in
 * `palisade-secrets` on a throwaway control plane (lib/tls-material-api.ts),
 * stopped once the proxy terminates with it.
 * Everything it creates is removed, also on failure or signal. Installs wrk
 * and nginx-light from Debian when missing.
 *
 * Usage: `node dist/bench/tls-proxy.js [--quick]` (as root). `--quick` runs
 * each configuration once, briefly, as a smoke test.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import type { AnyPolicy } from "../src/policy/index.ts";
import { issueCertificate, makeCa } from "../test/lib/tls-certificate.ts";
import type { CleanupStack } from "./lib/cleanup.ts";
import { startNginx } from "./lib/nginx-server.ts";
import { POD_NAMESPACE, setUpProxiedPods, type ProxiedPods } from "./lib/proxied-pods.ts";
import { runProxyBenchmark } from "./lib/proxy-bench.ts";
import { ALLOW_GETS, measureThroughput, rowMedians, serverIngress, type ConnectionMode, type ThroughputCase, type ThroughputRow, type ThroughputSampling } from "./lib/proxy-throughput.ts";
import { formatThroughputTable } from "./lib/report.ts";
import { startTlsMaterialApi } from "./lib/tls-material-api.ts";

/** The server's name: its certificate's, and the one the SNI rule admits. */
const SERVER_NAME = "api.bench.example";
/** nginx's ports: HTTPS, and plain HTTP for the terminating rules (one per rule, so each is judged by its own). */
const TLS_PORT = 8443;
const TERMINATED_PORT = 8080;
const TERMINATED_HTTP_PORT = 8081;
/** The terminating rules' certificate Secret (in the pods' namespace). */
const SECRET_NAME = "api-tls";
/** The bulk file's size. */
const BULK_BYTES = 1024 * 1024;
/** The targets of issue 12, as shares of direct TLS. */
const SPLICE_TARGET = 0.8;
const TERMINATION_TARGET = 0.4;

interface BenchSettings {
  throughput: ThroughputSampling;
  quietWaitBudgetMs: number;
}

const FULL: BenchSettings = {
  throughput: { rounds: 5, threads: 1, connections: 16, durationS: 4, warmupS: 2, attempts: 3 },
  quietWaitBudgetMs: 120_000,
};

const QUICK: BenchSettings = {
  throughput: { rounds: 1, threads: 1, connections: 16, durationS: 1, warmupS: 1, attempts: 1 },
  quietWaitBudgetMs: 10_000,
};

const termination = { certificate: { secretName: SECRET_NAME } };
const POLICIES = {
  l4: serverIngress("l4", TLS_PORT),
  sni: serverIngress("sni", TLS_PORT, { tls: { serverNames: [SERVER_NAME] } }),
  terminate: serverIngress("terminate", TERMINATED_PORT, { tls: { termination } }),
  terminateHttp: serverIngress("terminate-http", TERMINATED_HTTP_PORT, { tls: { termination }, http: ALLOW_GETS }),
} satisfies Record<string, AnyPolicy>;

function tlsCases(): ThroughputCase[] {
  const url = (port: number) => `https://${SERVER_NAME}:${port}/`;
  const modes: ConnectionMode[] = ["keep-alive", "close", "bulk"];
  return [
    { label: "no policy (direct TLS)", policies: [], proxied: false, url: url(TLS_PORT), modes },
    { label: "L4 allow", policies: [POLICIES.l4], proxied: false, url: url(TLS_PORT), modes },
    { label: "TLS rule, SNI (spliced)", policies: [POLICIES.sni], proxied: true, url: url(TLS_PORT), modes },
    { label: "TLS termination (upstream Plain)", policies: [POLICIES.terminate], proxied: true, url: url(TERMINATED_PORT), modes },
    { label: "termination + HTTP rule", policies: [POLICIES.terminateHttp], proxied: true, url: url(TERMINATED_HTTP_PORT), modes },
  ];
}

/** Lets `ip netns exec` in `netns` resolve the server's name (wrk sends the URL's host as the server name). */
function resolveServerName(cleanup: CleanupStack, netns: string, address: string): void {
  const created = !existsSync("/etc/netns");
  const dir = `/etc/netns/${netns}`;
  mkdirSync(dir, { recursive: true });
  cleanup.add(`folder ${dir}`, () => {
    rmSync(dir, { recursive: true, force: true });
    if (created) rmSync("/etc/netns", { recursive: true, force: true });
  });
  writeFileSync(`${dir}/hosts`, `127.0.0.1 localhost\n${address} ${SERVER_NAME}\n`);
}

/**
 * The handshakes of `openssl s_client -reconnect` in `netns` (a first
 * connection, then five offering its session): how many completed, and how
 * many of them resumed the session.
 */
function probeHandshakes(netns: string, url: string): { completed: number; reused: number } {
  const { hostname, port } = new URL(url);
  const { stdout } = spawnSync("ip", ["netns", "exec", netns, "openssl", "s_client", "-connect", `${hostname}:${port}`, "-servername", hostname, "-reconnect"], {
    input: "",
    encoding: "utf8",
    timeout: 20_000,
  });
  const handshakes = (stdout ?? "").match(/^(New|Reused), /gm) ?? [];
  return { completed: handshakes.length, reused: handshakes.filter((line) => line.startsWith("Reused")).length };
}

/** Waits until the proxy terminates with the certificate (it has read the copy); gives up after a minute. */
async function waitForTermination(pods: ProxiedPods, url: string): Promise<void> {
  pods.applyPolicies([POLICIES.terminate]);
  const deadline = performance.now() + 60_000;
  while (probeHandshakes(pods.client.netns, url).completed === 0) {
    if (performance.now() > deadline) throw new Error(`Cannot measure termination: no handshake through the proxy at ${url} completed within 60 s (the proxy has no copy of Secret ${POD_NAMESPACE}/${SECRET_NAME}?): ${pods.proxy.output().slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** The figures against the targets: each case's median against direct TLS, in the same mode. */
function formatTargets(rows: readonly ThroughputRow[]): string {
  const share = (label: string, mode: ConnectionMode, bytes = false) => {
    const pick = (of: string) => rowMedians(rows.find((row) => row.policy === of && row.mode === mode)!);
    const [row, base] = [pick(label), pick(rows[0]!.policy)];
    return bytes ? row.bytesPerSecond / base.bytesPerSecond : row.rate / base.rate;
  };
  const line = (what: string, value: number, target: number) =>
    `- ${what}: ${(value * 100).toFixed(1)}% of direct TLS (target at least ${target * 100}%: ${value >= target ? "met" : "NOT met"})`;
  const [sni, terminated, terminatedHttp] = tlsCases().slice(2).map((c) => c.label) as [string, string, string];
  return [
    line("SNI splice, keep-alive requests", share(sni, "keep-alive"), SPLICE_TARGET),
    line("SNI splice, bulk bytes", share(sni, "bulk", true), SPLICE_TARGET),
    line("termination, keep-alive requests", share(terminated, "keep-alive"), TERMINATION_TARGET),
    line("termination + HTTP rule, keep-alive requests", share(terminatedHttp, "keep-alive"), TERMINATION_TARGET),
    `- handshakes per second (new connection per request): termination ${(share(terminated, "close") * 100).toFixed(1)}%, ` +
      `SNI splice ${(share(sni, "close") * 100).toFixed(1)}% of direct TLS (no target)`,
  ].join("\n");
}

runProxyBenchmark("TLS proxy", { full: FULL, quick: QUICK }, async ({ settings, cleanup, gate, log, print }) => {
  const ca = makeCa("palisade bench CA");
  cleanup.add(`folder ${ca.dir}`, () => rmSync(ca.dir, { recursive: true, force: true }));
  const certificate = issueCertificate(ca, { names: [`DNS:${SERVER_NAME}`], serverAuthOnly: true });
  const materialApi = await startTlsMaterialApi(cleanup, [{ namespace: POD_NAMESPACE, name: SECRET_NAME, certPath: certificate.certPath, keyPath: certificate.keyPath }], ca.dir, log);
  const pods = await setUpProxiedPods(cleanup, [POLICIES.sni, POLICIES.terminate, POLICIES.terminateHttp], materialApi.prepare);
  resolveServerName(cleanup, pods.client.netns, pods.server.v4);
  await startNginx(cleanup, pods.server.netns, TERMINATED_PORT, pods.scratch("nginx"), {
    alsoPorts: [TERMINATED_HTTP_PORT],
    tls: { port: TLS_PORT, certPath: certificate.certPath, keyPath: certificate.keyPath },
    bulkBytes: BULK_BYTES,
  });
  await waitForTermination(pods, tlsCases()[3]!.url);
  // The proxy keeps the copy in memory; the control plane's processes would otherwise share the CPU with the measurement.
  materialApi.stop();
  await new Promise((resolve) => setTimeout(resolve, 3000));
  if (!existsSync(`/proc/${pods.proxy.pid}`)) throw new Error(`Cannot measure: the proxy exited when the control plane stopped: ${pods.proxy.output().slice(-3000)}`);
  log("tls: the proxy terminates with the copy; control plane stopped");

  const { rounds, threads, connections, durationS, warmupS } = settings.throughput;
  print(
    `\n## HTTPS through the proxy against direct TLS (wrk in the client pod, nginx in the server pod)\n\n` +
      `wrk -t${threads} -c${connections} -d${durationS}s --latency https://${SERVER_NAME}:PORT/, keep-alive, with \`Connection: close\` ` +
      `(a new TLS connection per request: req/s is handshakes per second; wrk offers its previous session on reconnect, see the ` +
      `resumption probe below; its latency starts when the request is written, after the client's handshake) and keep-alive fetching a ${BULK_BYTES / 1024 ** 2} MiB file ` +
      `(MiB/s: the splice's throughput in bytes); nginx-light, one process, ECDSA P-256 certificate for ${SERVER_NAME} from a test CA. ` +
      `Spliced rows: the proxy reads the ClientHello, admits the server name and passes the bytes on unchanged; terminated rows: the ` +
      `proxy presents the same certificate (the operator's copy, read from a throwaway API server that is stopped before the measurement) and speaks plain HTTP to another ` +
      `port of the same nginx. ${warmupS} s warm-up per configuration, then ${rounds} interleaved round(s); medians over the rounds.\n`,
  );
  const rows = await measureThroughput(pods, tlsCases(), settings.throughput, gate, log);
  print(formatThroughputTable(rows));
  print(`\n"packets to proxy": the datapath's to-proxy reason counter over the recorded runs; 0 proves no L4-only packet was steered.`);
  print(`\n## Against the targets of issue 12\n\n${formatTargets(rows)}`);
  print(`\n## Session resumption per path (openssl s_client -reconnect from the client pod)\n`);
  for (const c of tlsCases()) {
    pods.applyPolicies(c.policies);
    const { completed, reused } = probeHandshakes(pods.client.netns, c.url);
    print(`- ${c.label}: reused ${reused} of ${completed} connections`);
  }
});
