// Map operations on file descriptors. Every call first asks the kernel for
// the map's key and value sizes, so a short JS buffer can never let the
// kernel read or write past it, even when an fd number has been reused.
#include "common.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace palisade {
namespace {

bool IsPerCpu(uint32_t type) {
  switch (type) {
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_ARRAY:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE:
      return true;
    default:
      return false;
  }
}

size_t PossibleCpus(Napi::Env env) {
  int cpus = libbpf_num_possible_cpus();
  if (cpus < 0) throw ErrnoError(env, "libbpf_num_possible_cpus", cpus);
  return static_cast<size_t>(cpus);
}

// A map as the syscalls see it: per-CPU values are copied as one slot per
// possible CPU, each slot rounded up to 8 bytes.
struct MapShape {
  bpf_map_info info;
  size_t key_bytes;
  size_t value_bytes;

  std::string Describe() const {
    return std::string("map \"") + info.name + "\" (id " + std::to_string(info.id) + ")";
  }
};

MapShape QueryMap(Napi::Env env, int fd, const char* operation) {
  MapShape shape{};
  uint32_t length = sizeof shape.info;
  int err = bpf_obj_get_info_by_fd(fd, &shape.info, &length);
  // BPF_OBJ_GET_INFO_BY_FD says EBADFD for a closed fd where the map
  // commands themselves, which the caller asked for, say EBADF.
  if (err == -EBADFD) err = -EBADF;
  if (err != 0) throw ErrnoError(env, operation, err, "cannot read the map info of fd " + std::to_string(fd));
  shape.key_bytes = shape.info.key_size;
  shape.value_bytes = shape.info.value_size;
  if (IsPerCpu(shape.info.type)) shape.value_bytes = ((shape.value_bytes + 7) / 8 * 8) * PossibleCpus(env);
  return shape;
}

// The prologue every map operation shares: its fd argument (the first),
// what the kernel says about the map behind it, and the key and value
// buffers of its other arguments checked against that map's sizes.
class MapCall {
 public:
  MapCall(const Napi::CallbackInfo& info, const char* operation)
      : info_(info), operation_(operation), fd_(FdArg(info, 0, "fd")), map_(QueryMap(info.Env(), fd_, operation)) {}

  int fd() const { return fd_; }
  const MapShape& map() const { return map_; }
  const char* operation() const { return operation_; }

  // `count` keys back to back at argument `index`.
  Napi::Buffer<uint8_t> Keys(size_t index, const char* name, uint32_t count = 1) const {
    return Sized(index, name, map_.key_bytes * count);
  }

  // `count` values back to back at argument `index` (per-CPU maps: one slot per possible CPU each).
  Napi::Buffer<uint8_t> Values(size_t index, const char* name, uint32_t count = 1) const {
    return Sized(index, name, map_.value_bytes * count);
  }

  // A size argument that must equal the map's (`what` is "key" or "value").
  void CheckSize(size_t index, const char* name, const char* what, uint32_t expected) const {
    uint32_t size = Uint32Arg(info_, index, name);
    if (size != expected) {
      throw ErrnoError(info_.Env(), operation_, EINVAL,
                       std::string(what) + " size " + std::to_string(size) + " does not match the " + what +
                           " size " + std::to_string(expected) + " of " + map_.Describe());
    }
  }

  Napi::Error Fail(int err) const { return ErrnoError(info_.Env(), operation_, err, map_.Describe()); }

  Napi::Error FailAt(const char* operation, int err, size_t index, size_t count) const {
    Napi::Error error = ErrnoError(info_.Env(), operation, err,
                                   "element " + std::to_string(index) + " of " + std::to_string(count) + " in " +
                                       map_.Describe());
    error.Value().Set("index", static_cast<double>(index));
    return error;
  }

