// Map operations on file descriptors. Every call first asks the kernel for
// the map's key and value sizes, so a short JS buffer can never let the
// kernel read or write past it, even when an fd number has been reused.
#include "common.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>

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

void CheckLength(Napi::Env env, const char* operation, const MapShape& map, const char* what, size_t actual,
                 size_t expected) {
  if (actual != expected) {
    throw ErrnoError(env, operation, EINVAL,
                     std::string(what) + " is " + std::to_string(actual) + " bytes but " + map.Describe() +
                         " needs " + std::to_string(expected));
  }
}

void CheckValueSize(Napi::Env env, const char* operation, const MapShape& map, uint32_t value_size) {
  if (value_size != map.info.value_size) {
    throw ErrnoError(env, operation, EINVAL,
                     "value size " + std::to_string(value_size) + " does not match the value size " +
                         std::to_string(map.info.value_size) + " of " + map.Describe());
  }
}

Napi::Error ElementError(Napi::Env env, const char* operation, int err, const MapShape& map, size_t index,
                         size_t count) {
  Napi::Error error = ErrnoError(env, operation, err,
                                 "element " + std::to_string(index) + " of " + std::to_string(count) + " in " +
                                     map.Describe());
  error.Value().Set("index", static_cast<double>(index));
  return error;
}

// bpf(2) reports a map type without batch support as EINVAL or ENOTSUPP.
bool BatchUnsupported(int err) { return err == EINVAL || err == kENOTSUPP || err == EOPNOTSUPP; }

bpf_map_batch_opts BatchOptions() {
  bpf_map_batch_opts options{};
  options.sz = sizeof options;
  options.elem_flags = BPF_ANY;
  return options;
}

Napi::Value MapLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* operation = "bpf_map_lookup_elem";
  int fd = FdArg(info, 0, "fd");
  Napi::Buffer<uint8_t> key = BufferArg(info, 1, "key");
  uint32_t value_size = Uint32Arg(info, 2, "valueSize");
  MapShape map = QueryMap(env, fd, operation);
  CheckLength(env, operation, map, "key", key.Length(), map.key_bytes);
  CheckValueSize(env, operation, map, value_size);
  Napi::Buffer<uint8_t> value = Napi::Buffer<uint8_t>::New(env, map.value_bytes);
  int err = bpf_map_lookup_elem(fd, key.Data(), value.Data());
  if (err == -ENOENT) return env.Null();
  if (err != 0) throw ErrnoError(env, operation, err, map.Describe());
  return value;
}

Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* operation = "bpf_map_update_elem";
  int fd = FdArg(info, 0, "fd");
  Napi::Buffer<uint8_t> key = BufferArg(info, 1, "key");
  Napi::Buffer<uint8_t> value = BufferArg(info, 2, "value");
  uint64_t flags = info[3].IsUndefined() ? uint64_t{BPF_ANY} : Uint32Arg(info, 3, "flags");
  MapShape map = QueryMap(env, fd, operation);
  CheckLength(env, operation, map, "key", key.Length(), map.key_bytes);
  CheckLength(env, operation, map, "value", value.Length(), map.value_bytes);
  int err = bpf_map_update_elem(fd, key.Data(), value.Data(), flags);
  if (err != 0) throw ErrnoError(env, operation, err, map.Describe());
  return env.Undefined();
}

Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* operation = "bpf_map_delete_elem";
  int fd = FdArg(info, 0, "fd");
  Napi::Buffer<uint8_t> key = BufferArg(info, 1, "key");
  MapShape map = QueryMap(env, fd, operation);
  CheckLength(env, operation, map, "key", key.Length(), map.key_bytes);
  int err = bpf_map_delete_elem(fd, key.Data());
  if (err == -ENOENT) return Napi::Boolean::New(env, false);
  if (err != 0) throw ErrnoError(env, operation, err, map.Describe());
  return Napi::Boolean::New(env, true);
}

Napi::Value MapGetNextKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* operation = "bpf_map_get_next_key";
  int fd = FdArg(info, 0, "fd");
  bool from_start = info[1].IsNull() || info[1].IsUndefined();
  Napi::Buffer<uint8_t> key = from_start ? Napi::Buffer<uint8_t>() : BufferArg(info, 1, "key");
  uint32_t key_size = Uint32Arg(info, 2, "keySize");
  MapShape map = QueryMap(env, fd, operation);
  if (key_size != map.info.key_size) {
    throw ErrnoError(env, operation, EINVAL,
                     "key size " + std::to_string(key_size) + " does not match the key size " +
                         std::to_string(map.info.key_size) + " of " + map.Describe());
  }
  if (!from_start) CheckLength(env, operation, map, "key", key.Length(), map.key_bytes);
  Napi::Buffer<uint8_t> next = Napi::Buffer<uint8_t>::New(env, map.key_bytes);
  int err = bpf_map_get_next_key(fd, from_start ? nullptr : key.Data(), next.Data());
  if (err == -ENOENT) return env.Null();
  if (err != 0) throw ErrnoError(env, operation, err, map.Describe());
  return next;
}

