// Sockets of the transparent proxy: a listener that accepts connections to
// any address (IP_TRANSPARENT: the datapath hands it connections for pod
// addresses), and an unconnected socket bound to a foreign address and port
// (the client's), from which the proxy opens its upstream connection so
// that the server sees the client. Both carry SO_MARK, which tells the
// datapath a packet comes from the proxy. Node takes the fds over.
#include "common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace palisade {
namespace {

// Linux's value, absent from older libc headers.
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

int FamilyArg(const Napi::CallbackInfo& info, size_t index) {
  uint32_t family = Uint32Arg(info, index, "family");
  if (family != 4 && family != 6) ThrowArgError(info.Env(), "The \"family\" argument must be 4 or 6: got " + std::to_string(family));
  return family == 4 ? AF_INET : AF_INET6;
}

uint16_t PortArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  uint32_t port = Uint32Arg(info, index, name);
  if (port > 65535) ThrowArgError(info.Env(), std::string("The \"") + name + "\" argument must be a port from 0 to 65535: got " + std::to_string(port));
  return static_cast<uint16_t>(port);
}

void SetInt(Napi::Env env, int fd, int level, int name, int value, const char* option) {
  if (setsockopt(fd, level, name, &value, sizeof value) != 0) throw ErrnoError(env, std::string("setsockopt ") + option, errno);
}

// A non-blocking TCP socket of `domain` with SO_REUSEADDR, IP(V6)_TRANSPARENT and SO_MARK.
int TransparentTcpSocket(Napi::Env env, int domain, uint32_t mark) {
  int fd = socket(domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ErrnoError(env, "socket", errno);
  FdGuard guard(fd);
  SetInt(env, fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
  if (domain == AF_INET) {
    SetInt(env, fd, SOL_IP, IP_TRANSPARENT, 1, "IP_TRANSPARENT");
  } else {
    SetInt(env, fd, SOL_IPV6, IPV6_TRANSPARENT, 1, "IPV6_TRANSPARENT");
  }
  SetInt(env, fd, SOL_SOCKET, SO_MARK, static_cast<int>(mark), "SO_MARK");
  return guard.Release();
}

void Bind(Napi::Env env, int fd, int domain, const std::string& address, uint16_t port) {
  sockaddr_storage storage{};
  socklen_t length;
  if (domain == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    if (inet_pton(AF_INET, address.c_str(), &sin->sin_addr) != 1) throw ErrnoError(env, "inet_pton", EINVAL, "\"" + address + "\" is not an IPv4 address");
    length = sizeof *sin;
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&storage);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    if (inet_pton(AF_INET6, address.c_str(), &sin6->sin6_addr) != 1) throw ErrnoError(env, "inet_pton", EINVAL, "\"" + address + "\" is not an IPv6 address");
    length = sizeof *sin6;
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0) {
    throw ErrnoError(env, "bind", errno, (domain == AF_INET6 ? "[" + address + "]" : address) + ":" + std::to_string(port));
  }
}

// transparentListen(family, port, mark): a listening socket on the
// family's wildcard address (IPv6: v6 only, IPv4 has its own listener).
Napi::Value TransparentListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int domain = FamilyArg(info, 0);
  uint16_t port = PortArg(info, 1, "port");
  uint32_t mark = Uint32Arg(info, 2, "mark");
  FdGuard owned(TransparentTcpSocket(env, domain, mark));
  int fd = owned.Get();
  if (domain == AF_INET6) SetInt(env, fd, SOL_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY");
  Bind(env, fd, domain, domain == AF_INET ? "0.0.0.0" : "::", port);
  if (listen(fd, SOMAXCONN) != 0) throw ErrnoError(env, "listen", errno, "port " + std::to_string(port));
  return Napi::Number::New(env, owned.Release());
}

// transparentSocket(family, localAddress, localPort, mark): bound, not connected.
Napi::Value TransparentSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int domain = FamilyArg(info, 0);
  std::string address = StringArg(info, 1, "localAddress");
  uint16_t port = PortArg(info, 2, "localPort");
  uint32_t mark = Uint32Arg(info, 3, "mark");
  FdGuard guard(TransparentTcpSocket(env, domain, mark));
  int fd = guard.Get();
  // The port is the client's own, chosen now, not at connect.
  SetInt(env, fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, 0, "IP_BIND_ADDRESS_NO_PORT");
  if (domain == AF_INET6) SetInt(env, fd, SOL_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY");
  Bind(env, fd, domain, address, port);
  return Napi::Number::New(env, guard.Release());
}

}  // namespace

void InitTransparent(Napi::Env env, Napi::Object exports) {
  exports.Set("transparentListen", Napi::Function::New<TransparentListen>(env, "transparentListen"));
  exports.Set("transparentSocket", Napi::Function::New<TransparentSocket>(env, "transparentSocket"));
}

}  // namespace palisade