 private:
  Napi::Buffer<uint8_t> Sized(size_t index, const char* name, size_t expected) const {
    Napi::Buffer<uint8_t> buffer = BufferArg(info_, index, name);
    if (buffer.Length() != expected) {
      throw ErrnoError(info_.Env(), operation_, EINVAL,
                       std::string(name) + " is " + std::to_string(buffer.Length()) + " bytes but " +
                           map_.Describe() + " needs " + std::to_string(expected));
    }
    return buffer;
  }

  const Napi::CallbackInfo& info_;
  const char* operation_;
  int fd_;
  MapShape map_;
};

// bpf(2) reports a map type without batch support as EINVAL or ENOTSUPP.
bool BatchUnsupported(int err) { return err == EINVAL || err == kENOTSUPP || err == EOPNOTSUPP; }

bpf_map_batch_opts BatchOptions() {
  bpf_map_batch_opts options{};
  options.sz = sizeof options;
  options.elem_flags = BPF_ANY;
  return options;
}

Napi::Value MapLookup(const Napi::CallbackInfo& info) {
  MapCall call(info, "bpf_map_lookup_elem");
  Napi::Buffer<uint8_t> key = call.Keys(1, "key");
  call.CheckSize(2, "valueSize", "value", call.map().info.value_size);
  Napi::Buffer<uint8_t> value = Napi::Buffer<uint8_t>::New(info.Env(), call.map().value_bytes);
  int err = bpf_map_lookup_elem(call.fd(), key.Data(), value.Data());
  if (err == -ENOENT) return info.Env().Null();
  if (err != 0) throw call.Fail(err);
  return value;
}

Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  MapCall call(info, "bpf_map_update_elem");
  Napi::Buffer<uint8_t> key = call.Keys(1, "key");
  Napi::Buffer<uint8_t> value = call.Values(2, "value");
  uint64_t flags = info[3].IsUndefined() ? uint64_t{BPF_ANY} : Uint32Arg(info, 3, "flags");
  int err = bpf_map_update_elem(call.fd(), key.Data(), value.Data(), flags);
  if (err != 0) throw call.Fail(err);
  return info.Env().Undefined();
}

Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  MapCall call(info, "bpf_map_delete_elem");
  Napi::Buffer<uint8_t> key = call.Keys(1, "key");
  int err = bpf_map_delete_elem(call.fd(), key.Data());
  if (err == -ENOENT) return Napi::Boolean::New(info.Env(), false);
  if (err != 0) throw call.Fail(err);
  return Napi::Boolean::New(info.Env(), true);
}

Napi::Value MapUpdateBatch(const Napi::CallbackInfo& info) {
  MapCall call(info, "bpf_map_update_batch");
  uint32_t count = Uint32Arg(info, 3, "count");
  Napi::Buffer<uint8_t> keys = call.Keys(1, "keys", count);
  Napi::Buffer<uint8_t> values = call.Values(2, "values", count);
  if (count == 0) return info.Env().Undefined();

  const MapShape& map = call.map();
  bpf_map_batch_opts options = BatchOptions();
  uint32_t processed = count;
  int err = bpf_map_update_batch(call.fd(), keys.Data(), values.Data(), &processed, &options);
  if (err == 0) return info.Env().Undefined();
  // The kernel writes the count back only once it has started on elements;
  // an unchanged count means nothing was written.
  uint32_t done = processed < count ? processed : 0;
  if (!BatchUnsupported(-err)) {
    if (processed < count) throw call.FailAt(call.operation(), err, processed, count);
    throw call.Fail(err);
  }
  for (uint32_t i = done; i < count; i++) {
    err = bpf_map_update_elem(call.fd(), keys.Data() + i * map.key_bytes, values.Data() + i * map.value_bytes, BPF_ANY);
    if (err != 0) throw call.FailAt("bpf_map_update_elem", err, i, count);
  }
  return info.Env().Undefined();
}

