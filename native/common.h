// Shared declarations of the addon: errno-carrying errors, argument readers,
// and one Init function per area. The addon is a thin layer over libbpf: it
// checks sizes so the kernel never reads or writes past a JS buffer, and
// leaves every decision about what to load or write to the TypeScript side.
#pragma once

#include <napi.h>

#include <unistd.h>

#include <cstdint>
#include <string>

namespace palisade {

// The kernel-internal ENOTSUPP that bpf(2) leaks to userspace (not EOPNOTSUPP).
constexpr int kENOTSUPP = 524;

// Per-instance state of the addon (one per Node environment).
struct AddonData {
  Napi::FunctionReference bpfObject;
};

// The errno's name, e.g. "ECONNRESET" ("ENOTSUPP" for kENOTSUPP).
std::string ErrnoName(int err);

// A JS Error for a failed call: message "<operation> failed: <CODE> (<text>)"
// plus ": <detail>" when given, with .code, .errno (positive) and .operation.
Napi::Error ErrnoError(Napi::Env env, const std::string& operation, int err,
                       const std::string& detail = "");

// Collects libbpf's log on this thread while alive, instead of printing it,
// so that an error can carry it (see the ErrnoError overload below).
class LibbpfLog {
 public:
  LibbpfLog();
  ~LibbpfLog();
  LibbpfLog(const LibbpfLog&) = delete;
  LibbpfLog& operator=(const LibbpfLog&) = delete;
  // The last 40 lines: the verifier's verdict sits at the end of its log.
  std::string Tail() const;

 private:
  std::string text_;
  std::string* previous_;
};

// As above, with the tail of libbpf's log appended to the message after a
// newline and set as .log, when there is any.
Napi::Error ErrnoError(Napi::Env env, const std::string& operation, int err, const std::string& detail,
                       const LibbpfLog& log);

// Closes fd on every way out unless released.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int Get() const { return fd_; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

// Argument readers: each throws a TypeError (code ERR_INVALID_ARG_TYPE) that
// names the argument when the value has the wrong type or range.
int FdArg(const Napi::CallbackInfo& info, size_t index, const char* name);
uint32_t Uint32Arg(const Napi::CallbackInfo& info, size_t index, const char* name);
Napi::Buffer<uint8_t> BufferArg(const Napi::CallbackInfo& info, size_t index, const char* name);
std::string StringArg(const Napi::CallbackInfo& info, size_t index, const char* name);
// Reads an optional uint32 property of an options object; absent or undefined -> fallback.
uint32_t Uint32Option(Napi::Env env, const Napi::Object& options, const char* name, uint32_t fallback);
// The options object at `index`, or an empty object when it is absent or undefined.
Napi::Object OptionsArg(const Napi::CallbackInfo& info, size_t index, const char* name);
// Throws a TypeError with code ERR_INVALID_ARG_TYPE.
[[noreturn]] void ThrowArgError(Napi::Env env, const std::string& message);

void InitObject(Napi::Env env, Napi::Object exports);
void InitMap(Napi::Env env, Napi::Object exports);
void InitAttach(Napi::Env env, Napi::Object exports);
void InitTestRun(Napi::Env env, Napi::Object exports);
void InitRingBuffer(Napi::Env env, Napi::Object exports);
void InitTransparent(Napi::Env env, Napi::Object exports);
void InitSocketSplice(Napi::Env env, Napi::Object exports);
void InitNetlink(Napi::Env env, Napi::Object exports);

}  // namespace palisade
