// N-API entry points of the collective's native helpers (built without oneDNN: only g++ and
// node-addon-api). Every function runs synchronously on the JavaScript thread and keeps no
// pointer to JavaScript memory after returning.
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "float-add.h"

namespace collective_addon {
namespace {

float* floatData(const Napi::CallbackInfo& info, size_t index, size_t* length) {
  Napi::Value value = info[index];
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(index) + " must be a Float32Array");
  }
  auto array = value.As<Napi::Float32Array>();
  *length = array.ElementLength();
  return array.Data();
}

// addInto(target, offset, values): target[offset + i] += values[i] for every i.
Napi::Value AddInto(const Napi::CallbackInfo& info) {
  size_t target_length = 0;
  size_t values_length = 0;
  float* target = floatData(info, 0, &target_length);
  const double offset = info[1].As<Napi::Number>().DoubleValue();
  const float* values = floatData(info, 2, &values_length);
  if (!(offset >= 0) || offset + static_cast<double>(values_length) > static_cast<double>(target_length)) {
    throw Napi::RangeError::New(info.Env(), "offset + values.length exceeds the target");
  }
  add_into(target + static_cast<size_t>(offset), values, values_length);
  return info.Env().Undefined();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("addInto", Napi::Function::New(env, AddInto, "addInto"));
  return exports;
}

}  // namespace collective_addon

static Napi::Object InitCollectiveNative(Napi::Env env, Napi::Object exports) {
  return collective_addon::Init(env, exports);
}

NODE_API_MODULE(collective_native, InitCollectiveNative)
