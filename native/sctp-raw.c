// palisade-sctp: just enough SCTP, over raw IP sockets, for pods on a kernel
// without SCTP sockets.
//   palisade-sctp serve PORT...                answer INITs (IPv4 and IPv6)
//   palisade-sctp probe HOST PORT TIMEOUT_MS   one association attempt
// The kernel hands a raw IPPROTO_SCTP socket every SCTP packet of its network
// namespace, so both modes check everything they read and ignore the rest.
// Layouts: RFC 9260 section 3 (common header, chunks), 3.3.2 (INIT),
// 3.3.3 (INIT ACK), 3.3.7 (ABORT), appendix A (CRC32c).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

enum { CHUNK_INIT = 1, CHUNK_INIT_ACK = 2, CHUNK_ABORT = 6 };
enum { COMMON_LEN = 12, INIT_LEN = 20, COOKIE_PARAM_LEN = 16, PARAM_STATE_COOKIE = 7 };
enum { ABORT_T_BIT = 0x01 };
enum { ICMP_DEST_UNREACH = 3, ICMP6_DEST_UNREACH = 1, ICMP6_PARAM_PROB = 4, ICMP6_UNKNOWN_NEXT_HEADER = 1 };
enum { EXIT_USAGE = 2, EXIT_SYSTEM = 3 };
// RTO.Initial (RFC 9260 section 16): how often an unanswered INIT is sent again.
enum { INIT_RETRANSMIT_MS = 1000 };

static uint8_t buf[65536];
static uint32_t crc_table[256];

static void crc32c_init(void) {
  // The reflected Castagnoli polynomial.
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    crc_table[n] = c;
  }
}

static uint32_t crc32c(const uint8_t *p, size_t len) {
  uint32_t crc = 0xffffffffu;
  while (len--) crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8, p[1] = v & 0xff; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16), put16(p + 2, v & 0xffff); }

// The checksum covers the whole SCTP packet with its own field zeroed, and is
// stored least significant byte first.
static uint32_t packet_crc(uint8_t *pkt, size_t len) {
  uint8_t stored[4];
  memcpy(stored, pkt + 8, 4);
  memset(pkt + 8, 0, 4);
  uint32_t crc = crc32c(pkt, len);
  memcpy(pkt + 8, stored, 4);
  return crc;
}

static void seal(uint8_t *pkt, size_t len) {
  uint32_t crc = packet_crc(pkt, len);
  for (int i = 0; i < 4; i++) pkt[8 + i] = (crc >> (8 * i)) & 0xff;
}

static int checksum_ok(uint8_t *pkt, size_t len) {
  uint32_t stored = (uint32_t)pkt[8] | (uint32_t)pkt[9] << 8 | (uint32_t)pkt[10] << 16 | (uint32_t)pkt[11] << 24;
  return packet_crc(pkt, len) == stored;
}

static size_t put_common(uint8_t *pkt, uint16_t sport, uint16_t dport, uint32_t vtag) {
  put16(pkt, sport);
  put16(pkt + 2, dport);
  put32(pkt + 4, vtag);
  put32(pkt + 8, 0);
  return COMMON_LEN;
}

static _Noreturn void fail(const char *what) {
  fprintf(stderr, "palisade-sctp: %s: %s\n", what, strerror(errno));
  exit(EXIT_SYSTEM);
}

// Tags must be nonzero (RFC 9260 section 3.3.2); TSNs and ports may reuse this.
static uint32_t random_tag(void) {
  uint32_t v = 0;
  while (v == 0)
    if (getrandom(&v, sizeof(v), 0) != sizeof(v)) fail("getrandom");
  return v;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static _Noreturn void usage(void) {
  fprintf(stderr, "usage: palisade-sctp serve PORT...\n       palisade-sctp probe HOST PORT TIMEOUT_MS\n");
  exit(EXIT_USAGE);
}

static long parse_number(const char *mode, const char *what, const char *text, long min, long max) {
  char *end;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno || end == text || *end || v < min || v > max) {
    fprintf(stderr, "Cannot %s: %s \"%s\" is not a whole number from %ld to %ld\n", mode, what, text, min, max);
    exit(EXIT_USAGE);
  }
  return v;
}

// ---- serve ----

static uint16_t *served;
static int served_count;

static int is_served(uint16_t port) {
  for (int i = 0; i < served_count; i++)
    if (served[i] == port) return 1;
  return 0;
}

