#!/usr/bin/env bash
# Smoke test of bpf/out/endpoint.bpf.o on the real kernel: loads both
# programs with bpftool (the verifier must accept them), fills the maps,
# runs hand-built packets through BPF_PROG_TEST_RUN and checks each verdict
# and the reason it was counted under, independently of the TypeScript
# codecs. The test command runs it (test/kernel/bpf-smoke.test.ts).
#
# The maps are pinned by name under libbpf's default root /sys/fs/bpf, so the
# test runs in a private mount namespace with a bpffs of its own mounted
# there: the host's pins are never touched, and unmounting it on exit (or the
# namespace going away) releases every program and map the test created.
#
# Needs root. Usage: bpf/test/smoke.sh   (builds the object first)
set -euo pipefail

if [[ "${PAL_SMOKE_NAMESPACED:-}" != 1 ]]; then
	exec unshare --mount --propagation private env PAL_SMOKE_NAMESPACED=1 bash "$0" "$@"
fi

bpf_dir="$(cd "$(dirname "$0")/.." && pwd)"
make -s -C "$bpf_dir"

mount -t bpf bpf /sys/fs/bpf
work="$(mktemp -d)"
prog_dir="/sys/fs/bpf/pl-smoke-$$"
cleanup() {
	rm -rf "$work"
	rm -rf "$prog_dir"
	umount /sys/fs/bpf
}
trap cleanup EXIT

