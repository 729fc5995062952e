// N-API entry points of the oneDNN backend. Each binding checks its arguments, turns them into
// raw pointers and calls one kernel synchronously on the JavaScript thread (the kernel itself
// runs on OpenMP threads). Kernels never keep a pointer to JavaScript memory after returning.
#include <napi.h>
#include <omp.h>

#include <dnnl.hpp>
#include <mutex>
#include <string>

#include "batch-norm.h"
#include "convolution.h"
#include "dnnl-context.h"
#include "elementwise.h"
#include "matmul.h"
#include "max-pool.h"
#include "napi-args.h"
#include "reduction.h"

namespace onednn_addon {
namespace {

// The plan cache and shared buffers are process-wide; this serialises kernels should several
// JavaScript threads (worker_threads) load the addon. Uncontended, it costs nanoseconds.
std::mutex kernel_mutex;

// Runs a kernel under the lock and turns C++ errors into JavaScript errors (oneDNN's carry
// their status code).
template <typename Fn>
Napi::Value guarded(const Napi::CallbackInfo& info, Fn&& fn) {
  try {
    std::lock_guard<std::mutex> lock(kernel_mutex);
    fn();
  } catch (const dnnl::error& e) {
    throw Napi::Error::New(info.Env(), std::string("oneDNN: ") + e.what() + " (status " +
                                           std::to_string(static_cast<int>(e.status)) + ")");
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(info.Env(), "oneDNN backend: out of memory");
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string("oneDNN backend: ") + e.what());
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

Napi::Value ConvolutionPlans(const Napi::CallbackInfo& info) {
  auto lines = describeConvolutionPlans();
  Napi::Array out = Napi::Array::New(info.Env(), lines.size());
  for (size_t i = 0; i < lines.size(); i++) out.Set(static_cast<uint32_t>(i), lines[i]);
  return out;
}

Napi::Value ReleaseCaches(const Napi::CallbackInfo& info) {
  return guarded(info, [] {
    clearConvolutionCache();
    releaseSharedBuffers();
  });
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


// binary(op, geometry: Int32Array [rank, dims x6, aStrides x6, bStrides x6], a, b, out)
Napi::Value Binary(const Napi::CallbackInfo& info) {
  int64_t op = intArg(info, 0);
  const int32_t* geo = intsArg(info, 1, 1 + 3 * kMaxBroadcastRank);
  int rank = geo[0];
  if (op < 0 || op > static_cast<int64_t>(BinaryOp::CopyFirst) || rank < 1 || rank > kMaxBroadcastRank) {
    throw Napi::RangeError::New(info.Env(), "binary: bad op or rank");
  }
  int64_t dims[kMaxBroadcastRank], as[kMaxBroadcastRank], bs[kMaxBroadcastRank];
  size_t out_size = 1, a_extent = 1, b_extent = 1;
  for (int d = 0; d < rank; d++) {
    dims[d] = geo[1 + d];
    as[d] = geo[1 + kMaxBroadcastRank + d];
    bs[d] = geo[1 + 2 * kMaxBroadcastRank + d];
    if (dims[d] < 1 || as[d] < 0 || bs[d] < 0) throw Napi::RangeError::New(info.Env(), "binary: bad geometry");
    out_size *= static_cast<size_t>(dims[d]);
    a_extent += static_cast<size_t>((dims[d] - 1) * as[d]);
    b_extent += static_cast<size_t>((dims[d] - 1) * bs[d]);
  }
  if (as[rank - 1] > 1 || bs[rank - 1] > 1) throw Napi::RangeError::New(info.Env(), "binary: inner stride must be 0 or 1");
  auto a_array = typedArrayArg(info, 2, napi_float32_array, "Float32Array");
  auto b_array = typedArrayArg(info, 3, napi_float32_array, "Float32Array");
  if (a_array.ElementLength() < a_extent || b_array.ElementLength() < b_extent) {
    throw Napi::RangeError::New(info.Env(), "binary: an input is shorter than its strides reach");
  }
  const float* a = floatArg(info, 2, a_array.ElementLength());
  const float* b = floatArg(info, 3, b_array.ElementLength());
  float* out = floatArg(info, 4, out_size);
  return guarded(info, [&] { binaryBroadcast(static_cast<BinaryOp>(op), rank, dims, as, bs, a, b, out); });
}

// unary(op, x, out, alpha)
Napi::Value Unary(const Napi::CallbackInfo& info) {
  int64_t op = intArg(info, 0);
  if (op < 0 || op > static_cast<int64_t>(UnaryOp::Reciprocal)) throw Napi::RangeError::New(info.Env(), "unary: bad op");
  auto x_array = typedArrayArg(info, 1, napi_float32_array, "Float32Array");
  size_t n = x_array.ElementLength();
  const float* x = floatArg(info, 1, n);
  float* out = floatArg(info, 2, n);
  float alpha = static_cast<float>(numberArg(info, 3));
  return guarded(info, [&] { unary(static_cast<UnaryOp>(op), x, out, static_cast<int64_t>(n), alpha); });
}

// scaledAdd(x, g, alpha, out): out = x + alpha * g; out may be x.
Napi::Value ScaledAdd(const Napi::CallbackInfo& info) {
  auto x_array = typedArrayArg(info, 0, napi_float32_array, "Float32Array");
  size_t n = x_array.ElementLength();
  const float* x = floatArg(info, 0, n);
  const float* g = floatArg(info, 1, n);
  float alpha = static_cast<float>(numberArg(info, 2));
  float* out = floatArg(info, 3, n);
  return guarded(info, [&] { scaledAdd(x, g, alpha, out, static_cast<int64_t>(n)); });
}

// reduceSum(x, out, outer, reduce, inner, scale)
Napi::Value ReduceSum(const Napi::CallbackInfo& info) {
  int64_t outer = intArg(info, 2), reduce = intArg(info, 3), inner = intArg(info, 4);
  if (outer < 1 || reduce < 1 || inner < 1) throw Napi::RangeError::New(info.Env(), "reduceSum: empty dimension");
  const float* x = floatArg(info, 0, product({outer, reduce, inner}));
  float* out = floatArg(info, 1, product({outer, inner}));
  double scale = numberArg(info, 5);
  return guarded(info, [&] { reduceSum(x, out, outer, reduce, inner, scale); });
}

// maxPoolForward(geometry: Int32Array(12), x, y)
Napi::Value MaxPoolForward(const Napi::CallbackInfo& info) {
  PoolGeometry g = poolGeometryFrom(intsArg(info, 0, kPoolGeometryFields));
  const float* x = floatArg(info, 1, product({g.batch, g.in_height, g.in_width, g.channels}));
  float* y = floatArg(info, 2, product({g.batch, g.out_height, g.out_width, g.channels}));
  return guarded(info, [&] { maxPoolForward(g, x, y); });
}

// maxPoolBackward(geometry, x, dy, dx)
Napi::Value MaxPoolBackward(const Napi::CallbackInfo& info) {
  PoolGeometry g = poolGeometryFrom(intsArg(info, 0, kPoolGeometryFields));
  const float* x = floatArg(info, 1, product({g.batch, g.in_height, g.in_width, g.channels}));
  const float* dy = floatArg(info, 2, product({g.batch, g.out_height, g.out_width, g.channels}));
  float* dx = floatArg(info, 3, product({g.batch, g.in_height, g.in_width, g.channels}));
  return guarded(info, [&] { maxPoolBackward(g, x, dy, dx); });
}

// Rows of an NHWC tensor with `channels` channels, checking the length divides evenly.
int64_t rowsOf(const Napi::CallbackInfo& info, size_t index, int64_t channels) {
  auto array = typedArrayArg(info, index, napi_float32_array, "Float32Array");
  size_t n = array.ElementLength();
  if (channels < 1 || n % static_cast<size_t>(channels) != 0) {
    throw Napi::RangeError::New(info.Env(), "batch norm: length is not a multiple of channels");
  }
  return static_cast<int64_t>(n / static_cast<size_t>(channels));
}

// batchNormApply(x, mean, variance, scale | null, offset | null, epsilon, channels, y)
Napi::Value BatchNormApply(const Napi::CallbackInfo& info) {
  int64_t c = intArg(info, 6);
  int64_t rows = rowsOf(info, 0, c);
  size_t cs = static_cast<size_t>(c);
  const float* x = floatArg(info, 0, product({rows, c}));
  const float* mean = floatArg(info, 1, cs);
  const float* variance = floatArg(info, 2, cs);
  const float* scale = optionalFloatArg(info, 3, cs);
  const float* offset = optionalFloatArg(info, 4, cs);
  float epsilon = static_cast<float>(numberArg(info, 5));
  float* y = floatArg(info, 7, product({rows, c}));
  return guarded(info, [&] { batchNormApply(x, mean, variance, scale, offset, epsilon, rows, c, y); });
}

// batchNormTrainingForward(x, scale | null, offset | null, epsilon, channels, relu, y, mean, variance)
Napi::Value BatchNormTrainingForward(const Napi::CallbackInfo& info) {
  int64_t c = intArg(info, 4);
  int64_t rows = rowsOf(info, 0, c);
  size_t cs = static_cast<size_t>(c);
  const float* x = floatArg(info, 0, product({rows, c}));
  const float* scale = optionalFloatArg(info, 1, cs);
  const float* offset = optionalFloatArg(info, 2, cs);
  float epsilon = static_cast<float>(numberArg(info, 3));
  bool relu = boolArg(info, 5);
  float* y = floatArg(info, 6, product({rows, c}));
  float* mean = floatArg(info, 7, cs);
  float* variance = floatArg(info, 8, cs);
  return guarded(info, [&] {
    batchNormTrainingForward(x, scale, offset, epsilon, rows, c, relu, y, mean, variance);
  });
}

// batchNormTrainingBackward(x, dy, y | null, scale | null, mean, variance, dmean | null,
//                           dvariance | null, epsilon, channels, dx, dscale, doffset)
Napi::Value BatchNormTrainingBackward(const Napi::CallbackInfo& info) {
  int64_t c = intArg(info, 9);
  int64_t rows = rowsOf(info, 0, c);
  size_t cs = static_cast<size_t>(c);
  size_t total = product({rows, c});
  const float* x = floatArg(info, 0, total);
  const float* dy = floatArg(info, 1, total);
  const float* y = optionalFloatArg(info, 2, total);
  const float* scale = optionalFloatArg(info, 3, cs);
  const float* mean = floatArg(info, 4, cs);
  const float* variance = floatArg(info, 5, cs);
  const float* dmean = optionalFloatArg(info, 6, cs);
  const float* dvariance = optionalFloatArg(info, 7, cs);
  float epsilon = static_cast<float>(numberArg(info, 8));
  float* dx = floatArg(info, 10, total);
  float* dscale = floatArg(info, 11, cs);
  float* doffset = floatArg(info, 12, cs);
  return guarded(info, [&] {
    batchNormTrainingBackward(x, dy, y, scale, mean, variance, dmean, dvariance, epsilon, rows, c,
                              dx, dscale, doffset);
  });
}

// batchMatMul(geometry: Int32Array [batch, m, n, k, aBatchStride, bBatchStride, transposeA, transposeB], a, b, out)
Napi::Value BatchMatMul(const Napi::CallbackInfo& info) {
  const int32_t* f = intsArg(info, 0, 8);
  MatMulGeometry g{f[0], f[1], f[2], f[3], f[4], f[5], f[6] != 0, f[7] != 0};
  if (g.batch < 1 || g.m < 1 || g.n < 1 || g.k < 1 || g.a_batch_stride < 0 || g.b_batch_stride < 0) {
    throw Napi::RangeError::New(info.Env(), "batchMatMul: bad geometry");
  }
  const float* a = floatArg(info, 1, static_cast<size_t>((g.batch - 1) * g.a_batch_stride + g.m * g.k));
  const float* b = floatArg(info, 2, static_cast<size_t>((g.batch - 1) * g.b_batch_stride + g.k * g.n));
  float* out = floatArg(info, 3, product({g.batch, g.m, g.n}));
  return guarded(info, [&] { batchMatMul(g, a, b, out); });
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::Function::New(env, Version));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("threads", Napi::Function::New(env, Threads));
  exports.Set("stats", Napi::Function::New(env, Stats));
  exports.Set("convolutionPlans", Napi::Function::New(env, ConvolutionPlans));
  exports.Set("releaseCaches", Napi::Function::New(env, ReleaseCaches));
  exports.Set("conv2dForward", Napi::Function::New(env, Conv2dForward));
  exports.Set("conv2dBackwardData", Napi::Function::New(env, Conv2dBackwardData));
  exports.Set("conv2dBackwardWeights", Napi::Function::New(env, Conv2dBackwardWeights));
  exports.Set("binary", Napi::Function::New(env, Binary));
  exports.Set("unary", Napi::Function::New(env, Unary));
  exports.Set("scaledAdd", Napi::Function::New(env, ScaledAdd));
  exports.Set("reduceSum", Napi::Function::New(env, ReduceSum));
  exports.Set("maxPoolForward", Napi::Function::New(env, MaxPoolForward));
  exports.Set("maxPoolBackward", Napi::Function::New(env, MaxPoolBackward));
  exports.Set("batchNormApply", Napi::Function::New(env, BatchNormApply));
  exports.Set("batchNormTrainingForward", Napi::Function::New(env, BatchNormTrainingForward));
  exports.Set("batchNormTrainingBackward", Napi::Function::New(env, BatchNormTrainingBackward));
  exports.Set("batchMatMul", Napi::Function::New(env, BatchMatMul));
  return exports;
}

}  // namespace onednn_addon

static Napi::Object InitOnednnBackend(Napi::Env env, Napi::Object exports) {
  return onednn_addon::Init(env, exports);
}

NODE_API_MODULE(onednn_backend, InitOnednnBackend)
