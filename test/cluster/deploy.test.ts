/**
 * deploy/ against a real kube-apiserver: every manifest passes a server-side
 * dry run, the RBAC grants what each component needs and no more, and the
 * EBPFNetworkPolicy CRD's schema and CEL rules refuse bad policies with the
 * field named, at the same field the operator-side validation names.
 *
 * Runs against a throwaway control plane (test/lib/control-plane.ts), so it
 * never touches a developer's cluster.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { validatePolicy } from "../../src/policy/validate.ts";
import { repositoryRoot } from "../../src/repository-root.ts";
import { startTestControlPlane, type TestControlPlane } from "../lib/control-plane.ts";

const root = repositoryRoot();
const deployDir = join(root, "deploy");
const crdFile = join(deployDir, "crds", "ebpfnetworkpolicies.palisade.dev.yaml");
const identityCrdFile = join(deployDir, "crds", "palisadeidentities.palisade.dev.yaml");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** What the DaemonSet test reads of a container and its pod. */
interface Container {
  name: string;
  image: string;
  args: string[];
  ports: { name: string; containerPort: number; hostPort?: number }[];
  readinessProbe?: { httpGet?: { path: string } };
  securityContext: { capabilities?: { drop?: string[]; add?: string[] }; allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean; privileged?: boolean };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
}

interface PodSpec {
  hostNetwork?: boolean;
  containers: Container[];
  volumes: { name: string; emptyDir?: object }[];
}

let controlPlane: TestControlPlane | undefined;

