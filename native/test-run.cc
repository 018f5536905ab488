// Running a tc program on a packet through the kernel's BPF_PROG_TEST_RUN.
#include "common.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <vector>

namespace palisade {
namespace {

// Room for programs that grow the packet (encapsulation, options).
constexpr uint32_t kDefaultGrowth = 512;

Napi::Value TestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int prog_fd = FdArg(info, 0, "progFd");
  Napi::Buffer<uint8_t> data = BufferArg(info, 1, "data");
  Napi::Object options = OptionsArg(info, 2, "options");
  uint32_t repeat = Uint32Option(env, options, "repeat", 1);
  uint32_t ifindex = Uint32Option(env, options, "ifindex", 0);
  uint32_t size_out = Uint32Option(env, options, "dataSizeOut", static_cast<uint32_t>(data.Length()) + kDefaultGrowth);

  std::vector<uint8_t> out(size_out);
  // Zeroed but for ifindex: the kernel refuses a context with fields it does
  // not let callers set (len among them), and binds the skb to ifindex.
  __sk_buff context{};
  context.ifindex = ifindex;
  bpf_test_run_opts run{};
  run.sz = sizeof run;
  run.data_in = data.Data();
  run.data_size_in = static_cast<uint32_t>(data.Length());
  run.data_out = out.data();
  run.data_size_out = size_out;
  run.ctx_in = &context;
  run.ctx_size_in = sizeof context;
  run.repeat = static_cast<int>(std::min<uint32_t>(repeat, INT32_MAX));
  int err = bpf_prog_test_run_opts(prog_fd, &run);
  if (err != 0) throw ErrnoError(env, "bpf_prog_test_run_opts", err, "program fd " + std::to_string(prog_fd));

  Napi::Object result = Napi::Object::New(env);
  // tc verdicts are C ints (TCX_NEXT is -1).
  result.Set("retval", static_cast<int32_t>(run.retval));
  result.Set("durationNs", run.duration);
  result.Set("dataOut", Napi::Buffer<uint8_t>::Copy(env, out.data(), std::min<size_t>(run.data_size_out, out.size())));
  return result;
}

}  // namespace

void InitTestRun(Napi::Env env, Napi::Object exports) {
  exports.Set("testRun", Napi::Function::New<TestRun>(env, "testRun"));
}

}  // namespace palisade
