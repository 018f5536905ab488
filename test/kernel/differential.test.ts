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
import { compileWorld, evaluate, explainPacket, type DirectionResult, type Packet, type World } from "../../src/policy/index.ts";
import { Datapath } from "../../src/datapath/index.ts";
import { buildPacket } from "../lib/packets.ts";
import { packetArb, worldArb } from "../lib/world-arbitrary.ts";
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
        // A flow HTTP rules judge goes to the node's proxy; there is none here, so the datapath drops it (fail closed).
        const steers = (end: DirectionResult): boolean => end.allowed && (end.http !== undefined || (end.audit.allowed && end.audit.http !== undefined));
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
