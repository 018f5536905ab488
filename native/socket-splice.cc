// SocketSplice: joins two connected stream sockets in the kernel, for a
// connection the proxy has finished judging. Bytes move with splice(2),
// socket -> pipe -> socket, driven by a uv_poll_t per socket on Node's own
// loop: no copy through user space, no JavaScript per segment, no thread. It
// looks at no byte and decides nothing: it passes on what arrives, a
// half-close as a half-close once everything read before it is written, and a
// failure of one socket as a reset of the other.
//
// The splice works on dups of the caller's fds, so that the caller's sockets
// may stay open (idle) while it runs and close whenever: the connection lives
// until the last fd of its socket is closed. It reports once, to onEnd, after
// its own fds are closed: the bytes passed each way and how it ended; passed()
// reads the same counts while it runs (the loop counts them anyway: reading
// them costs the data path nothing).
#include "common.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <uv.h>

#include <cerrno>
#include <memory>
#include <vector>

namespace palisade {
namespace {

constexpr unsigned kSpliceFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
// A pipe's size: what a direction moves per pair of splices, and the most it
// holds for a destination that takes no more. 256 KiB: a quarter of the calls
// of the default 64 KiB on a bulk transfer.
constexpr int kPipeSize = 256 * 1024;
// Empty pipes kept for the next read; more are closed.
constexpr size_t kPooledPipes = 64;
// Pipe-fulls one direction moves per wake-up: a busy connection lets the
// others on the loop have their turn (the polls are level-triggered: it
// resumes on the next turn).
constexpr int kRoundsPerWake = 16;

struct Pipe {
  int read = -1;
  int write = -1;
};

// A direction holds a pipe only while bytes are in it: an idle connection holds none. Pipes count
// against a per-user quota (fs.pipe-user-pages-soft, shared by every process of the user), so the
// splices of a thread's loop share the empty ones, and close them all when the last splice ends.
class PipePool {
 public:
  void Started() { running_++; }
  void Ended() {
    if (--running_ > 0) return;
    for (Pipe& pipe : free_) CloseBoth(pipe);
    free_.clear();
  }
  // False with errno set when no pipe can be made.
  bool Acquire(Pipe& pipe) {
    if (pipe.read >= 0) return true;
    if (!free_.empty()) {
      pipe = free_.back();
      free_.pop_back();
      return true;
    }
    int ends[2];
    if (pipe2(ends, O_NONBLOCK | O_CLOEXEC) != 0) return false;
    // A user over its pipe quota keeps the kernel's smaller pipe: slower, not wrong.
    fcntl(ends[1], F_SETPIPE_SZ, kPipeSize);
    pipe = {ends[0], ends[1]};
    return true;
  }
  // Takes back an empty pipe.
  void Release(Pipe& pipe) {
    if (pipe.read < 0) return;
    if (free_.size() < kPooledPipes) free_.push_back(pipe);
    else CloseBoth(pipe);
    pipe = {};
  }
  static void CloseBoth(Pipe& pipe) {
    if (pipe.read >= 0) close(pipe.read);
    if (pipe.write >= 0) close(pipe.write);
    pipe = {};
  }

