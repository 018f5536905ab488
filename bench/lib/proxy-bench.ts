/**
 * The frame the proxy benchmarks (bench/http-proxy.ts, bench/tls-proxy.ts)
 * share: `--quick`, the root check, wrk and nginx-light installed, the
 * cleanup stack run however the benchmark ends, the quiet gate, the header
 * with the machine and the tools' versions, and the closing footer.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { CleanupStack } from "./cleanup.ts";
import { ensureDebianPackages } from "./debian-packages.ts";
import { describeMachine, formatMachine, toolVersion } from "./machine.ts";
import { QuietGate } from "./quiet-gate.ts";
import { formatRunFooter, runBenchmark } from "./report.ts";

/** A run during which other programs used more than this share of one core is repeated. */
const MAX_FOREIGN_SHARE = 0.1;

/** What a proxy benchmark's body gets. */
export interface ProxyBenchContext<S> {
  settings: S;
  quick: boolean;
  cleanup: CleanupStack;
  gate: QuietGate;
  /** Progress, on stderr. */
  log(line: string): void;
  /** The report, on stdout. */
  print(text: string): void;
}

/**
 * Runs `body` in the frame: `title` heads the report; `full` or `quick`
 * (with `--quick`) are its settings.
 *
 * @example
 * ```ts
 * runProxyBenchmark("HTTP proxy", { full: FULL, quick: QUICK }, async ({ settings, cleanup, gate, log, print }) => { ... });
 * ```
 */
export function runProxyBenchmark<S extends { quietWaitBudgetMs: number }>(
  title: string,
  settings: { full: S; quick: S },
  body: (context: ProxyBenchContext<S>) => Promise<void>,
): void {
  const log = (line: string) => process.stderr.write(`bench: ${line}\n`);
  const print = (text: string) => process.stdout.write(`${text}\n`);
  runBenchmark(async () => {
    const { values } = parseArgs({ options: { quick: { type: "boolean", default: false } } });
    if (process.getuid?.() !== 0) throw new Error("Cannot run the benchmark: it needs root (BPF, network namespaces, the transparent proxy)");
    const chosen = values.quick ? settings.quick : settings.full;
    const started = performance.now();
    ensureDebianPackages(["wrk", "nginx-light"], log);
    const cleanup = new CleanupStack();
    const gate = new QuietGate(MAX_FOREIGN_SHARE, chosen.quietWaitBudgetMs);
    try {
      print(`# Palisade ${title} benchmark${values.quick ? " (--quick)" : ""}\n`);
      print(formatMachine(describeMachine()));
      print(`wrk:         ${toolVersion("wrk", ["-v"])}`);
      print(`nginx:       ${toolVersion("/usr/sbin/nginx", ["-v"])}`);
      print(`openssl:     ${toolVersion("openssl", ["version"])}`);
      await body({ settings: chosen, quick: values.quick, cleanup, gate, log, print });
      print(`\n${formatRunFooter(gate, chosen.quietWaitBudgetMs, started)}`);
    } finally {
      cleanup.dispose();
    }
  });
}