Napi::Value MapDeleteBatch(const Napi::CallbackInfo& info) {
  MapCall call(info, "bpf_map_delete_batch");
  uint32_t count = Uint32Arg(info, 2, "count");
  Napi::Buffer<uint8_t> keys = call.Keys(1, "keys", count);

  const MapShape& map = call.map();
  bpf_map_batch_opts options = BatchOptions();
  uint32_t deleted = 0;
  uint32_t done = 0;
  while (done < count) {
    uint32_t requested = count - done;
    uint32_t processed = requested;
    int err = bpf_map_delete_batch(call.fd(), keys.Data() + done * map.key_bytes, &processed, &options);
    if (err == 0) return Napi::Number::New(info.Env(), deleted + requested);
    bool partial = processed < requested;
    if (err == -ENOENT && partial) {
      // The kernel stops at the first missing key; skip it and go on.
      deleted += processed;
      done += processed + 1;
      continue;
    }
    if (!BatchUnsupported(-err)) {
      if (partial) throw call.FailAt(call.operation(), err, done + processed, count);
      throw call.Fail(err);
    }
    if (partial) {
      deleted += processed;
      done += processed;
    }
    for (uint32_t i = done; i < count; i++) {
      err = bpf_map_delete_elem(call.fd(), keys.Data() + i * map.key_bytes);
      if (err == 0) {
        deleted++;
      } else if (err != -ENOENT) {
        throw call.FailAt("bpf_map_delete_elem", err, i, count);
      }
    }
    break;
  }
  return Napi::Number::New(info.Env(), deleted);
}

// Entries asked for per bpf_map_lookup_batch call: few calls per map, and a
// kernel-side buffer of at most a few hundred KB per call.
constexpr uint32_t kLookupBatchEntries = 8192;
// Whole reads tried before a map that keeps changing under the read is refused.
constexpr int kLookupAttempts = 3;

// What one whole read of a map found: `count` keys and values back to back.
struct MapEntries {
  std::vector<uint8_t> keys;
  std::vector<uint8_t> values;
  size_t count = 0;

  void Reserve(const MapShape& map, size_t entries) {
    if (keys.size() < entries * map.key_bytes) keys.resize(entries * map.key_bytes);
    if (values.size() < entries * map.value_bytes) values.resize(entries * map.value_bytes);
  }
};

// One whole read key by key, for map types without batch lookup. Returns 0,
// -EAGAIN when the map changed under the read, or a call's negative errno.
int ReadByKey(int fd, const MapShape& map, MapEntries& entries) {
  std::vector<uint8_t> key(map.key_bytes);
  int err = bpf_map_get_next_key(fd, nullptr, key.data());
  while (err == 0) {
    entries.Reserve(map, entries.count + 1);
    uint8_t* slot = entries.keys.data() + entries.count * map.key_bytes;
    std::memcpy(slot, key.data(), map.key_bytes);
    err = bpf_map_lookup_elem(fd, slot, entries.values.data() + entries.count * map.value_bytes);
    if (err == 0) {
      entries.count++;
    } else if (err != -ENOENT) {  // ENOENT: deleted since its key was read
      return err;
    }
    // A walk whose key was deleted meanwhile starts over, so it can pass the map's size.
    if (entries.count > map.info.max_entries) return -EAGAIN;
    err = bpf_map_get_next_key(fd, slot, key.data());
  }
  return err == -ENOENT ? 0 : err;
}

