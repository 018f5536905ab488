/**
 * TypeScript views of the structs in `bpf/include/palisade_abi.h`: map names,
 * constants, and a codec per struct that encodes to and decodes from a
 * Buffer at explicit offsets. Keys are zero-filled byte for byte, because the
 * kernel hashes and compares them as raw bytes. {@link checkLayout} compares
 * every codec's offsets and sizes with the BTF of the loaded object, so a
 * header change without the matching change here fails at load instead of
 * corrupting maps. Identity numbers cross here between the kernel's form and
 * the one held in memory above (`identityInMemory`, `kernelIdentity`), and
 * nowhere else.
 *
 * @module
 */
import { endianness } from "node:os";
import { formatIp, ipFromBytes, ipToBytes, parseIp, type IpFamily } from "../policy/ip.ts";
import {
  ipcacheKeyString,
  POLICY_FLAG_AUDIT_HTTP,
  POLICY_FLAG_AUDIT_HTTP_DENY,
  POLICY_FLAG_AUDIT_TCP_LIMITED,
  POLICY_FLAG_AUDIT_TCP_STRICT,
  POLICY_FLAG_HTTP,
  POLICY_FLAG_HTTP_DENY,
  POLICY_FLAG_TCP_LIMITED,
  POLICY_FLAG_TCP_STRICT,
} from "../policy/desired-state.ts";
import { reasonName, type ReasonName } from "./reasons.ts";
import { identityInMemory, kernelIdentity } from "../policy/desired-state.ts";
import type { Direction, EndpointState, IpcacheKey, IpcacheValue, PolicyKey, PolicyValue, PolicyVerdict, TcpLimits } from "../policy/desired-state.ts";

/** Map names as pinned under the pin root (PAL_MAP_* in the header). */
export const MAP_NAMES = {
  ipcache: "pal_ipcache",
  ipcacheHosts: "pal_ipcache_hosts",
  endpoints: "pal_endpoints",
  endpointsByIfindex: "pal_endpoints_by_ifindex",
  policy: "pal_policy",
  policyExact: "pal_policy_exact",
  conntrack: "pal_ct",
  fragments: "pal_frags",
  config: "pal_config_map",
  ruleStats: "pal_rule_stats",
  reasonStats: "pal_reason_stats",
  events: "pal_events",
  tcpLimits: "pal_tcp_limits",
  tcpSources: "pal_tcp_sources",
  proxyConfig: "pal_proxy_config",
} as const;

/** One of {@link MAP_NAMES}. */
export type MapName = (typeof MAP_NAMES)[keyof typeof MAP_NAMES];

/** IPv4 as keys store it (PAL_FAMILY_V4). */
export const FAMILY_V4 = 4;
/** IPv6 as keys store it (PAL_FAMILY_V6). */
export const FAMILY_V6 = 6;

/** Policy key prefix length of an any-protocol entry (PAL_POLICY_PREFIX_ANY_PROTO). */
export const POLICY_PREFIX_ANY_PROTO = 72;
/** Policy key prefix length of an any-port entry of one protocol (PAL_POLICY_PREFIX_ANY_PORT). */
export const POLICY_PREFIX_ANY_PORT = 80;
/** Policy key prefix length of an exact-port entry (PAL_POLICY_PREFIX_FULL). */
export const POLICY_PREFIX_FULL = 96;

/** Conntrack state bit: a TCP SYN was seen (PAL_CT_SEEN_SYN). */
export const CT_SEEN_SYN = 1 << 0;
/** Conntrack state bit: a reply-direction packet was seen (PAL_CT_SEEN_REPLY). */
export const CT_SEEN_REPLY = 1 << 1;
/** Conntrack state bit: a TCP FIN was seen (PAL_CT_SEEN_FIN). */
export const CT_SEEN_FIN = 1 << 2;
/** Conntrack state bit: a TCP RST was seen (PAL_CT_SEEN_RST). */
export const CT_SEEN_RST = 1 << 3;

/** Conntrack state bit: a TCP FIN in the flow's first direction (PAL_CT_SEEN_FIN_ORIG). */
export const CT_SEEN_FIN_ORIG = 1 << 4;
/** Conntrack state bit: a TCP FIN in the reply direction (PAL_CT_SEEN_FIN_REPLY). */
export const CT_SEEN_FIN_REPLY = 1 << 5;

/** Conntrack flow bit: admitted under a strict allow (PAL_CT_F_TCP_STRICT), decoded as {@link CtValue.tcpStrict}. */
export const CT_F_TCP_STRICT = 1 << 0;
/** Conntrack flow bit: holds one unit of its source's connection count (PAL_CT_F_COUNTED), decoded as {@link CtValue.counted}. */
export const CT_F_COUNTED = 1 << 1;
/** Conntrack flow bit: steered to the node's proxy (PAL_CT_F_PROXIED), decoded as {@link CtValue.proxied}. */
export const CT_F_PROXIED = 1 << 2;
/** Conntrack flow bit: opened by the proxy, never steered (PAL_CT_F_PROXY_UPSTREAM), decoded as {@link CtValue.proxyUpstream}. */
export const CT_F_PROXY_UPSTREAM = 1 << 3;
/** Conntrack flow bit: the key is the first packet's tuple reversed (PAL_CT_F_ORIG_SWAPPED), decoded as {@link CtValue.origSwapped}. */
export const CT_F_ORIG_SWAPPED = 1 << 4;

/** Config flags (PAL_CFG_*): emit an event per allowed new flow. */
export const CFG_EVENTS_ALLOWED = 1 << 0;
/** Config flag PAL_CFG_CT_LEGACY_KEYS: `pal_ct` may hold keys not in canonical order (see {@link isCanonicalCtKey}), which a missed lookup then tries too. */
export const CFG_CT_LEGACY_KEYS = 1 << 1;

/** Event kinds (PAL_EVENT_*) by name. */
export const EVENT_KINDS = { allowed: 1, denied: 2, audit: 3 } as const;