// The reply to one SCTP packet, built in `reply`; returns its length, 0 for
// none. Only an INIT gets an answer: the INIT ACKs and ABORTs that this pod's
// own probes receive arrive on the same sockets and are none of our business.
static size_t answer(uint8_t *pkt, size_t len, uint8_t *reply) {
  if (len < COMMON_LEN + INIT_LEN || !checksum_ok(pkt, len)) return 0;
  const uint8_t *init = pkt + COMMON_LEN;
  // An INIT travels alone, in a packet with verification tag 0 (section 8.5.1).
  if (init[0] != CHUNK_INIT || get32(pkt + 4) != 0 || get16(init + 2) < INIT_LEN || get16(init + 2) > len - COMMON_LEN) return 0;
  uint16_t sport = get16(pkt), dport = get16(pkt + 2);
  uint32_t peer_tag = get32(init + 4);
  uint16_t peer_inbound = get16(init + 14);
  if (peer_tag == 0 || peer_inbound == 0) return 0;
  size_t n = put_common(reply, dport, sport, peer_tag);
  uint8_t *chunk = reply + n;
  if (!is_served(dport)) {
    // An INIT nobody listens for: the ABORT carries the INIT's initiate tag,
    // so its T bit is clear (section 8.4, item 3).
    chunk[0] = CHUNK_ABORT, chunk[1] = 0;
    put16(chunk + 2, 4);
    n += 4;
  } else {
    uint32_t tag = random_tag();
    chunk[0] = CHUNK_INIT_ACK, chunk[1] = 0;
    put16(chunk + 2, INIT_LEN + COOKIE_PARAM_LEN);
    put32(chunk + 4, tag);
    put32(chunk + 8, 65536);                                   // a_rwnd
    put16(chunk + 12, peer_inbound < 16 ? peer_inbound : 16);  // outbound streams: no more than the peer takes
    put16(chunk + 14, 16);                                     // inbound streams
    put32(chunk + 16, random_tag());                           // initial TSN
    // The mandatory State Cookie: what a COOKIE ECHO would need to rebuild
    // the association, since nothing is kept here (both tags, both ports).
    uint8_t *cookie = chunk + INIT_LEN;
    put16(cookie, PARAM_STATE_COOKIE);
    put16(cookie + 2, COOKIE_PARAM_LEN);
    put32(cookie + 4, tag);
    put32(cookie + 8, peer_tag);
    put16(cookie + 12, dport);
    put16(cookie + 14, sport);
    n += INIT_LEN + COOKIE_PARAM_LEN;
  }
  seal(reply, n);
  return n;
}

// IPv4: the raw socket reads the IP header too, and the reply leaves from the
// INIT's destination through IP_PKTINFO's ipi_spec_dst.
static void serve_v4(int s) {
  struct sockaddr_in from;
  socklen_t from_len = sizeof(from);
  ssize_t n = recvfrom(s, buf, sizeof(buf), 0, (struct sockaddr *)&from, &from_len);
  // Packets to multicast or broadcast addresses get no answer (RFC 9260 section 8.4, item 1).
  if (n < 20 || (size_t)n < (size_t)(buf[0] & 0x0f) * 4 || buf[16] >= 224) return;
  size_t ihl = (size_t)(buf[0] & 0x0f) * 4;
  uint8_t reply[COMMON_LEN + INIT_LEN + COOKIE_PARAM_LEN];
  size_t len = answer(buf + ihl, (size_t)n - ihl, reply);
  if (len == 0) return;
  union { char c[CMSG_SPACE(sizeof(struct in_pktinfo))]; struct cmsghdr align; } control = {0};
  struct iovec iov = {reply, len};
  struct msghdr msg = {.msg_name = &from, .msg_namelen = from_len, .msg_iov = &iov, .msg_iovlen = 1,
                       .msg_control = control.c, .msg_controllen = sizeof(control.c)};
  struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = IPPROTO_IP, cm->cmsg_type = IP_PKTINFO, cm->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
  struct in_pktinfo info = {0};
  memcpy(&info.ipi_spec_dst, buf + 16, 4);
  memcpy(CMSG_DATA(cm), &info, sizeof(info));
  if (sendmsg(s, &msg, 0) < 0) perror("palisade-sctp: sendmsg (IPv4)");
}

// IPv6: no header to read, so IPV6_RECVPKTINFO tells the INIT's destination
// and interface, and the same pktinfo makes the reply leave from there.
static void serve_v6(int s) {
  struct sockaddr_in6 from;
  union { char c[CMSG_SPACE(sizeof(struct in6_pktinfo))]; struct cmsghdr align; } control;
  struct iovec iov = {buf, sizeof(buf)};
  struct msghdr msg = {.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1,
                       .msg_control = control.c, .msg_controllen = sizeof(control.c)};
  ssize_t n = recvmsg(s, &msg, 0);
  if (n < 0) return;
  struct cmsghdr *info = NULL;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
    if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) info = cm;
  uint8_t reply[COMMON_LEN + INIT_LEN + COOKIE_PARAM_LEN];
  size_t len = info ? answer(buf, (size_t)n, reply) : 0;
  if (len == 0) return;
  struct in6_pktinfo pktinfo;
  memcpy(&pktinfo, CMSG_DATA(info), sizeof(pktinfo));
  if (pktinfo.ipi6_addr.s6_addr[0] == 0xff) return;  // multicast, as for IPv4
  memset(&control, 0, sizeof(control));
  iov = (struct iovec){reply, len};
  msg.msg_controllen = sizeof(control.c);
  struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = IPPROTO_IPV6, cm->cmsg_type = IPV6_PKTINFO, cm->cmsg_len = CMSG_LEN(sizeof(pktinfo));
  memcpy(CMSG_DATA(cm), &pktinfo, sizeof(pktinfo));
  if (sendmsg(s, &msg, 0) < 0) perror("palisade-sctp: sendmsg (IPv6)");
}

