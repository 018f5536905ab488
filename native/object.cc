// BpfObject: one ELF object opened and loaded by libbpf, with its maps,
// programs and the BTF layout of map keys and values. A failed load reports
// libbpf's log, with the verifier's reasons, in the thrown error.
#include "common.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cerrno>

namespace palisade {
namespace {

std::string Quote(const std::string& text) { return "\"" + text + "\""; }

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "BpfObject",
                       {
                           InstanceAccessor<&BpfObject::Path>("path"),
                           InstanceMethod<&BpfObject::Maps>("maps"),
                           InstanceMethod<&BpfObject::Programs>("programs"),
                           InstanceMethod<&BpfObject::MapLayout>("mapLayout"),
                           InstanceMethod<&BpfObject::BtfEnum>("btfEnum"),
                           InstanceMethod<&BpfObject::Close>("close"),
                       });
  }

  explicit BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info) {
    Napi::Env env = info.Env();
    path_ = StringArg(info, 0, "path");
    Napi::Object options = OptionsArg(info, 1, "options");

    std::string pin_root;
    Napi::Value pin_root_value = options.Get("pinRoot");
    if (!pin_root_value.IsUndefined()) {
      if (!pin_root_value.IsString()) ThrowArgError(env, "The \"pinRoot\" option must be a string");
      pin_root = pin_root_value.As<Napi::String>().Utf8Value();
    }
    Napi::Object max_entries = Napi::Object::New(env);
    Napi::Value max_entries_value = options.Get("mapMaxEntries");
    if (!max_entries_value.IsUndefined()) {
      if (!max_entries_value.IsObject()) ThrowArgError(env, "The \"mapMaxEntries\" option must be an object");
      max_entries = max_entries_value.As<Napi::Object>();
    }

    LibbpfLog log;
    bpf_object_open_opts open_opts{};
    open_opts.sz = sizeof open_opts;
    if (!pin_root.empty()) open_opts.pin_root_path = pin_root.c_str();
    bpf_object* obj = bpf_object__open_file(path_.c_str(), &open_opts);
    if (obj == nullptr) throw ErrnoError(env, "bpf_object__open_file", errno, "object " + Quote(path_), log);

    try {
      Napi::Array names = max_entries.GetPropertyNames();
      for (uint32_t i = 0; i < names.Length(); i++) {
        std::string name = names.Get(i).ToString().Utf8Value();
        uint32_t entries = Uint32Option(env, max_entries, name.c_str(), 0);
        bpf_map* map = bpf_object__find_map_by_name(obj, name.c_str());
        if (map == nullptr) {
          throw ErrnoError(env, "bpf_object__find_map_by_name", ENOENT,
                           "map " + Quote(name) + " is not in object " + Quote(path_));
        }
        int err = bpf_map__set_max_entries(map, entries);
        if (err != 0) {
          throw ErrnoError(env, "bpf_map__set_max_entries", err,
                           "map " + Quote(name) + " of object " + Quote(path_) + " to " + std::to_string(entries));
        }
      }
      int err = bpf_object__load(obj);
      if (err != 0) throw ErrnoError(env, "bpf_object__load", err, "object " + Quote(path_), log);
    } catch (...) {
      bpf_object__close(obj);
      throw;
    }
    obj_ = obj;
  }

  ~BpfObject() override { bpf_object__close(obj_); }

 private:
  bpf_object* Loaded(Napi::Env env, const char* method) {
    if (obj_ == nullptr) throw ErrnoError(env, method, EBADF, "object " + Quote(path_) + " is closed");
    return obj_;
  }

  Napi::Value Path(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), path_); }

  Napi::Value Maps(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_object* obj = Loaded(env, "maps");
    Napi::Array result = Napi::Array::New(env);
    bpf_map* map;
    bpf_object__for_each_map(map, obj) {
      Napi::Object entry = Napi::Object::New(env);
      entry.Set("name", bpf_map__name(map));
      entry.Set("type", static_cast<uint32_t>(bpf_map__type(map)));
      entry.Set("keySize", bpf_map__key_size(map));
      entry.Set("valueSize", bpf_map__value_size(map));
      entry.Set("maxEntries", bpf_map__max_entries(map));
      entry.Set("fd", bpf_map__fd(map));
      result.Set(result.Length(), entry);
    }
    return result;
  }

  Napi::Value Programs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_object* obj = Loaded(env, "programs");
    Napi::Array result = Napi::Array::New(env);
    bpf_program* program;
    bpf_object__for_each_program(program, obj) {
      Napi::Object entry = Napi::Object::New(env);
      entry.Set("name", bpf_program__name(program));
      entry.Set("section", bpf_program__section_name(program));
      entry.Set("fd", bpf_program__fd(program));
      result.Set(result.Length(), entry);
    }
    return result;
  }

  // Describes a BTF type as {name, size, members}; null when the map has no
  // BTF for it (type id 0). Typedefs and const/volatile are looked through.
  static Napi::Value DescribeType(Napi::Env env, const btf* types, uint32_t type_id, const std::string& what) {
    if (type_id == 0) return env.Null();
    const btf_type* type = btf__type_by_id(types, type_id);
    std::string typedef_name;
    while (type != nullptr && (btf_is_mod(type) || btf_is_typedef(type))) {
      if (btf_is_typedef(type) && typedef_name.empty()) typedef_name = btf__name_by_offset(types, type->name_off);
      type_id = type->type;
      type = btf__type_by_id(types, type_id);
    }
    if (type == nullptr) throw ErrnoError(env, "btf__type_by_id", ENOENT, what + " type id " + std::to_string(type_id));
    long long size = btf__resolve_size(types, type_id);
    if (size < 0) throw ErrnoError(env, "btf__resolve_size", static_cast<int>(-size), what);

    std::string name = btf__name_by_offset(types, type->name_off);
    Napi::Object result = Napi::Object::New(env);
    result.Set("name", name.empty() ? typedef_name : name);
    result.Set("size", static_cast<double>(size));
    Napi::Array members = Napi::Array::New(env);
    if (btf_is_composite(type)) {
      const btf_member* member = btf_members(type);
      for (uint16_t i = 0; i < btf_vlen(type); i++, member++) {
        long long member_size = btf__resolve_size(types, member->type);
        if (member_size < 0) {
          throw ErrnoError(env, "btf__resolve_size", static_cast<int>(-member_size),
                           what + " member " + btf__name_by_offset(types, member->name_off));
        }
        uint32_t bit_offset = btf_member_bit_offset(type, i);
        uint32_t bit_size = btf_member_bitfield_size(type, i);
        Napi::Object entry = Napi::Object::New(env);
        entry.Set("name", btf__name_by_offset(types, member->name_off));
        entry.Set("offset", bit_offset / 8);
        entry.Set("size", static_cast<double>(member_size));
        if (bit_size != 0) {
          entry.Set("bitOffset", bit_offset);
          entry.Set("bitSize", bit_size);
        }
        members.Set(members.Length(), entry);
      }
    }
    result.Set("members", members);
    return result;
  }

  Napi::Value MapLayout(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_object* obj = Loaded(env, "mapLayout");
    std::string name = StringArg(info, 0, "name");
    const bpf_map* map = bpf_object__find_map_by_name(obj, name.c_str());
    if (map == nullptr) {
      throw ErrnoError(env, "bpf_object__find_map_by_name", ENOENT,
                       "map " + Quote(name) + " is not in object " + Quote(path_));
    }
    Napi::Object result = Napi::Object::New(env);
    const btf* types = bpf_object__btf(obj);
    if (types == nullptr) {
      result.Set("key", env.Null());
      result.Set("value", env.Null());
      return result;
    }
    result.Set("key", DescribeType(env, types, bpf_map__btf_key_type_id(map), "key of map " + Quote(name)));
    result.Set("value", DescribeType(env, types, bpf_map__btf_value_type_id(map), "value of map " + Quote(name)));
    return result;
  }

  // The constants of the enum called `name` in the object's BTF as
  // {name, size, values: [{name, value}]}, or null when it has none.
  Napi::Value BtfEnum(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_object* obj = Loaded(env, "btfEnum");
    std::string name = StringArg(info, 0, "name");
    const btf* types = bpf_object__btf(obj);
    if (types == nullptr) return env.Null();
    int id = btf__find_by_name_kind(types, name.c_str(), BTF_KIND_ENUM);
    if (id < 0) return env.Null();
    const btf_type* type = btf__type_by_id(types, id);
    Napi::Array values = Napi::Array::New(env);
    const struct btf_enum* constant = btf_enum(type);
    for (uint16_t i = 0; i < btf_vlen(type); i++, constant++) {
      Napi::Object entry = Napi::Object::New(env);
      entry.Set("name", btf__name_by_offset(types, constant->name_off));
      // kflag marks a signed enum; otherwise the 32 bits are unsigned.
      entry.Set("value", btf_kflag(type) ? static_cast<double>(constant->val) : static_cast<double>(static_cast<uint32_t>(constant->val)));
      values.Set(values.Length(), entry);
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("name", name);
    result.Set("size", type->size);
    result.Set("values", values);
    return result;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    bpf_object__close(obj_);
    obj_ = nullptr;
    return info.Env().Undefined();
  }

  std::string path_;
  bpf_object* obj_ = nullptr;
};

Napi::Value OpenObject(const Napi::CallbackInfo& info) {
  AddonData* data = info.Env().GetInstanceData<AddonData>();
  return data->bpfObject.New({info[0], info[1]});
}

}  // namespace

void InitObject(Napi::Env env, Napi::Object exports) {
  env.GetInstanceData<AddonData>()->bpfObject = Napi::Persistent(BpfObject::Define(env));
  exports.Set("openObject", Napi::Function::New<OpenObject>(env, "openObject"));
}

}  // namespace palisade