/** The name of an event kind. */
export type EventKindName = keyof typeof EVENT_KINDS;

const KIND_BY_CODE = new Map<number, EventKindName>(Object.entries(EVENT_KINDS).map(([name, code]) => [code, name as EventKindName]));

/** The name of event kind `code`, or `unknown` for a code this build does not know. */
export function eventKindName(code: number): EventKindName | "unknown" {
  return KIND_BY_CODE.get(code) ?? "unknown";
}


/** One field of a struct: its C name, byte offset and size. */
export interface FieldLayout {
  name: string;
  offset: number;
  size: number;
}

/** The layout of a C struct as the codec writes it; `fields` is empty for a scalar such as `__u32`. */
export interface StructLayout {
  name: string;
  size: number;
  fields: readonly FieldLayout[];
}

/** Encodes values of type `T` to the bytes of one C struct and back. */
export interface Codec<T> {
  layout: StructLayout;
  /** Encodes `value` into `target` at `offset` (zero-filling the struct first), or into a fresh Buffer. */
  encode(value: T, target?: Buffer, offset?: number): Buffer;
  /** Decodes the struct at `offset` of `source`. */
  decode(source: Buffer, offset?: number): T;
}

/** A value the codec cannot represent in the struct (e.g. a port prefix length of 17), or bytes it cannot decode. */
export class AbiCodecError extends Error {
  override name = "AbiCodecError";
}

const HOST_LE = endianness() === "LE";

function writeU32(buf: Buffer, value: number, at: number): void {
  if (HOST_LE) buf.writeUInt32LE(value, at);
  else buf.writeUInt32BE(value, at);
}
function readU32(buf: Buffer, at: number): number {
  return HOST_LE ? buf.readUInt32LE(at) : buf.readUInt32BE(at);
}
function writeU64(buf: Buffer, value: bigint, at: number): void {
  if (HOST_LE) buf.writeBigUInt64LE(value, at);
  else buf.writeBigUInt64BE(value, at);
}
function readU64(buf: Buffer, at: number): bigint {
  return HOST_LE ? buf.readBigUInt64LE(at) : buf.readBigUInt64BE(at);
}

type Offsets<F extends string> = Record<F, number>;

/** Declares a struct layout from `field: [offset, size]` pairs, returning the layout and an offset table. */
function struct<const F extends string>(
  name: string,
  size: number,
  fields: Record<F, readonly [offset: number, size: number]>,
): { layout: StructLayout; at: Offsets<F> } {
  const entries = Object.entries(fields) as [F, readonly [number, number]][];
  return {
    layout: { name, size, fields: entries.map(([field, [offset, fieldSize]]) => ({ name: field, offset, size: fieldSize })) },
    at: Object.fromEntries(entries.map(([field, [offset]]) => [field, offset])) as Offsets<F>,
  };
}

function codec<T>(layout: StructLayout, write: (value: T, buf: Buffer, base: number) => void, read: (buf: Buffer, base: number) => T): Codec<T> {
  return {
    layout,
    encode(value, target, offset = 0) {
      const buf = target ?? Buffer.alloc(layout.size);
      const base = target === undefined ? 0 : offset;
      buf.fill(0, base, base + layout.size);
      write(value, buf, base);
      return buf;
    },
    decode(source, offset = 0) {
      if (source.length < offset + layout.size) {
        throw new RangeError(`Cannot decode struct ${layout.name}: ${source.length - offset} bytes at offset ${offset}, need ${layout.size}`);
      }
      return read(source, offset);
    },
  };
}

function writeAddress(buf: Buffer, at: number, family: IpFamily, text: string, what: string): void {
  const address = parseIp(text);
  if (address.family !== family) {
    throw new AbiCodecError(`Cannot encode ${what} "${text}": not an IPv${family} address`);
  }
  buf.set(ipToBytes(address), at);
}

function addressLength(family: IpFamily): 4 | 16 {
  return family === 4 ? 4 : 16;
}

function readAddress(buf: Buffer, at: number, family: IpFamily): string {
  return formatIp(ipFromBytes(buf.subarray(at, at + addressLength(family))));
}

function familyOf(code: number, what: string): IpFamily {
  if (code === FAMILY_V4 || code === FAMILY_V6) return code;
  throw new AbiCodecError(`Cannot decode ${what}: family ${code} is neither 4 nor 6`);
}

/** A scalar `__u32` key or value (config, rule and reason stats keys). */
export const u32Codec: Codec<number> = codec(
  { name: "__u32", size: 4, fields: [] },
  (value, buf, base) => writeU32(buf, value, base),
  (buf, base) => readU32(buf, base),
);

// ---- ipcache ----

const ipcacheKey = struct("pal_ipcache_key", 24, { prefixlen: [0, 4], family: [4, 1], pad: [5, 3], addr: [8, 16] });

/** struct pal_ipcache_key: prefixlen = 32 (family + pad) + address prefix bits; the address bytes are copied as they are. */
export const ipcacheKeyCodec: Codec<IpcacheKey> = codec(
  ipcacheKey.layout,
  (key, buf, base) => {
    const length = addressLength(key.family);
    if (key.address.length !== length) {
      throw new AbiCodecError(`Cannot encode ipcache key of family ${key.family}: it has ${key.address.length} address bytes, not ${length}`);
    }
    if (!Number.isInteger(key.prefixLen) || key.prefixLen < 0 || key.prefixLen > length * 8) {
      throw new AbiCodecError(`Cannot encode ipcache key "${ipcacheKeyString(key)}": prefix length is not between 0 and ${length * 8}`);
    }
    writeU32(buf, 32 + key.prefixLen, base + ipcacheKey.at.prefixlen);
    buf[base + ipcacheKey.at.family] = key.family;
    buf.set(key.address, base + ipcacheKey.at.addr);
  },
  (buf, base) => {
    const family = familyOf(buf[base + ipcacheKey.at.family] ?? 0, "ipcache key");
    const at = base + ipcacheKey.at.addr;
    return { family, address: Uint8Array.from(buf.subarray(at, at + addressLength(family))), prefixLen: readU32(buf, base + ipcacheKey.at.prefixlen) - 32 };
  },
);

