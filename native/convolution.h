// 2-D convolutions on NHWC activations and HWIO filters (TensorFlow's layouts) with oneDNN:
// forward (optional bias and ReLU), gradient with respect to the input, and with respect to
// the filter. oneDNN chooses the filter's internal layout (format_tag::any) because plain HWIO
// filters make it fall back to a GEMM path 1.3-1.9x slower; filters are reordered per call.
#pragma once

#include <cstdint>
#include <cstddef>
#include <string>
#include <vector>

namespace onednn_addon {

// Shapes and padding of one convolution, as TensorFlow.js's Conv2DInfo describes it.
// Dilations are TensorFlow's (1 = dense); pad_bottom/right may be negative when trailing
// input rows are never read.
struct ConvGeometry {
  int64_t batch, in_height, in_width, in_channels;
  int64_t out_height, out_width, out_channels;
  int64_t filter_height, filter_width;
  int64_t stride_height, stride_width;
  int64_t dilation_height, dilation_width;
  int64_t pad_top, pad_left, pad_bottom, pad_right;
};

constexpr int kConvGeometryFields = 17;

ConvGeometry convGeometryFrom(const int32_t* fields);

// y[N,OH,OW,OC] = conv(x[N,IH,IW,IC], w[KH,KW,IC,OC]) (+ bias[OC]) (then ReLU).
void convolutionForward(const ConvGeometry& g, const float* x, const float* w, const float* bias,
                        bool relu, float* y);

// dx[N,IH,IW,IC] from dy[N,OH,OW,OC] and w[KH,KW,IC,OC].
void convolutionBackwardData(const ConvGeometry& g, const float* dy, const float* w, float* dx);

// dw[KH,KW,IC,OC] from x[N,IH,IW,IC] and dy[N,OH,OW,OC].
void convolutionBackwardWeights(const ConvGeometry& g, const float* x, const float* dy, float* dw);

// Number of cached primitive sets (one per distinct shape and direction).
size_t convolutionCacheSize();

// One line per cached plan: direction, geometry (after filter cropping) and oneDNN kernel.
std::vector<std::string> describeConvolutionPlans();
void clearConvolutionCache();

}  // namespace onednn_addon
