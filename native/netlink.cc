// Route and link questions to the kernel over rtnetlink: what `ip route get`
// and `ip -d link show` ask, without forking a process per question (a fork
// of the agent copies a page table of hundreds of MB). One request, one
// answer, on a socket opened for the call; the kernel answers a
// non-dump request before sendto() returns.
#include "common.h"

#include <arpa/inet.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>

namespace palisade {
namespace {

constexpr size_t kAnswerSize = 16384;

// A request: the header, the family's message and room for one attribute.
template <typename Body>
struct Request {
  nlmsghdr header;
  Body body;
  char attributes[64];
};

// Sends `request` and returns the answer's message (of `type`) in `answer`,
// or throws naming `operation` and `what`.
template <typename Body>
const nlmsghdr* Ask(Napi::Env env, Request<Body>& request, uint16_t type, char (&answer)[kAnswerSize], const char* operation,
                    const std::string& what) {
  FdGuard fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (fd.Get() < 0) throw ErrnoError(env, "socket(AF_NETLINK)", errno, what);
  // The answer is queued before sendto returns; the timeout only bounds a kernel that does otherwise.
  timeval timeout{5, 0};
  setsockopt(fd.Get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  request.header.nlmsg_flags = NLM_F_REQUEST;
  request.header.nlmsg_seq = 1;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd.Get(), &request, request.header.nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) {
    throw ErrnoError(env, operation, errno, what);
  }
  ssize_t length = recv(fd.Get(), answer, kAnswerSize, 0);
  if (length < 0) throw ErrnoError(env, operation, errno, what);
  for (auto* message = reinterpret_cast<const nlmsghdr*>(answer); NLMSG_OK(message, static_cast<uint32_t>(length));
       message = NLMSG_NEXT(message, length)) {
    if (message->nlmsg_seq != request.header.nlmsg_seq) continue;
    if (message->nlmsg_type == NLMSG_ERROR) {
      const auto* error = static_cast<const nlmsgerr*>(NLMSG_DATA(message));
      if (error->error == 0) continue;  // an acknowledgement, not asked for
      throw ErrnoError(env, operation, error->error, what);
    }
    if (message->nlmsg_type == type) return message;
  }
  throw ErrnoError(env, operation, EBADMSG, what + ": no answer in the kernel's reply");
}

void AddAttribute(nlmsghdr& header, uint16_t type, const void* data, size_t size) {
  auto* attribute = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(&header) + NLMSG_ALIGN(header.nlmsg_len));
  attribute->rta_type = type;
  attribute->rta_len = RTA_LENGTH(size);
  memcpy(RTA_DATA(attribute), data, size);
  header.nlmsg_len = NLMSG_ALIGN(header.nlmsg_len) + RTA_ALIGN(attribute->rta_len);
}

// A string attribute, up to its NUL or its end, whichever comes first.
std::string AttributeString(const rtattr* attribute) {
  const auto* data = static_cast<const char*>(RTA_DATA(attribute));
  return std::string(data, strnlen(data, RTA_PAYLOAD(attribute)));
}

// { type, ifindex, gateway }: the kernel's route for a packet this host sends to
// `address` (RTM_GETROUTE without a table match, as `ip route get` asks).
Napi::Value RouteGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string address = StringArg(info, 0, "address");
  unsigned char bytes[16];
  Request<rtmsg> request{};
  if (inet_pton(AF_INET, address.c_str(), bytes) == 1) {
    request.body.rtm_family = AF_INET;
    request.body.rtm_dst_len = 32;
  } else if (inet_pton(AF_INET6, address.c_str(), bytes) == 1) {
    request.body.rtm_family = AF_INET6;
    request.body.rtm_dst_len = 128;
  } else {
    ThrowArgError(env, "The \"address\" argument must be an IPv4 or IPv6 address: got \"" + address + "\"");
  }
  request.header.nlmsg_len = NLMSG_LENGTH(sizeof(rtmsg));
  request.header.nlmsg_type = RTM_GETROUTE;
  AddAttribute(request.header, RTA_DST, bytes, request.body.rtm_dst_len / 8);
  char answer[kAnswerSize];
  const nlmsghdr* message = Ask(env, request, RTM_NEWROUTE, answer, "RTM_GETROUTE", "route to " + address);
  const auto* route = static_cast<const rtmsg*>(NLMSG_DATA(message));
  uint32_t ifindex = 0;
  bool gateway = false;
  int length = static_cast<int>(RTM_PAYLOAD(message));
  for (const rtattr* attribute = RTM_RTA(route); RTA_OK(attribute, length); attribute = RTA_NEXT(attribute, length)) {
    if (attribute->rta_type == RTA_OIF && RTA_PAYLOAD(attribute) >= sizeof(uint32_t)) memcpy(&ifindex, RTA_DATA(attribute), sizeof ifindex);
    if (attribute->rta_type == RTA_GATEWAY || attribute->rta_type == RTA_VIA) gateway = true;
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("type", Napi::Number::New(env, route->rtm_type));
  result.Set("ifindex", Napi::Number::New(env, ifindex));
  result.Set("gateway", Napi::Boolean::New(env, gateway));
  return result;
}

// { name, kind }: interface `ifindex`'s name and its link kind ("veth",
// "bridge", ...; "" for a device without one, such as a physical NIC).
Napi::Value LinkGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t ifindex = Uint32Arg(info, 0, "ifindex");
  Request<ifinfomsg> request{};
  request.header.nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
  request.header.nlmsg_type = RTM_GETLINK;
  request.body.ifi_family = AF_UNSPEC;
  request.body.ifi_index = static_cast<int>(ifindex);
  char answer[kAnswerSize];
  const nlmsghdr* message = Ask(env, request, RTM_NEWLINK, answer, "RTM_GETLINK", "ifindex " + std::to_string(ifindex));
  const auto* link = static_cast<const ifinfomsg*>(NLMSG_DATA(message));
  std::string name;
  std::string kind;
  int length = static_cast<int>(IFLA_PAYLOAD(message));
  for (const rtattr* attribute = IFLA_RTA(link); RTA_OK(attribute, length); attribute = RTA_NEXT(attribute, length)) {
    if (attribute->rta_type == IFLA_IFNAME) name = AttributeString(attribute);
    if (attribute->rta_type != IFLA_LINKINFO) continue;
    int nested = static_cast<int>(RTA_PAYLOAD(attribute));
    for (const auto* inner = static_cast<const rtattr*>(RTA_DATA(attribute)); RTA_OK(inner, nested); inner = RTA_NEXT(inner, nested)) {
      if (inner->rta_type == IFLA_INFO_KIND) kind = AttributeString(inner);
    }
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("name", Napi::String::New(env, name));
  result.Set("kind", Napi::String::New(env, kind));
  return result;
}

}  // namespace

void InitNetlink(Napi::Env env, Napi::Object exports) {
  exports.Set("routeGet", Napi::Function::New<RouteGet>(env, "routeGet"));
  exports.Set("linkGet", Napi::Function::New<LinkGet>(env, "linkGet"));
}

}  // namespace palisade
