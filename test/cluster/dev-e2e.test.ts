/**
 * The dev cluster as a user drives it, end to end with real packets: `dev
 * up --nodes 2` (control plane, node runtimes, operator, agents) in a
 * temporary dev folder on free ports with its own pin root, pods on both
 * nodes, `probe matrix` (all allowed), an EBPFNetworkPolicy, `wait
 * --for=programmed`, the matrix denying exactly what the policy leaves out,
 * `kubectl get ebpfnps` showing 2/2, the policy deleted and everything
 * allowed again, and `dev down` leaving no process, namespace or pin.
 * Needs root and the cached control plane binaries.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { PORT_SETTINGS } from "../../src/devcluster/index.ts";

const cli = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const base = mkdtempSync(join(tmpdir(), "pl-e2e-"));
const dir = join(base, "dev");
const tag = `pl-e2e-${Math.random().toString(16).slice(2, 8)}`;
const pinBase = `/sys/fs/bpf/${tag}`;
const env: NodeJS.ProcessEnv = {
  ...process.env,
  PALISADE_DEV_DIR: dir,
  PALISADE_DEV_PIN_ROOT: pinBase,
  ...Object.fromEntries(Object.values(PORT_SETTINGS).map((setting) => [setting.env, "0"])),
};
let kubectl = "";
let pidsAtUp: number[] = [];
let sandboxes: string[] = [];

function palisade(...args: string[]): { status: number; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [cli, ...args], { env, encoding: "utf8", timeout: 180_000 });
  return { status: run.status ?? -1, stdout: run.stdout, stderr: run.stderr };
}

function ok(...args: string[]): string {
  const run = palisade(...args);
  assert.equal(run.status, 0, `palisade ${args.join(" ")} failed:\n${run.stderr}`);
  return run.stdout;
}

function kube(...args: string[]): string {
  return execFileSync(kubectl, args, { env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function alive(pid: number): boolean {
  try {
    // A zombie (nobody reaps the detached processes here) still answers kill(0); it has no executable any more.
    return existsSync(`/proc/${pid}/exe`) && readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0] !== "Z";
  } catch {
    return false;
  }
}

function pidsIn(runDir: string): number[] {
  if (!existsSync(runDir)) return [];
  return readdirSync(runDir).filter((f) => f.endsWith(".pid")).map((f) => Number(readFileSync(join(runDir, f), "utf8").trim()));
}

/** Waits until the controller manager created the namespace's default ServiceAccount, which admitting a pod needs. */
function waitForDefaultServiceAccount(ns: string): void {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const run = spawnSync(kubectl, ["get", "serviceaccount", "default", "-n", ns], { env, encoding: "utf8" });
    if (run.status === 0) return;
    if (Date.now() > deadline) assert.fail(`namespace "${ns}" got no default ServiceAccount in 30 s: ${run.stderr}`);
    spawnSync("sleep", ["0.2"]);
  }
}

function netnsList(): string[] {
  return execFileSync("ip", ["netns", "list"], { encoding: "utf8" }).split("\n").map((line) => line.split(" ")[0] ?? "").filter((name) => name !== "");
}

interface Matrix {
  port: number;
  protocol: string;
  pairs: { from: string; to: string; allowed: boolean; reason: string }[];
}

function matrix(): Map<string, boolean> {
  const parsed = JSON.parse(ok("probe", "matrix", "--namespaces", `${tag}-x,${tag}-y`, "--port", "80", "--protocol", "TCP", "-o", "json")) as Matrix;
  assert.equal(parsed.port, 80);
  return new Map(parsed.pairs.map((pair) => [`${pair.from} ${pair.to}`, pair.allowed]));
}

const x = `${tag}-x`;
const y = `${tag}-y`;
const pods = [`${x}/a`, `${x}/b`, `${y}/c`];