static _Noreturn void serve(int argc, char **argv) {
  if (argc < 1) usage();
  served = calloc((size_t)argc, sizeof(*served));
  if (!served) fail("calloc");
  for (int i = 0; i < argc; i++) served[served_count++] = (uint16_t)parse_number("serve", "port", argv[i], 1, 65535);
  // A pod server's helper: it must not outlive the process that started it.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) fail("prctl");
  int s4 = socket(AF_INET, SOCK_RAW, IPPROTO_SCTP);
  if (s4 < 0) fail("socket (IPv4)");
  int s6 = socket(AF_INET6, SOCK_RAW, IPPROTO_SCTP);
  if (s6 < 0) fail("socket (IPv6)");
  int on = 1;
  if (setsockopt(s6, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on)) < 0) fail("setsockopt IPV6_RECVPKTINFO");
  printf("ready\n");
  fflush(stdout);
  struct pollfd fds[2] = {{.fd = s4, .events = POLLIN}, {.fd = s6, .events = POLLIN}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      fail("poll");
    }
    if (fds[0].revents & POLLIN) serve_v4(s4);
    if (fds[1].revents & POLLIN) serve_v6(s6);
  }
}

// ---- probe ----

static _Noreturn void verdict(const char *reason) {
  printf("%s\n", reason);
  fflush(stdout);
  exit(strcmp(reason, "connected") == 0 ? 0 : 1);
}

struct probe {
  int family;
  uint8_t host[16];  // network order, 4 or 16 bytes
  uint16_t sport, dport;
  uint32_t tag;
};

// An SCTP packet from the host: an INIT ACK or an ABORT for our INIT, matched
// by ports and verification tag (an ABORT that answers an INIT carries the
// INIT's initiate tag with its T bit clear).
static void on_sctp(const struct probe *p, uint8_t *pkt, size_t len) {
  if (len < COMMON_LEN + 4 || !checksum_ok(pkt, len)) return;
  if (get16(pkt) != p->dport || get16(pkt + 2) != p->sport || get32(pkt + 4) != p->tag) return;
  const uint8_t *chunk = pkt + COMMON_LEN;
  if (chunk[0] == CHUNK_INIT_ACK && len >= COMMON_LEN + INIT_LEN) verdict("connected");
  if (chunk[0] == CHUNK_ABORT && !(chunk[1] & ABORT_T_BIT)) verdict("refused");
}

// The packet an ICMP error quotes: our INIT to the host (protocol, destination, ports).
static int quotes_our_init(const struct probe *p, const uint8_t *ip, size_t len) {
  if (len < (p->family == AF_INET ? 20 : 40)) return 0;
  size_t header = p->family == AF_INET ? (size_t)(ip[0] & 0x0f) * 4 : 40;
  if (len < header + 4) return 0;
  int protocol = p->family == AF_INET ? ip[9] : ip[6];
  const uint8_t *dst = p->family == AF_INET ? ip + 16 : ip + 24;
  const uint8_t *sctp = ip + header;
  return protocol == IPPROTO_SCTP && memcmp(dst, p->host, p->family == AF_INET ? 4 : 16) == 0 &&
         get16(sctp) == p->sport && get16(sctp + 2) == p->dport;
}

// ICMP destination unreachable (any code: port, protocol, host, prohibited),
// or ICMPv6's, or its "unrecognized next header", which is how an IPv6 host
// without SCTP says what IPv4's "protocol unreachable" says.
static void on_icmp(const struct probe *p, const uint8_t *msg, size_t len) {
  if (p->family == AF_INET) {
    if (len < 20) return;
    size_t ihl = (size_t)(msg[0] & 0x0f) * 4;
    if (len < ihl + 8 || msg[ihl] != ICMP_DEST_UNREACH) return;
    if (quotes_our_init(p, msg + ihl + 8, len - ihl - 8)) verdict("refused");
  } else {
    if (len < 8) return;
    int unreachable = msg[0] == ICMP6_DEST_UNREACH || (msg[0] == ICMP6_PARAM_PROB && msg[1] == ICMP6_UNKNOWN_NEXT_HEADER);
    if (unreachable && quotes_our_init(p, msg + 8, len - 8)) verdict("refused");
  }
}

