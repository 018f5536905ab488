// RingBufferReader: delivers BPF ring buffer records to a JS callback on
// Node's event loop. libbpf's epoll fd is watched with a uv_poll_t, so there
// is no thread and no busy loop: records are consumed when the fd is readable.
#include "common.h"

#include <bpf/libbpf.h>
#include <uv.h>

#include <cerrno>

namespace palisade {
namespace {

class RingBufferReader;

// Outlives the reader until libuv has closed the poll handle, which happens
// on a later loop turn than close() or the reader's finalizer.
struct PollState {
  uv_poll_t handle;
  ring_buffer* ring = nullptr;
  RingBufferReader* owner = nullptr;
  napi_env env = nullptr;
  Napi::Error pending;  // thrown by the callback, rethrown after consuming
};

void FreePollState(uv_handle_t* handle) {
  auto* state = static_cast<PollState*>(handle->data);
  ring_buffer__free(state->ring);
  delete state;
}

class RingBufferReader : public Napi::ObjectWrap<RingBufferReader> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "RingBufferReader",
                       {
                           InstanceMethod<&RingBufferReader::Close>("close"),
                           InstanceMethod<&RingBufferReader::UnrefHandle>("unref"),
                           InstanceMethod<&RingBufferReader::RefHandle>("ref"),
                       });
  }

  explicit RingBufferReader(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingBufferReader>(info) {
    Napi::Env env = info.Env();
    int map_fd = FdArg(info, 0, "mapFd");
    if (!info[1].IsFunction()) ThrowArgError(env, "The \"onRecord\" argument must be a function");

    auto* state = new PollState();
    state->env = env;
    {
      LibbpfLog log;
      state->ring = ring_buffer__new(map_fd, &RingBufferReader::OnSample, state, nullptr);
      if (state->ring == nullptr) {
        int err = errno;
        delete state;
        throw ErrnoError(env, "ring_buffer__new", err, "map fd " + std::to_string(map_fd), log);
      }
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
      ring_buffer__free(state->ring);
      delete state;
      throw Napi::Error::New(env, "napi_get_uv_event_loop failed");
    }
    int err = uv_poll_init(loop, &state->handle, ring_buffer__epoll_fd(state->ring));
    if (err != 0) {
      ring_buffer__free(state->ring);
      delete state;
      throw ErrnoError(env, "uv_poll_init", err, "ring buffer of map fd " + std::to_string(map_fd));
    }
    state->handle.data = state;
    err = uv_poll_start(&state->handle, UV_READABLE, &RingBufferReader::OnReadable);
    if (err != 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(&state->handle), FreePollState);
      throw ErrnoError(env, "uv_poll_start", err, "ring buffer of map fd " + std::to_string(map_fd));
    }
    state->owner = this;
    state_ = state;
    on_record_ = Napi::Persistent(info[1].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, "PalisadeRingBufferReader", info.This().As<Napi::Object>());
    // Like a socket: an open reader stays reachable until close(), so a
    // reader nobody holds keeps delivering instead of vanishing at GC.
    Ref();
  }

  ~RingBufferReader() override { Stop(); }

 private:
  static void OnReadable(uv_poll_t* handle, int status, int /*events*/) {
    auto* state = static_cast<PollState*>(handle->data);
    if (state->owner == nullptr) return;
    Napi::Env env(state->env);
    Napi::HandleScope scope(env);
    if (status < 0) {
      Napi::Error error = ErrnoError(env, "uv_poll", status, "ring buffer");
      napi_fatal_exception(env, error.Value());
      return;
    }
    ring_buffer__consume(state->ring);
    if (!state->pending.IsEmpty()) {
      Napi::Error error = std::move(state->pending);
      state->pending = Napi::Error();
      napi_fatal_exception(env, error.Value());
    }
  }

  // Called by ring_buffer__consume once per record; a negative return stops
  // the consume, leaving later records for the next readable event.
  static int OnSample(void* context, void* data, size_t size) {
    auto* state = static_cast<PollState*>(context);
    if (state->owner == nullptr) return -ECANCELED;
    return state->owner->Deliver(state, static_cast<const uint8_t*>(data), size);
  }

  int Deliver(PollState* state, const uint8_t* data, size_t size) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Buffer<uint8_t> record = Napi::Buffer<uint8_t>::Copy(env, data, size);
    try {
      on_record_.MakeCallback(Value(), {record}, *context_);
    } catch (const Napi::Error& error) {
      state->pending = error;
      return -ECANCELED;
    }
    return 0;
  }

  // Stops polling; the state is freed once libuv has closed the handle.
  void Stop() {
    if (state_ == nullptr) return;
    state_->owner = nullptr;
    uv_poll_stop(&state_->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&state_->handle), FreePollState);
    state_ = nullptr;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (state_ != nullptr) {
      Stop();
      Unref();
    }
    return info.Env().Undefined();
  }

  Napi::Value UnrefHandle(const Napi::CallbackInfo& info) {
    if (state_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(&state_->handle));
    return info.Env().Undefined();
  }

  Napi::Value RefHandle(const Napi::CallbackInfo& info) {
    if (state_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(&state_->handle));
    return info.Env().Undefined();
  }

  PollState* state_ = nullptr;
  Napi::FunctionReference on_record_;
  std::unique_ptr<Napi::AsyncContext> context_;
};

}  // namespace

void InitRingBuffer(Napi::Env env, Napi::Object exports) {
  exports.Set("RingBufferReader", RingBufferReader::Define(env));
}

}  // namespace palisade
