/**
 * `npm run bench:http`: the node's HTTP proxy against the direct path, run
 * by hand (never as timed tests). Prints the machine, then
 *  1. requests per second and p50/p99 latency of wrk against nginx between
 *     two pods, with no policy (the baseline), an L4 allow, an HTTP rule
 *     steered to a byte relay in the proxy's place (the ceiling), and an
 *     HTTP rule (through a real `palisade proxy`), keep-alive and with a new
 *     connection per request; the packets steered to the proxy per row;
 *  2. the proxy's resident size at start, idle, and holding 1000 idle
 *     keep-alive connections;
 *  3. verdict cost per packet of an entry with `tcp.strict` and with
 *     connection limits against a plain allow (BPF_PROG_TEST_RUN).
 * Everything it creates in the kernel is removed, also on failure or signal.
 * Installs wrk and nginx-light from Debian when missing.
 *
 * Usage: `node dist/bench/http-proxy.js [--quick]` (as root). `--quick`
 * runs each configuration once, briefly, as a smoke test.
 *
 * @module
 */
import { DEFAULT_PROXY_PORT } from "../src/datapath/index.ts";
import { startNginx } from "./lib/nginx-server.ts";
import { setUpProxiedPods } from "./lib/proxied-pods.ts";
import { runProxyBenchmark } from "./lib/proxy-bench.ts";
import { CASE_POLICIES, httpCases, measureHeldConnections, measureThroughput, residentKiB, SERVER_PORT, type ThroughputSampling } from "./lib/proxy-throughput.ts";
import { formatEntryFlagTable, formatProxyMemoryTable, formatThroughputTable } from "./lib/report.ts";
import { measureEntryFlagCost, type VerdictSampling } from "./lib/verdict-cost.ts";

/** Idle keep-alive connections the proxy holds for the memory figure. */
const HELD_CONNECTIONS = 1000;
/** The ceiling relay's transparent port (the proxy has DEFAULT_PROXY_PORT). */
const RELAY_PORT = DEFAULT_PROXY_PORT + 1;
/** Where the entry-flag cost is measured: N policy entries over K identities. */
const FLAG_COST_SIZE = { identities: 1000, rules: 1000 };

interface BenchSettings {
  throughput: ThroughputSampling;
  verdict: VerdictSampling;
  quietWaitBudgetMs: number;
}

const FULL: BenchSettings = {
  throughput: { rounds: 5, threads: 1, connections: 16, durationS: 5, warmupS: 2, attempts: 3 },
  verdict: { rounds: 20, newFlowPerRound: 150, establishedRepeat: 100_000, attempts: 3 },
  quietWaitBudgetMs: 120_000,
};

const QUICK: BenchSettings = {
  throughput: { rounds: 1, threads: 1, connections: 16, durationS: 1, warmupS: 1, attempts: 1 },
  verdict: { rounds: 4, newFlowPerRound: 50, establishedRepeat: 10_000, attempts: 2 },
  quietWaitBudgetMs: 10_000,
};

runProxyBenchmark("HTTP proxy", { full: FULL, quick: QUICK }, async ({ settings, cleanup, gate, log, print }) => {
  const pods = await setUpProxiedPods(cleanup, CASE_POLICIES.http);
  await startNginx(cleanup, pods.server.netns, SERVER_PORT, pods.scratch("nginx"));
  const startKiB = residentKiB(pods.proxy.pid);

  const { rounds, threads, connections, durationS, warmupS } = settings.throughput;
  print(
    `\n## HTTP through the proxy against direct (wrk in the client pod, nginx in the server pod)\n\n` +
      `wrk -t${threads} -c${connections} -d${durationS}s --latency, keep-alive and with \`Connection: close\` (a new connection per ` +
      `request; wrk's latency then starts when the request is written, after the client's connect, but includes the proxy's upstream ` +
      `connect), and keep-alive with -c1 (one request at a time: the latency the path adds, without the queueing of a saturated ` +
      `process); nginx-light, one process, a small static file; the proxied case runs \`palisade proxy\` with an HTTP rule allowing ` +
      `\`GET /\` (prefix). ${warmupS} s warm-up per configuration, then ${rounds} interleaved round(s); medians over the rounds.\n`,
  );
  const cases = httpCases(pods, await pods.startRelay(RELAY_PORT));
  const rows = await measureThroughput(pods, cases, settings.throughput, gate, log);
  print(formatThroughputTable(rows));
  print(
    `\n"packets to proxy": the datapath's to-proxy reason counter over the recorded runs; 0 proves no L4-only packet was steered. ` +
      `"TCP relay (ceiling)": the HTTP rule's flows steered (same policy, same steering and listener kind) to a byte relay in the ` +
      `proxy's place (bench/lib/socket-relay.ts: one Node.js process, the same flags, an upstream connection per client connection ` +
      `from the client's address), which only passes bytes on: what any one Node.js process there reaches on this machine.`,
  );

  await new Promise((resolve) => setTimeout(resolve, 2000));
  const idleKiB = residentKiB(pods.proxy.pid);
  log(`http: holding ${HELD_CONNECTIONS} connections through the proxy`);
  const held = await measureHeldConnections(pods, cases, HELD_CONNECTIONS);
  print(`\n## Proxy memory (VmRSS of the palisade proxy process, /proc/PID/status)\n`);
  print(formatProxyMemoryTable(startKiB, idleKiB, held));

  const { rounds: verdictRounds, newFlowPerRound, establishedRepeat } = settings.verdict;
  print(
    `\n## Verdict cost per packet of tcp.strict and connection limits (BPF_PROG_TEST_RUN, kernel-measured)\n\n` +
      `pal_to_pod, N=${FLAG_COST_SIZE.rules} entries over K=${FLAG_COST_SIZE.identities} identities; the entry admitting the measured ` +
      `flow plain, with tcp.strict, or limited (maxConnectionsPerSource and newConnectionsPerSecond, set so high that nothing is ` +
      `refused: every new flow pays the limits map lookup, the source lookup, the count and the bucket). ${verdictRounds} interleaved ` +
      `rounds; new flow: median of ${verdictRounds * newFlowPerRound} runs; established: ${verdictRounds} runs with repeat ${establishedRepeat}.\n`,
  );
  print(formatEntryFlagTable(await measureEntryFlagCost(cleanup, FLAG_COST_SIZE, settings.verdict, gate, log)));
});