/** Whether an encoded ipcache key is a host entry (a /32 or /128), which `pal_ipcache_hosts` holds again. */
export function isHostIpcacheKey(key: Buffer): boolean {
  return readU32(key, ipcacheKey.at.prefixlen) === (key[ipcacheKey.at.family] === FAMILY_V4 ? 64 : 160);
}

const ipcacheValue = struct("pal_ipcache_value", 8, { identity: [0, 4], flags: [4, 4] });

/** struct pal_ipcache_value. */
export const ipcacheValueCodec: Codec<IpcacheValue> = codec(
  ipcacheValue.layout,
  (value, buf, base) => {
    writeU32(buf, kernelIdentity(value.identity), base + ipcacheValue.at.identity);
    writeU32(buf, value.flags, base + ipcacheValue.at.flags);
  },
  (buf, base) => ({ identity: identityInMemory(readU32(buf, base + ipcacheValue.at.identity)), flags: readU32(buf, base + ipcacheValue.at.flags) }),
);

// ---- endpoints ----

/** An endpoint key: the host-side interface index. */
export interface EndpointKey {
  ifindex: number;
}

const endpointKey = struct("pal_endpoint_key", 4, { ifindex: [0, 4] });

/** struct pal_endpoint_key. */
export const endpointKeyCodec: Codec<EndpointKey> = codec(
  endpointKey.layout,
  (key, buf, base) => writeU32(buf, key.ifindex, base + endpointKey.at.ifindex),
  (buf, base) => ({ ifindex: readU32(buf, base + endpointKey.at.ifindex) }),
);

const endpointValue = struct("pal_endpoint_value", 16, { endpoint_id: [0, 4], policy_slot: [4, 4], identity: [8, 4], flags: [12, 4] });

/** struct pal_endpoint_value, from an {@link EndpointState} (`slot` is `policy_slot`). */
export const endpointValueCodec: Codec<EndpointState> = codec(
  endpointValue.layout,
  (value, buf, base) => {
    writeU32(buf, value.endpointId, base + endpointValue.at.endpoint_id);
    writeU32(buf, value.slot, base + endpointValue.at.policy_slot);
    writeU32(buf, kernelIdentity(value.identity), base + endpointValue.at.identity);
    writeU32(buf, value.flags, base + endpointValue.at.flags);
  },
  (buf, base) => ({
    endpointId: readU32(buf, base + endpointValue.at.endpoint_id),
    slot: readU32(buf, base + endpointValue.at.policy_slot),
    identity: identityInMemory(readU32(buf, base + endpointValue.at.identity)),
    flags: readU32(buf, base + endpointValue.at.flags),
  }),
);

// ---- policy ----

const policyKey = struct("pal_policy_key", 16, {
  prefixlen: [0, 4],
  slot: [4, 4],
  identity: [8, 4],
  direction: [12, 1],
  protocol: [13, 1],
  dport_be: [14, 2],
});

/**
 * struct pal_policy_key from a {@link PolicyKey}: prefixlen 72 for protocol 0
 * (any protocol, port fields zero), else 80 + portPrefixLen with the port's
 * bits beyond the prefix cleared, so every entry has exactly one encoding.
 */
export const policyKeyCodec: Codec<PolicyKey> = codec(
  policyKey.layout,
  (key, buf, base) => {
    writeU32(buf, key.slot, base + policyKey.at.slot);
    writeU32(buf, kernelIdentity(key.identity), base + policyKey.at.identity);
    buf.writeUInt8(key.direction, base + policyKey.at.direction);
    if (key.protocol === 0) {
      writeU32(buf, POLICY_PREFIX_ANY_PROTO, base + policyKey.at.prefixlen);
      return;
    }
    if (!Number.isInteger(key.portPrefixLen) || key.portPrefixLen < 0 || key.portPrefixLen > 16) {
      throw new AbiCodecError(`Cannot encode policy key "${key.slot}/${key.identity}": portPrefixLen ${key.portPrefixLen} is not between 0 and 16`);
    }
    const mask = (0xffff << (16 - key.portPrefixLen)) & 0xffff;
    writeU32(buf, POLICY_PREFIX_ANY_PORT + key.portPrefixLen, base + policyKey.at.prefixlen);
    buf.writeUInt8(key.protocol, base + policyKey.at.protocol);
    buf.writeUInt16BE(key.port & mask, base + policyKey.at.dport_be);
  },
  (buf, base) => {
    const prefixlen = readU32(buf, base + policyKey.at.prefixlen);
    const protocol = prefixlen <= POLICY_PREFIX_ANY_PROTO ? 0 : (buf[base + policyKey.at.protocol] ?? 0);
    return {
      slot: readU32(buf, base + policyKey.at.slot),
      identity: identityInMemory(readU32(buf, base + policyKey.at.identity)),
      direction: (buf[base + policyKey.at.direction] ?? 0) as Direction,
      protocol,
      port: protocol === 0 ? 0 : buf.readUInt16BE(base + policyKey.at.dport_be),
      portPrefixLen: protocol === 0 ? 0 : prefixlen - POLICY_PREFIX_ANY_PORT,
    };
  },
);

/** Whether an encoded policy key is an exact-port entry (prefixlen 96), which `pal_policy_exact` holds again. */
export function isExactPolicyKey(key: Buffer): boolean {
  return readU32(key, policyKey.at.prefixlen) === POLICY_PREFIX_FULL;
}

const policyValue = struct("pal_policy_value", 12, {
  verdict: [0, 1],
  audit_verdict: [1, 1],
  flags: [2, 1],
  pad: [3, 1],
  rule_id: [4, 4],
  audit_rule_id: [8, 4],
});

