/**
 * The `palisade` command and kubectl on one test folder's dev cluster, run
 * as a user runs them: child processes with `PALISADE_DEV_DIR` and, once
 * the cluster is up, `KUBECONFIG` set as `eval "$(palisade dev up)"` sets it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { devNetwork, devNodeSpec, readClusterState, type DevNetwork, type DevNodeSpec } from "../../src/devcluster/index.ts";
import { SANDBOX_NETNS_ANNOTATION } from "../../src/probe/index.ts";
import type { TestFolder } from "./test-folder.ts";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

/** How a command ended. */
export interface CommandRun {
  status: number;
  stdout: string;
  stderr: string;
}

/** A named TCP container port, e.g. `{ port: 8080, name: "http" }`. */
export interface NamedPort {
  port: number;
  name: string;
}

function containerPorts(port: number | NamedPort): object[] {
  if (typeof port === "number") return [{ containerPort: port, protocol: "TCP" }, { containerPort: port, protocol: "UDP" }];
  return [{ containerPort: port.port, protocol: "TCP", name: port.name }];
}

/** The commands of one test folder's dev cluster. */
export class DevCli {
  readonly folder: TestFolder;
  readonly env: NodeJS.ProcessEnv;
  #kubectl = "";

  constructor(folder: TestFolder) {
    this.folder = folder;
    this.env = { ...folder.env };
  }

  /** `palisade ARGS`. */
  palisade(...args: string[]): CommandRun {
    const run = spawnSync(process.execPath, [CLI, ...args], { env: this.env, encoding: "utf8", timeout: 1_200_000, maxBuffer: 64 * 1024 * 1024 });
    return { status: run.status ?? -1, stdout: run.stdout, stderr: run.stderr };
  }

  /** `palisade ARGS`, which must succeed; its stdout. */
  ok(...args: string[]): string {
    const run = this.palisade(...args);
    assert.equal(run.status, 0, `palisade ${args.join(" ")} failed:\n${run.stderr.slice(-4000)}`);
    return run.stdout;
  }

  /** `palisade dev up --nodes N`, taking in its exports (KUBECONFIG, kubectl's folder). */
  up(nodes: number): void {
    const stdout = this.ok("dev", "up", "--nodes", String(nodes));
    const exports = Object.fromEntries([...stdout.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1], (m[2] ?? "").replace(/^'|'$/g, "")]));
    this.env.KUBECONFIG = exports.KUBECONFIG;
    this.#kubectl = join((exports.PATH ?? "").split(":")[0] ?? "", "kubectl");
  }

  /** `kubectl ARGS` (after {@link up}). */
  kubectl(...args: string[]): CommandRun {
    assert.ok(this.#kubectl !== "", "kubectl is known once the cluster is up");
    const run = spawnSync(this.#kubectl, args, { env: this.env, encoding: "utf8", timeout: 120_000 });
    return { status: run.status ?? -1, stdout: run.stdout, stderr: run.stderr };
  }

  /** `kubectl ARGS`, which must succeed; its stdout. */
  kube(...args: string[]): string {
    const run = this.kubectl(...args);
    assert.equal(run.status, 0, `kubectl ${args.join(" ")} failed:\n${run.stderr}`);
    return run.stdout;
  }

  /** `kubectl apply` of `object`, which must succeed. */
  apply(object: object): void {
    assert.ok(this.#kubectl !== "", "kubectl is known once the cluster is up");
    const run = spawnSync(this.#kubectl, ["apply", "-f", "-"], { env: this.env, input: JSON.stringify(object), encoding: "utf8" });
    assert.equal(run.status, 0, `kubectl apply failed:\n${run.stderr}`);
  }

  /** The cluster's network (after {@link up}). */
  network(): DevNetwork {
    const slot = readClusterState(this.folder.layout)?.networkSlot;
    assert.ok(slot !== undefined, "the cluster recorded its network slot");
    return devNetwork(slot);
  }

  /** Dev node `index` of this cluster. */
  node(index: number): DevNodeSpec {
    return devNodeSpec(this.network(), index);
  }

  /**
   * Runs pod `namespace/name` on node `node`, creating the namespace first if
   * need be, and waits until it is Ready. A number in `ports` is served on TCP
   * and UDP (echo); a named port is a TCP port of that name, which the pod
   * server answers by its name: `http…` HTTP/1.1, `http2…` or `grpc…` HTTP/2
   * with prior knowledge, anything else echo.
   */
  runPod(namespace: string, name: string, node: number, ports: (number | NamedPort)[], labels: Record<string, string> = { app: name }): void {
    if (this.kubectl("get", "namespace", namespace).status !== 0) this.kube("create", "namespace", namespace);
    // Admission needs the namespace's default ServiceAccount, which the controller manager creates shortly after the namespace.
    const deadline = Date.now() + 30_000;
    while (this.kubectl("get", "serviceaccount", "default", "-n", namespace).status !== 0) {
      assert.ok(Date.now() < deadline, `namespace "${namespace}" got no default ServiceAccount in 30 s`);
      spawnSync("sleep", ["0.2"]);
    }
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace, labels },
      spec: {
        nodeName: devNodeSpec(this.network(), node).name,
        automountServiceAccountToken: false,
        containers: [{ name: "main", image: "palisade.dev/pod-server", ports: ports.flatMap(containerPorts) }],
      },
    };
    this.apply(pod);
    this.kube("wait", "-n", namespace, "--for=condition=Ready", `pod/${name}`, "--timeout=90s");
  }

  /** Pod `namespace/name`'s sandbox network namespace (as its node runtime recorded it) and addresses. */
  pod(namespace: string, name: string): { netns: string; ips: string[] } {
    const pod = JSON.parse(this.kube("get", "pod", name, "-n", namespace, "-o", "json")) as { metadata: { annotations?: Record<string, string> }; status: { podIPs?: { ip: string }[] } };
    const netns = pod.metadata.annotations?.[SANDBOX_NETNS_ANNOTATION];
    assert.ok(netns, `pod ${namespace}/${name} names its network namespace`);
    return { netns, ips: (pod.status.podIPs ?? []).map((entry) => entry.ip) };
  }

  /** Whether `from` reaches `to` on TCP `port` now (`palisade probe`). */
  reaches(from: string, to: string, port: number): boolean {
    return (JSON.parse(this.ok("probe", "--from", from, "--to", to, "--port", String(port), "-o", "json")) as { allowed: boolean }).allowed;
  }
}
