/**
 * The typed façade over the native addon (`native/`, a thin N-API binding
 * over the system libbpf): BPF objects, map operations on file descriptors,
 * pinning, tc/tcx attachment, test runs, ring buffer readers, the
 * transparent proxy's sockets and the kernel splice of two sockets. Every
 * failure of the kernel or libbpf surfaces as a {@linkcode BpfError}.
 *
 * File descriptors are plain numbers. Those of an object's maps and programs
 * belong to the object and die with {@linkcode BpfObject.close}; those from
 * {@linkcode objGet} and {@linkcode attachTcx} belong to the caller, who
 * releases them with {@linkcode closeFd}.
 *
 * @module
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import { repositoryRoot } from "../repository-root.ts";

/** Map types of `enum bpf_map_type` that Palisade uses or meets. */
export const BpfMapType = {
  hash: 1,
  array: 2,
  percpuHash: 5,
  percpuArray: 6,
  lruHash: 9,
  lruPercpuHash: 10,
  lpmTrie: 11,
  ringbuf: 27,
} as const;

/** Link types of `enum bpf_link_type` reported by {@linkcode linkInfo}. */
export const BpfLinkType = {
  tcx: 11,
} as const;

/** The `flags` of {@linkcode mapUpdate}: `BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`. */
export const MapUpdateFlags = {
  any: 0,
  noExist: 1,
  exist: 2,
} as const;

/** What a failed native call reports, besides its message. */
export interface BpfErrorDetails {
  /** Errno name, e.g. `"ENOENT"`, `"EPERM"`, or `"ENOTSUPP"` (kernel-internal 524). */
  readonly code: string;
  /** Positive errno number. */
  readonly errno: number;
  /** The libbpf or system call that failed, e.g. `"bpf_map_update_elem"`. */
  readonly operation: string;
  /** The last lines of libbpf's log (with the verifier's log) when loading an object failed. */
  readonly log?: string | undefined;
  /** The element a batch operation failed on, when the kernel says which. */
  readonly index?: number | undefined;
}

/**
 * A kernel or libbpf call failed. Branch on `code`; `operation` names the
 * call, `cause` holds the addon's original error.
 *
 * @example
 * ```ts
 * try {
 *   objGet("/sys/fs/bpf/palisade/missing");
 * } catch (error) {
 *   if (error instanceof BpfError && error.code === "ENOENT") console.log("not pinned yet");
 * }
 * ```
 */
export class BpfError extends Error {
  override readonly name = "BpfError";
  /** Errno name, e.g. `"ENOENT"`. */
  readonly code: string;
  /** Positive errno number. */
  readonly errno: number;
  /** The libbpf or system call that failed. */
  readonly operation: string;
  /** The tail of libbpf's log (verifier log included) for a failed load. */
  readonly log: string | undefined;
  /** The failing element of a batch operation, when known. */
  readonly index: number | undefined;

  /** Creates the error; `message` is the full human-readable text. */
  constructor(message: string, details: BpfErrorDetails, options?: ErrorOptions) {
    super(message, options);
    this.code = details.code;
    this.errno = details.errno;
    this.operation = details.operation;
    this.log = details.log;
    this.index = details.index;
  }
}

/**
 * The native addon could not be found or loaded (not built, or built for
 * another Node ABI). `cause` holds the loader's error.
 *
 * @example
 * ```ts
 * try {
 *   numPossibleCpus();
 * } catch (error) {
 *   if (error instanceof NativeAddonError) console.error("run: make -C native");
 * }
 * ```
 */
export class NativeAddonError extends Error {
  override readonly name = "NativeAddonError";
}

/** Options of {@linkcode openObject}. */
export interface OpenObjectOptions {
  /**
   * bpffs directory for maps declared `LIBBPF_PIN_BY_NAME`: libbpf reuses a
   * map pinned there under its name, or pins the new one there. The
   * directory must exist.
   */
  readonly pinRoot?: string;
  /** `max_entries` per map name, set before the maps are created. */
  readonly mapMaxEntries?: Readonly<Record<string, number>>;
}

