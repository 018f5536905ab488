// Attaching tc programs: tcx links (kernel 6.6+), the clsact/cls_bpf
// fallback for older kernels, link info, and interface name lookup; and
// sk_lookup programs on the current network namespace.
#include "common.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>

namespace palisade {
namespace {

// Debian 12's uapi headers predate tcx; these are the kernel's values.
constexpr int kBpfTcxIngress = 46;
constexpr int kBpfTcxEgress = 47;

bool IsIngress(const Napi::CallbackInfo& info, size_t index) {
  Napi::Value value = info[index];
  if (value.IsString()) {
    std::string direction = value.As<Napi::String>().Utf8Value();
    if (direction == "ingress") return true;
    if (direction == "egress") return false;
  }
  ThrowArgError(info.Env(), "The \"direction\" argument must be \"ingress\" or \"egress\"");
}

std::string Where(int ifindex, bool ingress) {
  return std::string(ingress ? "ingress" : "egress") + " of ifindex " + std::to_string(ifindex);
}

Napi::Value AttachTcx(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int prog_fd = FdArg(info, 0, "progFd");
  int ifindex = static_cast<int>(Uint32Arg(info, 1, "ifindex"));
  bool ingress = IsIngress(info, 2);
  auto type = static_cast<bpf_attach_type>(ingress ? kBpfTcxIngress : kBpfTcxEgress);
  int link_fd = bpf_link_create(prog_fd, ifindex, type, nullptr);
  if (link_fd < 0) throw ErrnoError(env, "bpf_link_create", link_fd, "tcx " + Where(ifindex, ingress));
  return Napi::Number::New(env, link_fd);
}

// attachSkLookup(progFd): a link of the sk_lookup program to the calling
// thread's network namespace, as a link fd.
Napi::Value AttachSkLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int prog_fd = FdArg(info, 0, "progFd");
  int netns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (netns_fd < 0) throw ErrnoError(env, "open", errno, "/proc/self/ns/net");
  FdGuard netns(netns_fd);
  int link_fd = bpf_link_create(prog_fd, netns_fd, BPF_SK_LOOKUP, nullptr);
  if (link_fd < 0) throw ErrnoError(env, "bpf_link_create", link_fd, "sk_lookup on the current network namespace");
  return Napi::Number::New(env, link_fd);
}

Napi::Value LinkDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int link_fd = FdArg(info, 0, "linkFd");
  int err = bpf_link_detach(link_fd);
  if (err != 0) throw ErrnoError(env, "bpf_link_detach", err, "link fd " + std::to_string(link_fd));
  return env.Undefined();
}

// linkUpdate(linkFd, progFd): the link runs progFd from now on, in one
// atomic swap: no packet meets the hook without a program.
Napi::Value LinkUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int link_fd = FdArg(info, 0, "linkFd");
  int prog_fd = FdArg(info, 1, "progFd");
  int err = bpf_link_update(link_fd, prog_fd, nullptr);
  if (err != 0) throw ErrnoError(env, "bpf_link_update", err, "link fd " + std::to_string(link_fd));
  return env.Undefined();
}

Napi::Value LinkInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int link_fd = FdArg(info, 0, "linkFd");
  bpf_link_info link{};
  uint32_t length = sizeof link;
  int err = bpf_obj_get_info_by_fd(link_fd, &link, &length);
  // As for maps: report a closed fd as EBADF, like every other bpf(2) command.
  if (err == -EBADFD) err = -EBADF;
  if (err != 0) throw ErrnoError(env, "bpf_obj_get_info_by_fd", err, "link fd " + std::to_string(link_fd));
  Napi::Object result = Napi::Object::New(env);
  result.Set("id", link.id);
  result.Set("progId", link.prog_id);
  result.Set("type", link.type);
  return result;
}

bpf_tc_hook TcHook(int ifindex, bool ingress) {
  bpf_tc_hook hook{};
  hook.sz = sizeof hook;
  hook.ifindex = ifindex;
  hook.attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS;
  return hook;
}

