/**
 * Differential test: random worlds and packets; the verdict of the real BPF
 * program (BPF_PROG_TEST_RUN on a synthesized packet, maps filled from the
 * compiler's state) must equal the reference evaluator's reading of the spec.
 * The TypeScript lookup emulation that `palisade explain` uses is held to the
 * same oracle. Flows that HTTP rules judge go to the node's proxy, which is
 * absent here: the datapath must drop them (fail closed) and only them. A
 * failure prints fast-check's seed and the shrunk world.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import fc from "fast-check";
import {
  compileWorld,
  emptyDiff,
  evaluate,
  explainPacket,
  PolicyCompiler,
  type DirectionResult,
  type Packet,
  type PodInfo,
  type StateDiff,
  type World,
} from "../../src/policy/index.ts";
import { Datapath } from "../../src/datapath/index.ts";
import { buildPacket } from "../lib/packets.ts";
import { EXTERNAL_IPS, packetArb, worldArb } from "../lib/world-arbitrary.ts";
import { createTestInterfaces, uniquePinRoot, type TestInterfaces } from "../lib/kernel.ts";

const WORLDS = Number(process.env.PALISADE_DIFF_WORLDS ?? 2000);
const PACKETS_PER_WORLD = 15;
const MAX_PODS = 5;

let datapath: Datapath;
let interfaces: TestInterfaces;
let sport = 20000;

before(() => {
  interfaces = createTestInterfaces(MAX_PODS);
  datapath = Datapath.open({ pinRoot: uniquePinRoot("diff") });
});

after(() => {
  try {
    datapath?.destroy();
  } finally {
    interfaces?.remove();
  }
});

function kernelAllows(world: World, ifindexOf: (pod: string) => number | undefined, packet: Packet): boolean {
  const podByIp = new Map([...world.pods.entries()].flatMap(([key, pod]) => pod.ips.map((ip) => [ip, key] as const)));
  sport = sport >= 65000 ? 20000 : sport + 1; // a new flow every time: no conntrack hit from earlier cases
  const frame = buildPacket({
    src: packet.src.ip,
    dst: packet.dst.ip,
    protocol: packet.protocol,
    sport,
    dport: packet.port,
  });
  const srcPod = podByIp.get(packet.src.ip);
  if (srcPod !== undefined) {
    const run = datapath.testRun("from-pod", frame, { ifindex: ifindexOf(srcPod) ?? 0 });
    if (run.retval !== 0) return false;
  }
  const dstPod = podByIp.get(packet.dst.ip);
  if (dstPod !== undefined) {
    const run = datapath.testRun("to-pod", frame, { ifindex: ifindexOf(dstPod) ?? 0 });
    if (run.retval !== 0) return false;
  }
  return true;
}

/** A flow HTTP rules judge goes to the node's proxy; there is none here, so the datapath drops it (fail closed). */
function steers(end: DirectionResult): boolean {
  return end.allowed && (end.http !== undefined || (end.audit.allowed && end.audit.http !== undefined));
}

test(`kernel verdicts equal the reference evaluator (${WORLDS} worlds x ${PACKETS_PER_WORLD} packets)`, () => {
  let cases = 0;
  let steeredCases = 0;
  const property = fc.property(
    worldArb(MAX_PODS, 4).chain((world) => fc.tuple(fc.constant(world), fc.array(packetArb(world), { minLength: PACKETS_PER_WORLD, maxLength: PACKETS_PER_WORLD }))),
    ([world, packets]) => {
      const { state } = compileWorld(world);
      const podKeys = [...world.pods.keys()];
      const ifindexOf = (pod: string) => interfaces.ifindexes[podKeys.indexOf(pod)];
      datapath.replaceAll(state, ifindexOf);
      datapath.clearConntrack();
      for (const packet of packets) {
        // Each packet is the first of a flow from a source with no history: connection limits count
        // what a source holds and has opened, which the reference (one packet at a time) does not model.
        datapath.maps.tcpSources.remove(datapath.maps.tcpSources.keys());
        const reference = evaluate(world, packet);
        const emulated = explainPacket(state, world, packet);
        assert.equal(emulated.allowed, reference.allowed, `lookup emulation disagrees with the reference evaluator on ${JSON.stringify(packet)}`);
        assert.equal(emulated.egress?.proxied ?? false, steers(reference.egress), `lookup emulation steers egress otherwise than the reference on ${JSON.stringify(packet)}`);
        assert.equal(emulated.ingress?.proxied ?? false, steers(reference.ingress), `lookup emulation steers ingress otherwise than the reference on ${JSON.stringify(packet)}`);
        const steered = reference.allowed && (steers(reference.egress) || steers(reference.ingress));
        const kernel = kernelAllows(world, ifindexOf, packet);
        assert.equal(kernel, reference.allowed && !steered, `kernel disagrees with the reference evaluator on ${JSON.stringify(packet)}${steered ? " (a flow for the proxy, which is absent)" : ""}`);
        if (steered) steeredCases++;
        cases++;
      }
    },
  );
  fc.assert(property, { numRuns: WORLDS, endOnFailure: false, verbose: fc.VerbosityLevel.Verbose });
  assert.ok(cases >= WORLDS * PACKETS_PER_WORLD);
  console.log(`differential: ${cases} packet cases over ${WORLDS} worlds agreed (${steeredCases} for the proxy)`);
});

