// Routes libbpf's log: collected per call while a LibbpfLog is alive (so a
// failure can carry it, such as the verifier's reasons or the kernel's
// netlink message), otherwise printed to stderr as libbpf itself would.
#include "common.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <mutex>

namespace palisade {
namespace {

constexpr size_t kLogLines = 40;

// The collector of the innermost live LibbpfLog on this thread, if any.
thread_local std::string* collector = nullptr;

int PrintLibbpf(enum libbpf_print_level level, const char* format, va_list args) {
  // Debug output is a per-section trace of the loader; libbpf's default
  // printer drops it too.
  if (level == LIBBPF_DEBUG) return 0;
  if (collector == nullptr) return vfprintf(stderr, format, args);
  va_list again;
  va_copy(again, args);
  char small[512];
  int length = vsnprintf(small, sizeof small, format, args);
  if (length >= 0 && static_cast<size_t>(length) < sizeof small) {
    collector->append(small, length);
  } else if (length >= 0) {
    std::string large(static_cast<size_t>(length) + 1, '\0');
    vsnprintf(large.data(), large.size(), format, again);
    large.resize(length);
    collector->append(large);
  }
  va_end(again);
  return length;
}

}  // namespace

LibbpfLog::LibbpfLog() : previous_(collector) {
  static std::once_flag installed;
  std::call_once(installed, [] { libbpf_set_print(PrintLibbpf); });
  collector = &text_;
}

LibbpfLog::~LibbpfLog() { collector = previous_; }

std::string LibbpfLog::Tail() const {
  size_t end = text_.find_last_not_of('\n');
  if (end == std::string::npos) return "";
  std::string text = text_.substr(0, end + 1);
  size_t start = text.size();
  for (size_t lines = 0; lines < kLogLines; lines++) {
    size_t newline = start == 0 ? std::string::npos : text.rfind('\n', start - 1);
    if (newline == std::string::npos) return text;
    start = newline;
  }
  return text.substr(start + 1);
}

Napi::Error ErrnoError(Napi::Env env, const std::string& operation, int err, const std::string& detail,
                       const LibbpfLog& log) {
  std::string tail = log.Tail();
  if (tail.empty()) return ErrnoError(env, operation, err, detail);
  Napi::Error error = ErrnoError(env, operation, err, detail + "\nlibbpf log:\n" + tail);
  error.Value().Set("log", tail);
  return error;
}

}  // namespace palisade