/** Every PAL_POLICY_F_* bit the datapath knows (POLICY_FLAG_* in desired-state.ts). */
const POLICY_FLAGS_KNOWN =
  POLICY_FLAG_TCP_STRICT |
  POLICY_FLAG_AUDIT_TCP_STRICT |
  POLICY_FLAG_TCP_LIMITED |
  POLICY_FLAG_AUDIT_TCP_LIMITED |
  POLICY_FLAG_HTTP |
  POLICY_FLAG_HTTP_DENY |
  POLICY_FLAG_AUDIT_HTTP |
  POLICY_FLAG_AUDIT_HTTP_DENY;

/** struct pal_policy_value; `flags` are the PAL_POLICY_F_* bits, and a bit the datapath does not know is refused. */
export const policyValueCodec: Codec<PolicyValue> = codec(
  policyValue.layout,
  (value, buf, base) => {
    if (!Number.isInteger(value.flags) || value.flags < 0 || (value.flags & ~POLICY_FLAGS_KNOWN) !== 0) {
      throw new AbiCodecError(`Cannot encode policy value of rule ${value.ruleId}: flags ${value.flags} has bits the datapath does not know (known: ${POLICY_FLAGS_KNOWN})`);
    }
    buf.writeUInt8(value.verdict, base + policyValue.at.verdict);
    buf.writeUInt8(value.auditVerdict, base + policyValue.at.audit_verdict);
    buf.writeUInt8(value.flags, base + policyValue.at.flags);
    writeU32(buf, value.ruleId, base + policyValue.at.rule_id);
    writeU32(buf, value.auditRuleId, base + policyValue.at.audit_rule_id);
  },
  (buf, base) => ({
    verdict: (buf[base + policyValue.at.verdict] ?? 0) as PolicyVerdict,
    auditVerdict: (buf[base + policyValue.at.audit_verdict] ?? 0) as PolicyVerdict,
    ruleId: readU32(buf, base + policyValue.at.rule_id),
    auditRuleId: readU32(buf, base + policyValue.at.audit_rule_id),
    flags: buf[base + policyValue.at.flags] ?? 0,
  }),
);

// ---- conntrack ----

/**
 * A conntrack key: the canonical form of the tuple of a flow's first packet with its hook direction
 * (reversed, at the opposite direction, when its source end orders above its destination end; see
 * {@link isCanonicalCtKey} and {@link ctFlow}), at one endpoint. Ports in host numbers.
 */
export interface CtKey {
  family: IpFamily;
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  protocol: number;
  direction: Direction;
  endpointId: number;
}

/** A conntrack value. */
export interface CtValue {
  /** The deadline on CLOCK_MONOTONIC, moved by a packet only when it moves by more than a second (a quarter of a shorter timeout). */
  expiresNs: bigint;
  revision: number;
  ruleId: number;
  remoteIdentity: number;
  /** PAL_CT_SEEN_* bits. */
  tcpFlags: number;
  /** PAL_CT_F_TCP_STRICT: the flow was admitted (or last re-checked) under a `tcp.strict` allow, so invalid TCP flag combinations on it are dropped. */
  tcpStrict: boolean;
  /**
   * PAL_CT_F_COUNTED: the flow holds one unit of the connection count of its source (the key's saddr)
   * under rule `ruleId` in `pal_tcp_sources`, given back when it closes.
   */
  counted: boolean;
  /** PAL_CT_F_PROXIED: the flow goes to the node's proxy (every packet of it but the proxy's own); absent = false. */
  proxied?: boolean;
  /** PAL_CT_F_PROXY_UPSTREAM: the proxy opened the flow; its replies go back to the proxy; absent = false. */
  proxyUpstream?: boolean;
  /** PAL_CT_F_ORIG_SWAPPED: the key is the first packet's tuple reversed (see {@link ctFlow}); absent = false. */
  origSwapped?: boolean;
}

/**
 * The tuple and hook direction of a flow's first packet: its key, reversed when the value says so.
 *
 * @example
 * ```ts
 * const { saddr } = ctFlow(key, value); // the flow's source, whichever end the key puts first
 * ```
 */
export function ctFlow(key: CtKey, value: CtValue): CtKey {
  if (value.origSwapped !== true) return key;
  return { ...key, saddr: key.daddr, daddr: key.saddr, sport: key.dport, dport: key.sport, direction: (1 - key.direction) as Direction };
}

/**
 * Whether an encoded conntrack key (at `offset`) is in canonical order, as the kernel writes every key
 * since 2026-12-07: (saddr, sport) at or below (daddr, dport), the addresses compared as four 32-bit
 * words, then the ports, each as a host-order integer (pal_ct_tuple_above). Older agents' programs keyed
 * entries by the first packet's tuple whatever its order.
 */
export function isCanonicalCtKey(encoded: Buffer, offset = 0): boolean {
  for (let word = 0; word < 16; word += 4) {
    const s = readU32(encoded, offset + ctKey.at.saddr + word);
    const d = readU32(encoded, offset + ctKey.at.daddr + word);
    if (s !== d) return s < d;
  }
  const port = (at: number): number => (HOST_LE ? encoded.readUInt16LE(offset + at) : encoded.readUInt16BE(offset + at));
  return port(ctKey.at.sport_be) <= port(ctKey.at.dport_be);
}

/** The PAL_CT_F_* byte of a conntrack value. */
function ctFlagsOf(value: CtValue): number {
  return (
    (value.tcpStrict ? CT_F_TCP_STRICT : 0) |
    (value.counted ? CT_F_COUNTED : 0) |
    (value.proxied === true ? CT_F_PROXIED : 0) |
    (value.proxyUpstream === true ? CT_F_PROXY_UPSTREAM : 0) |
    (value.origSwapped === true ? CT_F_ORIG_SWAPPED : 0)
  );
}

const ctKey = struct("pal_ct_key", 44, {
  saddr: [0, 16],
  daddr: [16, 16],
  sport_be: [32, 2],
  dport_be: [34, 2],
  protocol: [36, 1],
  family: [37, 1],
  direction: [38, 1],
  pad: [39, 1],
  endpoint_id: [40, 4],
});