before(() => {
  const up = palisade("dev", "up", "--nodes", "2");
  assert.equal(up.status, 0, `dev up failed:\n${up.stderr}`);
  const exports = Object.fromEntries([...up.stdout.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1], (m[2] ?? "").replace(/^'|'$/g, "")]));
  env.KUBECONFIG = exports.KUBECONFIG;
  kubectl = join((exports.PATH ?? "").split(":")[0] ?? "", "kubectl");
  pidsAtUp = pidsIn(join(dir, "run"));
});

after(() => {
  palisade("dev", "down");
  rmSync(pinBase, { recursive: true, force: true });
  rmSync(base, { recursive: true, force: true });
});

test("policies are enforced across two dev nodes and lifted again", () => {
  assert.equal(pidsAtUp.length, 2 /* agents */ + 1 /* operator */ + 2 /* node runtimes */ + 4 /* control plane */);
  kube("create", "namespace", x);
  kube("create", "namespace", y);
  waitForDefaultServiceAccount(x);
  waitForDefaultServiceAccount(y);
  const netnsBefore = new Set(netnsList());
  const placement: [string, string, string][] = [[x, "a", "palisade-node-1"], [x, "b", "palisade-node-2"], [y, "c", "palisade-node-1"]];
  for (const [ns, name, node] of placement) {
    kube("run", name, "-n", ns, "--image=none", "--port=80", `--labels=app=${name}`, `--overrides={"spec":{"nodeName":"${node}"}}`);
  }
  for (const ns of [x, y]) kube("wait", "-n", ns, "--for=condition=Ready", "pod", "--all", "--timeout=60s");
  sandboxes = netnsList().filter((name) => !netnsBefore.has(name) && /^pal-\d+-/.test(name));
  assert.equal(sandboxes.length, 3, "each pod has its network namespace");
  ok("wait", "--for=programmed", "--timeout", "60s");

  const before = matrix();
  assert.equal(before.size, 6);
  assert.ok([...before.values()].every(Boolean), `not all allowed before the policy: ${JSON.stringify([...before])}`);

  const policy = join(base, "policy.yaml");
  writeFileSync(policy, JSON.stringify({
    apiVersion: "palisade.dev/v1alpha1",
    kind: "EBPFNetworkPolicy",
    metadata: { name: "b-from-a", namespace: x },
    spec: { selector: { matchLabels: { app: "b" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "a" } } }], ports: [{ protocol: "TCP", port: 80 }] }] },
  }));
  kube("apply", "-f", policy);
  ok("wait", "--for=programmed", "--timeout", "60s");
  const during = matrix();
  for (const from of pods) {
    for (const to of pods) {
      if (from === to) continue;
      const expected = to !== `${x}/b` || from === `${x}/a`;
      assert.equal(during.get(`${from} ${to}`), expected, `${from} -> ${to}`);
    }
  }
  assert.match(kube("get", "ebpfnps", "-n", x), /b-from-a\s+1\s+2\/2\s+True/);
  assert.deepEqual(JSON.parse(ok("probe", "--from", `${y}/c`, "--to", `${x}/b`, "--port", "80", "-o", "json")), { allowed: false });
  assert.match(ok("status"), /EBPFNetworkPolicy\s+\S+\s+b-from-a\s+1\s+True\s+True\s+2\/2/);

  kube("delete", "-f", policy);
  ok("wait", "--for=programmed", "--timeout", "60s");
  const afterDelete = matrix();
  assert.ok([...afterDelete.values()].every(Boolean), `not all allowed after deleting the policy: ${JSON.stringify([...afterDelete])}`);
});

test("dev down leaves no process, pod namespace or pin", () => {
  assert.equal(sandboxes.length, 3, "the first test saw the pods' network namespaces");
  ok("dev", "down");
  assert.deepEqual(pidsAtUp.filter(alive), []);
  assert.equal(existsSync(pinBase), false);
  assert.equal(existsSync(dir), false);
  assert.deepEqual(netnsList().filter((name) => sandboxes.includes(name)), []);
});
