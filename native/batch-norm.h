// Batch normalisation over the channel axis of NHWC data viewed as [rows, channels]
// (rows = N * H * W). Statistics are accumulated in double precision.
#pragma once

#include <cstdint>

namespace onednn_addon {

// y = (x - mean) * scale / sqrt(variance + epsilon) + offset (tfjs FusedBatchNorm). scale and
// offset may be null (1 and 0).
void batchNormApply(const float* x, const float* mean, const float* variance, const float* scale,
                    const float* offset, float epsilon, int64_t rows, int64_t channels, float* y);

// Training forward: the batch's mean and biased variance per channel, and the normalised
// output (followed by ReLU when `relu`).
void batchNormTrainingForward(const float* x, const float* scale, const float* offset,
                              float epsilon, int64_t rows, int64_t channels, bool relu, float* y,
                              float* mean, float* variance);

// Gradients of batchNormTrainingForward with respect to x, scale and offset, given dy and the
// forward's saved mean and variance. When the forward applied ReLU, pass its output y: dy is
// masked where y <= 0 (otherwise y is null). dmean and dvariance, when not null, are
// gradients arriving at the mean and variance outputs; their contribution is added to dx.
void batchNormTrainingBackward(const float* x, const float* dy, const float* y,
                               const float* scale, const float* mean, const float* variance,
                               const float* dmean, const float* dvariance, float epsilon,
                               int64_t rows, int64_t channels, float* dx, float* dscale,
                               float* doffset);

}  // namespace onednn_addon
