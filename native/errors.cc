// Errors and argument readers shared by every part of the addon.
#include "common.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace palisade {
namespace {

std::string ErrnoText(int err) {
  if (err == kENOTSUPP) return "Operation not supported";
  const char* text = strerrordesc_np(err);
  return text != nullptr ? text : "Unknown error " + std::to_string(err);
}

std::string Describe(const Napi::Value& value) {
  if (value.IsUndefined()) return "undefined";
  if (value.IsNull()) return "null";
  if (value.IsNumber()) return value.ToString().Utf8Value();
  if (value.IsString()) return "a string";
  if (value.IsBoolean()) return "a boolean";
  if (value.IsFunction()) return "a function";
  return "an object";
}

}  // namespace

std::string ErrnoName(int err) {
  if (err == kENOTSUPP) return "ENOTSUPP";
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : "E" + std::to_string(err);
}

Napi::Error ErrnoError(Napi::Env env, const std::string& operation, int err,
                       const std::string& detail) {
  if (err < 0) err = -err;
  const std::string code = ErrnoName(err);
  std::string message = operation + " failed: " + code + " (" + ErrnoText(err) + ")";
  if (!detail.empty()) message += ": " + detail;
  Napi::Error error = Napi::Error::New(env, message);
  Napi::Object object = error.Value();
  object.Set("code", code);
  object.Set("errno", err);
  object.Set("operation", operation);
  return error;
}

void ThrowArgError(Napi::Env env, const std::string& message) {
  Napi::TypeError error = Napi::TypeError::New(env, message);
  error.Value().Set("code", "ERR_INVALID_ARG_TYPE");
  throw error;
}

int FdArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (value.IsNumber()) {
    double number = value.As<Napi::Number>().DoubleValue();
    if (number >= 0 && number <= std::numeric_limits<int32_t>::max() && std::floor(number) == number) {
      return static_cast<int>(number);
    }
  }
  ThrowArgError(info.Env(), std::string("The \"") + name +
                                "\" argument must be a file descriptor (a non-negative integer): got " +
                                Describe(value));
}

uint32_t Uint32Arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (value.IsNumber()) {
    double number = value.As<Napi::Number>().DoubleValue();
    if (number >= 0 && number <= std::numeric_limits<uint32_t>::max() && std::floor(number) == number) {
      return static_cast<uint32_t>(number);
    }
  }
  ThrowArgError(info.Env(), std::string("The \"") + name +
                                "\" argument must be an integer from 0 to 4294967295: got " + Describe(value));
}

Napi::Buffer<uint8_t> BufferArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (!value.IsBuffer()) {
    ThrowArgError(info.Env(), std::string("The \"") + name + "\" argument must be a Buffer: got " + Describe(value));
  }
  return value.As<Napi::Buffer<uint8_t>>();
}

std::string StringArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (!value.IsString()) {
    ThrowArgError(info.Env(), std::string("The \"") + name + "\" argument must be a string: got " + Describe(value));
  }
  return value.As<Napi::String>().Utf8Value();
}

Napi::Object OptionsArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (value.IsUndefined()) return Napi::Object::New(info.Env());
  if (!value.IsObject() || value.IsFunction()) {
    ThrowArgError(info.Env(), std::string("The \"") + name + "\" argument must be an object: got " + Describe(value));
  }
  return value.As<Napi::Object>();
}

uint32_t Uint32Option(Napi::Env env, const Napi::Object& options, const char* name, uint32_t fallback) {
  Napi::Value value = options.Get(name);
  if (value.IsUndefined()) return fallback;
  if (value.IsNumber()) {
    double number = value.As<Napi::Number>().DoubleValue();
    if (number >= 0 && number <= std::numeric_limits<uint32_t>::max() && std::floor(number) == number) {
      return static_cast<uint32_t>(number);
    }
  }
  ThrowArgError(env, std::string("The \"") + name + "\" option must be an integer from 0 to 4294967295: got " +
                         Describe(value));
}

}  // namespace palisade