 private:
  std::vector<Pipe> free_;
  int running_ = 0;
};

// Node runs one loop per thread (the main one, each worker's).
thread_local PipePool pipes;

enum class Waiting { kRead, kWrite, kDone };

// One direction: from socket i to socket 1 - i.
struct Direction {
  Pipe pipe;
  size_t held = 0;       // in the pipe, not yet written
  uint64_t passed = 0;   // written to the destination
  bool eof = false;      // end of stream read from the source
  bool drained = false;  // the last read returned less than asked for
  Waiting waiting = Waiting::kRead;
};

class SocketSplice;

// Outlives the JS object until libuv has closed both poll handles.
struct SpliceState {
  uv_poll_t polls[2];
  int fds[2] = {-1, -1};
  int watched[2] = {0, 0};  // the events each poll is started with
  Direction directions[2];  // directions[i] reads socket i
  int handles_open = 0;
  bool ended = false;
  const char* end = "";
  int failed = -1;  // the socket whose error ended it; -1 when none did
  int error = 0;
  SocketSplice* owner = nullptr;
  napi_env env = nullptr;
};

// Neither socket: the splice itself failed (no pipe could be made).
constexpr int kNoSocket = -1;

void SetLingerZero(int fd) {
  // The next close sends an RST and drops what is unsent (best effort: a socket already failed may refuse).
  linger option{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, sizeof option);
}

class SocketSplice : public Napi::ObjectWrap<SocketSplice> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "SocketSplice", {InstanceMethod<&SocketSplice::Abort>("abort"), InstanceMethod<&SocketSplice::Passed>("passed")});
  }

  // new SocketSplice(fdA, fdB, onEnd): splices from now on, until onEnd.
  explicit SocketSplice(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SocketSplice>(info) {
    Napi::Env env = info.Env();
    int given[2] = {FdArg(info, 0, "fdA"), FdArg(info, 1, "fdB")};
    if (!info[2].IsFunction()) ThrowArgError(env, "The \"onEnd\" argument must be a function");
    if (given[0] == given[1]) ThrowArgError(env, "The \"fdA\" and \"fdB\" arguments must be two sockets: got fd " + std::to_string(given[0]) + " twice");
    for (int i = 0; i < 2; i++) CheckStreamSocket(env, given[i], i == 0 ? "fdA" : "fdB");
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) throw Napi::Error::New(env, "napi_get_uv_event_loop failed");
    FdGuard dups[2] = {FdGuard(fcntl(given[0], F_DUPFD_CLOEXEC, 0)), FdGuard(fcntl(given[1], F_DUPFD_CLOEXEC, 0))};
    for (int i = 0; i < 2; i++) {
      if (dups[i].Get() < 0) throw ErrnoError(env, "fcntl F_DUPFD_CLOEXEC", errno, "fd " + std::to_string(given[i]));
    }

    auto* state = new SpliceState();
    state->env = env;
    for (int i = 0; i < 2; i++) state->fds[i] = dups[i].Release();
    pipes.Started();
    for (int i = 0; i < 2; i++) {
      int err = uv_poll_init(loop, &state->polls[i], state->fds[i]);
      if (err != 0) {
        state->end = "aborted";
        Close(state);
        throw ErrnoError(env, "uv_poll_init", err, "fd " + std::to_string(given[i]));
      }
      state->polls[i].data = state;
      state->handles_open++;
    }
    state->owner = this;
    state_ = state;
    on_end_ = Napi::Persistent(info[2].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, "PalisadeSocketSplice", info.This().As<Napi::Object>());
    // Like a socket: a running splice stays reachable until it ends, held or not.
    Ref();
    Watch(state);
  }

  ~SocketSplice() override {
    // Only at the environment's teardown can a running splice lose its object: it stops without a report.
    if (state_ == nullptr) return;
    state_->owner = nullptr;
    if (!state_->ended) Close(state_);
  }

 private:
  static void CheckStreamSocket(Napi::Env env, int fd, const char* name) {
    int type = 0;
    socklen_t length = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) != 0) {
      throw ErrnoError(env, "getsockopt SO_TYPE", errno, std::string(name) + " " + std::to_string(fd) + " is not a socket");
    }
    if (type != SOCK_STREAM) ThrowArgError(env, std::string("The \"") + name + "\" argument must be a stream socket: fd " + std::to_string(fd) + " is of type " + std::to_string(type));
  }

  // Moves what it can of direction `d` until a socket would block; false when it ended the splice.
  static bool Pump(SpliceState* state, int d) {
    Direction& direction = state->directions[d];
    int source = state->fds[d];
    int destination = state->fds[1 - d];
    for (int round = 0; round < kRoundsPerWake; round++) {
      if (direction.held > 0) {
        ssize_t written = splice(direction.pipe.read, nullptr, destination, nullptr, direction.held, kSpliceFlags);
        if (written < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN) {
            direction.waiting = Waiting::kWrite;
            return true;
          }
          return Fail(state, 1 - d, errno);
        }
        direction.held -= static_cast<size_t>(written);
        direction.passed += static_cast<uint64_t>(written);
        if (direction.held > 0) continue;
        pipes.Release(direction.pipe);
        if (direction.drained) {
          // The last read took less than it asked for: the source was most likely empty, and the poll
          // says so without a read that fails with EAGAIN (a third of the calls of a request-response).
          direction.waiting = Waiting::kRead;
          return true;
        }
        continue;
      }
      if (direction.eof) {
        // Everything read before the end of stream is written: pass the half-close on.
        if (shutdown(destination, SHUT_WR) != 0) return Fail(state, 1 - d, errno);
        direction.waiting = Waiting::kDone;
        return true;
      }
      if (!pipes.Acquire(direction.pipe)) return Fail(state, kNoSocket, errno);
      ssize_t read = splice(source, nullptr, direction.pipe.write, nullptr, kPipeSize, kSpliceFlags);
      if (read < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
          pipes.Release(direction.pipe);
          direction.waiting = Waiting::kRead;
          return true;
        }
        return Fail(state, d, errno);
      }
      if (read == 0) {
        direction.eof = true;
        pipes.Release(direction.pipe);
      }
      direction.held = static_cast<size_t>(read);
      direction.drained = read < kPipeSize;
    }
    // Its share of this turn used: the level-triggered poll brings it back on the next one.
    direction.waiting = direction.held > 0 ? Waiting::kWrite : Waiting::kRead;
    return true;
  }

  // Socket `failed` reported `error` (or the splice itself, kNoSocket): the other socket, or both, are reset.
  static bool Fail(SpliceState* state, int failed, int error) {
    state->failed = failed;
    state->error = error;
    state->end = "reset";
    for (int i = 0; i < 2; i++) {
      if (i != failed) SetLingerZero(state->fds[i]);
    }
    Close(state);
    return false;
  }

  // Starts each poll with the events its socket's directions wait for, when they changed.
  static void Watch(SpliceState* state) {
    for (int i = 0; i < 2; i++) {
      int events = (state->directions[i].waiting == Waiting::kRead ? UV_READABLE : 0) |
                   (state->directions[1 - i].waiting == Waiting::kWrite ? UV_WRITABLE : 0);
      if (events == state->watched[i]) continue;
      int err = events == 0 ? uv_poll_stop(&state->polls[i]) : uv_poll_start(&state->polls[i], events, OnEvents);
      if (err != 0) {
        Fail(state, kNoSocket, -err);
        return;
      }
      state->watched[i] = events;
    }
  }

  static void OnEvents(uv_poll_t* handle, int status, int events) {
    auto* state = static_cast<SpliceState*>(handle->data);
    if (state->ended) return;
    int i = handle == &state->polls[0] ? 0 : 1;
    if (status < 0) {
      // libuv reports POLLERR (a reset, a timeout) as UV_EBADF and stops the poll: the splices that wait on
      // the socket run, read what arrived before the error, then meet the error itself and report it.
      events = state->watched[i];
      state->watched[i] = 0;
    }
    if ((events & UV_READABLE) != 0 && state->directions[i].waiting == Waiting::kRead && !Pump(state, i)) return;
    if ((events & UV_WRITABLE) != 0 && state->directions[1 - i].waiting == Waiting::kWrite && !Pump(state, 1 - i)) return;
    if (state->directions[0].waiting == Waiting::kDone && state->directions[1].waiting == Waiting::kDone) {
      state->end = "closed";
      Close(state);
      return;
    }
    Watch(state);
  }

  // Ends the splice: closes its fds now (a pipe still holding bytes too), and reports once libuv has closed the polls.
  static void Close(SpliceState* state) {
    state->ended = true;
    // uv_close stops a poll and drops its fd from the loop at once: the fd can be closed next.
    int initialized = state->handles_open;
    for (int i = 0; i < initialized; i++) uv_close(reinterpret_cast<uv_handle_t*>(&state->polls[i]), OnPollClosed);
    for (int i = 0; i < 2; i++) {
      close(state->fds[i]);
      state->fds[i] = -1;
      Direction& direction = state->directions[i];
      if (direction.held == 0) pipes.Release(direction.pipe);
      else PipePool::CloseBoth(direction.pipe);
    }
    pipes.Ended();
    if (initialized == 0) delete state;
  }

  static void OnPollClosed(uv_handle_t* handle) {
    auto* state = static_cast<SpliceState*>(handle->data);
    if (--state->handles_open > 0) return;
    if (state->owner != nullptr) state->owner->Report(state);
    delete state;
  }

  void Report(SpliceState* state) {
    state_ = nullptr;
    for (int i = 0; i < 2; i++) final_passed_[i] = state->directions[i].passed;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Object result = PassedObject(env);
    result.Set("end", state->end);
    if (state->failed != kNoSocket) result.Set("failed", state->failed == 0 ? "a" : "b");
    if (state->error != 0) result.Set("code", ErrnoName(state->error));
    try {
      on_end_.MakeCallback(Value(), {result}, *context_);
    } catch (const Napi::Error& error) {
      napi_fatal_exception(env, error.Value());
    }
    Unref();
  }

  // abort(): resets both sockets now (no-op once ended); onEnd follows.
  Napi::Value Abort(const Napi::CallbackInfo& info) {
    if (state_ != nullptr && !state_->ended) {
      SetLingerZero(state_->fds[0]);
      SetLingerZero(state_->fds[1]);
      state_->end = "aborted";
      Close(state_);
    }
    return info.Env().Undefined();
  }

  // passed(): { aToB, bToA }, the bytes written each way so far (the final counts once it has reported).
  Napi::Value Passed(const Napi::CallbackInfo& info) { return PassedObject(info.Env()); }

  Napi::Object PassedObject(Napi::Env env) const {
    Napi::Object result = Napi::Object::New(env);
    for (int i = 0; i < 2; i++) {
      uint64_t passed = state_ != nullptr ? state_->directions[i].passed : final_passed_[i];
      result.Set(i == 0 ? "aToB" : "bToA", Napi::Number::New(env, static_cast<double>(passed)));
    }
    return result;
  }

  SpliceState* state_ = nullptr;
  uint64_t final_passed_[2] = {0, 0};
  Napi::FunctionReference on_end_;
  std::unique_ptr<Napi::AsyncContext> context_;
};

}  // namespace

void InitSocketSplice(Napi::Env env, Napi::Object exports) {
  exports.Set("SocketSplice", SocketSplice::Define(env));
}

}  // namespace palisade
