// Real-kernel tests of the native binding (run as root): the fixture objects
// built by `make -C native`, bpffs pins under a fresh directory, and a veth
// pair to attach to and send through, all removed afterwards.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { after, before, describe, it } from "node:test";
import type { TestContext } from "node:test";
import {
  BpfError,
  BpfLinkType,
  BpfMapType,
  MapUpdateFlags,
  RingBufferReader,
  attachTc,
  attachTcx,
  closeFd,
  detachTc,
  ifNameToIndex,
  linkDetach,
  linkInfo,
  mapDelete,
  mapDeleteBatch,
  mapInfo,
  mapLookup,
  mapLookupAll,
  mapUpdate,
  mapUpdateBatch,
  numPossibleCpus,
  objGet,
  objPin,
  openObject,
  perCpuSlotSize,
  releaseFreeMemory,
  testRun,
  threadCpuTime,
} from "../../src/datapath/native.ts";
import { repositoryRoot } from "../../src/repository-root.ts";
import type { BpfObject } from "../../src/datapath/native.ts";
import { recordKernelObject } from "../lib/kernel-journal.ts";

const ROOT = repositoryRoot();
const FIXTURE = join(ROOT, "native", "out", "native-fixture.bpf.o");
const REJECT_FIXTURE = join(ROOT, "native", "out", "native-reject.bpf.o");
const NATIVE_MODULE = new URL("../../src/datapath/native.js", import.meta.url);
const SUFFIX = randomBytes(4).toString("hex");
const PIN_ROOT = `/sys/fs/bpf/pl-test-${SUFFIX}`;
const DEVICE = `pl-${SUFFIX}`;
const PEER = `pl-${SUFFIX}p`;
// A random /24 of the benchmarking range, routed to DEVICE.
const SUBNET = `198.18.${randomBytes(1)[0]}`;
const RECORD_MAGIC = 0x706c6678;
const STATS_SIZE = 12;

let pinRoots = 0;

function newPinRoot(): string {
  const dir = join(PIN_ROOT, `t${pinRoots++}`);
  mkdirSync(dir);
  return dir;
}

function openFixture(t: TestContext, pinRoot = newPinRoot()): BpfObject {
  const obj = openObject(FIXTURE, { pinRoot, mapMaxEntries: { fx_flows: 64 } });
  t.after(() => obj.close());
  return obj;
}

function ip(...args: string[]): void {
  const result = spawnSync("ip", args, { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`ip ${args.join(" ")} failed: ${result.stderr}`);
}

function u32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32LE(value);
  return buffer;
}

function flowKey(addr: number, port: number, proto: number): Buffer {
  const key = Buffer.alloc(8);
  key.writeUInt32LE(addr, 0);
  key.writeUInt16LE(port, 4);
  key.writeUInt8(proto, 6);
  return key;
}

function flowValue(packets: number, verdict: number): Buffer {
  const value = Buffer.alloc(16);
  value.writeBigUInt64LE(BigInt(packets), 0);
  value.writeUInt32LE(verdict, 8);
  return value;
}

function prefixKey(prefixlen: number, address: string): Buffer {
  const key = Buffer.alloc(8);
  key.writeUInt32LE(prefixlen, 0);
  Buffer.from(address.split(".").map(Number)).copy(key, 4);
  return key;
}

// An Ethernet + IPv4 + UDP frame to `port`, `payload` bytes of zeros after the headers.
function udpFrame(port: number, payload: number): Buffer {
  const frame = Buffer.alloc(14 + 20 + 8 + payload);
  frame.writeUInt16BE(0x0800, 12);
  frame.writeUInt8(0x45, 14);
  frame.writeUInt16BE(20 + 8 + payload, 16);
  frame.writeUInt8(64, 22);
  frame.writeUInt8(17, 23);
  Buffer.from([10, 0, 0, 1, 10, 0, 0, 2]).copy(frame, 26);
  frame.writeUInt16BE(40000, 34);
  frame.writeUInt16BE(port, 36);
  frame.writeUInt16BE(8 + payload, 38);
  return frame;
}

