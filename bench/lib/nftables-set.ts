/**
 * The nftables baseline: a table of its own whose forward-hook chain sends
 * only the benchmark's client to server traffic (matched on the two host-side
 * veths) to a stateful chain: established packets accepted first, then ONE
 * rule looking `ip saddr . tcp dport` up in a hash set of N elements, then a
 * drop. This is how a well-built nftables firewall scales: a set lookup
 * instead of a rule walk.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import type { CleanupStack } from "./cleanup.ts";
import type { ForwardFlow } from "./iptables-chain.ts";
import { peerAddress, syntheticRule } from "./synthetic-rules.ts";

/** nft refused the ruleset. */
export class NftablesError extends Error {
  override name = "NftablesError";
}

const ELEMENTS_PER_COMMAND = 10_000;

/**
 * Creates table `ip <table>` with a set of `elements` elements (the last one
 * admitting `flow`) in one `nft -f` transaction. Returns the function that
 * deletes the table (also registered on `cleanup`).
 *
 * @example
 * ```ts
 * const remove = installNftablesSet(cleanup, "plb_1a2b3c", 100_000, flow, 1000);
 * ```
 */
export function installNftablesSet(cleanup: CleanupStack, table: string, elements: number, flow: ForwardFlow, peers: number): () => void {
  const script = [
    `table ip ${table} {`,
    `  set allowed { type ipv4_addr . inet_service; size ${Math.max(elements, 1) * 2}; }`,
    "  chain check {",
    "    ct state established,related accept",
    "    ip saddr . tcp dport @allowed accept",
    "    drop",
    "  }",
    "  chain forward {",
    "    type filter hook forward priority filter; policy accept;",
    `    iifname "${flow.inInterface}" oifname "${flow.outInterface}" jump check`,
    "  }",
    "}",
  ];
  const members: string[] = [];
  for (let i = 0; i < elements - 1; i++) {
    const rule = syntheticRule(i, peers);
    members.push(`${peerAddress(rule.peer)} . ${rule.port}`);
  }
  members.push(`${flow.client} . ${flow.port}`);
  for (let at = 0; at < members.length; at += ELEMENTS_PER_COMMAND) {
    script.push(`add element ip ${table} allowed { ${members.slice(at, at + ELEMENTS_PER_COMMAND).join(", ")} }`);
  }
  const remove = cleanup.add(`nftables table ${table}`, () => {
    try {
      execFileSync("nft", ["delete", "table", "ip", table], { stdio: "ignore" });
    } catch {
      // Never created: nft -f is one transaction.
    }
  });
  try {
    execFileSync("nft", ["-f", "-"], { input: `${script.join("\n")}\n`, stdio: ["pipe", "ignore", "pipe"], maxBuffer: 64 << 20 });
  } catch (error) {
    remove();
    throw new NftablesError(`Cannot create nftables table "${table}" with ${elements} set elements: ${String((error as { stderr?: Buffer }).stderr ?? error).trim()}`, { cause: error });
  }
  return remove;
}
