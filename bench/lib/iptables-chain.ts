/**
 * The iptables baseline: a linear chain of N rules in the FORWARD path, in a
 * chain of its own that FORWARD jumps to only for the benchmark's client to
 * server traffic (matched on the two host-side veths), so the host's own rules
 * are untouched. The chain is stateful like every real iptables firewall
 * (established packets accepted first), so each new connection's SYN walks
 * the N-1 filler rules before the last rule, the only one matching it,
 * accepts it: the worst case for a linear chain. With the nf_tables backend
 * of iptables, the `table ip filter` it creates is removed again when empty.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import type { CleanupStack } from "./cleanup.ts";
import { peerAddress, syntheticRule } from "./synthetic-rules.ts";

/** What the chain admits and where the traffic flows. */
export interface ForwardFlow {
  /** Host-side interface the client's packets arrive on. */
  inInterface: string;
  /** Host-side interface towards the server. */
  outInterface: string;
  client: string;
  server: string;
  port: number;
}

/** iptables-restore or iptables refused the rules. */
export class IptablesError extends Error {
  override name = "IptablesError";
}

/** Whether nftables holds `table ip filter` (where iptables-nft puts its rules). */
function nftFilterTableExists(): boolean {
  try {
    execFileSync("nft", ["list", "table", "ip", "filter"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * Deletes `table ip filter` if it holds nothing but empty built-in chains:
 * iptables-nft creates it (with a FORWARD hook every forwarded packet then
 * traverses) on first use and never removes it.
 */
function removeEmptyNftFilterTable(): void {
  const saved = execFileSync("iptables-save", ["-t", "filter"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  const builtIn = /^:(INPUT|FORWARD|OUTPUT) ACCEPT /;
  const inUse = saved.split("\n").some((line) => line.startsWith("-A ") || (line.startsWith(":") && !builtIn.test(line)));
  if (!inUse) execFileSync("nft", ["delete", "table", "ip", "filter"], { stdio: "ignore" });
}

function iptables(args: string[], input?: string): void {
  execFileSync(args[0] === "restore" ? "iptables-restore" : "iptables", args[0] === "restore" ? args.slice(1) : args, {
    input,
    stdio: ["pipe", "ignore", "pipe"],
  });
}

/**
 * Installs the chain `chain` with `rules` rules (the last one admitting
 * `flow`) followed by a DROP, and the FORWARD jump to it, with one
 * iptables-restore. Returns the function that removes both (also registered
 * on `cleanup`).
 *
 * @example
 * ```ts
 * const remove = installIptablesChain(cleanup, "PLB-1a2b3c", 10_000, flow, 1000);
 * // ... measure ...
 * remove();
 * ```
 */
export function installIptablesChain(cleanup: CleanupStack, chain: string, rules: number, flow: ForwardFlow, peers: number): () => void {
  const jump = ["FORWARD", "-i", flow.inInterface, "-o", flow.outInterface, "-j", chain];
  const lines = ["*filter", `:${chain} - [0:0]`, `-A ${chain} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`];
  for (let i = 0; i < rules - 1; i++) {
    const rule = syntheticRule(i, peers);
    lines.push(`-A ${chain} -s ${peerAddress(rule.peer)}/32 -p tcp -m tcp --dport ${rule.port} -j ACCEPT`);
  }
  lines.push(`-A ${chain} -s ${flow.client}/32 -d ${flow.server}/32 -p tcp -m tcp --dport ${flow.port} -j ACCEPT`);
  lines.push(`-A ${chain} -j DROP`, `-I ${jump.join(" ")}`, "COMMIT", "");
  const createsFilterTable = !nftFilterTableExists();
  const remove = cleanup.add(`iptables chain ${chain}`, () => {
    for (const args of [["-D", ...jump], ["-F", chain], ["-X", chain]]) {
      try {
        iptables(args);
      } catch {
        // Part of it was never created (a failed restore is all or nothing).
      }
    }
    if (createsFilterTable && nftFilterTableExists()) removeEmptyNftFilterTable();
  });
  try {
    iptables(["restore", "--noflush"], lines.join("\n"));
  } catch (error) {
    remove();
    throw new IptablesError(`Cannot install iptables chain "${chain}" with ${rules} rules: ${String((error as { stderr?: Buffer }).stderr ?? error).trim()}`, { cause: error });
  }
  return remove;
}
