// N-API entry points of the oneDNN backend. Each binding checks its arguments, turns them into
// raw pointers and calls one kernel synchronously on the JavaScript thread (the kernel itself
// runs on OpenMP threads). Kernels never keep a pointer to JavaScript memory after returning.
#include <napi.h>
#include <omp.h>

#include <dnnl.hpp>
#include <string>

#include "convolution.h"
#include "dnnl-context.h"
#include "napi-args.h"

namespace onednn_addon {
namespace {

// Turns oneDNN's status errors into JavaScript errors carrying the status name.
template <typename Fn>
Napi::Value guarded(const Napi::CallbackInfo& info, Fn&& fn) {
  try {
    fn();
  } catch (const dnnl::error& e) {
    throw Napi::Error::New(info.Env(), std::string("oneDNN: ") + e.what() + " (status " +
                                           std::to_string(static_cast<int>(e.status)) + ")");
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(info.Env(), "oneDNN backend: out of memory");
  }
  return info.Env().Undefined();
}

size_t product(std::initializer_list<int64_t> dims) {
  size_t total = 1;
  for (int64_t d : dims) total *= static_cast<size_t>(d);
  return total;
}

Napi::Value Version(const Napi::CallbackInfo& info) {
  const dnnl_version_t* v = dnnl_version();
  return Napi::String::New(info.Env(), std::to_string(v->major) + "." + std::to_string(v->minor) +
                                           "." + std::to_string(v->patch));
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  int64_t threads = intArg(info, 0);
  if (threads < 1) throw Napi::RangeError::New(info.Env(), "threads must be >= 1");
  omp_set_num_threads(static_cast<int>(threads));
  return info.Env().Undefined();
}

Napi::Value Threads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), omp_get_max_threads());
}

Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Object stats = Napi::Object::New(info.Env());
  stats.Set("convolutionPlans", static_cast<double>(convolutionCacheSize()));
  stats.Set("sharedBufferBytes", static_cast<double>(sharedBufferBytes()));
  return stats;
}

Napi::Value ReleaseCaches(const Napi::CallbackInfo& info) {
  clearConvolutionCache();
  releaseSharedBuffers();
  return info.Env().Undefined();
}

// conv2dForward(geometry: Int32Array(17), x, w, bias | null, relu: boolean, y)
Napi::Value Conv2dForward(const Napi::CallbackInfo& info) {
  ConvGeometry g = convGeometryFrom(intsArg(info, 0, kConvGeometryFields));
  const float* x = floatArg(info, 1, product({g.batch, g.in_height, g.in_width, g.in_channels}));
  const float* w = floatArg(
      info, 2, product({g.filter_height, g.filter_width, g.in_channels, g.out_channels}));
  const float* bias = optionalFloatArg(info, 3, static_cast<size_t>(g.out_channels));
  bool relu = boolArg(info, 4);
  float* y = floatArg(info, 5, product({g.batch, g.out_height, g.out_width, g.out_channels}));
  return guarded(info, [&] { convolutionForward(g, x, w, bias, relu, y); });
}

// conv2dBackwardData(geometry, dy, w, dx)
Napi::Value Conv2dBackwardData(const Napi::CallbackInfo& info) {
  ConvGeometry g = convGeometryFrom(intsArg(info, 0, kConvGeometryFields));
  const float* dy =
      floatArg(info, 1, product({g.batch, g.out_height, g.out_width, g.out_channels}));
  const float* w = floatArg(
      info, 2, product({g.filter_height, g.filter_width, g.in_channels, g.out_channels}));
  float* dx = floatArg(info, 3, product({g.batch, g.in_height, g.in_width, g.in_channels}));
  return guarded(info, [&] { convolutionBackwardData(g, dy, w, dx); });
}

// conv2dBackwardWeights(geometry, x, dy, dw)
Napi::Value Conv2dBackwardWeights(const Napi::CallbackInfo& info) {
  ConvGeometry g = convGeometryFrom(intsArg(info, 0, kConvGeometryFields));
  const float* x = floatArg(info, 1, product({g.batch, g.in_height, g.in_width, g.in_channels}));
  const float* dy =
      floatArg(info, 2, product({g.batch, g.out_height, g.out_width, g.out_channels}));
  float* dw = floatArg(
      info, 3, product({g.filter_height, g.filter_width, g.in_channels, g.out_channels}));
  return guarded(info, [&] { convolutionBackwardWeights(g, x, dy, dw); });
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::Function::New(env, Version));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("threads", Napi::Function::New(env, Threads));
  exports.Set("stats", Napi::Function::New(env, Stats));
  exports.Set("releaseCaches", Napi::Function::New(env, ReleaseCaches));
  exports.Set("conv2dForward", Napi::Function::New(env, Conv2dForward));
  exports.Set("conv2dBackwardData", Napi::Function::New(env, Conv2dBackwardData));
  exports.Set("conv2dBackwardWeights", Napi::Function::New(env, Conv2dBackwardWeights));
  return exports;
}

}  // namespace onednn_addon

static Napi::Object InitOnednnBackend(Napi::Env env, Napi::Object exports) {
  return onednn_addon::Init(env, exports);
}

NODE_API_MODULE(onednn_backend, InitOnednnBackend)
