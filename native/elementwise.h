// Element-wise kernels: binary operations with NumPy broadcasting expressed as strides, and
// unary operations. Semantics follow TensorFlow.js's cpu kernels, NaN handling included.
#pragma once

#include <cstdint>

namespace onednn_addon {

enum class BinaryOp : int {
  Add = 0,
  Sub = 1,
  Mul = 2,
  Div = 3,
  SquaredDifference = 4,
  Maximum = 5,
  Minimum = 6,
  // out = a, broadcast to the output shape (Tile and BroadcastTo); b is ignored.
  CopyFirst = 7,
};

constexpr int kMaxBroadcastRank = 6;

// out[i0..ik] = op(a[sum i_d * a_strides[d]], b[sum i_d * b_strides[d]]), out contiguous with
// dims[rank]. Strides are in elements; a broadcast dimension has stride 0, and the innermost
// stride of each input must be 0 or 1.
void binaryBroadcast(BinaryOp op, int rank, const int64_t* dims, const int64_t* a_strides,
                     const int64_t* b_strides, const float* a, const float* b, float* out);

enum class UnaryOp : int {
  Relu = 0,
  Step = 1,  // x > 0 ? 1 : alpha, NaN stays NaN
  Neg = 2,
  Square = 3,
  Sqrt = 4,
  Rsqrt = 5,
  Abs = 6,
  Reciprocal = 7,
};

void unary(UnaryOp op, const float* x, float* out, int64_t n, float alpha);

// out = x + alpha * g, rounded after the product and after the sum (no fused multiply-add),
// which is what tfjs's add(x, mul(g, alpha)) computes. out may be x itself.
void scaledAdd(const float* x, const float* g, float alpha, float* out, int64_t n);

}  // namespace onednn_addon