bpftool -d prog loadall "$bpf_dir/out/endpoint.bpf.o" "$prog_dir" type tc >"$work/load.log" 2>&1 || {
	tail -40 "$work/load.log"
	echo "FAIL: the verifier rejected the endpoint programs" >&2
	exit 1
}
awk "/prog 'pal_(from|to)_pod': -- BEGIN PROG LOAD LOG --/ { prog = \$3 }
	/^processed [0-9]+ insns/ { print \"verifier:\", prog, \$1, \$2, \$3 }
	/^stack depth/ { print \"verifier:\", prog, \$0 }" "$work/load.log"

python3 - "$prog_dir" "$work" <<'PYTHON'
import ctypes
import ipaddress
import json
import mmap
import os
import platform
import re
import struct
import subprocess
import sys
import time

PROG_DIR, WORK = sys.argv[1], sys.argv[2]
MAPS = "/sys/fs/bpf"

# Constants from include/palisade_abi.h.
V4, V6 = 4, 6
INGRESS, EGRESS = 0, 1
ALLOW, DENY = 1, 2
ISOLATED_INGRESS, ISOLATED_EGRESS = 1, 2
IPCACHE_HOST = 1
ID_ANY, ID_HOST = 0, 1
REASONS = {
    "POLICY_ALLOW": 1, "NOT_ISOLATED": 2, "HOST": 3, "ESTABLISHED": 4, "REPLY": 5,
    "RELATED": 6, "NOT_IP": 7, "FRAGMENT": 8, "POLICY_DENY": 16, "DEFAULT_DENY": 17,
    "NO_ENDPOINT": 18, "MALFORMED": 19, "FRAG_UNKNOWN": 20, "REVOKED": 21, "TCP_INVALID": 22,
    "TCP_LIMIT": 23,
}
REASON_MAX = 32
TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58
SCTP = 132
SYN, ACK, FIN, RST = 0x02, 0x10, 0x01, 0x04

IFINDEX = 1  # lo: BPF_PROG_TEST_RUN runs the skb on it, so skb->ifindex is 1
EP_ID, SLOT, EP_IDENTITY = 7, 3, 300
POD, PEER, HOST, WORLD = "10.0.0.1", "10.0.0.2", "10.0.0.254", "8.8.8.8"
POD6, PEER6, WORLD6 = "fd00::1", "fd00::2", "2001:db8::9"
PEER_ID = 301
RULE_ALLOW_80, RULE_DENY_8080, RULE_ANY_8080, RULE_UDP_RANGE, RULE_EGRESS_ALL = 11, 12, 13, 14, 15
RULE_AUDIT_9090, RULE_STRICT_7000, RULE_LIMITED_7100 = 16, 17, 18
POLICY_F_TCP_STRICT, POLICY_F_TCP_LIMITED = 1, 4
EVENT_ALLOWED, EVENT_DENIED, EVENT_AUDIT = 1, 2, 3

failures = []


def sh(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def hexargs(data):
    return ["hex", *(f"{b:02x}" for b in data)]


def map_update(name, key, value):
    sh("bpftool", "map", "update", "pinned", f"{MAPS}/{name}", "key", *hexargs(key), "value", *hexargs(value))


def map_delete(name, key):
    sh("bpftool", "map", "delete", "pinned", f"{MAPS}/{name}", "key", *hexargs(key))


def map_entries(name):
    return json.loads(sh("bpftool", "-j", "map", "dump", "pinned", f"{MAPS}/{name}"))


def reason_counts():
    counts = [0] * REASON_MAX
    for entry in map_entries("pal_reason_stats"):
        counts[entry["formatted"]["key"]] = sum(v["value"]["packets"] for v in entry["formatted"]["values"])
    return counts


# ---- map encodings -------------------------------------------------------

def ip_bytes(addr):
    return ipaddress.ip_address(addr).packed


def addr16(addr):
    return ip_bytes(addr).ljust(16, b"\0")


def family_of(addr):
    return V6 if ":" in addr else V4


def set_endpoint(flags):
    map_update("pal_endpoints", struct.pack("<I", IFINDEX), struct.pack("<IIII", EP_ID, SLOT, EP_IDENTITY, flags))


def set_ipcache(addr, identity, flags=0):
    family = family_of(addr)
    key = struct.pack("<IB3x", 32 + (32 if family == V4 else 128), family) + addr16(addr)
    map_update("pal_ipcache", key, struct.pack("<II", identity, flags))


def policy_key(identity, direction, protocol, port=0, port_bits=16):
    prefixlen = 72 if protocol == 0 else 80 + port_bits
    return struct.pack("<IIIBB", prefixlen, SLOT, identity, direction, protocol) + struct.pack(">H", port)


def set_policy(key, verdict, rule, audit_verdict=None, flags=0):
    audit = verdict if audit_verdict is None else audit_verdict
    map_update("pal_policy", key, struct.pack("<BBBxII", verdict, audit, flags, rule, rule))


def set_config(revision, flags=1, udp_timeout_s=0):
    """Zero timeouts mean the datapath's defaults."""
    value = struct.pack("<8I", revision, flags, 0, 0, 0, udp_timeout_s, 0, 0)
    map_update("pal_config_map", struct.pack("<I", 0), value)


# ---- packets -------------------------------------------------------------

def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ether(ethertype, payload, vlan=None):
    head = b"\x02\0\0\0\0\x01" + b"\x02\0\0\0\0\x02"
    if vlan is not None:
        head += struct.pack("!HH", 0x8100, vlan)
    return head + struct.pack("!H", ethertype) + payload


def ipv4_datagram(src, dst, protocol, payload, ident=1, mf=False, offset=0, options=b""):
    """An IPv4 header and payload; offset counts 8-byte units."""
    ihl = 5 + len(options) // 4
    frag = (0x2000 if mf else 0) | offset
    header = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(payload), ident, frag, 64,
                         protocol, 0, ip_bytes(src), ip_bytes(dst)) + options
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def ipv4(*args, vlan=None, **kwargs):
    return ether(0x0800, ipv4_datagram(*args, **kwargs), vlan=vlan)


def ipv6_datagram(src, dst, nexthdr, payload, hop_limit=64):
    header = struct.pack("!IHBB16s16s", 0x60000000, len(payload), nexthdr, hop_limit, ip_bytes(src), ip_bytes(dst))
    return header + payload


def ipv6(*args, **kwargs):
    return ether(0x86DD, ipv6_datagram(*args, **kwargs))


def ext_opts(nexthdr):
    """An 8-byte hop-by-hop or destination options header (PadN)."""
    return struct.pack("!BBBB4x", nexthdr, 0, 1, 4)


def ext_frag(nexthdr, ident, offset_units=0, more=False):
    return struct.pack("!BBHI", nexthdr, 0, (offset_units << 3) | int(more), ident)


def tcp(sport, dport, flags):
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 65535, 0, 0)


def udp(sport, dport, payload=b"x" * 8):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def sctp(sport, dport):
    """Common header and an 8-byte chunk; nothing checks the CRC here."""
    return struct.pack("!HHII", sport, dport, 1, 0) + struct.pack("!BBH4x", 1, 0, 8)


def icmp(kind, ident=0, seq=1, body=b""):
    message = struct.pack("!BBHHH", kind, 0, 0, ident, seq) + body
    return message[:2] + struct.pack("!H", checksum(message)) + message[4:]


def arp():
    return ether(0x0806, struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + bytes(20))


# ---- running -------------------------------------------------------------

CTX = os.path.join(WORK, "ctx.bin")
with open(CTX, "wb") as f:
    # struct __sk_buff up to and including ifindex (offset 40); the kernel
    # refuses any other field but the few it lets a test run set.
    f.write(bytes(40) + struct.pack("<I", IFINDEX))


def run(prog, packet):
    path = os.path.join(WORK, "packet.bin")
    with open(path, "wb") as f:
        f.write(packet)
    out = sh("bpftool", "prog", "run", "pinned", f"{PROG_DIR}/{prog}", "data_in", path, "ctx_in", CTX)
    return int(re.search(r"Return value: (\d+)", out).group(1))


# Events the checks expect the programs to have emitted, by kind.
expected_events = {EVENT_ALLOWED: 0, EVENT_DENIED: 0, EVENT_AUDIT: 0}
NEW_FLOW_ALLOWED = {"POLICY_ALLOW", "NOT_ISOLATED", "HOST"}


def check(name, prog, packet, verdict, reason):
    if verdict == "drop":
        expected_events[EVENT_DENIED] += 1
    elif reason in NEW_FLOW_ALLOWED:
        expected_events[EVENT_ALLOWED] += 1
    before = reason_counts()
    got = run(prog, packet)
    after = reason_counts()
    counted = [r for r, code in REASONS.items() if after[code] != before[code]]
    want = 0 if verdict == "pass" else 2
    ok = got == want and counted == [reason]
    print(f"{'ok  ' if ok else 'FAIL'} {name}: returned {got}, counted {counted or 'nothing'}")
    if not ok:
        failures.append(f"{name}: want {want} {reason}, got {got} {counted}")


TO, FROM = "pal_to_pod", "pal_from_pod"

# No endpoint state for the interface: fail closed, even for ARP.
# Allowed-flow events are only on once pal_config says so (set below).
check("no endpoint", TO, ipv4(PEER, POD, TCP, tcp(1000, 80, SYN)), "drop", "NO_ENDPOINT")
check("no endpoint, ARP", FROM, arp(), "drop", "NO_ENDPOINT")

set_config(revision=1)
set_endpoint(0)
set_ipcache(PEER, PEER_ID)
set_ipcache(PEER6, PEER_ID)
set_ipcache(HOST, ID_HOST, IPCACHE_HOST)
check("not isolated", TO, ipv4(PEER, POD, TCP, tcp(1001, 80, SYN)), "pass", "NOT_ISOLATED")
check("ARP", TO, arp(), "pass", "NOT_IP")

set_endpoint(ISOLATED_INGRESS | ISOLATED_EGRESS)
check("isolated, no entry", TO, ipv4(PEER, POD, TCP, tcp(1002, 80, SYN)), "drop", "DEFAULT_DENY")
check("host ingress while isolated", TO, ipv4(HOST, POD, TCP, tcp(1003, 80, SYN)), "pass", "HOST")

set_policy(policy_key(PEER_ID, INGRESS, TCP, 80), ALLOW, RULE_ALLOW_80)
check("allow entry for identity", TO, ipv4(PEER, POD, TCP, tcp(1004, 80, SYN)), "pass", "POLICY_ALLOW")
check("same peer, other port", TO, ipv4(PEER, POD, TCP, tcp(1005, 81, SYN)), "drop", "DEFAULT_DENY")
check("other peer, allowed port", TO, ipv4(WORLD, POD, TCP, tcp(1006, 80, SYN)), "drop", "DEFAULT_DENY")
check("IPv4 options", TO, ipv4(PEER, POD, TCP, tcp(1007, 80, SYN), options=bytes([1, 1, 1, 0])),
      "pass", "POLICY_ALLOW")
check("reply after allowed SYN", FROM, ipv4(POD, PEER, TCP, tcp(80, 1004, SYN | ACK)), "pass", "REPLY")
check("established forward", TO, ipv4(PEER, POD, TCP, tcp(1004, 80, ACK)), "pass", "ESTABLISHED")
check("reply-tuple SYN is a new flow", FROM, ipv4(POD, PEER, TCP, tcp(80, 1004, SYN)), "drop", "DEFAULT_DENY")
tcp_reply = ipv4_datagram(POD, PEER, TCP, tcp(80, 1004, SYN | ACK))
check("ICMP error about a reply", TO, ipv4(PEER, POD, ICMP, icmp(3, body=tcp_reply[:28])), "pass", "RELATED")
check("FIN", FROM, ipv4(POD, PEER, TCP, tcp(80, 1004, FIN | ACK)), "pass", "REPLY")
check("SYN reusing a closing tuple goes to policy", TO, ipv4(PEER, POD, TCP, tcp(1004, 80, SYN)), "pass", "POLICY_ALLOW")
check("reused tuple tracked again", FROM, ipv4(POD, PEER, TCP, tcp(80, 1004, SYN | ACK)), "pass", "REPLY")

set_policy(policy_key(PEER_ID, INGRESS, TCP, 8080), DENY, RULE_DENY_8080)
set_policy(policy_key(ID_ANY, INGRESS, TCP, 8080), ALLOW, RULE_ANY_8080)
check("deny beats allow", TO, ipv4(PEER, POD, TCP, tcp(1010, 8080, SYN)), "drop", "POLICY_DENY")
check("allow for any peer", TO, ipv4(WORLD, POD, TCP, tcp(1011, 8080, SYN)), "pass", "POLICY_ALLOW")
set_policy(policy_key(ID_ANY, INGRESS, TCP, 9090), ALLOW, RULE_AUDIT_9090, audit_verdict=DENY)
check("audit-only deny", TO, ipv4(WORLD, POD, TCP, tcp(1012, 9090, SYN)), "pass", "POLICY_ALLOW")
expected_events[EVENT_AUDIT] += 1

# UDP 5000..5007: the first 13 bits of the port.
set_policy(policy_key(PEER_ID, INGRESS, UDP, 5000, port_bits=13), ALLOW, RULE_UDP_RANGE)
check("port range, inside", TO, ipv4(PEER, POD, UDP, udp(999, 5007)), "pass", "POLICY_ALLOW")
check("port range, outside", TO, ipv4(PEER, POD, UDP, udp(999, 5008)), "drop", "DEFAULT_DENY")

# Egress to PEER, any protocol.
set_policy(policy_key(PEER_ID, EGRESS, 0), ALLOW, RULE_EGRESS_ALL)
check("echo request out", FROM, ipv4(POD, PEER, ICMP, icmp(8, ident=0x1234)), "pass", "POLICY_ALLOW")
check("echo reply in", TO, ipv4(PEER, POD, ICMP, icmp(0, ident=0x1234)), "pass", "REPLY")
check("echo reply, other identifier", TO, ipv4(PEER, POD, ICMP, icmp(0, ident=0x9999)), "drop", "DEFAULT_DENY")
check("echo request in, unsolicited", TO, ipv4(PEER, POD, ICMP, icmp(8, ident=0x1234)), "drop", "DEFAULT_DENY")

udp_out = ipv4_datagram(POD, PEER, UDP, udp(4000, 53))
check("UDP out", FROM, ipv4(POD, PEER, UDP, udp(4000, 53)), "pass", "POLICY_ALLOW")
check("ICMP error about it", TO, ipv4(PEER, POD, ICMP, icmp(3, body=udp_out[:28])), "pass", "RELATED")
unrelated = ipv4_datagram(POD, PEER, UDP, udp(4001, 53))
check("ICMP error about nothing", TO, ipv4(PEER, POD, ICMP, icmp(3, body=unrelated[:28])), "drop", "DEFAULT_DENY")
check("SCTP out", FROM, ipv4(POD, PEER, SCTP, sctp(3000, 9999)), "pass", "POLICY_ALLOW")
check("SCTP back", TO, ipv4(PEER, POD, SCTP, sctp(9999, 3000)), "pass", "REPLY")
check("SCTP back, other port", TO, ipv4(PEER, POD, SCTP, sctp(9999, 3001)), "drop", "DEFAULT_DENY")

# IPv6: hop-by-hop and destination options before TCP.
v6_tcp = ext_opts(60) + ext_opts(TCP) + tcp(1020, 80, SYN)
check("IPv6 ext headers, allowed", TO, ipv6(PEER6, POD6, 0, v6_tcp), "pass", "POLICY_ALLOW")
check("IPv6 ext headers, reply", FROM, ipv6(POD6, PEER6, TCP, tcp(80, 1020, SYN | ACK)), "pass", "REPLY")
v6_tcp_81 = ext_opts(60) + ext_opts(TCP) + tcp(1021, 81, SYN)
check("IPv6 ext headers, other port", TO, ipv6(PEER6, POD6, 0, v6_tcp_81), "drop", "DEFAULT_DENY")
check("IPv6 from world", TO, ipv6(WORLD6, POD6, TCP, tcp(1022, 80, SYN)), "drop", "DEFAULT_DENY")
routing_ah = (struct.pack("!BBBB4x", 51, 0, 0, 0)  # routing header, no segments left
              + struct.pack("!BBH4x4x", TCP, 1, 0)  # AH: (1 + 2) * 4 bytes
              + tcp(1024, 80, SYN))
check("IPv6 routing header and AH", TO, ipv6(PEER6, POD6, 43, routing_ah), "pass", "POLICY_ALLOW")
udp6_out = ipv6_datagram(POD6, PEER6, UDP, udp(4100, 53))
check("IPv6 UDP out", FROM, ipv6(POD6, PEER6, UDP, udp(4100, 53)), "pass", "POLICY_ALLOW")
check("ICMPv6 error about it", TO, ipv6(PEER6, POD6, ICMPV6, icmp(1, body=udp6_out)), "pass", "RELATED")
too_many = b"".join(ext_opts(60) for _ in range(8)) + ext_opts(TCP) + tcp(1023, 80, SYN)
check("IPv6, 9 ext headers", TO, ipv6(PEER6, POD6, 60, too_many), "drop", "MALFORMED")
neighbor_solicit = icmp(135, body=bytes(16))
check("IPv6 neighbor solicitation", TO, ipv6("fe80::2", "ff02::1:ff00:1", ICMPV6, neighbor_solicit, hop_limit=255),
      "pass", "NOT_IP")
check("routed neighbor solicitation", TO, ipv6(WORLD6, POD6, ICMPV6, neighbor_solicit, hop_limit=64),
      "drop", "DEFAULT_DENY")

# Fragments: the first decides, later ones follow it.
check("first fragment, allowed", TO, ipv4(PEER, POD, UDP, udp(998, 5001), ident=77, mf=True), "pass", "POLICY_ALLOW")
check("later fragment follows", TO, ipv4(PEER, POD, UDP, b"y" * 16, ident=77, offset=2), "pass", "FRAGMENT")
check("later fragment, first unseen", TO, ipv4(PEER, POD, UDP, b"y" * 16, ident=78, offset=2), "drop", "FRAG_UNKNOWN")
check("first fragment, denied", TO, ipv4(PEER, POD, UDP, udp(998, 6000), ident=79, mf=True), "drop", "DEFAULT_DENY")
check("later fragment of a denied first", TO, ipv4(PEER, POD, UDP, b"y" * 16, ident=79, offset=2), "drop", "DEFAULT_DENY")
v6_first = ext_frag(UDP, 0xABCDEF, more=True) + udp(997, 5002)
check("IPv6 first fragment", TO, ipv6(PEER6, POD6, 44, v6_first), "pass", "POLICY_ALLOW")
check("IPv6 later fragment", TO, ipv6(PEER6, POD6, 44, ext_frag(UDP, 0xABCDEF, offset_units=2) + b"z" * 16),
      "pass", "FRAGMENT")

# (BPF_PROG_TEST_RUN itself refuses an IPv4 frame shorter than 20 bytes.)
syn = ipv4_datagram(PEER, POD, TCP, tcp(1029, 80, SYN))
check("IPv4 version garbled", TO, ether(0x0800, bytes([0x55]) + syn[1:]), "drop", "MALFORMED")
check("IPv4 header beyond packet", TO, ether(0x0800, bytes([0x4F]) + syn[1:20]), "drop", "MALFORMED")
check("truncated TCP", TO, ipv4(PEER, POD, TCP, tcp(1030, 80, SYN)[:10]), "drop", "MALFORMED")
check("VLAN-tagged frame is judged", TO, ipv4(WORLD, POD, TCP, tcp(1031, 80, SYN), vlan=5), "drop", "DEFAULT_DENY")

ct_entries = len(map_entries("pal_ct"))
rule_hits = {e["formatted"]["key"]: sum(v["value"]["packets"] for v in e["formatted"]["values"])
             for e in map_entries("pal_rule_stats")}
print(f"conntrack entries: {ct_entries}, rule stats: {rule_hits}")
want_hits = {RULE_ALLOW_80: 5, RULE_DENY_8080: 1, RULE_ANY_8080: 1, RULE_UDP_RANGE: 3, RULE_EGRESS_ALL: 4,
             RULE_AUDIT_9090: 1}
if rule_hits != want_hits:
    failures.append(f"rule stats: want {want_hits}, got {rule_hits}")

# Policy change: remove the port-80 allow, bump the revision; the tracked
# flow from PEER:1004 is re-checked and revoked.
map_delete("pal_policy", policy_key(PEER_ID, INGRESS, TCP, 80))
set_config(revision=2)
check("revoked after policy change", TO, ipv4(PEER, POD, TCP, tcp(1004, 80, ACK)), "drop", "REVOKED")
check("revoked flow stays gone", TO, ipv4(PEER, POD, TCP, tcp(1004, 80, ACK)), "drop", "DEFAULT_DENY")
check("still-allowed flow survives", FROM, ipv4(POD, PEER, UDP, udp(4000, 53)), "pass", "ESTABLISHED")

set_config(revision=2, udp_timeout_s=1)
check("UDP out, 1 s timeout", FROM, ipv4(POD, PEER, UDP, udp(4200, 53)), "pass", "POLICY_ALLOW")
check("reply in time", TO, ipv4(PEER, POD, UDP, udp(53, 4200)), "pass", "REPLY")
time.sleep(1.5)
check("reply after expiry", TO, ipv4(PEER, POD, UDP, udp(53, 4200)), "drop", "DEFAULT_DENY")

# tcp.strict, the flags byte at offset 2 of the policy value: a new flow
# opens with a pure SYN only; a strict flow drops invalid combinations.
set_policy(policy_key(PEER_ID, INGRESS, TCP, 7000), ALLOW, RULE_STRICT_7000, flags=POLICY_F_TCP_STRICT)
check("strict: ACK-only first packet", TO, ipv4(PEER, POD, TCP, tcp(1040, 7000, ACK)), "drop", "TCP_INVALID")
check("strict: SYN+RST first packet", TO, ipv4(PEER, POD, TCP, tcp(1041, 7000, SYN | RST)), "drop", "TCP_INVALID")
check("strict: SYN", TO, ipv4(PEER, POD, TCP, tcp(1042, 7000, SYN)), "pass", "POLICY_ALLOW")
check("strict: SYN-ACK back", FROM, ipv4(POD, PEER, TCP, tcp(7000, 1042, SYN | ACK)), "pass", "REPLY")
check("strict: FIN without ACK back", FROM, ipv4(POD, PEER, TCP, tcp(7000, 1042, FIN)), "drop", "TCP_INVALID")
check("strict: SYN+FIN on the flow", TO, ipv4(PEER, POD, TCP, tcp(1042, 7000, SYN | FIN)), "drop", "TCP_INVALID")
check("strict: no flags", TO, ipv4(PEER, POD, TCP, tcp(1042, 7000, 0)), "drop", "TCP_INVALID")
check("strict: ACK", TO, ipv4(PEER, POD, TCP, tcp(1042, 7000, ACK)), "pass", "ESTABLISHED")

# Connection limits: policy flag bit 2, pal_tcp_limits[rule] = {max_conns,
# rate, burst, pad}, pal_tcp_sources keyed {rule, family, pad, saddr[16]}
# valued {full_at_ns, conns} (both __u64).
set_policy(policy_key(PEER_ID, INGRESS, TCP, 7100), ALLOW, RULE_LIMITED_7100, flags=POLICY_F_TCP_LIMITED)
map_update("pal_tcp_limits", struct.pack("<I", RULE_LIMITED_7100), struct.pack("<IIII", 1, 0, 0, 0))
check("limited: first SYN", TO, ipv4(PEER, POD, TCP, tcp(1050, 7100, SYN)), "pass", "POLICY_ALLOW")
check("limited: second SYN over max 1", TO, ipv4(PEER, POD, TCP, tcp(1051, 7100, SYN)), "drop", "TCP_LIMIT")
source_key = struct.pack("<IB3x", RULE_LIMITED_7100, V4) + addr16(PEER)
sources = [e for e in map_entries("pal_tcp_sources") if bytes(int(b, 16) for b in e["key"]) == source_key]
conns = [struct.unpack("<QQ", bytes(int(b, 16) for b in e["value"]))[1] for e in sources]
print(f"{'ok  ' if conns == [1] else 'FAIL'} limited: the source holds 1 connection: {conns}")
if conns != [1]:
    failures.append(f"limited: pal_tcp_sources conns {conns}, want [1]")
check("limited: RST closes", TO, ipv4(PEER, POD, TCP, tcp(1050, 7100, RST | ACK)), "pass", "ESTABLISHED")
check("limited: a SYN opens again", TO, ipv4(PEER, POD, TCP, tcp(1052, 7100, SYN)), "pass", "POLICY_ALLOW")


# ---- events: read the ring buffer the way libbpf does --------------------

def read_events():
    sys_bpf = {"x86_64": 321, "aarch64": 280}[platform.machine()]
    libc = ctypes.CDLL(None, use_errno=True)
    path = ctypes.create_string_buffer(f"{MAPS}/pal_events".encode())
    attr = ctypes.create_string_buffer(struct.pack("<QII", ctypes.addressof(path), 0, 0), 128)
    fd = libc.syscall(sys_bpf, 7, attr, 128)  # BPF_OBJ_GET
    if fd < 0:
        raise OSError(ctypes.get_errno(), "BPF_OBJ_GET pal_events")
    try:
        size = 1 << 20
        page = mmap.PAGESIZE
        consumer = mmap.mmap(fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        # Producer page, then the data area mapped twice so records that
        # wrap around read contiguously.
        producer = mmap.mmap(fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
        cons = struct.unpack_from("<Q", consumer, 0)[0]
        prod = struct.unpack_from("<Q", producer, 0)[0]
        records = []
        while cons < prod:
            offset = page + (cons & (size - 1))
            length = struct.unpack_from("<I", producer, offset)[0]
            if length & (1 << 31):  # still being written
                break
            if not length & (1 << 30):  # not discarded
                records.append(bytes(producer[offset + 8:offset + 8 + (length & 0x3FFFFFFF)]))
            cons += ((length & 0x3FFFFFFF) + 8 + 7) & ~7
        struct.pack_into("<Q", consumer, 0, cons)
        return records
    finally:
        os.close(fd)


EVENT = struct.Struct("<QIIII16s16s2s2sBBBBB3xI")
events = []
for record in read_events():
    (ts, endpoint_id, ifindex, remote_identity, rule_id, saddr, daddr, sport, dport,
     family, protocol, direction, kind, reason, packet_len) = EVENT.unpack(record)
    events.append(dict(endpoint_id=endpoint_id, ifindex=ifindex, remote_identity=remote_identity,
                       rule_id=rule_id, saddr=saddr, daddr=daddr, sport=int.from_bytes(sport, "big"),
                       dport=int.from_bytes(dport, "big"), family=family, protocol=protocol,
                       direction=direction, kind=kind, reason=reason, packet_len=packet_len))
got_events = {kind: sum(1 for e in events if e["kind"] == kind) for kind in expected_events}
print(f"events: {len(events)}, by kind {got_events}")
if got_events != expected_events:
    failures.append(f"events by kind: want {expected_events}, got {got_events}")
deny_8080 = [e for e in events if e["kind"] == EVENT_DENIED and e["dport"] == 8080]
want_deny = dict(endpoint_id=EP_ID, ifindex=IFINDEX, remote_identity=PEER_ID, rule_id=RULE_DENY_8080,
                 saddr=addr16(PEER), daddr=addr16(POD), sport=1010, dport=8080, family=V4, protocol=TCP,
                 direction=INGRESS, kind=EVENT_DENIED, reason=REASONS["POLICY_DENY"], packet_len=54)
if deny_8080 != [want_deny]:
    failures.append(f"event of the deny-beats-allow drop: want {want_deny}, got {deny_8080}")
audit = [e for e in events if e["kind"] == EVENT_AUDIT]
if [(e["rule_id"], e["reason"], e["dport"]) for e in audit] != [(RULE_AUDIT_9090, REASONS["POLICY_DENY"], 9090)]:
    failures.append(f"audit event: got {audit}")

if failures:
    print(f"\n{len(failures)} failed:", *failures, sep="\n  ")
    sys.exit(1)
print("\nall smoke checks passed")
PYTHON