/** struct pal_ct_key. */
export const ctKeyCodec: Codec<CtKey> = codec(
  ctKey.layout,
  (key, buf, base) => {
    writeAddress(buf, base + ctKey.at.saddr, key.family, key.saddr, "conntrack key saddr");
    writeAddress(buf, base + ctKey.at.daddr, key.family, key.daddr, "conntrack key daddr");
    buf.writeUInt16BE(key.sport, base + ctKey.at.sport_be);
    buf.writeUInt16BE(key.dport, base + ctKey.at.dport_be);
    buf.writeUInt8(key.protocol, base + ctKey.at.protocol);
    buf.writeUInt8(key.family, base + ctKey.at.family);
    buf.writeUInt8(key.direction, base + ctKey.at.direction);
    writeU32(buf, key.endpointId, base + ctKey.at.endpoint_id);
  },
  (buf, base) => {
    const family = familyOf(buf[base + ctKey.at.family] ?? 0, "conntrack key");
    return {
      family,
      saddr: readAddress(buf, base + ctKey.at.saddr, family),
      daddr: readAddress(buf, base + ctKey.at.daddr, family),
      sport: buf.readUInt16BE(base + ctKey.at.sport_be),
      dport: buf.readUInt16BE(base + ctKey.at.dport_be),
      protocol: buf[base + ctKey.at.protocol] ?? 0,
      direction: (buf[base + ctKey.at.direction] ?? 0) as Direction,
      endpointId: readU32(buf, base + ctKey.at.endpoint_id),
    };
  },
);

const ctValue = struct("pal_ct_value", 40, {
  expires_ns: [0, 8],
  unused: [8, 16],
  revision: [24, 4],
  rule_id: [28, 4],
  remote_identity: [32, 4],
  tcp_flags: [36, 1],
  ct_flags: [37, 1],
  pad: [38, 2],
});

/** struct pal_ct_value. */
export const ctValueCodec: Codec<CtValue> = codec(
  ctValue.layout,
  (value, buf, base) => {
    writeU64(buf, value.expiresNs, base + ctValue.at.expires_ns);
    writeU32(buf, value.revision, base + ctValue.at.revision);
    writeU32(buf, value.ruleId, base + ctValue.at.rule_id);
    writeU32(buf, kernelIdentity(value.remoteIdentity), base + ctValue.at.remote_identity);
    buf.writeUInt8(value.tcpFlags, base + ctValue.at.tcp_flags);
    buf.writeUInt8(ctFlagsOf(value), base + ctValue.at.ct_flags);
  },
  (buf, base) => {
    const flags = buf[base + ctValue.at.ct_flags] ?? 0;
    return {
      expiresNs: readU64(buf, base + ctValue.at.expires_ns),
      revision: readU32(buf, base + ctValue.at.revision),
      ruleId: readU32(buf, base + ctValue.at.rule_id),
      remoteIdentity: identityInMemory(readU32(buf, base + ctValue.at.remote_identity)),
      tcpFlags: buf[base + ctValue.at.tcp_flags] ?? 0,
      tcpStrict: (flags & CT_F_TCP_STRICT) !== 0,
      counted: (flags & CT_F_COUNTED) !== 0,
      proxied: (flags & CT_F_PROXIED) !== 0,
      proxyUpstream: (flags & CT_F_PROXY_UPSTREAM) !== 0,
      origSwapped: (flags & CT_F_ORIG_SWAPPED) !== 0,
    };
  },
);

// ---- TCP connection limits ----

const tcpLimit = struct("pal_tcp_limit", 16, { max_conns: [0, 4], rate: [4, 4], burst: [8, 4], pad: [12, 4] });

/** struct pal_tcp_limit, the value of `pal_tcp_limits` (keyed by rule id). */
export const tcpLimitCodec: Codec<TcpLimits> = codec(
  tcpLimit.layout,
  (value, buf, base) => {
    writeU32(buf, value.maxConnections, base + tcpLimit.at.max_conns);
    writeU32(buf, value.rate, base + tcpLimit.at.rate);
    writeU32(buf, value.burst, base + tcpLimit.at.burst);
  },
  (buf, base) => ({
    maxConnections: readU32(buf, base + tcpLimit.at.max_conns),
    rate: readU32(buf, base + tcpLimit.at.rate),
    burst: readU32(buf, base + tcpLimit.at.burst),
  }),
);

/** A `pal_tcp_sources` key: one source address under one limited rule. */
export interface TcpSourceKey {
  ruleId: number;
  family: IpFamily;
  saddr: string;
}

/** A `pal_tcp_sources` value. */
export interface TcpSourceValue {
  /** bpf_ktime_get_ns() time at which the source's token bucket is full again; 0 or past = full. */
  fullAtNs: bigint;
  /** Counted connections open (the kernel's atomic counter, as stored: a signed value below 0 reads as a huge one). */
  conns: bigint;
}

const tcpSourceKey = struct("pal_tcp_source_key", 24, { rule_id: [0, 4], family: [4, 1], pad: [5, 3], saddr: [8, 16] });

/** struct pal_tcp_source_key. */
export const tcpSourceKeyCodec: Codec<TcpSourceKey> = codec(
  tcpSourceKey.layout,
  (key, buf, base) => {
    writeU32(buf, key.ruleId, base + tcpSourceKey.at.rule_id);
    buf.writeUInt8(key.family, base + tcpSourceKey.at.family);
    writeAddress(buf, base + tcpSourceKey.at.saddr, key.family, key.saddr, "TCP source key saddr");
  },
  (buf, base) => {
    const family = familyOf(buf[base + tcpSourceKey.at.family] ?? 0, "TCP source key");
    return { ruleId: readU32(buf, base + tcpSourceKey.at.rule_id), family, saddr: readAddress(buf, base + tcpSourceKey.at.saddr, family) };
  },
);

const tcpSourceValue = struct("pal_tcp_source_value", 16, { full_at_ns: [0, 8], conns: [8, 8] });