/** The stages of a diff in the order the datapath writes them (see `StateDiff`): each is applied alone, and packets are checked between them. */
const STAGES: (keyof StateDiff)[][] = [
  ["tcpLimitUpserts", "policyUpserts"],
  ["endpointUpserts"],
  ["ipcacheUpserts"],
  ["ipcacheRemovals"],
  ["endpointRemovals"],
  ["policyRemovals", "tcpLimitRemovals"],
];
const VISITOR_IP = EXTERNAL_IPS[0] as string;
const VISITOR_PORTS = [53, 80, 81, 8080, 9000];

test(`a remote pod coming, relabelled and going: its packets get the old or the new verdict between every write, the new one after (${Math.ceil(WORLDS / 10)} worlds)`, () => {
  let inPlace = 0;
  const visitorArb = fc.record({
    namespace: fc.constantFrom("x", "y", "z"),
    labels: fc.array(fc.record({ app: fc.constantFrom("web", "db"), tier: fc.constantFrom("1", "2") }), { minLength: 2, maxLength: 2 }),
  });
  const property = fc.property(worldArb(MAX_PODS, 4), visitorArb, (base, visitor) => {
    const local = new Map<string, PodInfo>([...base.pods].map(([key, pod]) => [key, { ...pod, nodeName: "local" }]));
    const world = { ...base, pods: local };
    const podKeys = [...local.keys()];
    const ifindexOf = (pod: string) => interfaces.ifindexes[podKeys.indexOf(pod)];
    const compiler = new PolicyCompiler({ nodeName: "local" });
    for (const ns of world.namespaces.values()) compiler.upsertNamespace(ns);
    for (const pod of local.values()) compiler.upsertPod(pod);
    for (const policy of world.policies) compiler.upsertPolicy(policy);
    compiler.setHostIPs(world.hostIPs);
    compiler.commit();
    datapath.replaceAll(compiler.state(), ifindexOf);
    const visitorPod = (labels: Record<string, string>): PodInfo => ({ namespace: visitor.namespace, name: "visitor", labels: { pod: "visitor", ...labels }, ips: [VISITOR_IP], namedPorts: [], nodeName: "remote" });
    const steps: (PodInfo | undefined)[] = [visitorPod(visitor.labels[0] ?? {}), visitorPod(visitor.labels[1] ?? {}), undefined];
    let before: World = world;
    for (const step of steps) {
      const pods = new Map(local);
      if (step) pods.set(`${visitor.namespace}/visitor`, step);
      const after: World = { ...world, pods };
      if (step) compiler.upsertPod(step);
      else compiler.deletePod(visitor.namespace, "visitor");
      const slots = new Map(podKeys.map((key) => [key, compiler.endpointOf(key)?.slot]));
      const diff = compiler.commit();
      inPlace += diff.policyUpserts.filter((entry) => [...slots].some(([key, slot]) => slot === entry.key.slot && compiler.endpointOf(key)?.slot === slot)).length;
      for (const [index, fields] of STAGES.entries()) {
        const part = emptyDiff();
        for (const field of fields) Object.assign(part, { [field]: diff[field] });
        datapath.apply(part, ifindexOf);
        datapath.clearConntrack();
        for (const [key, pod] of local) {
          const dst = pod.ips.find((ip) => !ip.includes(":")) as string;
          for (const port of VISITOR_PORTS) {
            for (const protocol of ["TCP", "UDP"] as const) {
              const packet: Packet = { src: { ip: VISITOR_IP }, dst: { ip: dst }, protocol, port };
              datapath.maps.tcpSources.remove(datapath.maps.tcpSources.keys());
              const expected = (w: World) => {
                const { ingress } = evaluate(w, packet);
                return ingress.allowed && !steers(ingress);
              };
              sport = sport >= 65000 ? 20000 : sport + 1;
              const frame = buildPacket({ src: VISITOR_IP, dst, protocol, sport, dport: port });
              const kernel = datapath.testRun("to-pod", frame, { ifindex: ifindexOf(key) ?? 0 }).retval === 0;
              const last = index === STAGES.length - 1;
              const allowed = last ? [expected(after)] : [expected(before), expected(after)];
              assert.ok(allowed.includes(kernel), `after writing ${fields.join(", ")}: ${JSON.stringify(packet)} to ${key} ${kernel ? "passed" : "dropped"}; before the change ${expected(before) ? "passes" : "drops"}, after it ${expected(after) ? "passes" : "drops"}`);
            }
          }
        }
      }
      before = after;
    }
  });
  fc.assert(property, { numRuns: Math.ceil(WORLDS / 10), endOnFailure: false, verbose: fc.VerbosityLevel.Verbose });
  assert.ok(inPlace > 0, "some slots were changed in place");
  console.log(`differential: ${inPlace} policy entries written to slots in use, every packet between writes got the old or the new verdict`);
});