/** A map of a loaded object. */
export interface MapDescription {
  readonly name: string;
  /** `enum bpf_map_type`, see {@linkcode BpfMapType}. */
  readonly type: number;
  readonly keySize: number;
  /** Value size; for per-CPU maps, the size of one CPU's value. */
  readonly valueSize: number;
  readonly maxEntries: number;
  /** Owned by the object. */
  readonly fd: number;
}

/** A program of a loaded object. */
export interface ProgramDescription {
  readonly name: string;
  /** ELF section, e.g. `"tc"`. */
  readonly section: string;
  /** Owned by the object. */
  readonly fd: number;
}

/** A member of a struct or union, as BTF describes it. */
export interface BtfMember {
  /** Empty for an anonymous member. */
  readonly name: string;
  /** Byte offset from the start of the struct (of the first bit, for a bitfield). */
  readonly offset: number;
  /** Size in bytes of the member's type. */
  readonly size: number;
  /** For a bitfield only: offset in bits from the start of the struct. */
  readonly bitOffset?: number;
  /** For a bitfield only: width in bits. */
  readonly bitSize?: number;
}

/**
 * A map key or value type from BTF, with typedefs and const/volatile looked
 * through. A scalar or array has no members.
 */
export interface BtfStruct {
  /** The type's name, or its typedef's when the type is anonymous. */
  readonly name: string;
  readonly size: number;
  readonly members: readonly BtfMember[];
}

/** Key and value layout of a map; `null` where the object has no BTF for it. */
export interface MapLayout {
  readonly key: BtfStruct | null;
  readonly value: BtfStruct | null;
}

/** An enum type from BTF: its size in bytes and its constants. */
export interface BtfEnum {
  readonly name: string;
  readonly size: number;
  readonly values: readonly { readonly name: string; readonly value: number }[];
}

/** What the kernel says about a map fd. */
export interface MapInfo {
  /** `enum bpf_map_type`, see {@linkcode BpfMapType}. */
  readonly type: number;
  readonly keySize: number;
  /** For per-CPU maps, the size of one CPU's value. */
  readonly valueSize: number;
  readonly maxEntries: number;
  /** `map_flags`, e.g. `BPF_F_NO_PREALLOC` (1). */
  readonly flags: number;
  /** Kernel-truncated to 15 characters. */
  readonly name: string;
  /** Kernel-wide map id. */
  readonly id: number;
}

/** A tc hook direction. */
export type TcDirection = "ingress" | "egress";

/** Identifies a cls_bpf filter on a clsact hook. */
export interface TcFilter {
  /** Filter handle, 1 or more. */
  readonly handle: number;
  /** Filter priority, 1 to 65535: lower runs first. */
  readonly priority: number;
}

/** A cls_bpf filter as attached. */
export interface TcAttachment extends TcFilter {
  /** Kernel id of the attached program. */
  readonly progId: number;
}

/** What the kernel says about a link fd. */
export interface LinkInfo {
  readonly id: number;
  readonly progId: number;
  /** `enum bpf_link_type`, see {@linkcode BpfLinkType}. */
  readonly type: number;
}

/** Options of {@linkcode testRun}. */
export interface TestRunOptions {
  /** Runs of the program; the reported duration is the average. Default 1. */
  readonly repeat?: number;
  /** Binds the skb to this device, which must exist in the caller's netns. */
  readonly ifindex?: number;
  /** Room for the output packet in bytes. Default: input length + 512. */
  readonly dataSizeOut?: number;
}

/** Outcome of {@linkcode testRun}. */
export interface TestRunResult {
  /** The program's return value as a C int, e.g. TC_ACT_SHOT = 2. */
  readonly retval: number;
  /** Kernel-measured average duration of one run in nanoseconds. */
  readonly durationNs: number;
  /** The packet as the program left it. */
  readonly dataOut: Buffer;
}

/**
 * A BPF ELF object opened and loaded by libbpf. Its maps and programs live
 * in the kernel until {@linkcode BpfObject.close} (pinned maps, pinned
 * links and attached tcx links keep them beyond it).
 */