interface Stats {
  packets: number;
  portHits: number;
}

// Sums the fixture's per-CPU stats over every possible CPU.
function readStats(obj: BpfObject): Stats {
  const all = mapLookup(obj.map("fx_stats").fd, u32(0), STATS_SIZE);
  assert.ok(all !== null);
  const stats = { packets: 0, portHits: 0 };
  for (let offset = 0; offset < all.length; offset += perCpuSlotSize(STATS_SIZE)) {
    stats.packets += all.readUInt32LE(offset);
    stats.portHits += all.readUInt32LE(offset + 4);
  }
  return stats;
}

async function sendUdp(port: number): Promise<void> {
  const socket = createSocket("udp4");
  try {
    await new Promise<void>((resolve, reject) => {
      socket.send(Buffer.from("palisade"), port, `${SUBNET}.2`, (error) => (error ? reject(error) : resolve()));
    });
  } finally {
    socket.close();
  }
}

// The keys fx_flows holds, as hex, sorted.
function flowKeys(fd: number): string[] {
  return [...readAll(fd, 8, 16).keys()].sort();
}

// What one whole read of a map returns, as value hex by key hex.
function readAll(fd: number, keySize: number, valueSize: number): Map<string, string> {
  const { count, keys, values } = mapLookupAll(fd, keySize, valueSize);
  const stride = count === 0 ? 0 : values.length / count;
  assert.equal(keys.length, count * keySize);
  const entries = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    entries.set(keys.toString("hex", i * keySize, (i + 1) * keySize), values.toString("hex", i * stride, (i + 1) * stride));
  }
  assert.equal(entries.size, count, "no key read twice");
  return entries;
}

// Writes `keys` and `values` (back to back) in one batch and returns them as readAll gives them.
function writeAll(fd: number, keys: Buffer[], values: Buffer[]): Map<string, string> {
  mapUpdateBatch(fd, Buffer.concat(keys), Buffer.concat(values), keys.length);
  return new Map(keys.map((key, i) => [key.toString("hex"), values[i]!.toString("hex")]));
}

