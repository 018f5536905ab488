// Entry point of the palisade_native addon: registers each area's exports,
// plus the fd-level helpers (pinning, closing, CPU count), the process's
// malloc trim and the calling thread's CPU clock.
#include "common.h"

#include <bpf/bpf.h>
#include <malloc.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

namespace palisade {
namespace {

Napi::Value ObjPin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  std::string path = StringArg(info, 1, "path");
  int err = bpf_obj_pin(fd, path.c_str());
  if (err != 0) throw ErrnoError(env, "bpf_obj_pin", err, "fd " + std::to_string(fd) + " at \"" + path + "\"");
  return env.Undefined();
}

Napi::Value ObjGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = StringArg(info, 0, "path");
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) throw ErrnoError(env, "bpf_obj_get", fd, "\"" + path + "\"");
  return Napi::Number::New(env, fd);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  if (close(fd) != 0) throw ErrnoError(env, "close", errno, "fd " + std::to_string(fd));
  return env.Undefined();
}

// glibc keeps what is freed for later mallocs and returns to the system only
// the free top of its main heap on its own; malloc_trim also hands back the
// free pages inside every arena. Returns whether any memory was returned.
Napi::Value ReleaseFreeMemory(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), malloc_trim(0) == 1);
}

// The calling thread's CPU time in nanoseconds. CLOCK_THREAD_CPUTIME_ID adds
// the running slice's time; getrusage(RUSAGE_THREAD), which Node's
// process.threadCpuUsage reads, and /proc's schedstat lag by up to a
// scheduler tick (4 ms here), more than a short step of the agent takes.
Napi::Value ThreadCpuTime(const Napi::CallbackInfo& info) {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return Napi::Number::New(info.Env(), static_cast<double>(now.tv_sec) * 1e9 + static_cast<double>(now.tv_nsec));
}

}  // namespace
}  // namespace palisade

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace palisade;
  env.SetInstanceData(new AddonData());
  InitObject(env, exports);
  InitMap(env, exports);
  InitAttach(env, exports);
  InitTestRun(env, exports);
  InitRingBuffer(env, exports);
  InitTransparent(env, exports);
  InitSocketSplice(env, exports);
  InitNetlink(env, exports);
  exports.Set("objPin", Napi::Function::New<ObjPin>(env, "objPin"));
  exports.Set("objGet", Napi::Function::New<ObjGet>(env, "objGet"));
  exports.Set("closeFd", Napi::Function::New<CloseFd>(env, "closeFd"));
  exports.Set("releaseFreeMemory", Napi::Function::New<ReleaseFreeMemory>(env, "releaseFreeMemory"));
  exports.Set("threadCpuTime", Napi::Function::New<ThreadCpuTime>(env, "threadCpuTime"));
  return exports;
}

}  // namespace

NODE_API_MODULE(palisade_native, Init)
