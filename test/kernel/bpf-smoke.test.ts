/**
 * bpf/test/smoke.sh, the C datapath's own smoke test, as part of the suite:
 * bpftool loads the endpoint programs (the verifier must accept them) in a
 * private mount namespace with a bpffs of its own, fills the maps by their C
 * layout and runs hand-built packets through BPF_PROG_TEST_RUN, checking
 * each verdict, the reason it was counted under, rule statistics and ring
 * buffer events, all without the TypeScript codecs that the other kernel
 * suites go through. Needs root, bpftool, python3 and unshare.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { repositoryRoot } from "../../src/repository-root.ts";

test("bpf/test/smoke.sh passes every check", () => {
  const run = spawnSync("bash", [join(repositoryRoot(), "bpf", "test", "smoke.sh")], { encoding: "utf8", timeout: 300_000 });
  assert.equal(run.status, 0, `smoke.sh exited ${run.status ?? run.signal}:\n${run.stdout}\n${run.stderr}`);
  assert.match(run.stdout, /^all smoke checks passed$/m);
  assert.doesNotMatch(run.stdout, /^FAIL /m);
});
