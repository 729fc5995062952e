#include "reduction.h"

#include <vector>

#include "parallel.h"

namespace onednn_addon {
namespace {

// acc[j] += sum over rows of x[row * inner + j], for rows [0, count).
ONEDNN_ADDON_CLONES void accumulateColumns(const float* x, int64_t count, int64_t inner,
                                           double* acc) {
  for (int64_t r = 0; r < count; r++) {
    const float* row = x + r * inner;
    for (int64_t j = 0; j < inner; j++) acc[j] += static_cast<double>(row[j]);
  }
}

// Sum of x[0, n), with eight independent accumulators so the loop vectorises without
// reassociating any single accumulator's additions.
ONEDNN_ADDON_CLONES double sumContiguous(const float* x, int64_t n) {
  double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; k++) lanes[k] += static_cast<double>(x[i + k]);
  }
  double total = 0;
  for (; i < n; i++) total += static_cast<double>(x[i]);
  for (int k = 0; k < 8; k++) total += lanes[k];
  return total;
}

// Reduces one [reduce, inner] slab into out[inner]; when the slab is the whole input the
// reduce rows are split between threads, each with its own accumulators.
void reduceSlab(const float* x, float* out, int64_t reduce, int64_t inner, double scale,
                bool parallel_rows) {
  int threads = parallel_rows ? threadsFor(reduce * inner, kMinElementsPerThread) : 1;
  std::vector<double> partial(static_cast<size_t>(threads) * inner, 0.0);
  parallelSlices(reduce, threads, [&](int t, int64_t begin, int64_t end) {
    double* acc = partial.data() + t * inner;
    if (inner == 1) {
      acc[0] = sumContiguous(x + begin, end - begin);
    } else {
      accumulateColumns(x + begin * inner, end - begin, inner, acc);
    }
  });
  for (int64_t j = 0; j < inner; j++) {
    double total = 0;
    for (int t = 0; t < threads; t++) total += partial[static_cast<size_t>(t) * inner + j];
    out[j] = static_cast<float>(total * scale);
  }
}

}  // namespace

void reduceSum(const float* x, float* out, int64_t outer, int64_t reduce, int64_t inner,
               double scale) {
  if (outer == 1) {
    reduceSlab(x, out, reduce, inner, scale, true);
    return;
  }
  int64_t slab = reduce * inner;
  int64_t min_slabs = std::max<int64_t>(1, kMinElementsPerThread / std::max<int64_t>(1, slab));
  parallelChunks(outer, min_slabs, [&](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; o++) {
      reduceSlab(x + o * slab, out + o * inner, reduce, inner, scale, false);
    }
  });
}

}  // namespace onednn_addon
