// 2-D max pooling on NHWC data and its gradient, with TensorFlow.js's semantics: padding is
// skipped (never a candidate), the first maximum in window order (rows, then columns) wins
// ties, and NaN never wins. The gradient recomputes each window's arg-max from the input
// instead of keeping indices from the forward pass, as tfjs's MaxPoolGrad kernel does.
#pragma once

#include <cstdint>

namespace onednn_addon {

struct PoolGeometry {
  int64_t batch, in_height, in_width, channels;
  int64_t out_height, out_width;
  int64_t filter_height, filter_width;
  int64_t stride_height, stride_width;
  int64_t pad_top, pad_left;
};

constexpr int kPoolGeometryFields = 12;

PoolGeometry poolGeometryFrom(const int32_t* fields);

void maxPoolForward(const PoolGeometry& g, const float* x, float* y);

// dx = sum over windows of dy routed to each window's arg-max; dx is fully overwritten.
void maxPoolBackward(const PoolGeometry& g, const float* x, const float* dy, float* dx);

}  // namespace onednn_addon
