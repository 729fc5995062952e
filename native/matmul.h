// Batched matrix products for tfjs's BatchMatMul: out[b] = op(a[b]) * op(b[b]) with op an
// optional transpose, through oneDNN's sgemm (row-major). A batch stride of 0 broadcasts that
// operand over the batch.
#pragma once

#include <cstdint>

namespace onednn_addon {

struct MatMulGeometry {
  int64_t batch, m, n, k;
  int64_t a_batch_stride, b_batch_stride;  // in elements; 0 = same matrix for every batch
  bool transpose_a, transpose_b;
};

void batchMatMul(const MatMulGeometry& g, const float* a, const float* b, float* out);

}  // namespace onednn_addon
