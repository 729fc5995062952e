// N-API entry points of the collective's native helpers (built without oneDNN: only g++ and
// node-addon-api). Every function runs synchronously on the JavaScript thread and keeps no
// pointer to JavaScript memory after returning.
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include <cerrno>
#include <cstring>

#include "float-add.h"
#include "float16.h"
#include "shm-segment.h"

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

uint16_t* halfData(const Napi::CallbackInfo& info, size_t index, size_t* length) {
  Napi::Value value = info[index];
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint16_array) {
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(index) + " must be a Uint16Array");
  }
  auto array = value.As<Napi::Uint16Array>();
  *length = array.ElementLength();
  return array.Data();
}

void checkSameLength(const Napi::CallbackInfo& info, size_t a, size_t b) {
  if (a != b) throw Napi::RangeError::New(info.Env(), "both arrays must have the same length");
}

// floatToHalf(src: Float32Array, dst: Uint16Array): dst[i] = binary16 bits of src[i].
Napi::Value FloatToHalf(const Napi::CallbackInfo& info) {
  size_t src_length = 0;
  size_t dst_length = 0;
  const float* src = floatData(info, 0, &src_length);
  uint16_t* dst = halfData(info, 1, &dst_length);
  checkSameLength(info, src_length, dst_length);
  float_to_half(src, dst, src_length);
  return info.Env().Undefined();
}

// halfToFloat(src: Uint16Array, dst: Float32Array): dst[i] = the value of the binary16 src[i].
Napi::Value HalfToFloat(const Napi::CallbackInfo& info) {
  size_t src_length = 0;
  size_t dst_length = 0;
  const uint16_t* src = halfData(info, 0, &src_length);
  float* dst = floatData(info, 1, &dst_length);
  checkSameLength(info, src_length, dst_length);
  half_to_float(src, dst, src_length);
  return info.Env().Undefined();
}

// roundToHalf(target: Float32Array): every value rounded to binary16 (and back), in place.
Napi::Value RoundToHalf(const Napi::CallbackInfo& info) {
  size_t length = 0;
  float* target = floatData(info, 0, &length);
  round_to_half(target, length);
  return info.Env().Undefined();
}

// addHalfInto(target: Float32Array, values: Uint16Array): target[i] = fp16(target[i] + values[i]).
Napi::Value AddHalfInto(const Napi::CallbackInfo& info) {
  size_t target_length = 0;
  size_t values_length = 0;
  float* target = floatData(info, 0, &target_length);
  const uint16_t* values = halfData(info, 1, &values_length);
  checkSameLength(info, target_length, values_length);
  add_half_into(target, values, values_length);
  return info.Env().Undefined();
}

// shmMap(name, bytes, create): an ArrayBuffer over the mapped segment (unmapped when collected),
// or null when opening one that does not exist (or is not sized) yet.
Napi::Value ShmMap(const Napi::CallbackInfo& info) {
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  const double bytes = info[1].As<Napi::Number>().DoubleValue();
  const bool create = info[2].As<Napi::Boolean>().Value();
  if (!(bytes > 0)) throw Napi::RangeError::New(info.Env(), "a segment needs a positive size");
  const size_t size = static_cast<size_t>(bytes);
  void* address = map_segment(name, size, create);
  if (address == nullptr) {
    if (!create && (errno == ENOENT || errno == EAGAIN)) return info.Env().Null();
    throw Napi::Error::New(info.Env(), "shared memory " + name + ": " + std::strerror(errno));
  }
  return Napi::ArrayBuffer::New(info.Env(), address, size, [size](Napi::Env, void* data) { unmap_segment(data, size); });
}

// shmUnlink(name): true when the name was removed, false when it did not exist.
Napi::Value ShmUnlink(const Napi::CallbackInfo& info) {
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  if (unlink_segment(name) == 0) return Napi::Boolean::New(info.Env(), true);
  if (errno == ENOENT) return Napi::Boolean::New(info.Env(), false);
  throw Napi::Error::New(info.Env(), "shm_unlink " + name + ": " + std::strerror(errno));
}

int32_t* counterArg(const Napi::CallbackInfo& info) {
  auto buffer = info[0].As<Napi::ArrayBuffer>();
  const double offset = info[1].As<Napi::Number>().DoubleValue();
  if (!(offset >= 0) || static_cast<size_t>(offset) % 4 != 0 || offset + 4 > static_cast<double>(buffer.ByteLength())) {
    throw Napi::RangeError::New(info.Env(), "a counter needs an aligned offset inside the buffer");
  }
  return reinterpret_cast<int32_t*>(static_cast<uint8_t*>(buffer.Data()) + static_cast<size_t>(offset));
}

Napi::Value CounterAdd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), counter_add(counterArg(info), info[2].As<Napi::Number>().Int32Value()));
}

Napi::Value CounterLoad(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), counter_load(counterArg(info)));
}

Napi::Value CounterWait(const Napi::CallbackInfo& info) {
  int32_t* counter = counterArg(info);
  return Napi::Boolean::New(info.Env(), counter_wait(counter, info[2].As<Napi::Number>().Int32Value(), info[3].As<Napi::Number>().Int32Value()));
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("addInto", Napi::Function::New(env, AddInto, "addInto"));
  exports.Set("floatToHalf", Napi::Function::New(env, FloatToHalf, "floatToHalf"));
  exports.Set("halfToFloat", Napi::Function::New(env, HalfToFloat, "halfToFloat"));
  exports.Set("roundToHalf", Napi::Function::New(env, RoundToHalf, "roundToHalf"));
  exports.Set("addHalfInto", Napi::Function::New(env, AddHalfInto, "addHalfInto"));
  exports.Set("shmMap", Napi::Function::New(env, ShmMap, "shmMap"));
  exports.Set("shmUnlink", Napi::Function::New(env, ShmUnlink, "shmUnlink"));
  exports.Set("counterAdd", Napi::Function::New(env, CounterAdd, "counterAdd"));
  exports.Set("counterLoad", Napi::Function::New(env, CounterLoad, "counterLoad"));
  exports.Set("counterWait", Napi::Function::New(env, CounterWait, "counterWait"));
  return exports;
}

}  // namespace collective_addon

static Napi::Object InitCollectiveNative(Napi::Env env, Napi::Object exports) {
  return collective_addon::Init(env, exports);
}

NODE_API_MODULE(collective_native, InitCollectiveNative)