static _Noreturn void probe(int argc, char **argv) {
  if (argc != 3) usage();
  struct probe p = {0};
  union { struct sockaddr sa; struct sockaddr_in v4; struct sockaddr_in6 v6; } to = {0};
  socklen_t to_len;
  if (inet_pton(AF_INET, argv[0], p.host) == 1) {
    p.family = AF_INET, to_len = sizeof(to.v4);
    to.v4.sin_family = AF_INET;
    memcpy(&to.v4.sin_addr, p.host, 4);
  } else if (inet_pton(AF_INET6, argv[0], p.host) == 1) {
    p.family = AF_INET6, to_len = sizeof(to.v6);
    to.v6.sin6_family = AF_INET6;
    memcpy(&to.v6.sin6_addr, p.host, 16);
  } else {
    fprintf(stderr, "Cannot probe: host \"%s\" is not an IPv4 or IPv6 address\n", argv[0]);
    exit(EXIT_USAGE);
  }
  p.dport = (uint16_t)parse_number("probe", "port", argv[1], 1, 65535);
  long timeout = parse_number("probe", "timeout", argv[2], 1, 3600000);
  // A source port from the dynamic range (RFC 6335), as a real stack would pick.
  p.sport = (uint16_t)(49152 + random_tag() % 16384);
  p.tag = random_tag();

  // Not connected: a connected raw socket also takes ICMP errors for any
  // SCTP packet to the host, whatever its ports, as socket errors.
  int s = socket(p.family, SOCK_RAW, IPPROTO_SCTP);
  if (s < 0) fail("socket");
  int icmp = socket(p.family, SOCK_RAW, p.family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6);
  if (icmp < 0) fail("socket (ICMP)");

  uint8_t init[COMMON_LEN + INIT_LEN];
  put_common(init, p.sport, p.dport, 0);
  uint8_t *chunk = init + COMMON_LEN;
  chunk[0] = CHUNK_INIT, chunk[1] = 0;
  put16(chunk + 2, INIT_LEN);
  put32(chunk + 4, p.tag);
  put32(chunk + 8, 65536);         // a_rwnd
  put16(chunk + 12, 16);           // outbound streams
  put16(chunk + 14, 16);           // inbound streams
  put32(chunk + 16, random_tag()); // initial TSN
  seal(init, sizeof(init));

  long long deadline = now_ms() + timeout, next_send = now_ms();
  struct pollfd fds[2] = {{.fd = s, .events = POLLIN}, {.fd = icmp, .events = POLLIN}};
  for (long long now = now_ms(); now < deadline; now = now_ms()) {
    if (now >= next_send) {
      if (sendto(s, init, sizeof(init), 0, &to.sa, to_len) < 0) {
        // No route: what a TCP connect reports as EHOSTUNREACH or ENETUNREACH.
        if (errno == EHOSTUNREACH || errno == ENETUNREACH) verdict("refused");
        fail("sendto");
      }
      next_send = now + INIT_RETRANSMIT_MS;
    }
    long long wake = next_send < deadline ? next_send : deadline;
    if (poll(fds, 2, (int)(wake - now)) < 0) {
      if (errno == EINTR) continue;
      fail("poll");
    }
    if (fds[0].revents & POLLIN) {
      union { struct sockaddr_in v4; struct sockaddr_in6 v6; } from;
      socklen_t from_len = sizeof(from);
      ssize_t n = recvfrom(s, buf, sizeof(buf), 0, (struct sockaddr *)&from, &from_len);
      const void *src = p.family == AF_INET ? (const void *)&from.v4.sin_addr : (const void *)&from.v6.sin6_addr;
      // IPv4 raw sockets read the IP header too.
      size_t skip = p.family == AF_INET && n >= 20 ? (size_t)(buf[0] & 0x0f) * 4 : 0;
      if (n > 0 && (size_t)n > skip && memcmp(src, p.host, p.family == AF_INET ? 4 : 16) == 0)
        on_sctp(&p, buf + skip, (size_t)n - skip);
    }
    if (fds[1].revents & POLLIN) {
      ssize_t n = recv(icmp, buf, sizeof(buf), 0);
      if (n > 0) on_icmp(&p, buf, (size_t)n);
    }
  }
  verdict("timeout");
}

int main(int argc, char **argv) {
  crc32c_init();
  if (argc >= 2 && strcmp(argv[1], "serve") == 0) serve(argc - 2, argv + 2);
  if (argc >= 2 && strcmp(argv[1], "probe") == 0) probe(argc - 2, argv + 2);
  usage();
}
