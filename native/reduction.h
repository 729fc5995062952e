// Reductions over one contiguous run of axes: x viewed as [outer, reduce, inner] is reduced
// over its middle dimension to out[outer, inner]. Reducing NHWC over [0, 1, 2] (batch-norm
// statistics, bias gradients) is outer = 1, inner = C; a global average pool over [1, 2] is
// outer = N, inner = C; a last-axis reduction is inner = 1.
#pragma once

#include <cstdint>

namespace onednn_addon {

// out = scale * sum over the middle dimension, accumulated in double precision (as the cpu
// backend's JavaScript numbers do) and rounded once.
void reduceSum(const float* x, float* out, int64_t outer, int64_t reduce, int64_t inner,
               double scale);

}  // namespace onednn_addon