function assertBpfError(code: string, operation: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof BpfError, `expected a BpfError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.equal(error.operation, operation);
    assert.ok(error.cause instanceof Error);
    return true;
  };
}

describe("native binding", () => {
  let ifindex = 0;

  before(() => {
    recordKernelObject("pin", PIN_ROOT);
    recordKernelObject("link", DEVICE);
    mkdirSync(PIN_ROOT);
    ip("link", "add", DEVICE, "type", "veth", "peer", "name", PEER);
    for (const name of [DEVICE, PEER]) {
      // No IPv6: its autoconfiguration traffic would reach the programs too.
      writeFileSync(`/proc/sys/net/ipv6/conf/${name}/disable_ipv6`, "1");
      ip("link", "set", name, "up");
    }
    ip("address", "add", `${SUBNET}.1/24`, "dev", DEVICE);
    // A static neighbour, so a datagram to .2 leaves at once instead of waiting on ARP.
    ip("neighbour", "add", `${SUBNET}.2`, "lladdr", "02:00:00:00:00:02", "dev", DEVICE, "nud", "permanent");
    ifindex = ifNameToIndex(DEVICE);
  });

  after(() => {
    rmSync(PIN_ROOT, { recursive: true, force: true });
    spawnSync("ip", ["link", "del", DEVICE]);
  });

  it("loads an object, applies max_entries and pins by-name maps under the pin root", (t) => {
    const pinRoot = newPinRoot();
    const obj = openFixture(t, pinRoot);
    assert.equal(obj.path, FIXTURE);
    assert.deepEqual(
      obj.maps().map((map) => map.name).sort(),
      ["fx_config", "fx_counts", "fx_events", "fx_flows", "fx_ports", "fx_prefixes", "fx_recent", "fx_stats"],
    );
    const flows = obj.map("fx_flows");
    assert.deepEqual(
      { type: flows.type, keySize: flows.keySize, valueSize: flows.valueSize, maxEntries: flows.maxEntries },
      { type: BpfMapType.hash, keySize: 8, valueSize: 16, maxEntries: 64 },
    );
    const info = mapInfo(flows.fd);
    assert.equal(info.maxEntries, 64);
    assert.equal(info.name, "fx_flows");
    assert.ok(existsSync(join(pinRoot, "fx_flows")));
    assert.equal(existsSync(join(pinRoot, "fx_config")), false);
    const program = obj.program("fx_classify");
    assert.equal(program.section, "tc");
    assert.ok(program.fd > 0);
  });

  it("reuses a map pinned by an earlier load of the object", (t) => {
    const pinRoot = newPinRoot();
    const first = openFixture(t, pinRoot);
    const second = openFixture(t, pinRoot);
    const firstFlows = first.map("fx_flows").fd;
    const secondFlows = second.map("fx_flows").fd;
    assert.equal(mapInfo(firstFlows).id, mapInfo(secondFlows).id);
    assert.notEqual(mapInfo(first.map("fx_config").fd).id, mapInfo(second.map("fx_config").fd).id);
    mapUpdate(firstFlows, flowKey(1, 80, 6), flowValue(5, 1));
    assert.deepEqual(mapLookup(secondFlows, flowKey(1, 80, 6), 16), flowValue(5, 1));
  });

  it("refuses a max_entries override for a map the object lacks", () => {
    assert.throws(
      () => openObject(FIXTURE, { pinRoot: newPinRoot(), mapMaxEntries: { fx_missing: 8 } }),
      (error) => {
        assertBpfError("ENOENT", "bpf_object__find_map_by_name")(error);
        assert.match((error as Error).message, /map "fx_missing" is not in object/);
        return true;
      },
    );
  });

  it("puts the verifier's reason into the error of a refused load", () => {
    assert.throws(
      () => openObject(REJECT_FIXTURE),
      (error) => {
        assertBpfError("EACCES", "bpf_object__load")(error);
        const bpfError = error as BpfError;
        assert.match(bpfError.message, /^bpf_object__load failed: EACCES \(Permission denied\): object "/);
        assert.match(bpfError.message, /R0 invalid mem access 'map_value_or_null'/);
        assert.ok(bpfError.log !== undefined && bpfError.log.split("\n").length <= 40);
        assert.match(bpfError.log, /invalid mem access/);
        return true;
      },
    );
  });

  it("updates, looks up, iterates and deletes map entries", (t) => {
    const fd = openFixture(t).map("fx_flows").fd;
    const keys = [flowKey(0x0a000001, 80, 6), flowKey(0x0a000002, 443, 6), flowKey(0x0a000003, 53, 17)];
    keys.forEach((key, i) => mapUpdate(fd, key, flowValue(i, 1)));
    assert.deepEqual(flowKeys(fd), keys.map((key) => key.toString("hex")).sort());
    assert.deepEqual(mapLookup(fd, keys[1]!, 16), flowValue(1, 1));

    mapUpdate(fd, keys[1]!, flowValue(7, 2), MapUpdateFlags.exist);
    assert.deepEqual(mapLookup(fd, keys[1]!, 16), flowValue(7, 2));
    assert.throws(() => mapUpdate(fd, keys[1]!, flowValue(0, 0), MapUpdateFlags.noExist), assertBpfError("EEXIST", "bpf_map_update_elem"));
    assert.throws(
      () => mapUpdate(fd, flowKey(9, 9, 9), flowValue(0, 0), MapUpdateFlags.exist),
      assertBpfError("ENOENT", "bpf_map_update_elem"),
    );

    assert.equal(mapDelete(fd, keys[0]!), true);
    assert.equal(mapDelete(fd, keys[0]!), false);
    assert.equal(mapLookup(fd, keys[0]!, 16), null);
    assert.equal(flowKeys(fd).length, 2);
  });

  it("updates and deletes in batches, skipping keys that are already gone", (t) => {
    const fd = openFixture(t).map("fx_flows").fd;
    const keys = Array.from({ length: 40 }, (_, i) => flowKey(0x0a000000 + i, 1000 + i, 6));
    const values = keys.map((_, i) => flowValue(i * 3, i % 3));
    mapUpdateBatch(fd, Buffer.concat(keys), Buffer.concat(values), keys.length);
    assert.equal(flowKeys(fd).length, 40);
    keys.forEach((key, i) => assert.deepEqual(mapLookup(fd, key, 16), values[i]));

    mapDelete(fd, keys[5]!);
    mapDelete(fd, keys[30]!);
    assert.equal(mapDeleteBatch(fd, Buffer.concat(keys.slice(0, 35)), 35), 33);
    assert.deepEqual(flowKeys(fd), keys.slice(35).map((key) => key.toString("hex")).sort());
  });

  it("fills the whole map in one batch and reports the entry that did not fit", (t) => {
    const fd = openFixture(t).map("fx_flows").fd;
    const keys = Array.from({ length: 65 }, (_, i) => flowKey(i, 1, 17));
    const values = Buffer.concat(keys.map(() => flowValue(1, 1)));
    assert.throws(
      () => mapUpdateBatch(fd, Buffer.concat(keys), values, keys.length),
      (error) => {
        assertBpfError("E2BIG", "bpf_map_update_batch")(error);
        assert.equal((error as BpfError).index, 64);
        return true;
      },
    );
    assert.equal(flowKeys(fd).length, 64);
  });

  it("batches on an LPM trie keep longest-prefix semantics", (t) => {
    const fd = openFixture(t).map("fx_prefixes").fd;
    const keys = [prefixKey(8, "10.0.0.0"), prefixKey(16, "10.1.0.0"), prefixKey(24, "10.1.2.0")];
    mapUpdateBatch(fd, Buffer.concat(keys), Buffer.concat([u32(8), u32(16), u32(24)]), 3);
    assert.deepEqual(mapLookup(fd, prefixKey(32, "10.1.2.3"), 4), u32(24));
    assert.deepEqual(mapLookup(fd, prefixKey(32, "10.1.9.9"), 4), u32(16));
    assert.deepEqual(mapLookup(fd, prefixKey(32, "10.9.9.9"), 4), u32(8));
    assert.equal(mapLookup(fd, prefixKey(32, "11.0.0.1"), 4), null);
    assert.equal(mapDeleteBatch(fd, Buffer.concat(keys.slice(1)), 2), 2);
    assert.deepEqual(mapLookup(fd, prefixKey(32, "10.1.2.3"), 4), u32(8));
  });

  it("falls back to per-element deletes where the map type has no batch delete", (t) => {
    const fd = openFixture(t).map("fx_config").fd;
    // Array entries cannot be deleted at all: the fallback reports the element.
    assert.throws(
      () => mapDeleteBatch(fd, Buffer.concat([u32(0), u32(1)]), 2),
      (error) => {
        assertBpfError("EINVAL", "bpf_map_delete_elem")(error);
        assert.equal((error as BpfError).index, 0);
        return true;
      },
    );
  });

  it("reads 100k entries of a hash, an LRU hash and an LPM trie back whole, as written", (t) => {
    const size = 100_000;
    const obj = openObject(FIXTURE, { pinRoot: newPinRoot(), mapMaxEntries: { fx_flows: size, fx_recent: 2 * size, fx_prefixes: size } });
    t.after(() => obj.close());
    const flows = Array.from({ length: size }, (_, i) => flowKey(0x0a000000 + i, i & 0xffff, 6));
    const flowValues = flows.map((_, i) => flowValue(i, i % 3));
    for (const name of ["fx_flows", "fx_recent"]) {
      const fd = obj.map(name).fd;
      const written = writeAll(fd, flows, flowValues);
      assert.deepEqual(readAll(fd, 8, 16), written, name);
    }
    // Host prefixes and /24s, so the trie has inner nodes as well as leaves.
    const prefixKeys = Array.from({ length: size }, (_, i) =>
      i % 2 === 0 ? prefixKey(32, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`) : prefixKey(24, `11.${(i >> 16) & 255}.${(i >> 8) & 255}.0`),
    );
    const prefixes = obj.map("fx_prefixes").fd;
    const written = writeAll(prefixes, prefixKeys, prefixKeys.map((_, i) => u32(i)));
    assert.deepEqual(readAll(prefixes, 8, 4), written);
  });

  it("reads an empty map, and an array whole with its unwritten entries as zeros", (t) => {
    const size = 100_000;
    const obj = openObject(FIXTURE, { pinRoot: newPinRoot(), mapMaxEntries: { fx_config: size } });
    t.after(() => obj.close());
    assert.deepEqual(mapLookupAll(obj.map("fx_flows").fd, 8, 16), { count: 0, keys: Buffer.alloc(0), values: Buffer.alloc(0) });
    const fd = obj.map("fx_config").fd;
    const keys = Array.from({ length: 1000 }, (_, i) => u32(i * 97));
    writeAll(fd, keys, keys.map((_, i) => u32(i + 1)));
    const { count, keys: read, values } = mapLookupAll(fd, 4, 4);
    assert.equal(count, size);
    for (let i = 0; i < size; i++) {
      assert.equal(read.readUInt32LE(i * 4), i);
      assert.equal(values.readUInt32LE(i * 4), i % 97 === 0 && i / 97 < 1000 ? i / 97 + 1 : 0, `entry ${i}`);
    }
  });

  it("reads per-CPU maps whole, one 8-byte-aligned slot per possible CPU per value", (t) => {
    const obj = openFixture(t);
    const slot = perCpuSlotSize(STATS_SIZE);
    const cpus = numPossibleCpus();
    const perCpu = (entry: number): Buffer => {
      const value = Buffer.alloc(slot * cpus);
      for (let cpu = 0; cpu < cpus; cpu++) value.writeUInt32LE(entry * 100 + cpu, cpu * slot);
      return value;
    };
    const counts = obj.map("fx_counts").fd;
    const keys = Array.from({ length: 16 }, (_, i) => u32(i * 3));
    const written = writeAll(counts, keys, keys.map((_, i) => perCpu(i)));
    assert.deepEqual(readAll(counts, 4, STATS_SIZE), written);
    const stats = obj.map("fx_stats").fd;
    mapUpdate(stats, u32(0), perCpu(7));
    assert.deepEqual(readAll(stats, 4, STATS_SIZE), new Map([[u32(0).toString("hex"), perCpu(7).toString("hex")]]));
  });

  it("reads key by key where the map type has no batch lookup", (t) => {
    const fd = openFixture(t).map("fx_ports").fd;
    const keys = Array.from({ length: 16 }, (_, i) => u32(1000 + i));
    // Each value is an interface the devmap must find: the loopback's.
    const written = new Map(keys.map((key) => [key.toString("hex"), u32(ifNameToIndex("lo")).toString("hex")]));
    for (const key of keys) mapUpdate(fd, key, u32(ifNameToIndex("lo")));
    assert.deepEqual(readAll(fd, 4, 4), written);
  });

  it("refuses a whole read whose sizes are not the map's", (t) => {
    const fd = openFixture(t).map("fx_flows").fd;
    assert.throws(() => mapLookupAll(fd, 8, 12), (error) => {
      assertBpfError("EINVAL", "bpf_map_lookup_batch")(error);
      assert.match((error as Error).message, /value size 12 does not match the value size 16 of map "fx_flows"/);
      return true;
    });
  });

  it("reads and writes per-CPU values as one 8-byte-aligned slot per possible CPU", (t) => {
    const obj = openFixture(t);
    const fd = obj.map("fx_stats").fd;
    const cpus = numPossibleCpus();
    assert.ok(cpus >= 1);
    const slot = perCpuSlotSize(STATS_SIZE);
    assert.equal(slot, 16);
    assert.equal(mapLookup(fd, u32(0), STATS_SIZE)?.length, slot * cpus);

    const frame = udpFrame(5353, 20);
    mapUpdate(obj.map("fx_config").fd, u32(1), u32(5353));
    for (let i = 0; i < 5; i++) testRun(obj.program("fx_classify").fd, frame);
    assert.deepEqual(readStats(obj), { packets: 5, portHits: 5 });

    const values = Buffer.alloc(slot * cpus);
    for (let cpu = 0; cpu < cpus; cpu++) values.writeUInt32LE(100 + cpu, cpu * slot);
    mapUpdate(fd, u32(0), values);
    assert.deepEqual(mapLookup(fd, u32(0), STATS_SIZE), values);
    assert.throws(() => mapUpdate(fd, u32(0), Buffer.alloc(STATS_SIZE)), (error) => {
      assertBpfError("EINVAL", "bpf_map_update_elem")(error);
      assert.match((error as Error).message, /value is 12 bytes but map "fx_stats" \(id \d+\) needs \d+/);
      return true;
    });
  });

  it("describes map keys and values from BTF", (t) => {
    const obj = openFixture(t);
    assert.deepEqual(obj.mapLayout("fx_flows"), {
      key: {
        name: "fx_flow_key",
        size: 8,
        members: [
          { name: "addr", offset: 0, size: 4 },
          { name: "port", offset: 4, size: 2 },
          { name: "proto", offset: 6, size: 1 },
          { name: "pad", offset: 7, size: 1 },
        ],
      },
      value: {
        name: "fx_flow_value",
        size: 16,
        members: [
          { name: "packets", offset: 0, size: 8 },
          { name: "verdict", offset: 8, size: 4 },
          { name: "pad", offset: 12, size: 4 },
        ],
      },
    });
    assert.deepEqual(obj.mapLayout("fx_config").key, { name: "unsigned int", size: 4, members: [] });
    assert.equal(obj.mapLayout("fx_stats").value?.size, STATS_SIZE);
    assert.equal(obj.btfEnum("pal_reason"), null, "an enum the object does not have");
    assert.deepEqual(obj.mapLayout("fx_events"), { key: null, value: null });
    assert.throws(() => obj.mapLayout("fx_missing"), assertBpfError("ENOENT", "bpf_object__find_map_by_name"));
  });

  it("reads the calling thread's CPU time: what it ran, never more than the wall time, nothing while it sleeps", () => {
    const wallStarted = performance.now();
    const cpuStarted = threadCpuTime();
    let spun = 0;
    while (performance.now() - wallStarted < 20) spun++;
    const ran = threadCpuTime() - cpuStarted;
    const wallNs = (performance.now() - wallStarted) * 1e6;
    assert.ok(spun > 0 && ran > 0 && ran <= wallNs, `ran ${ran} ns in ${wallNs} ns of wall time`);
    const beforeSleep = threadCpuTime();
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    const slept = threadCpuTime() - beforeSleep;
    assert.ok(slept < 10e6, `${slept} ns of CPU over a 50 ms sleep`);
  });

  it("pins a map and opens it again by path", (t) => {
    const obj = openFixture(t);
    const path = join(PIN_ROOT, `config-${SUFFIX}`);
    objPin(obj.map("fx_config").fd, path);
    const fd = objGet(path);
    try {
      assert.equal(mapInfo(fd).id, mapInfo(obj.map("fx_config").fd).id);
      mapUpdate(fd, u32(0), u32(2));
      assert.deepEqual(mapLookup(obj.map("fx_config").fd, u32(0), 4), u32(2));
    } finally {
      closeFd(fd);
    }
    assert.throws(() => objPin(obj.map("fx_config").fd, path), assertBpfError("EEXIST", "bpf_obj_pin"));
    assert.throws(() => objGet(join(PIN_ROOT, "missing")), assertBpfError("ENOENT", "bpf_obj_get"));
  });

  it("test-runs a program on a packet and returns its verdict", (t) => {
    const obj = openFixture(t);
    const program = obj.program("fx_classify").fd;
    const frame = udpFrame(9, 100);
    const passed = testRun(program, frame, { repeat: 10 });
    assert.equal(passed.retval, 0);
    assert.ok(Number.isInteger(passed.durationNs) && passed.durationNs > 0, `the kernel timed the runs: ${passed.durationNs} ns`);
    assert.deepEqual(passed.dataOut, frame);
    mapUpdate(obj.map("fx_config").fd, u32(0), u32(2));
    assert.equal(testRun(program, frame).retval, 2);
    assert.equal(readStats(obj).packets, 11);
  });

  it("attaches with tcx and detaches: real packets reach the program only in between", async (t) => {
    const obj = openFixture(t);
    const port = 20000 + (randomBytes(2).readUInt16LE() % 20000);
    mapUpdate(obj.map("fx_config").fd, u32(1), u32(port));
    const linkFd = attachTcx(obj.program("fx_classify").fd, ifindex, "egress");
    try {
      const link = linkInfo(linkFd);
      assert.equal(link.type, BpfLinkType.tcx);
      assert.ok(link.id > 0 && link.progId > 0);
      await sendUdp(port);
      assert.equal(readStats(obj).portHits, 1);
      linkDetach(linkFd);
    } finally {
      closeFd(linkFd);
    }
    await sendUdp(port);
    assert.equal(readStats(obj).portHits, 1);
  });

  it("attaches and detaches a tc filter as the fallback", async (t) => {
    const obj = openFixture(t);
    const port = 20000 + (randomBytes(2).readUInt16LE() % 20000);
    mapUpdate(obj.map("fx_config").fd, u32(1), u32(port));
    const filter = { handle: 1, priority: 1 };
    const attached = attachTc(obj.program("fx_classify").fd, ifindex, "egress", filter);
    let detached = false;
    try {
      assert.equal(attached.handle, 1);
      assert.equal(attached.priority, 1);
      assert.ok(attached.progId > 0);
      // Attaching again replaces the filter in place.
      attachTc(obj.program("fx_classify").fd, ifindex, "egress", filter);
      await sendUdp(port);
      assert.equal(readStats(obj).portHits, 1);
    } finally {
      detached = detachTc(ifindex, "egress", filter);
    }
    assert.equal(detached, true);
    assert.equal(detachTc(ifindex, "egress", filter), false);
    await sendUdp(port);
    assert.equal(readStats(obj).portHits, 1);
  });

  it("delivers ring buffer records on the event loop until closed", async (t) => {
    const obj = openFixture(t);
    const records: Buffer[] = [];
    let arrived: () => void = () => {};
    const first = new Promise<void>((resolve) => (arrived = resolve));
    const reader = new RingBufferReader(obj.map("fx_events").fd, (record) => {
      records.push(record);
      arrived();
    });
    try {
      const frame = udpFrame(7, 50);
      testRun(obj.program("fx_classify").fd, frame, { ifindex });
      assert.equal(records.length, 0, "records arrive on a later turn of the event loop, not during the run");
      await first;
      assert.equal(records.length, 1);
      const record = records[0]!;
      assert.equal(record.length, 16);
      assert.equal(record.readUInt32LE(0), RECORD_MAGIC);
      assert.equal(record.readUInt32LE(4), frame.length);
      assert.equal(record.readUInt32LE(8), ifindex);
    } finally {
      reader.close();
    }
    reader.close();
    testRun(obj.program("fx_classify").fd, udpFrame(7, 50));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(records.length, 1);
  });

  it("lets the process exit once readers are closed or unreferenced, and rethrows callback errors", () => {
    // Readers of one ring buffer share its consumer position, so the
    // throwing reader and the unreferenced one read two objects' buffers.
    const pinRoot = newPinRoot();
    const script = `
      import { openObject, RingBufferReader, testRun } from ${JSON.stringify(NATIVE_MODULE.href)};
      const open = () => openObject(${JSON.stringify(FIXTURE)}, { pinRoot: ${JSON.stringify(pinRoot)} });
      const throwingObj = open();
      const quietObj = open();
      new RingBufferReader(throwingObj.map("fx_events").fd, () => {}).close();
      const throwing = new RingBufferReader(throwingObj.map("fx_events").fd, () => {
        throw new Error("boom from onRecord");
      });
      process.on("uncaughtException", (error) => {
        console.log("caught: " + error.message);
        throwing.close();
      });
      new RingBufferReader(quietObj.map("fx_events").fd, () => {}).unref();
      testRun(throwingObj.program("fx_classify").fd, Buffer.alloc(64));
    `;
    const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
      timeout: 20_000,
    });
    assert.equal(child.signal, null, `the child did not exit by itself: ${child.stderr}`);
    assert.equal(child.status, 0, child.stderr);
    assert.match(child.stdout, /caught: boom from onRecord/);
  });

  it("throws errors that carry the errno code and the failing call", (t) => {
    assert.throws(() => mapLookup(2 ** 30, u32(0), 4), (error) => {
      assertBpfError("EBADF", "bpf_map_lookup_elem")(error);
      const bpfError = error as BpfError;
      assert.equal(bpfError.errno, 9);
      assert.equal(bpfError.name, "BpfError");
      assert.match(bpfError.message, /^bpf_map_lookup_elem failed: EBADF \(Bad file descriptor\)/);
      return true;
    });
    const obj = openFixture(t);
    const path = join(PIN_ROOT, `closed-${SUFFIX}`);
    objPin(obj.map("fx_flows").fd, path);
    const fd = objGet(path);
    closeFd(fd);
    assert.throws(() => mapLookup(fd, flowKey(1, 1, 1), 16), assertBpfError("EBADF", "bpf_map_lookup_elem"));
    assert.throws(() => closeFd(fd), assertBpfError("EBADF", "close"));

    const flows = obj.map("fx_flows").fd;
    assert.throws(() => mapLookup(flows, u32(1), 16), (error) => {
      assertBpfError("EINVAL", "bpf_map_lookup_elem")(error);
      assert.match((error as Error).message, /key is 4 bytes but map "fx_flows" \(id \d+\) needs 8/);
      return true;
    });
    assert.throws(() => mapLookup(flows, flowKey(1, 1, 1), 8), assertBpfError("EINVAL", "bpf_map_lookup_elem"));
    assert.throws(() => mapLookup(-1, u32(0), 4), (error) => error instanceof TypeError);
    assert.throws(() => ifNameToIndex(`pl-none-${SUFFIX}`), assertBpfError("ENODEV", "if_nametoindex"));
    assert.throws(() => attachTcx(obj.program("fx_classify").fd, 2 ** 30, "ingress"), assertBpfError("ENODEV", "bpf_link_create"));

    obj.close();
    obj.close();
    assert.throws(() => obj.maps(), assertBpfError("EBADF", "maps"));
  });

  it("returns the memory malloc holds free inside its heap to the system", () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    // 1 KiB Buffers are malloc'd one by one; every 64th is kept, so the freed ones sit between live ones, not on top of the heap.
    let buffers: Buffer[] | undefined = Array.from({ length: 64 * 1024 }, () => Buffer.allocUnsafeSlow(1024).fill(1));
    const kept = buffers.filter((_, i) => i % 64 === 63);
    buffers = undefined;
    gc();
    const before = process.memoryUsage.rss();
    assert.equal(releaseFreeMemory(), true);
    const after = process.memoryUsage.rss();
    assert.ok(before - after > 32 * 1024 * 1024, `RSS went from ${before} to ${after} bytes`);
    assert.equal(kept.length, 1024);
  });
});
