// Argument unpacking for the bindings: typed-array views with their length checked against
// what the kernel will touch, so a wrong shape from JavaScript throws instead of corrupting
// memory.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace onednn_addon {

inline Napi::TypedArray typedArrayArg(const Napi::CallbackInfo& info, size_t index,
                                      napi_typedarray_type type, const char* type_name) {
  Napi::Value value = info[index];
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type) {
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(index) + " must be a " +
                                               type_name);
  }
  return value.As<Napi::TypedArray>();
}

// A Float32Array argument holding exactly `expected` elements.
inline float* floatArg(const Napi::CallbackInfo& info, size_t index, size_t expected) {
  auto array = typedArrayArg(info, index, napi_float32_array, "Float32Array");
  if (array.ElementLength() != expected) {
    throw Napi::RangeError::New(info.Env(), "argument " + std::to_string(index) + " holds " +
                                                std::to_string(array.ElementLength()) +
                                                " floats, expected " + std::to_string(expected));
  }
  return reinterpret_cast<float*>(static_cast<uint8_t*>(array.ArrayBuffer().Data()) +
                                  array.ByteOffset());
}

// A Float32Array of `expected` elements, or null/undefined (returns nullptr).
inline float* optionalFloatArg(const Napi::CallbackInfo& info, size_t index, size_t expected) {
  if (info[index].IsNull() || info[index].IsUndefined()) return nullptr;
  return floatArg(info, index, expected);
}

// An Int32Array of at least `minimum` elements.
inline const int32_t* intsArg(const Napi::CallbackInfo& info, size_t index, size_t minimum) {
  auto array = typedArrayArg(info, index, napi_int32_array, "Int32Array");
  if (array.ElementLength() < minimum) {
    throw Napi::RangeError::New(info.Env(), "argument " + std::to_string(index) +
                                                " needs at least " + std::to_string(minimum) +
                                                " integers");
  }
  return reinterpret_cast<const int32_t*>(static_cast<uint8_t*>(array.ArrayBuffer().Data()) +
                                          array.ByteOffset());
}

inline int64_t intArg(const Napi::CallbackInfo& info, size_t index) {
  if (!info[index].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(index) +
                                               " must be a number");
  }
  return info[index].As<Napi::Number>().Int64Value();
}

inline double numberArg(const Napi::CallbackInfo& info, size_t index) {
  if (!info[index].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(index) +
                                               " must be a number");
  }
  return info[index].As<Napi::Number>().DoubleValue();
}

inline bool boolArg(const Napi::CallbackInfo& info, size_t index) {
  return info[index].ToBoolean().Value();
}

}  // namespace onednn_addon