/** struct pal_tcp_source_value. */
export const tcpSourceValueCodec: Codec<TcpSourceValue> = codec(
  tcpSourceValue.layout,
  (value, buf, base) => {
    writeU64(buf, value.fullAtNs, base + tcpSourceValue.at.full_at_ns);
    writeU64(buf, value.conns, base + tcpSourceValue.at.conns);
  },
  (buf, base) => ({ fullAtNs: readU64(buf, base + tcpSourceValue.at.full_at_ns), conns: readU64(buf, base + tcpSourceValue.at.conns) }),
);

// ---- fragments ----

/** A fragment key: a datagram (addresses, IP id, protocol) at one endpoint hook. */
export interface FragKey {
  family: IpFamily;
  saddr: string;
  daddr: string;
  id: number;
  endpointId: number;
  protocol: number;
  direction: Direction;
}

/** A fragment value: the first fragment's ports, whether it was allowed, and why. */
export interface FragValue {
  sport: number;
  dport: number;
  allowed: boolean;
  reason: number;
}

const fragKey = struct("pal_frag_key", 44, {
  saddr: [0, 16],
  daddr: [16, 16],
  id: [32, 4],
  endpoint_id: [36, 4],
  protocol: [40, 1],
  family: [41, 1],
  direction: [42, 1],
  pad: [43, 1],
});

/** struct pal_frag_key. */
export const fragKeyCodec: Codec<FragKey> = codec(
  fragKey.layout,
  (key, buf, base) => {
    writeAddress(buf, base + fragKey.at.saddr, key.family, key.saddr, "fragment key saddr");
    writeAddress(buf, base + fragKey.at.daddr, key.family, key.daddr, "fragment key daddr");
    writeU32(buf, key.id, base + fragKey.at.id);
    writeU32(buf, key.endpointId, base + fragKey.at.endpoint_id);
    buf.writeUInt8(key.protocol, base + fragKey.at.protocol);
    buf.writeUInt8(key.family, base + fragKey.at.family);
    buf.writeUInt8(key.direction, base + fragKey.at.direction);
  },
  (buf, base) => {
    const family = familyOf(buf[base + fragKey.at.family] ?? 0, "fragment key");
    return {
      family,
      saddr: readAddress(buf, base + fragKey.at.saddr, family),
      daddr: readAddress(buf, base + fragKey.at.daddr, family),
      id: readU32(buf, base + fragKey.at.id),
      endpointId: readU32(buf, base + fragKey.at.endpoint_id),
      protocol: buf[base + fragKey.at.protocol] ?? 0,
      direction: (buf[base + fragKey.at.direction] ?? 0) as Direction,
    };
  },
);

const fragValue = struct("pal_frag_value", 8, { sport_be: [0, 2], dport_be: [2, 2], allowed: [4, 1], reason: [5, 1], pad: [6, 2] });

/** struct pal_frag_value. */
export const fragValueCodec: Codec<FragValue> = codec(
  fragValue.layout,
  (value, buf, base) => {
    buf.writeUInt16BE(value.sport, base + fragValue.at.sport_be);
    buf.writeUInt16BE(value.dport, base + fragValue.at.dport_be);
    buf.writeUInt8(value.allowed ? 1 : 0, base + fragValue.at.allowed);
    buf.writeUInt8(value.reason, base + fragValue.at.reason);
  },
  (buf, base) => ({
    sport: buf.readUInt16BE(base + fragValue.at.sport_be),
    dport: buf.readUInt16BE(base + fragValue.at.dport_be),
    allowed: buf[base + fragValue.at.allowed] !== 0,
    reason: buf[base + fragValue.at.reason] ?? 0,
  }),
);

// ---- config ----

/** struct pal_config: the policy revision, PAL_CFG_* flags and conntrack timeouts in seconds (0 = the program's default). */
export interface DatapathConfig {
  revision: number;
  flags: number;
  ctTimeoutSynS: number;
  ctTimeoutEstablishedS: number;
  ctTimeoutClosingS: number;
  ctTimeoutUdpS: number;
  ctTimeoutOtherS: number;
}

/** The config a fresh datapath starts with: revision 1 and the program's default timeouts. */
export const DEFAULT_CONFIG: Readonly<DatapathConfig> = Object.freeze({
  revision: 1,
  flags: 0,
  ctTimeoutSynS: 60,
  ctTimeoutEstablishedS: 21600,
  ctTimeoutClosingS: 10,
  ctTimeoutUdpS: 60,
  ctTimeoutOtherS: 60,
});

const config = struct("pal_config", 32, {
  revision: [0, 4],
  flags: [4, 4],
  ct_timeout_syn_s: [8, 4],
  ct_timeout_established_s: [12, 4],
  ct_timeout_closing_s: [16, 4],
  ct_timeout_udp_s: [20, 4],
  ct_timeout_other_s: [24, 4],
  pad: [28, 4],
});

/** struct pal_config. */
export const configCodec: Codec<DatapathConfig> = codec(
  config.layout,
  (value, buf, base) => {
    writeU32(buf, value.revision, base + config.at.revision);
    writeU32(buf, value.flags, base + config.at.flags);
    writeU32(buf, value.ctTimeoutSynS, base + config.at.ct_timeout_syn_s);
    writeU32(buf, value.ctTimeoutEstablishedS, base + config.at.ct_timeout_established_s);
    writeU32(buf, value.ctTimeoutClosingS, base + config.at.ct_timeout_closing_s);
    writeU32(buf, value.ctTimeoutUdpS, base + config.at.ct_timeout_udp_s);
    writeU32(buf, value.ctTimeoutOtherS, base + config.at.ct_timeout_other_s);
  },
  (buf, base) => ({
    revision: readU32(buf, base + config.at.revision),
    flags: readU32(buf, base + config.at.flags),
    ctTimeoutSynS: readU32(buf, base + config.at.ct_timeout_syn_s),
    ctTimeoutEstablishedS: readU32(buf, base + config.at.ct_timeout_established_s),
    ctTimeoutClosingS: readU32(buf, base + config.at.ct_timeout_closing_s),
    ctTimeoutUdpS: readU32(buf, base + config.at.ct_timeout_udp_s),
    ctTimeoutOtherS: readU32(buf, base + config.at.ct_timeout_other_s),
  }),
);

