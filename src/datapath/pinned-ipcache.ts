/**
 * A read-only view of the ipcache an agent pinned, for another process on
 * the node (the proxy, which names the identity of each request's peer the
 * way the kernel does): one longest-prefix lookup per address in the
 * pinned map, no object loaded.
 *
 * @module
 */
import { join } from "node:path";
import { ipcacheKeyCodec, ipcacheValueCodec, MAP_NAMES } from "./abi.ts";
import { BpfMap } from "./bpf-map.ts";
import { DatapathError } from "./datapath-error.ts";
import { closeFd, mapInfo, objGet } from "./native.ts";
import { IDENTITY_WORLD, type IpcacheKey, type IpcacheValue } from "../policy/desired-state.ts";
import { ipToBytes, parseIp } from "../policy/ip.ts";
import type { Codec } from "./abi.ts";

/**
 * Opens the map `name` pinned under `pinRoot` as a {@link BpfMap}, checking
 * its key and value sizes against the codecs; `close` releases its fd.
 */
function openPinnedMap<K, V>(pinRoot: string, name: string, key: Codec<K>, value: Codec<V>): { map: BpfMap<K, V>; close(): void } {
  const path = join(pinRoot, name);
  let fd: number;
  try {
    fd = objGet(path);
  } catch (error) {
    throw new DatapathError(`Cannot open pinned map "${path}": ${(error as Error).message}`, { cause: error });
  }
  let closed = false;
  try {
    const info = mapInfo(fd);
    if (info.keySize !== key.layout.size || info.valueSize !== value.layout.size) {
      throw new DatapathError(
        `Cannot open pinned map "${path}": its key and value are ${info.keySize} and ${info.valueSize} bytes, expected ${key.layout.size} and ${value.layout.size} (struct ${key.layout.name}, ${value.layout.name})`,
      );
    }
    const map = new BpfMap({ ...info, fd }, key, value, `pin root "${pinRoot}"`, () => {
      if (closed) throw new DatapathError(`Cannot use pinned map "${path}": it is closed`);
    });
    return {
      map,
      close: () => {
        if (closed) return;
        closed = true;
        closeFd(fd);
      },
    };
  } catch (error) {
    closeFd(fd);
    throw error;
  }
}

/**
 * The identities of addresses as the pinned `pal_ipcache` says.
 *
 * @example
 * ```ts
 * const ipcache = PinnedIpcache.open("/sys/fs/bpf/palisade");
 * ipcache.identityOf("10.244.1.5"); // 300, or 2 (WORLD) for an address no entry covers
 * ipcache.close();
 * ```
 */
export class PinnedIpcache {
  readonly #map: BpfMap<IpcacheKey, IpcacheValue>;
  readonly #close: () => void;

  private constructor(opened: { map: BpfMap<IpcacheKey, IpcacheValue>; close(): void }) {
    this.#map = opened.map;
    this.#close = opened.close;
  }

  /** Opens the ipcache pinned under `pinRoot` (the agent's `--pin-root`). @throws {DatapathError} when nothing is pinned there. */
  static open(pinRoot: string): PinnedIpcache {
    return new PinnedIpcache(openPinnedMap(pinRoot, MAP_NAMES.ipcache, ipcacheKeyCodec, ipcacheValueCodec));
  }

  /** The identity of `address` (IPv4 or IPv6 text): its longest covering entry's, or WORLD (2) when none covers it. */
  identityOf(address: string): number {
    const ip = parseIp(address);
    const bytes = ipToBytes(ip);
    return this.#map.lookup({ family: ip.family, address: bytes, prefixLen: bytes.length * 8 })?.identity ?? IDENTITY_WORLD;
  }

  /** Releases the map. Idempotent. */
  close(): void {
    this.#close();
  }
}