export interface BpfObject {
  /** The ELF file the object was loaded from. */
  readonly path: string;
  /** Every map, including libbpf's internal ones (`.rodata`, `.bss`). */
  maps(): MapDescription[];
  /** Every program. */
  programs(): ProgramDescription[];
  /** The map called `name`; throws a {@linkcode BpfError} (ENOENT) if there is none. */
  map(name: string): MapDescription;
  /** The program called `name`; throws a {@linkcode BpfError} (ENOENT) if there is none. */
  program(name: string): ProgramDescription;
  /** The BTF layout of the key and value of map `name`. */
  mapLayout(name: string): MapLayout;
  /** The constants of enum `name` in the object's BTF; null when the BTF has no such enum. */
  btfEnum(name: string): BtfEnum | null;
  /** Closes the object and its fds. Idempotent. */
  close(): void;
}

interface NativeBpfObject {
  readonly path: string;
  maps(): MapDescription[];
  programs(): ProgramDescription[];
  mapLayout(name: string): MapLayout;
  btfEnum(name: string): BtfEnum | null;
  close(): void;
}

interface NativeRingBufferReader {
  close(): void;
  unref(): void;
  ref(): void;
}

interface NativeSocketSplice {
  abort(): void;
  passed(): SocketSplicePassed;
}

interface NativeAddon {
  openObject(path: string, options: OpenObjectOptions): NativeBpfObject;
  mapLookup(fd: number, key: Buffer, valueSize: number): Buffer | null;
  mapUpdate(fd: number, key: Buffer, value: Buffer, flags: number): void;
  mapDelete(fd: number, key: Buffer): boolean;
  mapUpdateBatch(fd: number, keys: Buffer, values: Buffer, count: number): void;
  mapDeleteBatch(fd: number, keys: Buffer, count: number): number;
  mapLookupAll(fd: number, keySize: number, valueSize: number): MapEntries;
  mapInfo(fd: number): MapInfo;
  numPossibleCpus(): number;
  objPin(fd: number, path: string): void;
  objGet(path: string): number;
  closeFd(fd: number): void;
  releaseFreeMemory(): boolean;
  threadCpuTime(): number;
  attachTcx(progFd: number, ifindex: number, direction: TcDirection): number;
  attachSkLookup(progFd: number): number;
  linkDetach(linkFd: number): void;
  linkUpdate(linkFd: number, progFd: number): void;
  linkInfo(linkFd: number): LinkInfo;
  attachTc(progFd: number, ifindex: number, direction: TcDirection, filter: TcFilter): TcAttachment;
  detachTc(ifindex: number, direction: TcDirection, filter: TcFilter): boolean;
  ifNameToIndex(name: string): number;
  routeGet(address: string): RouteAnswer;
  linkGet(ifindex: number): LinkAnswer;
  testRun(progFd: number, data: Buffer, options: TestRunOptions): TestRunResult;
  transparentListen(family: 4 | 6, port: number, mark: number): number;
  transparentSocket(family: 4 | 6, localAddress: string, localPort: number, mark: number): number;
  RingBufferReader: new (mapFd: number, onRecord: (data: Buffer) => void) => NativeRingBufferReader;
  SocketSplice: new (fdA: number, fdB: number, onEnd: (end: SocketSpliceEnd) => void) => NativeSocketSplice;
}

interface NativeErrorShape extends Error {
  code?: unknown;
  errno?: unknown;
  operation?: unknown;
  log?: unknown;
  index?: unknown;
}

const ADDON_PATH = ["native", "out", "palisade_native.node"];

let loadedAddon: NativeAddon | undefined;

function addon(): NativeAddon {
  if (loadedAddon === undefined) {
    const path = join(repositoryRoot(), ...ADDON_PATH);
    try {
      loadedAddon = createRequire(import.meta.url)(path) as NativeAddon;
    } catch (error) {
      throw new NativeAddonError(`Cannot load the native addon "${path}": build it with "make -C native"`, {
        cause: error,
      });
    }
  }
  return loadedAddon;
}

function toBpfError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const shape = error as NativeErrorShape;
  if (typeof shape.code !== "string" || typeof shape.errno !== "number" || typeof shape.operation !== "string") {
    return error;
  }
  return new BpfError(
    error.message,
    {
      code: shape.code,
      errno: shape.errno,
      operation: shape.operation,
      log: typeof shape.log === "string" ? shape.log : undefined,
      index: typeof shape.index === "number" ? shape.index : undefined,
    },
    { cause: error },
  );
}

