#include "matmul.h"

#include <dnnl.hpp>

namespace onednn_addon {

void batchMatMul(const MatMulGeometry& g, const float* a, const float* b, float* out) {
  // Row-major leading dimensions of the matrices as stored.
  const int64_t lda = g.transpose_a ? g.m : g.k;
  const int64_t ldb = g.transpose_b ? g.k : g.n;
  for (int64_t i = 0; i < g.batch; i++) {
    dnnl::error::wrap_c_api(
        dnnl_sgemm(g.transpose_a ? 'T' : 'N', g.transpose_b ? 'T' : 'N', g.m, g.n, g.k, 1.0f,
                   a + i * g.a_batch_stride, lda, b + i * g.b_batch_stride, ldb, 0.0f,
                   out + i * g.m * g.n, g.n),
        "sgemm failed");
  }
}

}  // namespace onednn_addon