bpf_tc_opts TcOptions(Napi::Env env, const Napi::Object& options) {
  bpf_tc_opts tc{};
  tc.sz = sizeof tc;
  tc.handle = Uint32Option(env, options, "handle", 0);
  tc.priority = Uint32Option(env, options, "priority", 0);
  return tc;
}

std::string Filter(const bpf_tc_opts& tc, int ifindex, bool ingress) {
  return "tc filter handle " + std::to_string(tc.handle) + " priority " + std::to_string(tc.priority) + " on " +
         Where(ifindex, ingress);
}

Napi::Value AttachTc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int prog_fd = FdArg(info, 0, "progFd");
  int ifindex = static_cast<int>(Uint32Arg(info, 1, "ifindex"));
  bool ingress = IsIngress(info, 2);
  bpf_tc_opts tc = TcOptions(env, OptionsArg(info, 3, "options"));
  bpf_tc_hook hook = TcHook(ifindex, ingress);
  int err;
  {
    // Holds the kernel's message for an existing qdisc, which is no error.
    LibbpfLog log;
    err = bpf_tc_hook_create(&hook);
    // An existing clsact qdisc is the one we want: other filters may share it.
    if (err != 0 && err != -EEXIST) {
      throw ErrnoError(env, "bpf_tc_hook_create", err, "clsact on " + Where(ifindex, ingress), log);
    }
  }
  tc.prog_fd = prog_fd;
  tc.flags = BPF_TC_F_REPLACE;
  LibbpfLog log;
  err = bpf_tc_attach(&hook, &tc);
  if (err != 0) throw ErrnoError(env, "bpf_tc_attach", err, Filter(tc, ifindex, ingress), log);
  Napi::Object result = Napi::Object::New(env);
  result.Set("handle", tc.handle);
  result.Set("priority", tc.priority);
  result.Set("progId", tc.prog_id);
  return result;
}

Napi::Value DetachTc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = static_cast<int>(Uint32Arg(info, 0, "ifindex"));
  bool ingress = IsIngress(info, 1);
  bpf_tc_opts tc = TcOptions(env, OptionsArg(info, 2, "options"));
  bpf_tc_hook hook = TcHook(ifindex, ingress);
  LibbpfLog log;
  int err = bpf_tc_detach(&hook, &tc);
  if (err == -ENOENT) return Napi::Boolean::New(env, false);
  if (err != 0) throw ErrnoError(env, "bpf_tc_detach", err, Filter(tc, ifindex, ingress), log);
  return Napi::Boolean::New(env, true);
}

Napi::Value IfNameToIndex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = StringArg(info, 0, "name");
  unsigned int ifindex = if_nametoindex(name.c_str());
  if (ifindex == 0) throw ErrnoError(env, "if_nametoindex", errno, "interface \"" + name + "\"");
  return Napi::Number::New(env, ifindex);
}

}  // namespace

void InitAttach(Napi::Env env, Napi::Object exports) {
  exports.Set("attachTcx", Napi::Function::New<AttachTcx>(env, "attachTcx"));
  exports.Set("attachSkLookup", Napi::Function::New<AttachSkLookup>(env, "attachSkLookup"));
  exports.Set("linkDetach", Napi::Function::New<LinkDetach>(env, "linkDetach"));
  exports.Set("linkUpdate", Napi::Function::New<LinkUpdate>(env, "linkUpdate"));
  exports.Set("linkInfo", Napi::Function::New<LinkInfo>(env, "linkInfo"));
  exports.Set("attachTc", Napi::Function::New<AttachTc>(env, "attachTc"));
  exports.Set("detachTc", Napi::Function::New<DetachTc>(env, "detachTc"));
  exports.Set("ifNameToIndex", Napi::Function::New<IfNameToIndex>(env, "ifNameToIndex"));
}

}  // namespace palisade