// Runs a native call, turning its errno-carrying errors into BpfError;
// argument TypeErrors pass through unchanged.
function call<T>(run: (native: NativeAddon) => T): T {
  const native = addon();
  try {
    return run(native);
  } catch (error) {
    throw toBpfError(error);
  }
}

function notFound(operation: string, detail: string): BpfError {
  return new BpfError(`${operation} failed: ENOENT (No such file or directory): ${detail}`, {
    code: "ENOENT",
    errno: 2,
    operation,
  });
}

class LoadedBpfObject implements BpfObject {
  readonly #native: NativeBpfObject;

  constructor(native: NativeBpfObject) {
    this.#native = native;
  }

  get path(): string {
    return this.#native.path;
  }

  maps(): MapDescription[] {
    return call(() => this.#native.maps());
  }

  programs(): ProgramDescription[] {
    return call(() => this.#native.programs());
  }

  map(name: string): MapDescription {
    const found = this.maps().find((map) => map.name === name);
    if (found === undefined) {
      throw notFound("bpf_object__find_map_by_name", `map "${name}" is not in object "${this.path}"`);
    }
    return found;
  }

  program(name: string): ProgramDescription {
    const found = this.programs().find((program) => program.name === name);
    if (found === undefined) {
      throw notFound("bpf_object__find_program_by_name", `program "${name}" is not in object "${this.path}"`);
    }
    return found;
  }

  mapLayout(name: string): MapLayout {
    return call(() => this.#native.mapLayout(name));
  }

  btfEnum(name: string): BtfEnum | null {
    return call(() => this.#native.btfEnum(name));
  }

  close(): void {
    this.#native.close();
  }
}

/**
 * Opens a BPF ELF object with libbpf, applies `mapMaxEntries`, and loads it
 * into the kernel. A failed load throws a {@linkcode BpfError} whose message
 * and `log` end with the last lines of libbpf's and the verifier's log.
 *
 * @example
 * ```ts
 * const obj = openObject("bpf/out/endpoint.bpf.o", {
 *   pinRoot: "/sys/fs/bpf/palisade",
 *   mapMaxEntries: { pal_policy: 65536 },
 * });
 * const policyFd = obj.map("pal_policy").fd;
 * ```
 */
export function openObject(path: string, options: OpenObjectOptions = {}): BpfObject {
  return new LoadedBpfObject(call((native) => native.openObject(path, options)));
}

/**
 * Looks up `key`; `null` when absent. `valueSize` must equal the map's value
 * size (for per-CPU maps, one CPU's); a per-CPU lookup returns one slot of
 * {@linkcode perCpuSlotSize} bytes per possible CPU.
 *
 * @example
 * ```ts
 * const value = mapLookup(fd, Buffer.from([10, 0, 0, 1]), 8);
 * if (value !== null) console.log(value.readBigUInt64LE(0));
 * ```
 */
export function mapLookup(fd: number, key: Buffer, valueSize: number): Buffer | null {
  return call((native) => native.mapLookup(fd, key, valueSize));
}

/**
 * Creates or replaces `key`. `value` holds one value, or for per-CPU maps
 * one {@linkcode perCpuSlotSize} slot per possible CPU. `flags` is one of
 * {@linkcode MapUpdateFlags} (default `any`).
 *
 * @example
 * ```ts
 * mapUpdate(fd, key, value, MapUpdateFlags.noExist);
 * ```
 */
export function mapUpdate(fd: number, key: Buffer, value: Buffer, flags: number = MapUpdateFlags.any): void {
  call((native) => native.mapUpdate(fd, key, value, flags));
}

/**
 * Deletes `key`; `false` when it was not there.
 *
 * @example
 * ```ts
 * if (!mapDelete(fd, key)) console.log("already gone");
 * ```
 */
export function mapDelete(fd: number, key: Buffer): boolean {
  return call((native) => native.mapDelete(fd, key));
}

/**
 * Creates or replaces `count` entries in one `bpf_map_update_batch` call;
 * `keys` and `values` are the entries back to back. For map types without
 * batch support it falls back to one update per entry. On failure the
 * error's `index` names the entry, when the kernel says.
 *
 * @example
 * ```ts
 * mapUpdateBatch(fd, Buffer.concat(keys), Buffer.concat(values), keys.length);
 * ```
 */
export function mapUpdateBatch(fd: number, keys: Buffer, values: Buffer, count: number): void {
  call((native) => native.mapUpdateBatch(fd, keys, values, count));
}

/**
 * Deletes `count` keys (back to back in `keys`), skipping absent ones, and
 * returns how many were deleted. Falls back to one delete per key for map
 * types without batch support.
 *
 * @example
 * ```ts
 * const deleted = mapDeleteBatch(fd, Buffer.concat(stale), stale.length);
 * ```
 */
export function mapDeleteBatch(fd: number, keys: Buffer, count: number): number {
  return call((native) => native.mapDeleteBatch(fd, keys, count));
}

/** Every entry of a map as one read found them: `count` keys and values back to back. */
export interface MapEntries {
  readonly count: number;
  readonly keys: Buffer;
  /** One value per key; for per-CPU maps, one {@linkcode perCpuSlotSize} slot per possible CPU each. */
  readonly values: Buffer;
}

/**
 * Reads every entry of the map, a few thousand per `bpf_map_lookup_batch`
 * call (key by key for map types without batch lookup). `keySize` and
 * `valueSize` must equal the map's. An entry written or deleted during the
 * read may be missed, or read twice from a trie or an array; a map that keeps
 * changing so that the read cannot finish fails with `EAGAIN`.
 *
 * @example
 * ```ts
 * const { count, keys } = mapLookupAll(fd, 8, 16);
 * for (let i = 0; i < count; i++) console.log(keys.toString("hex", i * 8, (i + 1) * 8));
 * ```
 */
export function mapLookupAll(fd: number, keySize: number, valueSize: number): MapEntries {
  return call((native) => native.mapLookupAll(fd, keySize, valueSize));
}

/**
 * What the kernel says about the map behind `fd`.
 *
 * @example
 * ```ts
 * const { type, maxEntries } = mapInfo(objGet("/sys/fs/bpf/palisade/pal_policy"));
 * ```
 */
export function mapInfo(fd: number): MapInfo {
  return call((native) => native.mapInfo(fd));
}

/**
 * Returns the memory the process's malloc holds free to the system (glibc's
 * `malloc_trim`): freed native memory (the N-API Buffers of map reads, the
 * HTTP client's buffers) otherwise stays resident, in fragments glibc only
 * reuses. Returns whether any was returned.
 *
 * @example
 * ```ts
 * releaseFreeMemory(); // after dropping a large batch of native allocations
 * ```
 */
export function releaseFreeMemory(): boolean {
  return call((native) => native.releaseFreeMemory());
}

/**
 * The calling thread's CPU time, in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`):
 * exact to the call, where `process.threadCpuUsage()` lags by up to a
 * scheduler tick. The difference of two readings is what the thread ran in
 * between; the wall time between them less that is time it waited for a core
 * or blocked.
 *
 * @example
 * ```ts
 * const before = threadCpuTime();
 * compiler.commit();
 * const cpuMs = (threadCpuTime() - before) / 1e6;
 * ```
 */
export function threadCpuTime(): number {
  return call((native) => native.threadCpuTime());
}

/**
 * The number of possible CPUs: per-CPU maps hold one value slot for each.
 *
 * @example
 * ```ts
 * const total = Buffer.alloc(perCpuSlotSize(12) * numPossibleCpus());
 * ```
 */
export function numPossibleCpus(): number {
  return call((native) => native.numPossibleCpus());
}

/**
 * The bytes one CPU's value takes in a per-CPU lookup or update: the value
 * size rounded up to 8.
 *
 * @example
 * ```ts
 * perCpuSlotSize(12); // 16
 * ```
 */
export function perCpuSlotSize(valueSize: number): number {
  return Math.ceil(valueSize / 8) * 8;
}

/**
 * Pins the map, program or link behind `fd` at `path` on bpffs.
 *
 * @example
 * ```ts
 * objPin(linkFd, "/sys/fs/bpf/palisade/links/eth0-ingress");
 * ```
 */
export function objPin(fd: number, path: string): void {
  call((native) => native.objPin(fd, path));
}

/**
 * Opens the object pinned at `path`; the caller owns the returned fd.
 *
 * @example
 * ```ts
 * const fd = objGet("/sys/fs/bpf/palisade/pal_policy");
 * try { console.log(mapInfo(fd).id); } finally { closeFd(fd); }
 * ```
 */
export function objGet(path: string): number {
  return call((native) => native.objGet(path));
}

/**
 * Closes an fd the caller owns (from {@linkcode objGet} or
 * {@linkcode attachTcx}); never one of a {@linkcode BpfObject}'s.
 *
 * @example
 * ```ts
 * closeFd(objGet("/sys/fs/bpf/palisade/pal_policy"));
 * ```
 */
export function closeFd(fd: number): void {
  call((native) => native.closeFd(fd));
}

/**
 * Attaches a tc program to `ifindex` through a tcx link (kernel 6.6+) and
 * returns the link fd. The program stays attached while the link fd is open
 * or pinned; {@linkcode linkDetach} detaches it at once.
 *
 * @example
 * ```ts
 * const linkFd = attachTcx(obj.program("pal_from_pod").fd, ifNameToIndex("veth1"), "ingress");
 * objPin(linkFd, "/sys/fs/bpf/palisade/links/veth1-ingress");
 * ```
 */
export function attachTcx(progFd: number, ifindex: number, direction: TcDirection): number {
  return call((native) => native.attachTcx(progFd, ifindex, direction));
}

/**
 * Attaches an sk_lookup program to the current network namespace and
 * returns the link fd; kept as {@linkcode attachTcx}'s links are.
 *
 * @example
 * ```ts
 * const linkFd = attachSkLookup(obj.program("pal_proxy_lookup").fd);
 * objPin(linkFd, "/sys/fs/bpf/palisade/links/proxy-sk-lookup");
 * ```
 */
export function attachSkLookup(progFd: number): number {
  return call((native) => native.attachSkLookup(progFd));
}

/**
 * Detaches a link's program; the link fd stays open until {@linkcode closeFd}.
 *
 * @example
 * ```ts
 * linkDetach(linkFd);
 * closeFd(linkFd);
 * ```
 */
export function linkDetach(linkFd: number): void {
  call((native) => native.linkDetach(linkFd));
}

/**
 * Switches a link to another program, atomically (`bpf_link_update`).
 *
 * @example
 * ```ts
 * linkUpdate(objGet("/sys/fs/bpf/palisade/links/7-ingress"), obj.program("pal_from_pod").fd);
 * ```
 */
export function linkUpdate(linkFd: number, progFd: number): void {
  call((native) => native.linkUpdate(linkFd, progFd));
}

/**
 * What the kernel says about the link behind `linkFd`.
 *
 * @example
 * ```ts
 * if (linkInfo(linkFd).type === BpfLinkType.tcx) console.log("tcx");
 * ```
 */
export function linkInfo(linkFd: number): LinkInfo {
  return call((native) => native.linkInfo(linkFd));
}

/**
 * The fallback for kernels without tcx: ensures a clsact qdisc on `ifindex`
 * and attaches (or replaces) a direct-action cls_bpf filter. The filter
 * outlives the process until {@linkcode detachTc} or the device goes.
 *
 * @example
 * ```ts
 * attachTc(progFd, ifindex, "egress", { handle: 1, priority: 1 });
 * ```
 */
export function attachTc(progFd: number, ifindex: number, direction: TcDirection, filter: TcFilter): TcAttachment {
  return call((native) => native.attachTc(progFd, ifindex, direction, filter));
}

/**
 * Removes a cls_bpf filter; `false` when there was no such filter. The
 * clsact qdisc stays, as other filters may use it.
 *
 * @example
 * ```ts
 * detachTc(ifindex, "egress", { handle: 1, priority: 1 });
 * ```
 */
export function detachTc(ifindex: number, direction: TcDirection, filter: TcFilter): boolean {
  return call((native) => native.detachTc(ifindex, direction, filter));
}

/**
 * The index of network interface `name` in the caller's netns.
 *
 * @example
 * ```ts
 * const ifindex = ifNameToIndex("eth0");
 * ```
 */
export function ifNameToIndex(name: string): number {
  return call((native) => native.ifNameToIndex(name));
}

/** `RTN_UNICAST` of `enum rtm_type`: a route to a host or network (not local, not a blackhole). */
export const RTN_UNICAST = 1;

/** The kernel's route for a packet to an address, as {@linkcode routeGet} answers. */
export interface RouteAnswer {
  /** `enum rtm_type`: {@linkcode RTN_UNICAST}, 2 local, 6 unreachable, ... */
  type: number;
  /** The interface the packet leaves through (0: none). */
  ifindex: number;
  /** Whether it goes through a gateway rather than to the address directly. */
  gateway: boolean;
}

/** An interface's name and link kind, as {@linkcode linkGet} answers. */
export interface LinkAnswer {
  name: string;
  /** `"veth"`, `"bridge"`, ...; `""` for a device without one (a physical NIC). */
  kind: string;
}

/**
 * The route the kernel would give a packet this host sends to `address`
 * (`ip route get`, over rtnetlink in the caller's netns); fails with
 * `ENETUNREACH` or `EHOSTUNREACH` when there is none.
 *
 * @example
 * ```ts
 * routeGet("10.244.1.5"); // { type: 1, ifindex: 17, gateway: false }
 * ```
 */
export function routeGet(address: string): RouteAnswer {
  return call((native) => native.routeGet(address));
}

/**
 * The name and link kind of interface `ifindex` (`ip -d link show`, over
 * rtnetlink in the caller's netns); fails with `ENODEV` when there is none.
 *
 * @example
 * ```ts
 * linkGet(17); // { name: "veth1a2b3c", kind: "veth" }
 * ```
 */
export function linkGet(ifindex: number): LinkAnswer {
  return call((native) => native.linkGet(ifindex));
}

/**
 * Runs a tc program on `data` (an Ethernet frame) through the kernel's
 * BPF_PROG_TEST_RUN, synchronously.
 *
 * @example
 * ```ts
 * const { retval } = testRun(obj.program("pal_to_pod").fd, frame, { ifindex });
 * ```
 */
export function testRun(progFd: number, data: Buffer, options: TestRunOptions = {}): TestRunResult {
  return call((native) => native.testRun(progFd, data, options));
}

/**
 * A non-blocking TCP socket listening on the wildcard address of `family`
 * (IPv6 with IPV6_V6ONLY) on `port`, with IP_TRANSPARENT (it accepts
 * connections to any address that is delivered to it), SO_REUSEADDR and
 * SO_MARK `mark` (so do its accepted sockets). Needs CAP_NET_ADMIN; the
 * caller owns the fd.
 *
 * @example
 * ```ts
 * server.listen({ fd: transparentListen(4, 15001, 0x0b00) });
 * ```
 */
export function transparentListen(family: 4 | 6, port: number, mark: number): number {
  return call((native) => native.transparentListen(family, port, mark));
}

/**
 * A non-blocking, unconnected TCP socket with IP_TRANSPARENT, SO_REUSEADDR
 * and SO_MARK `mark`, bound to `localAddress`:`localPort` (any address,
 * local or not; IP_BIND_ADDRESS_NO_PORT off, so the port is taken now).
 * The caller owns the fd and connects it.
 *
 * @example
 * ```ts
 * const fd = transparentSocket(4, "10.0.0.1", 40123, 0x0b00);
 * ```
 */
export function transparentSocket(family: 4 | 6, localAddress: string, localPort: number, mark: number): number {
  return call((native) => native.transparentSocket(family, localAddress, localPort, mark));
}

/**
 * Delivers the records of a BPF ring buffer map to `onRecord` on Node's
 * event loop, as they arrive (one copy per record, no thread, no polling
 * loop). An open reader keeps the process alive like a socket, unless
 * {@linkcode RingBufferReader.unref} is called; {@linkcode RingBufferReader.close}
 * stops it. An exception thrown by `onRecord` becomes an uncaught exception;
 * the records after it are delivered on the next turn.
 *
 * @example
 * ```ts
 * const reader = new RingBufferReader(obj.map("pal_events").fd, (record) => {
 *   console.log(record.readUInt32LE(0));
 * });
 * process.once("SIGTERM", () => reader.close());
 * ```
 */
export class RingBufferReader {
  readonly #native: NativeRingBufferReader;

  /** Starts reading the ring buffer map behind `mapFd`. */
  constructor(mapFd: number, onRecord: (data: Buffer) => void) {
    this.#native = call((native) => new native.RingBufferReader(mapFd, onRecord));
  }

  /** Stops reading and frees the reader. Idempotent. */
  close(): void {
    this.#native.close();
  }

  /** Lets the process exit while the reader is open. */
  unref(): this {
    this.#native.unref();
    return this;
  }

  /** Keeps the process alive while the reader is open again (the default). */
  ref(): this {
    this.#native.ref();
    return this;
  }
}

/** The bytes a {@linkcode SocketSplice} has passed each way so far. */
export interface SocketSplicePassed {
  /** Bytes written to socket b of those read from socket a. */
  readonly aToB: number;
  /** Bytes written to socket a of those read from socket b. */
  readonly bToA: number;
}

/** How a {@linkcode SocketSplice} ended, and the bytes it passed each way. */
export interface SocketSpliceEnd extends SocketSplicePassed {
  /**
   * `closed`: both directions ended with an end of stream, each passed on as a half-close; `reset`: socket
   * `failed` reported `code` (a reset, a timeout), and the other socket was reset, or (no `failed`) the
   * splice itself failed with `code` (no pipe could be made: `EMFILE`) and both were reset; `aborted`: by
   * {@linkcode SocketSplice.abort}, both sockets were reset.
   */
  readonly end: "closed" | "reset" | "aborted";
  /** On `reset`: the socket whose error ended the splice, when one did. */
  readonly failed?: "a" | "b";
  /** On `reset`: the error's errno name, e.g. `"ECONNRESET"`, `"EPIPE"`, `"ETIMEDOUT"`. */
  readonly code?: string;
}

/**
 * Joins two connected stream sockets in the kernel: from now on, bytes read
 * from either are written to the other with splice(2) through a pipe per
 * direction, on Node's event loop (a poll per socket, no thread, no copy to
 * user space, no JavaScript per segment). An end of stream read on one socket
 * is passed on as a half-close (`shutdown(SHUT_WR)`) of the other once
 * everything read before it is written; an error of one socket resets the
 * other (SO_LINGER 0). A direction whose destination does not take more stops
 * reading its source: at most a pipe (256 KiB) is held per direction, and
 * none while no bytes are in flight (the splices of a thread share the empty
 * pipes, and close them when the last splice ends: pipes count against the
 * user's quota, `fs.pipe-user-pages-soft`).
 *
 * The splice works on its own duplicates of `fdA` and `fdB`: the caller's fds
 * stay the caller's, and must not be read or written while it runs (bytes
 * already in user space are the caller's to write first). A connection lives
 * until the last fd of its socket is closed: the caller closes its own once
 * `onEnd` has been called, or earlier to drop its hold without ending the
 * splice. `onEnd` is called once, after the splice has closed its fds; an
 * exception it throws becomes an uncaught exception. A running splice keeps
 * the process alive, like a socket.
 *
 * @example
 * ```ts
 * const splice = new SocketSplice(fdOf(client), fdOf(upstream), ({ aToB, bToA, end }) => {
 *   console.log(`${end}: ${aToB} bytes up, ${bToA} down`);
 *   client.destroy();
 *   upstream.destroy();
 * });
 * process.once("SIGTERM", () => splice.abort());
 * ```
 */
export class SocketSplice {
  readonly #native: NativeSocketSplice;

  /** Starts splicing between the sockets behind `fdA` and `fdB` (throws a {@linkcode BpfError} if it cannot). */
  constructor(fdA: number, fdB: number, onEnd: (end: SocketSpliceEnd) => void) {
    this.#native = call((native) => new native.SocketSplice(fdA, fdB, onEnd));
  }

  /** Resets both sockets and ends the splice (`onEnd` follows, with `aborted`); nothing once it has ended. */
  abort(): void {
    this.#native.abort();
  }

  /**
   * The bytes written each way so far, as the splice's loop counts them (no system call); once it has ended,
   * the counts `onEnd` got.
   */
  passed(): SocketSplicePassed {
    return this.#native.passed();
  }
}