Napi::Value MapUpdateBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* operation = "bpf_map_update_batch";
  int fd = FdArg(info, 0, "fd");
  Napi::Buffer<uint8_t> keys = BufferArg(info, 1, "keys");
  Napi::Buffer<uint8_t> values = BufferArg(info, 2, "values");
  uint32_t count = Uint32Arg(info, 3, "count");
  MapShape map = QueryMap(env, fd, operation);
  CheckLength(env, operation, map, "keys", keys.Length(), map.key_bytes * count);
  CheckLength(env, operation, map, "values", values.Length(), map.value_bytes * count);
  if (count == 0) return env.Undefined();

  bpf_map_batch_opts options = BatchOptions();
  uint32_t processed = count;
  int err = bpf_map_update_batch(fd, keys.Data(), values.Data(), &processed, &options);
  if (err == 0) return env.Undefined();
  // The kernel writes the count back only once it has started on elements;
  // an unchanged count means nothing was written.
  uint32_t done = processed < count ? processed : 0;
  if (!BatchUnsupported(-err)) {
    if (processed < count) throw ElementError(env, operation, err, map, processed, count);
    throw ErrnoError(env, operation, err, map.Describe());
  }
  for (uint32_t i = done; i < count; i++) {
    err = bpf_map_update_elem(fd, keys.Data() + i * map.key_bytes, values.Data() + i * map.value_bytes, BPF_ANY);
    if (err != 0) throw ElementError(env, "bpf_map_update_elem", err, map, i, count);
  }
  return env.Undefined();
}

Napi::Value MapDeleteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* operation = "bpf_map_delete_batch";
  int fd = FdArg(info, 0, "fd");
  Napi::Buffer<uint8_t> keys = BufferArg(info, 1, "keys");
  uint32_t count = Uint32Arg(info, 2, "count");
  MapShape map = QueryMap(env, fd, operation);
  CheckLength(env, operation, map, "keys", keys.Length(), map.key_bytes * count);

  bpf_map_batch_opts options = BatchOptions();
  uint32_t deleted = 0;
  uint32_t done = 0;
  while (done < count) {
    uint32_t requested = count - done;
    uint32_t processed = requested;
    int err = bpf_map_delete_batch(fd, keys.Data() + done * map.key_bytes, &processed, &options);
    if (err == 0) return Napi::Number::New(env, deleted + requested);
    bool partial = processed < requested;
    if (err == -ENOENT && partial) {
      // The kernel stops at the first missing key; skip it and go on.
      deleted += processed;
      done += processed + 1;
      continue;
    }
    if (!BatchUnsupported(-err)) {
      if (partial) throw ElementError(env, operation, err, map, done + processed, count);
      throw ErrnoError(env, operation, err, map.Describe());
    }
    if (partial) {
      deleted += processed;
      done += processed;
    }
    for (uint32_t i = done; i < count; i++) {
      err = bpf_map_delete_elem(fd, keys.Data() + i * map.key_bytes);
      if (err == 0) {
        deleted++;
      } else if (err != -ENOENT) {
        throw ElementError(env, "bpf_map_delete_elem", err, map, i, count);
      }
    }
    break;
  }
  return Napi::Number::New(env, deleted);
}

Napi::Value MapInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MapShape map = QueryMap(env, FdArg(info, 0, "fd"), "bpf_obj_get_info_by_fd");
  Napi::Object result = Napi::Object::New(env);
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
  exports.Set("mapGetNextKey", Napi::Function::New<MapGetNextKey>(env, "mapGetNextKey"));
  exports.Set("mapUpdateBatch", Napi::Function::New<MapUpdateBatch>(env, "mapUpdateBatch"));
  exports.Set("mapDeleteBatch", Napi::Function::New<MapDeleteBatch>(env, "mapDeleteBatch"));
  exports.Set("mapInfo", Napi::Function::New<MapInfo>(env, "mapInfo"));
  exports.Set("numPossibleCpus", Napi::Function::New<NumPossibleCpus>(env, "numPossibleCpus"));
}

}  // namespace palisade