describe("deploy/ on a real kube-apiserver", { timeout: 300_000 }, () => {
  before(async () => {
    controlPlane = await startTestControlPlane("deploy");
  });

  after(async () => {
    await controlPlane?.stop();
  });

  it("passes a server-side dry run of every manifest, in the order kubectl applies them", async () => {
    // A dry-run Namespace is not created, so the namespaced objects need it for real first.
    await kubectlOk(["apply", "-f", join(deployDir, "00-namespace.yaml")]);
    const run = await kubectlOk(["apply", "--dry-run=server", "-R", "-f", deployDir]);
    for (const expected of [
      "namespace/palisade-system",
      "namespace/palisade-secrets",
      "customresourcedefinition.apiextensions.k8s.io/ebpfnetworkpolicies.palisade.dev",
      "customresourcedefinition.apiextensions.k8s.io/palisadeidentities.palisade.dev",
      "deployment.apps/palisade-operator",
      "daemonset.apps/palisade-agent",
      "clusterrole.rbac.authorization.k8s.io/palisade-operator",
      "clusterrole.rbac.authorization.k8s.io/palisade-agent",
      "role.rbac.authorization.k8s.io/palisade-operator-leader-election",
      "role.rbac.authorization.k8s.io/palisade-operator-tls-material",
      "role.rbac.authorization.k8s.io/palisade-agent-tls-material",
    ]) {
      assert.match(run.stdout, new RegExp(`^${expected.replaceAll(".", "\\.")} .*\\(server dry run\\)$`, "m"));
    }
  });

  it("runs the proxy beside the agent in the DaemonSet: its own container, least privilege, the view file and pins read-only", async () => {
    const run = await kubectlOk(["apply", "--dry-run=server", "-o", "json", "-f", join(deployDir, "21-agent.yaml")]);
    const daemonSet = JSON.parse(run.stdout) as { spec: { template: { spec: PodSpec } } };
    const pod = daemonSet.spec.template.spec;
    assert.equal(pod.hostNetwork, true);
    const agent = pod.containers.find((c) => c.name === "agent");
    const proxy = pod.containers.find((c) => c.name === "proxy");
    assert.ok(agent && proxy, `containers: ${pod.containers.map((c) => c.name).join(", ")}`);
    assert.deepEqual(proxy.args.slice(0, 1), ["proxy"]);
    assert.ok(proxy.args.includes("--http-view-file=/run/palisade/http-view.json"));
    assert.ok(proxy.args.includes("--pin-root=/sys/fs/bpf/palisade"), "the agent's pin root");
    assert.equal(proxy.image, agent.image, "one image");
    assert.deepEqual(proxy.securityContext.capabilities, { drop: ["ALL"], add: ["BPF", "NET_ADMIN"] });
    assert.equal(proxy.securityContext.allowPrivilegeEscalation, false);
    assert.equal(proxy.securityContext.readOnlyRootFilesystem, true);
    assert.equal(proxy.securityContext.privileged, undefined);
    const mount = (container: Container, volume: string) => container.volumeMounts.find((m) => m.name === volume);
    assert.deepEqual([mount(proxy, "bpffs")?.mountPath, mount(proxy, "bpffs")?.readOnly], ["/sys/fs/bpf", true]);
    assert.deepEqual([mount(proxy, "http-view")?.mountPath, mount(proxy, "http-view")?.readOnly], ["/run/palisade", true]);
    assert.deepEqual([mount(agent, "http-view")?.mountPath, mount(agent, "http-view")?.readOnly ?? false], ["/run/palisade", false], "the agent writes the view");
    assert.ok(pod.volumes.find((v) => v.name === "http-view")?.emptyDir !== undefined, "the view lives in an emptyDir of the pod");
    assert.deepEqual(proxy.ports.map((p) => [p.name, p.containerPort, p.hostPort]), [["proxy-metrics", 9963, 9963]]);
    assert.equal(proxy.readinessProbe?.httpGet?.path, "/readyz");
  });

  it("grants the operator and the agent what they need and nothing more", async () => {
    await kubectlOk(["apply", "-f", crdFile, "-f", identityCrdFile]);
    await kubectlOk(["apply", "-f", join(deployDir, "00-namespace.yaml")]);
    await kubectlOk(["apply", "-f", join(deployDir, "10-operator-rbac.yaml"), "-f", join(deployDir, "11-agent-rbac.yaml")]);
    const operator = "system:serviceaccount:palisade-system:palisade-operator";
    const agent = "system:serviceaccount:palisade-system:palisade-agent";
    const cases: [string, string[], boolean][] = [
      [operator, ["watch", "ebpfnetworkpolicies.palisade.dev", "-A"], true],
      [operator, ["watch", "networkpolicies.networking.k8s.io", "-A"], true],
      [operator, ["list", "nodes"], true],
      [operator, ["patch", "ebpfnetworkpolicies.palisade.dev", "--subresource=status", "-n", "shop"], true],
      [operator, ["update", "ebpfnetworkpolicies.palisade.dev", "-n", "shop"], false],
      [operator, ["create", "events", "-n", "shop"], true],
      [operator, ["update", "leases.coordination.k8s.io/palisade-operator", "-n", "palisade-system"], true],
      [operator, ["update", "leases.coordination.k8s.io/other", "-n", "palisade-system"], false],
      [operator, ["create", "leases.coordination.k8s.io", "-n", "kube-system"], false],
      // TLS material: the operator reads Secrets (RBAC cannot narrow it to kubernetes.io/tls) and writes only its copies.
      [operator, ["watch", "secrets", "-A"], true],
      [operator, ["create", "secrets", "-n", "palisade-secrets"], true],
      [operator, ["delete", "secrets", "-n", "palisade-secrets"], true],
      [operator, ["create", "secrets", "-n", "shop"], false],
      [operator, ["update", "secrets", "-n", "palisade-system"], false],
      [operator, ["watch", "configmaps", "-A"], true],
      [agent, ["watch", "secrets", "-n", "palisade-secrets"], true],
      [agent, ["create", "secrets", "-n", "palisade-secrets"], false],
      [agent, ["get", "secrets", "-n", "shop"], false],
      [agent, ["watch", "pods", "-A"], true],
      [agent, ["watch", "ebpfnetworkpolicies.palisade.dev", "-A"], true],
      [agent, ["patch", "ebpfnetworkpolicies.palisade.dev", "--subresource=status", "-n", "shop"], false],
      [agent, ["update", "pods", "-n", "shop"], false],
      [agent, ["patch", "configmaps/palisade-node-n1", "-n", "palisade-system"], true],
      [agent, ["create", "configmaps", "-n", "palisade-system"], true],
      [agent, ["create", "configmaps", "-n", "shop"], false],
      [operator, ["watch", "configmaps", "-n", "palisade-system"], true],
      [operator, ["patch", "configmaps", "-n", "palisade-system"], false],
      [agent, ["get", "secrets", "-A"], false],
      [operator, ["watch", "palisadeidentities.palisade.dev"], true],
      [operator, ["create", "palisadeidentities.palisade.dev"], true],
      [operator, ["delete", "palisadeidentities.palisade.dev"], true],
      [operator, ["update", "palisadeidentities.palisade.dev"], false],
      [agent, ["watch", "palisadeidentities.palisade.dev"], true],
      [agent, ["get", "palisadeidentities.palisade.dev/300"], true],
      [agent, ["create", "palisadeidentities.palisade.dev"], false],
      [agent, ["delete", "palisadeidentities.palisade.dev"], false],
    ];
    for (const [user, args, allowed] of cases) {
      const run = await kubectl(["auth", "can-i", ...args, `--as=${user}`]);
      assert.equal(run.stdout.trim(), allowed ? "yes" : "no", `${user} ${args.join(" ")}`);
    }
  });

  describe("the PalisadeIdentity CRD", () => {
    const id = String(100_000 + ((randomBytes(2).readUInt16BE(0)) % 50_000));
    const identity = (name: string, key: string): string =>
      JSON.stringify({ apiVersion: "palisade.dev/v1alpha1", kind: "PalisadeIdentity", metadata: { name }, spec: { key, kind: "cidr", cidr: "10.0.0.0/8" } });

    before(async () => {
      await kubectlOk(["apply", "-f", identityCrdFile]);
      await kubectlOk(["wait", "--for=condition=Established", "--timeout=60s", "crd/palisadeidentities.palisade.dev"]);
    });

    after(async () => {
      await kubectl(["delete", "palisadeidentities.palisade.dev", id, "--ignore-not-found"]);
    });

    it("keeps an identity's spec as created", async () => {
      await kubectlOk(["create", "-f", "-"], identity(id, '["cidr","10.0.0.0/8"]'));
      const run = await kubectl(["replace", "-f", "-"], identity(id, '["cidr","10.0.0.0/9"]'));
      assert.notEqual(run.code, 0);
      assert.match(run.stderr, /spec: Invalid value: "object": is immutable: a changed key is a new identity/);
    });

    it("refuses a name that is not an allocatable identity number", async () => {
      // Numbers from 4026531840 up are each agent's own, for keys no object can hold.
      for (const name of ["12", "0300", "web", "4026531840"]) {
        const run = await kubectl(["create", "--dry-run=server", "-f", "-"], identity(name, '["cidr","10.0.0.0/8"]'));
        assert.notEqual(run.code, 0, name);
        assert.match(run.stderr, /metadata.name must be the identity number in decimal, from 256 to 4026531839/, name);
      }
    });
  });

  describe("the EBPFNetworkPolicy CRD", () => {
    const namespace = `pl-${randomBytes(4).toString("hex")}`;

    before(async () => {
      await kubectlOk(["apply", "-f", crdFile]);
      await kubectlOk(["wait", "--for=condition=Established", "--timeout=60s", "crd/ebpfnetworkpolicies.palisade.dev"]);
      await kubectlOk(["create", "namespace", namespace]);
    });

    it("accepts a valid policy and fills in the defaults", async () => {
      const policy = ebpfPolicy({
        selector: { matchLabels: { app: "api" }, matchExpressions: [{ key: "tier", operator: "Exists" }] },
        policyTypes: ["Ingress", "Egress"],
        ingress: [
          { from: [{ podSelector: { matchLabels: { app: "web" } } }], ports: [{ port: 8080 }, { port: "http" }, { port: 9000, endPort: 9100, protocol: "UDP" }] },
          { action: "Deny", from: [{ ipBlock: { cidr: "10.0.0.1/8", except: ["10.1.0.0/16"] } }, { ipBlock: { cidr: "fd00::/8", except: ["fd00:1::/32"] } }] },
        ],
        egress: [{ to: [{ namespaceSelector: {} }] }],
      });
      assert.deepEqual(validatePolicy(policy), []);
      const created = JSON.parse((await kubectlOk(["create", "--dry-run=server", "-o", "json", "-f", "-"], JSON.stringify(policy))).stdout);
      assert.equal(created.spec.mode, "Enforce");
      assert.equal(created.spec.ingress[0].action, "Allow");
      assert.deepEqual(created.spec.ingress[0].ports.map((p: { protocol: string }) => p.protocol), ["TCP", "TCP", "UDP"]);
      assert.equal(created.spec.egress[0].action, "Allow");
    });

    const invalid: { name: string; spec: Record<string, unknown>; field: string; message: string }[] = [
      {
        name: "endPort below port",
        spec: { ingress: [{ ports: [{ port: 80, endPort: 70 }] }] },
        field: "spec.ingress[0].ports[0].endPort",
        message: "70 is below port 80",
      },
      {
        name: "endPort with a named port",
        spec: { egress: [{ ports: [{ port: "http", endPort: 90 }] }] },
        field: "spec.egress[0].ports[0].endPort",
        message: 'requires a numeric port, not the named port "http"',
      },
      {
        name: "endPort without a port",
        spec: { ingress: [{ ports: [{ endPort: 90 }] }] },
        field: "spec.ingress[0].ports[0].endPort",
        message: "requires a numeric port",
      },
      {
        name: "port out of range",
        spec: { ingress: [{ ports: [{ port: 70000 }] }] },
        field: "spec.ingress[0].ports[0].port",
        message: "70000 is not between 1 and 65535",
      },
      {
        name: "invalid port name",
        spec: { ingress: [{ ports: [{ port: "Web--Port" }] }] },
        field: "spec.ingress[0].ports[0].port",
        message: '"Web--Port" is not a valid port name',
      },
      {
        name: "except outside cidr",
        spec: { ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/8", except: ["10.1.0.0/16", "192.168.0.0/24"] } }] }] },
        field: "spec.ingress[0].from[0].ipBlock.except",
        message: '"192.168.0.0/24" is not strictly inside cidr "10.0.0.0/8"',
      },
      {
        name: "except equal to cidr",
        spec: { egress: [{ to: [{ ipBlock: { cidr: "fd00::/8", except: ["fd00::/8"] } }] }] },
        field: "spec.egress[0].to[0].ipBlock.except",
        message: '"fd00::/8" is not strictly inside cidr "fd00::/8"',
      },
      {
        name: "bad CIDR",
        spec: { egress: [{ to: [{ ipBlock: { cidr: "10.0.0.300/8" } }] }] },
        field: "spec.egress[0].to[0].ipBlock.cidr",
        message: '"10.0.0.300/8" is not a valid CIDR',
      },
      {
        name: "bad except CIDR",
        spec: { egress: [{ to: [{ ipBlock: { cidr: "10.0.0.0/8", except: ["10.0.0.0/40"] } }] }] },
        field: "spec.egress[0].to[0].ipBlock.except[0]",
        message: '"10.0.0.0/40" is not a valid CIDR',
      },
      {
        name: "peer with nothing",
        spec: { ingress: [{ from: [{}] }] },
        field: "spec.ingress[0].from[0]",
        message: "must set ipBlock, or podSelector and/or namespaceSelector",
      },
      {
        name: "peer with ipBlock and a selector",
        spec: { ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/8" }, namespaceSelector: {} }] }] },
        field: "spec.ingress[0].from[0]",
        message: "sets ipBlock together with namespaceSelector: ipBlock must be the only peer field",
      },
      {
        name: "In without values",
        spec: { selector: { matchExpressions: [{ key: "app", operator: "In" }] } },
        field: "spec.selector.matchExpressions[0].values",
        message: 'must not be empty when operator is "In"',
      },
      {
        name: "Exists with values",
        spec: { ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: "app", operator: "Exists", values: ["x"] }] } }] }] },
        field: "spec.ingress[0].from[0].podSelector.matchExpressions[0].values",
        message: 'must be empty when operator is "Exists"',
      },
      {
        name: "unknown policy type",
        spec: { policyTypes: ["Ingress", "Sideways"] },
        field: "spec.policyTypes[1]",
        message: 'Unsupported value: "Sideways"',
      },
      {
        name: "unknown action",
        spec: { egress: [{ action: "Reject" }] },
        field: "spec.egress[0].action",
        message: 'Unsupported value: "Reject"',
      },
      {
        name: "label value with a space",
        spec: { selector: { matchLabels: { app: "a b" } } },
        field: "spec.selector.matchLabels.app",
        message: 'Invalid value: "a b"',
      },
      {
        name: "label key with a space",
        spec: { ingress: [{ from: [{ podSelector: { matchLabels: { "a b": "x" } } }] }] },
        field: "spec.ingress[0].from[0].podSelector.matchLabels",
        message: '"a b": name part must consist of alphanumeric characters',
      },
      {
        name: "expression key with a bad prefix",
        spec: { egress: [{ to: [{ namespaceSelector: { matchExpressions: [{ key: "-x/app", operator: "Exists" }] } }] }] },
        field: "spec.egress[0].to[0].namespaceSelector.matchExpressions[0].key",
        message: 'Invalid value: "-x/app"',
      },
      {
        name: "expression value with a space",
        spec: { selector: { matchExpressions: [{ key: "app", operator: "NotIn", values: ["ok", "a b"] }] } },
        field: "spec.selector.matchExpressions[0].values[1]",
        message: 'Invalid value: "a b"',
      },
    ];

    for (const { name, spec, field, message } of invalid) {
      it(`refuses ${name}, naming ${field}`, async () => {
        const policy = ebpfPolicy({ selector: {}, ...spec });
        const run = await kubectl(["create", "--dry-run=server", "-f", "-"], JSON.stringify(policy));
        assert.notEqual(run.code, 0, `accepted: ${run.stdout}`);
        const line = run.stderr.split("\n").find((l) => l.includes(`${field}: `));
        assert.ok(line !== undefined, `no error names ${field}: ${run.stderr}`);
        assert.ok(line.includes(message), `the error on ${field} does not say ${JSON.stringify(message)}: ${run.stderr}`);
        // The operator's checks refuse the same object at the same field (or an item of it; they write a label key as ["key"]).
        const issues = validatePolicy(policy).map((issue) => ({ ...issue, field: issue.field.replace(/\["([^"]*)"\]/g, ".$1") }));
        assert.ok(
          issues.some((issue) => issue.field === field || issue.field.startsWith(`${field}[`)),
          `validatePolicy names no ${field}: ${JSON.stringify(issues)}`,
        );
      });
    }

    function ebpfPolicy(spec: Record<string, unknown>): Record<string, unknown> {
      return { apiVersion: "palisade.dev/v1alpha1", kind: "EBPFNetworkPolicy", metadata: { name: "p", namespace }, spec };
    }
  });
});

function kubectl(args: string[], input?: string): Promise<Run> {
  if (!controlPlane) throw new Error("Cannot run kubectl: no control plane");
  return exec(controlPlane.kubectl, [`--kubeconfig=${controlPlane.kubeconfig}`, ...args], input, 60_000);
}

async function kubectlOk(args: string[], input?: string): Promise<Run> {
  const run = await kubectl(args, input);
  assert.equal(run.code, 0, `kubectl ${args.join(" ")} failed: ${run.stderr}`);
  return run;
}

function exec(command: string, args: string[], input: string | undefined, timeout: number): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(command, args, { timeout, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
    child.stdin?.end(input ?? "");
  });
}