// ---- proxy ----

/**
 * struct pal_proxy_config: where steered flows go. `ifindex` is the proxy
 * device the to-pod hook redirects out of, `port` the proxy's transparent
 * listener, `mac` the MAC of the device that receives (the veth peer of
 * `ifindex`), as `aa:bb:cc:dd:ee:ff`.
 */
export interface ProxyConfig {
  ifindex: number;
  port: number;
  mac: string;
}

const proxyConfig = struct("pal_proxy_config", 12, { ifindex: [0, 4], port_be: [4, 2], mac: [6, 6] });

const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/i;

/** struct pal_proxy_config; all zero (ifindex 0, port 0) is "no proxy". */
export const proxyConfigCodec: Codec<ProxyConfig> = codec(
  proxyConfig.layout,
  (value, buf, base) => {
    if (!MAC.test(value.mac)) throw new AbiCodecError(`Cannot encode proxy config: MAC "${value.mac}" is not six hex bytes separated by colons`);
    if (!Number.isInteger(value.port) || value.port < 0 || value.port > 0xffff) throw new AbiCodecError(`Cannot encode proxy config: port ${value.port} is not between 0 and 65535`);
    writeU32(buf, value.ifindex, base + proxyConfig.at.ifindex);
    buf.writeUInt16BE(value.port, base + proxyConfig.at.port_be);
    buf.set(Buffer.from(value.mac.replaceAll(":", ""), "hex"), base + proxyConfig.at.mac);
  },
  (buf, base) => ({
    ifindex: readU32(buf, base + proxyConfig.at.ifindex),
    port: buf.readUInt16BE(base + proxyConfig.at.port_be),
    mac: [...buf.subarray(base + proxyConfig.at.mac, base + proxyConfig.at.mac + 6)].map((byte) => byte.toString(16).padStart(2, "0")).join(":"),
  }),
);

// ---- counters ----

/** struct pal_counter: packets and bytes. */
export interface Counter {
  packets: bigint;
  bytes: bigint;
}

const counter = struct("pal_counter", 16, { packets: [0, 8], bytes: [8, 8] });

/** struct pal_counter. */
export const counterCodec: Codec<Counter> = codec(
  counter.layout,
  (value, buf, base) => {
    writeU64(buf, value.packets, base + counter.at.packets);
    writeU64(buf, value.bytes, base + counter.at.bytes);
  },
  (buf, base) => ({ packets: readU64(buf, base + counter.at.packets), bytes: readU64(buf, base + counter.at.bytes) }),
);

/**
 * The codec of a per-CPU value: one `of` per possible CPU (`cpus` of them),
 * each padded to a multiple of 8 bytes as the kernel lays per-CPU values out.
 *
 * @example
 * ```ts
 * const counters = perCpuCodec(counterCodec, numPossibleCpus()).decode(values); // one Counter per CPU
 * ```
 */
export function perCpuCodec<T>(of: Codec<T>, cpus: number): Codec<T[]> {
  const stride = Math.ceil(of.layout.size / 8) * 8;
  return codec(
    { name: `${of.layout.name}[${cpus} CPUs]`, size: stride * cpus, fields: [] },
    (values, buf, base) => {
      if (values.length !== cpus) throw new AbiCodecError(`Cannot encode a per-CPU ${of.layout.name}: ${values.length} values for ${cpus} CPUs`);
      values.forEach((value, cpu) => of.encode(value, buf, base + cpu * stride));
    },
    (buf, base) => Array.from({ length: cpus }, (_, cpu) => of.decode(buf, base + cpu * stride)),
  );
}

// ---- events ----

/** A flow event from the ring buffer, decoded: addresses as text, ports as numbers, kind and reason by name. */
export interface FlowEvent {
  timestampNs: bigint;
  endpointId: number;
  ifindex: number;
  remoteIdentity: number;
  ruleId: number;
  family: IpFamily;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  protocol: number;
  direction: "ingress" | "egress";
  kind: EventKindName | "unknown";
  reason: ReasonName | "unknown";
  /** The raw reason code (useful when `reason` is `unknown`). */
  reasonCode: number;
  packetLen: number;
}

const flowEvent = struct("pal_flow_event", 72, {
  timestamp_ns: [0, 8],
  endpoint_id: [8, 4],
  ifindex: [12, 4],
  remote_identity: [16, 4],
  rule_id: [20, 4],
  saddr: [24, 16],
  daddr: [40, 16],
  sport_be: [56, 2],
  dport_be: [58, 2],
  family: [60, 1],
  protocol: [61, 1],
  direction: [62, 1],
  kind: [63, 1],
  reason: [64, 1],
  pad: [65, 3],
  packet_len: [68, 4],
});

/** The layout of struct pal_flow_event (the ring buffer carries no BTF type, so this is checked by size only). */
export const flowEventLayout: StructLayout = flowEvent.layout;

/** Decodes one ring-buffer record (struct pal_flow_event). */
export function decodeFlowEvent(record: Buffer): FlowEvent {
  if (record.length < flowEvent.layout.size) {
    throw new RangeError(`Cannot decode struct pal_flow_event: record has ${record.length} bytes, need ${flowEvent.layout.size}`);
  }
  const at = flowEvent.at;
  const family = familyOf(record[at.family] ?? 0, "flow event");
  const reasonCode = record[at.reason] ?? 0;
  return {
    timestampNs: readU64(record, at.timestamp_ns),
    endpointId: readU32(record, at.endpoint_id),
    ifindex: readU32(record, at.ifindex),
    remoteIdentity: identityInMemory(readU32(record, at.remote_identity)),
    ruleId: readU32(record, at.rule_id),
    family,
    src: readAddress(record, at.saddr, family),
    dst: readAddress(record, at.daddr, family),
    sport: record.readUInt16BE(at.sport_be),
    dport: record.readUInt16BE(at.dport_be),
    protocol: record[at.protocol] ?? 0,
    direction: record[at.direction] === 1 ? "egress" : "ingress",
    kind: eventKindName(record[at.kind] ?? 0),
    reason: reasonName(reasonCode),
    reasonCode,
    packetLen: readU32(record, at.packet_len),
  };
}