// One whole read in batches, as ReadByKey returns; reads key by key instead
// (and says so in `by_key`) when the kernel has no batch lookup for the map.
int ReadInBatches(int fd, const MapShape& map, MapEntries& entries, bool& by_key) {
  // The cursor is a bucket index (hash maps) or the last key read (the others).
  std::vector<uint8_t> in(map.key_bytes + sizeof(uint64_t));
  std::vector<uint8_t> out(in.size());
  bpf_map_batch_opts options{};
  options.sz = sizeof options;
  uint32_t batch = kLookupBatchEntries;
  bool started = false;
  for (;;) {
    entries.Reserve(map, entries.count + batch);
    uint32_t count = batch;
    int err = bpf_map_lookup_batch(fd, started ? in.data() : nullptr, out.data(),
                                   entries.keys.data() + entries.count * map.key_bytes,
                                   entries.values.data() + entries.count * map.value_bytes, &count, &options);
    if (err == -ENOSPC && batch <= map.info.max_entries) {
      // The next hash bucket holds more entries than asked for: ask for more.
      batch *= 2;
      continue;
    }
    if (err != 0 && err != -ENOENT) {
      if (!started && BatchUnsupported(-err)) {
        by_key = true;
        return ReadByKey(fd, map, entries);
      }
      // EINTR: an entry vanished under the kernel's walk of a trie or array.
      return err == -EINTR ? -EAGAIN : err;
    }
    entries.count += count;
    // More than the map can hold at once: a walk restarted by a deleted key.
    if (entries.count > map.info.max_entries) return -EAGAIN;
    if (err == -ENOENT) return 0;
    std::memcpy(in.data(), out.data(), in.size());
    started = true;
  }
}

Napi::Value MapLookupAll(const Napi::CallbackInfo& info) {
  MapCall call(info, "bpf_map_lookup_batch");
  call.CheckSize(1, "keySize", "key", call.map().info.key_size);
  call.CheckSize(2, "valueSize", "value", call.map().info.value_size);
  const MapShape& map = call.map();
  MapEntries entries;
  bool by_key = false;
  int err = -EAGAIN;
  for (int attempt = 0; attempt < kLookupAttempts && err == -EAGAIN; attempt++) {
    entries.count = 0;
    err = by_key ? ReadByKey(call.fd(), map, entries) : ReadInBatches(call.fd(), map, entries, by_key);
  }
  const char* operation = by_key ? "bpf_map_get_next_key" : call.operation();
  if (err == -EAGAIN) {
    throw ErrnoError(info.Env(), operation, err,
                     map.Describe() + " kept changing while it was read (" + std::to_string(kLookupAttempts) + " attempts)");
  }
  if (err != 0) throw ErrnoError(info.Env(), operation, err, map.Describe());
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("count", static_cast<double>(entries.count));
  result.Set("keys", Napi::Buffer<uint8_t>::Copy(info.Env(), entries.keys.data(), entries.count * map.key_bytes));
  result.Set("values", Napi::Buffer<uint8_t>::Copy(info.Env(), entries.values.data(), entries.count * map.value_bytes));
  return result;
}

Napi::Value MapInfo(const Napi::CallbackInfo& info) {
  MapCall call(info, "bpf_obj_get_info_by_fd");
  const MapShape& map = call.map();
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("type", map.info.type);
  result.Set("keySize", map.info.key_size);
  result.Set("valueSize", map.info.value_size);
  result.Set("maxEntries", map.info.max_entries);
  result.Set("flags", map.info.map_flags);
  result.Set("name", map.info.name);
  result.Set("id", map.info.id);
  return result;
}

Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(PossibleCpus(info.Env())));
}

}  // namespace

void InitMap(Napi::Env env, Napi::Object exports) {
  exports.Set("mapLookup", Napi::Function::New<MapLookup>(env, "mapLookup"));
  exports.Set("mapUpdate", Napi::Function::New<MapUpdate>(env, "mapUpdate"));
  exports.Set("mapDelete", Napi::Function::New<MapDelete>(env, "mapDelete"));
  exports.Set("mapUpdateBatch", Napi::Function::New<MapUpdateBatch>(env, "mapUpdateBatch"));
  exports.Set("mapDeleteBatch", Napi::Function::New<MapDeleteBatch>(env, "mapDeleteBatch"));
  exports.Set("mapLookupAll", Napi::Function::New<MapLookupAll>(env, "mapLookupAll"));
  exports.Set("mapInfo", Napi::Function::New<MapInfo>(env, "mapInfo"));
  exports.Set("numPossibleCpus", Napi::Function::New<NumPossibleCpus>(env, "numPossibleCpus"));
}

}  // namespace palisade
