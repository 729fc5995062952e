#include "batch-norm.h"

#include <cmath>
#include <vector>

#include "parallel.h"

namespace onednn_addon {
namespace {

// y[r, c] = (x[r, c] - center[c]) * factor[c] + shift[c], optionally clamped at 0.
ONEDNN_ADDON_CLONES void normaliseRows(const float* x, const float* center, const float* factor,
                                       const float* shift, int64_t count, int64_t channels,
                                       bool relu, float* y) {
  for (int64_t r = 0; r < count; r++) {
    const float* in = x + r * channels;
    float* out = y + r * channels;
    if (relu) {
      for (int64_t c = 0; c < channels; c++) {
        float v = (in[c] - center[c]) * factor[c] + shift[c];
        out[c] = v < 0.0f ? 0.0f : v;
      }
    } else {
      for (int64_t c = 0; c < channels; c++) out[c] = (in[c] - center[c]) * factor[c] + shift[c];
    }
  }
}

void normaliseParallel(const float* x, const float* center, const float* factor,
                       const float* shift, int64_t rows, int64_t channels, bool relu, float* y) {
  int64_t min_rows = std::max<int64_t>(1, kMinElementsPerThread / std::max<int64_t>(1, channels));
  parallelChunks(rows, min_rows, [&](int64_t begin, int64_t end) {
    normaliseRows(x + begin * channels, center, factor, shift, end - begin, channels, relu,
                  y + begin * channels);
  });
}

// sums[c] += x - pivot, squares[c] += (x - pivot)^2 over `count` rows. Shifting by a sample
// (the first row) keeps the one-pass variance accurate when |mean| >> std.
ONEDNN_ADDON_CLONES void accumulateMoments(const float* x, const float* pivot, int64_t count,
                                           int64_t channels, double* sums, double* squares) {
  for (int64_t r = 0; r < count; r++) {
    const float* in = x + r * channels;
    for (int64_t c = 0; c < channels; c++) {
      double d = static_cast<double>(in[c]) - static_cast<double>(pivot[c]);
      sums[c] += d;
      squares[c] += d * d;
    }
  }
}

// sum_dy[c] += g, sum_dy_xc[c] += g * (x - mean) with g = dy masked by y > 0 when y is given.
ONEDNN_ADDON_CLONES void accumulateGradSums(const float* x, const float* dy, const float* y,
                                            const float* mean, int64_t count, int64_t channels,
                                            double* sum_dy, double* sum_dy_xc) {
  for (int64_t r = 0; r < count; r++) {
    const float* in = x + r * channels;
    const float* g = dy + r * channels;
    const float* out = y == nullptr ? nullptr : y + r * channels;
    for (int64_t c = 0; c < channels; c++) {
      double grad = out != nullptr && !(out[c] > 0.0f) ? 0.0 : static_cast<double>(g[c]);
      sum_dy[c] += grad;
      sum_dy_xc[c] += grad * (static_cast<double>(in[c]) - static_cast<double>(mean[c]));
    }
  }
}

// dx = k1[c] * g - k2[c] * (x - mean[c]) - k3[c], with g masked as above.
ONEDNN_ADDON_CLONES void gradRows(const float* x, const float* dy, const float* y,
                                  const float* mean, const float* k1, const float* k2,
                                  const float* k3, int64_t count, int64_t channels, float* dx) {
  for (int64_t r = 0; r < count; r++) {
    const float* in = x + r * channels;
    const float* g = dy + r * channels;
    const float* out = y == nullptr ? nullptr : y + r * channels;
    float* d = dx + r * channels;
    for (int64_t c = 0; c < channels; c++) {
      float grad = out != nullptr && !(out[c] > 0.0f) ? 0.0f : g[c];
      d[c] = k1[c] * grad - k2[c] * (in[c] - mean[c]) - k3[c];
    }
  }
}

// Runs body(begin, end, partial_a, partial_b) on row slices with per-thread double
// accumulators of `channels` each, then sums the partials into a and b.
template <typename Body>
void columnSums(int64_t rows, int64_t channels, std::vector<double>& a, std::vector<double>& b,
                Body&& body) {
  int threads = threadsFor(rows * channels, kMinElementsPerThread);
  std::vector<double> pa(static_cast<size_t>(threads) * channels, 0.0);
  std::vector<double> pb(static_cast<size_t>(threads) * channels, 0.0);
  parallelSlices(rows, threads, [&](int t, int64_t begin, int64_t end) {
    body(begin, end, pa.data() + t * channels, pb.data() + t * channels);
  });
  a.assign(static_cast<size_t>(channels), 0.0);
  b.assign(static_cast<size_t>(channels), 0.0);
  for (int t = 0; t < threads; t++) {
    for (int64_t c = 0; c < channels; c++) {
      a[c] += pa[static_cast<size_t>(t) * channels + c];
      b[c] += pb[static_cast<size_t>(t) * channels + c];
    }
  }
}

}  // namespace

void batchNormApply(const float* x, const float* mean, const float* variance, const float* scale,
                    const float* offset, float epsilon, int64_t rows, int64_t channels, float* y) {
  std::vector<float> factor(static_cast<size_t>(channels)), shift(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; c++) {
    double s = scale == nullptr ? 1.0 : scale[c];
    factor[c] = static_cast<float>(s / std::sqrt(static_cast<double>(variance[c]) + epsilon));
    shift[c] = offset == nullptr ? 0.0f : offset[c];
  }
  normaliseParallel(x, mean, factor.data(), shift.data(), rows, channels, false, y);
}

void batchNormTrainingForward(const float* x, const float* scale, const float* offset,
                              float epsilon, int64_t rows, int64_t channels, bool relu, float* y,
                              float* mean, float* variance) {
  std::vector<double> sums, squares;
  const float* pivot = x;  // the first row
  columnSums(rows, channels, sums, squares, [&](int64_t begin, int64_t end, double* s, double* q) {
    accumulateMoments(x + begin * channels, pivot, end - begin, channels, s, q);
  });
  std::vector<float> factor(static_cast<size_t>(channels)), shift(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; c++) {
    double shifted_mean = sums[c] / rows;
    double var = std::max(0.0, squares[c] / rows - shifted_mean * shifted_mean);
    mean[c] = static_cast<float>(pivot[c] + shifted_mean);
    variance[c] = static_cast<float>(var);
    double s = scale == nullptr ? 1.0 : scale[c];
    factor[c] = static_cast<float>(s / std::sqrt(var + epsilon));
    shift[c] = offset == nullptr ? 0.0f : offset[c];
  }
  normaliseParallel(x, mean, factor.data(), shift.data(), rows, channels, relu, y);
}

void batchNormTrainingBackward(const float* x, const float* dy, const float* y,
                               const float* scale, const float* mean, const float* variance,
                               const float* dmean, const float* dvariance, float epsilon,
                               int64_t rows, int64_t channels, float* dx, float* dscale,
                               float* doffset) {
  std::vector<double> sum_dy, sum_dy_xc;
  columnSums(rows, channels, sum_dy, sum_dy_xc, [&](int64_t begin, int64_t end, double* a, double* b) {
    accumulateGradSums(x + begin * channels, dy + begin * channels,
                       y == nullptr ? nullptr : y + begin * channels, mean, end - begin, channels,
                       a, b);
  });
  std::vector<float> k1(static_cast<size_t>(channels)), k2(static_cast<size_t>(channels)),
      k3(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; c++) {
    double rstd = 1.0 / std::sqrt(static_cast<double>(variance[c]) + epsilon);
    double s = scale == nullptr ? 1.0 : scale[c];
    doffset[c] = static_cast<float>(sum_dy[c]);
    dscale[c] = static_cast<float>(sum_dy_xc[c] * rstd);
    // dx = s * rstd * (g - mean(g) - xhat * mean(g * xhat)), xhat = (x - mean) * rstd.
    k1[c] = static_cast<float>(s * rstd);
    // Direct uses of the outputs: d mean / dx = 1 / rows, d variance / dx = 2 (x - mean) / rows.
    double extra_mean = dmean == nullptr ? 0.0 : dmean[c];
    double extra_var = dvariance == nullptr ? 0.0 : dvariance[c];
    k2[c] = static_cast<float>((s * rstd * rstd * rstd * sum_dy_xc[c] - 2.0 * extra_var) / rows);
    k3[c] = static_cast<float>((s * rstd * sum_dy[c] - extra_mean) / rows);
  }
  int64_t min_rows = std::max<int64_t>(1, kMinElementsPerThread / std::max<int64_t>(1, channels));
  parallelChunks(rows, min_rows, [&](int64_t begin, int64_t end) {
    gradRows(x + begin * channels, dy + begin * channels,
             y == nullptr ? nullptr : y + begin * channels, mean, k1.data(), k2.data(), k3.data(),
             end - begin, channels, dx + begin * channels);
  });
}

}  // namespace onednn_addon