// ---- layout check against BTF ----

/** A struct as BTF describes it (the shape the native `mapLayout` returns). */
export interface BtfStruct {
  name: string;
  size: number;
  members: readonly { name: string; offset: number; size: number }[];
}

/** Anything that can report a map's key and value layout from BTF, such as a loaded BpfObject. */
export interface LayoutSource {
  mapLayout(name: string): { key: BtfStruct | null; value: BtfStruct | null };
}

/** The key and value layout userspace expects for every map; `null` where the map has none (ring buffer). */
export const MAP_LAYOUTS: Readonly<Record<MapName, { key: StructLayout | null; value: StructLayout | null }>> = {
  pal_ipcache: { key: ipcacheKeyCodec.layout, value: ipcacheValueCodec.layout },
  pal_ipcache_hosts: { key: ipcacheKeyCodec.layout, value: ipcacheValueCodec.layout },
  pal_endpoints: { key: endpointKeyCodec.layout, value: endpointValueCodec.layout },
  pal_endpoints_by_ifindex: { key: u32Codec.layout, value: endpointValueCodec.layout },
  pal_policy: { key: policyKeyCodec.layout, value: policyValueCodec.layout },
  pal_policy_exact: { key: policyKeyCodec.layout, value: policyValueCodec.layout },
  pal_ct: { key: ctKeyCodec.layout, value: ctValueCodec.layout },
  pal_frags: { key: fragKeyCodec.layout, value: fragValueCodec.layout },
  pal_config_map: { key: u32Codec.layout, value: configCodec.layout },
  pal_rule_stats: { key: u32Codec.layout, value: counterCodec.layout },
  pal_reason_stats: { key: u32Codec.layout, value: counterCodec.layout },
  pal_events: { key: null, value: null },
  pal_tcp_limits: { key: u32Codec.layout, value: tcpLimitCodec.layout },
  pal_tcp_sources: { key: tcpSourceKeyCodec.layout, value: tcpSourceValueCodec.layout },
  pal_proxy_config: { key: u32Codec.layout, value: proxyConfigCodec.layout },
};

/** The object's BTF disagrees with a codec: the header and abi.ts have drifted apart. */
export class AbiMismatchError extends Error {
  override name = "AbiMismatchError";
  readonly map: string;
  readonly struct: string;
  readonly field: string;
  readonly expected: string;
  readonly actual: string;

  constructor(details: { map: string; struct: string; field: string; expected: string; actual: string }, options?: ErrorOptions) {
    super(
      `Map "${details.map}" does not match the ABI: struct ${details.struct} ${details.field === "" ? "" : `field ${details.field} `}` +
        `is ${details.actual} in BTF, expected ${details.expected}`,
      options,
    );
    this.map = details.map;
    this.struct = details.struct;
    this.field = details.field;
    this.expected = details.expected;
    this.actual = details.actual;
  }
}

function checkStruct(map: string, role: "key" | "value", expected: StructLayout, actual: BtfStruct | null): void {
  const fail = (field: string, expectedText: string, actualText: string): never => {
    throw new AbiMismatchError({ map, struct: expected.name, field, expected: expectedText, actual: actualText });
  };
  if (actual === null) fail("", `the ${role} type`, `missing as the ${role} type`);
  const btf = actual as BtfStruct;
  if (btf.size !== expected.size) fail("", `${expected.size} bytes`, `${btf.size} bytes`);
  if (expected.fields.length === 0) return; // a scalar: only its size matters
  if (btf.name !== expected.name) fail("", `named ${expected.name}`, `named ${btf.name}`);
  const members = new Map(btf.members.map((m) => [m.name, m]));
  for (const field of expected.fields) {
    const member = members.get(field.name);
    const want = `at offset ${field.offset} size ${field.size}`;
    if (member === undefined) fail(field.name, want, "absent");
    else if (member.offset !== field.offset || member.size !== field.size) fail(field.name, want, `at offset ${member.offset} size ${member.size}`);
  }
  const known = new Set(expected.fields.map((f) => f.name));
  for (const member of btf.members) {
    if (!known.has(member.name)) fail(member.name, "absent", `at offset ${member.offset} size ${member.size}`);
  }
}

/**
 * Compares every map's key and value layout in the loaded object's BTF with
 * the codecs above; throws {@link AbiMismatchError} naming map, struct and
 * field on the first difference.
 *
 * @example
 * ```ts
 * const object = openObject("bpf/out/endpoint.bpf.o", { pinRoot });
 * checkLayout(object); // throws if palisade_abi.h and abi.ts disagree
 * ```
 */
export function checkLayout(object: LayoutSource): void {
  for (const [map, expected] of Object.entries(MAP_LAYOUTS)) {
    let actual: { key: BtfStruct | null; value: BtfStruct | null };
    try {
      actual = object.mapLayout(map);
    } catch (error) {
      throw new AbiMismatchError({ map, struct: expected.key?.name ?? "(none)", field: "", expected: "a map with BTF", actual: "unreadable" }, { cause: error });
    }
    if (expected.key !== null) checkStruct(map, "key", expected.key, actual.key);
    if (expected.value !== null) checkStruct(map, "value", expected.value, actual.value);
  }
}

/** Encodes `values` back to back into one Buffer, the layout batch map operations take. */
export function encodeArray<T>(codecOf: Codec<T>, values: readonly T[]): Buffer {
  const size = codecOf.layout.size;
  const out = Buffer.alloc(size * values.length);
  values.forEach((value, i) => codecOf.encode(value, out, i * size));
  return out;
}
