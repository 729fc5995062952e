#include "convolution.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>

#include "dnnl-context.h"

namespace onednn_addon {

using dnnl::algorithm;
using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

ConvGeometry convGeometryFrom(const int32_t* f) {
  return ConvGeometry{f[0], f[1], f[2],  f[3],  f[4],  f[5],  f[6],  f[7], f[8],
                      f[9], f[10], f[11], f[12], f[13], f[14], f[15], f[16]};
}

namespace {

enum class Direction : int { Forward = 0, BackwardData = 1, BackwardWeights = 2 };

// Everything a call needs besides the data pointers, built once per distinct shape.
struct ConvPlan {
  memory::desc src, dst, user_weights, bias;
  memory::desc weights;  // the layout the primitive wants (forward / backward data)
  dnnl::primitive primitive;
  dnnl::reorder weights_reorder;  // user HWIO <-> primitive layout, when they differ
  bool reorder_needed = false;
  size_t scratchpad_bytes = 0;
  std::string implementation;  // oneDNN's name for the kernel chosen
};

struct Descs {
  memory::desc src, dst, user_weights, any_weights, bias;
  memory::dims strides, dilates, pad_l, pad_r;
};

Descs descsFor(const ConvGeometry& g, bool with_bias) {
  Descs d;
  d.src = memory::desc({g.batch, g.in_channels, g.in_height, g.in_width}, dt::f32, tag::nhwc);
  d.dst = memory::desc({g.batch, g.out_channels, g.out_height, g.out_width}, dt::f32, tag::nhwc);
  memory::dims wdims = {g.out_channels, g.in_channels, g.filter_height, g.filter_width};
  d.user_weights = memory::desc(wdims, dt::f32, tag::hwio);
  d.any_weights = memory::desc(wdims, dt::f32, tag::any);
  if (with_bias) d.bias = memory::desc({g.out_channels}, dt::f32, tag::x);
  d.strides = {g.stride_height, g.stride_width};
  // oneDNN counts dilation as the number of skipped pixels, TensorFlow as the step.
  d.dilates = {g.dilation_height - 1, g.dilation_width - 1};
  d.pad_l = {g.pad_top, g.pad_left};
  d.pad_r = {g.pad_bottom, g.pad_right};
  return d;
}

dnnl::primitive_attr userScratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::convolution_forward::desc forwardOpDesc(const Descs& d, bool with_bias) {
  return with_bias
      ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                        algorithm::convolution_direct, d.src, d.any_weights, d.bias,
                                        d.dst, d.strides, d.dilates, d.pad_l, d.pad_r)
      : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                        algorithm::convolution_direct, d.src, d.any_weights, d.dst,
                                        d.strides, d.dilates, d.pad_l, d.pad_r);
}

dnnl::primitive_attr forwardAttr(bool relu) {
  auto attr = userScratchpad();
  if (relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, algorithm::eltwise_relu, 0.0f, 0.0f);
    attr.set_post_ops(ops);
  }
  return attr;
}

// oneDNN's first choice for the forward pass: the hint that backward descriptors need. (A
// primitive_desc iterator points at its op descriptor, so one that is iterated with
// next_impl() must be built where that descriptor outlives it, as buildForward does.)
dnnl::convolution_forward::primitive_desc forwardHint(const Descs& d) {
  auto desc = forwardOpDesc(d, false);
  return dnnl::convolution_forward::primitive_desc(desc, forwardAttr(false), cpuEngine());
}

// Walks oneDNN's implementation list (best first, by its own ranking) to the first whose name
// `wanted` accepts; returns oneDNN's first choice when none does. The choice depends only on
// the CPU and the shape, so every process picks the same kernel (no timing-based tuning that
// could make runs differ in rounding).
template <typename PD, typename Rebuild, typename Wanted>
PD preferImplementation(PD pd, Rebuild rebuild, Wanted wanted) {
  do {
    std::string name = pd.impl_info_str();
    if (name.rfind("ref", 0) != 0 && wanted(name)) return pd;
  } while (pd.next_impl());
  return rebuild();
}

bool contains(const std::string& name, const char* part) { return name.find(part) != std::string::npos; }

void attachWeightsReorder(ConvPlan& plan, bool to_primitive) {
  plan.reorder_needed = plan.weights != plan.user_weights;
  if (!plan.reorder_needed) return;
  auto& engine = cpuEngine();
  plan.weights_reorder = to_primitive
      ? dnnl::reorder(dnnl::reorder::primitive_desc(engine, plan.user_weights, engine, plan.weights))
      : dnnl::reorder(dnnl::reorder::primitive_desc(engine, plan.weights, engine, plan.user_weights));
}

std::unique_ptr<ConvPlan> buildForward(const ConvGeometry& g, bool with_bias, bool relu) {
  Descs d = descsFor(g, with_bias);
  // On outputs a few pixels wide the brgemm kernels' blocking is mostly padding: the direct
  // JIT kernels ran 2x faster on 3x3 and 2x2 maps (ResNet-18's last stages) on AVX-512.
  bool narrow = g.out_width <= 4;
  auto desc = forwardOpDesc(d, with_bias);
  auto attr = forwardAttr(relu);
  auto build = [&] { return dnnl::convolution_forward::primitive_desc(desc, attr, cpuEngine()); };
  auto pd = preferImplementation(build(), build, [&](const std::string& name) {
    return !narrow || !contains(name, "brgconv");
  });
  auto plan = std::make_unique<ConvPlan>();
  plan->src = pd.src_desc();
  plan->dst = pd.dst_desc();
  plan->bias = d.bias;
  plan->user_weights = d.user_weights;
  plan->weights = pd.weights_desc();
  plan->primitive = dnnl::convolution_forward(pd);
  plan->implementation = pd.impl_info_str();
  plan->scratchpad_bytes = pd.scratchpad_desc().get_size();
  attachWeightsReorder(*plan, true);
  return plan;
}

std::unique_ptr<ConvPlan> buildBackwardData(const ConvGeometry& g) {
  Descs d = descsFor(g, false);
  auto hint = forwardHint(d);
  dnnl::convolution_backward_data::desc desc(algorithm::convolution_direct, d.src, d.any_weights,
                                             d.dst, d.strides, d.dilates, d.pad_l, d.pad_r);
  auto build = [&] {
    return dnnl::convolution_backward_data::primitive_desc(desc, userScratchpad(), cpuEngine(), hint);
  };
  // With very few input channels (a stem over grey images) the direct JIT kernel ran 3.7x
  // slower than the GEMM-based one.
  bool few_channels = g.in_channels < 8;
  auto pd = preferImplementation(build(), build, [&](const std::string& name) {
    return !few_channels || contains(name, "gemm");
  });
  auto plan = std::make_unique<ConvPlan>();
  plan->src = pd.diff_src_desc();
  plan->dst = pd.diff_dst_desc();
  plan->user_weights = d.user_weights;
  plan->weights = pd.weights_desc();
  plan->primitive = dnnl::convolution_backward_data(pd);
  plan->implementation = pd.impl_info_str();
  plan->scratchpad_bytes = pd.scratchpad_desc().get_size();
  attachWeightsReorder(*plan, true);
  return plan;
}

std::unique_ptr<ConvPlan> buildBackwardWeights(const ConvGeometry& g) {
  Descs d = descsFor(g, false);
  auto hint = forwardHint(d);
  dnnl::convolution_backward_weights::desc desc(algorithm::convolution_direct, d.src,
                                                d.any_weights, d.dst, d.strides, d.dilates,
                                                d.pad_l, d.pad_r);
  dnnl::convolution_backward_weights::primitive_desc pd(desc, userScratchpad(), cpuEngine(), hint);
  auto plan = std::make_unique<ConvPlan>();
  plan->src = pd.src_desc();
  plan->dst = pd.diff_dst_desc();
  plan->user_weights = d.user_weights;
  plan->weights = pd.diff_weights_desc();
  plan->primitive = dnnl::convolution_backward_weights(pd);
  plan->implementation = pd.impl_info_str();
  plan->scratchpad_bytes = pd.scratchpad_desc().get_size();
  attachWeightsReorder(*plan, false);
  return plan;
}

// Plans keyed by direction, flags and geometry. A training run sees a few dozen shapes; the
// cap only guards against a process that feeds ever-changing shapes.
constexpr size_t kMaxCachedPlans = 512;
std::unordered_map<std::string, std::unique_ptr<ConvPlan>> plans;

std::string planKey(Direction dir, const ConvGeometry& g, bool with_bias, bool relu) {
  std::string key(sizeof(ConvGeometry) + 3, '\0');
  key[0] = static_cast<char>(dir);
  key[1] = with_bias ? 1 : 0;
  key[2] = relu ? 1 : 0;
  std::memcpy(&key[3], &g, sizeof(ConvGeometry));
  return key;
}

ConvPlan& planFor(Direction dir, const ConvGeometry& g, bool with_bias, bool relu) {
  std::string key = planKey(dir, g, with_bias, relu);
  auto found = plans.find(key);
  if (found != plans.end()) return *found->second;
  if (plans.size() >= kMaxCachedPlans) plans.clear();
  std::unique_ptr<ConvPlan> plan;
  switch (dir) {
    case Direction::Forward: plan = buildForward(g, with_bias, relu); break;
    case Direction::BackwardData: plan = buildBackwardData(g); break;
    case Direction::BackwardWeights: plan = buildBackwardWeights(g); break;
  }
  return *plans.emplace(std::move(key), std::move(plan)).first->second;
}

memory wrap(const memory::desc& desc, const void* data) {
  return memory(desc, cpuEngine(), const_cast<void*>(data));
}

memory scratchpadFor(const ConvPlan& plan) {
  void* data = sharedBuffer(BufferRole::Scratchpad).get(plan.scratchpad_bytes);
  return memory(memory::desc({static_cast<memory::dim>(plan.scratchpad_bytes)}, dt::u8, tag::x),
                cpuEngine(), data);
}

// The filter in the layout the primitive reads: the caller's array, or a reordered copy.
memory weightsForPrimitive(ConvPlan& plan, const float* w) {
  memory user = wrap(plan.user_weights, w);
  if (!plan.reorder_needed) return user;
  void* data = sharedBuffer(BufferRole::Weights).get(plan.weights.get_size());
  memory reordered(plan.weights, cpuEngine(), data);
  plan.weights_reorder.execute(cpuStream(), user, reordered);
  return reordered;
}

// Filter taps [lo, hi] along one axis that read real input for at least one output position;
// taps outside only ever meet padding, contribute nothing forward and get zero gradient.
struct TapRange {
  int64_t lo, hi;
};

TapRange usefulTaps(int64_t in, int64_t out, int64_t taps, int64_t stride, int64_t dilation,
                    int64_t pad) {
  TapRange range{taps, -1};
  for (int64_t t = 0; t < taps; t++) {
    // Output positions o with 0 <= o * stride - pad + t * dilation < in.
    int64_t first = pad - t * dilation;
    int64_t last = in - 1 + pad - t * dilation;
    int64_t o_min = first <= 0 ? 0 : (first + stride - 1) / stride;
    int64_t o_max = last < 0 ? -1 : std::min(out - 1, last / stride);
    if (o_min <= o_max) {
      range.lo = std::min(range.lo, t);
      range.hi = std::max(range.hi, t);
    }
  }
  return range;
}

// A convolution whose filter is cropped to its useful taps (for small inputs with large
// padding, e.g. a 3x3 filter over a 1x1 map, where oneDNN would multiply padding by 8 of 9
// taps), and how to map filters between the full and the cropped layout.
struct Trim {
  ConvGeometry g;  // geometry with the cropped filter
  TapRange rows, cols;
  bool active = false;
};

Trim trimmed(const ConvGeometry& full) {
  Trim t{full, usefulTaps(full.in_height, full.out_height, full.filter_height, full.stride_height,
                          full.dilation_height, full.pad_top),
         usefulTaps(full.in_width, full.out_width, full.filter_width, full.stride_width,
                    full.dilation_width, full.pad_left)};
  bool all_rows = t.rows.lo == 0 && t.rows.hi == full.filter_height - 1;
  bool all_cols = t.cols.lo == 0 && t.cols.hi == full.filter_width - 1;
  bool none = t.rows.hi < t.rows.lo || t.cols.hi < t.cols.lo;
  if ((all_rows && all_cols) || none) return t;
  t.active = true;
  ConvGeometry& g = t.g;
  g.filter_height = t.rows.hi - t.rows.lo + 1;
  g.filter_width = t.cols.hi - t.cols.lo + 1;
  g.pad_top = full.pad_top - t.rows.lo * full.dilation_height;
  g.pad_left = full.pad_left - t.cols.lo * full.dilation_width;
  g.pad_bottom = (g.out_height - 1) * g.stride_height + (g.filter_height - 1) * g.dilation_height +
                 1 - g.in_height - g.pad_top;
  g.pad_right = (g.out_width - 1) * g.stride_width + (g.filter_width - 1) * g.dilation_width + 1 -
                g.in_width - g.pad_left;
  return t;
}

// Copies the useful taps of an HWIO filter into `cropped`, or (scatter) writes `cropped` back
// into a full HWIO filter whose other taps are zeroed.
void copyTaps(const Trim& t, const ConvGeometry& full, const float* from, float* to, bool scatter) {
  const size_t block = static_cast<size_t>(full.in_channels * full.out_channels);
  if (scatter) {
    std::memset(to, 0, sizeof(float) * block * full.filter_height * full.filter_width);
  }
  for (int64_t r = t.rows.lo; r <= t.rows.hi; r++) {
    for (int64_t c = t.cols.lo; c <= t.cols.hi; c++) {
      size_t full_index = static_cast<size_t>(r * full.filter_width + c) * block;
      size_t crop_index =
          static_cast<size_t>((r - t.rows.lo) * t.g.filter_width + (c - t.cols.lo)) * block;
      if (scatter) {
        std::memcpy(to + full_index, from + crop_index, sizeof(float) * block);
      } else {
        std::memcpy(to + crop_index, from + full_index, sizeof(float) * block);
      }
    }
  }
}

size_t croppedFilterBytes(const Trim& t) {
  return sizeof(float) * static_cast<size_t>(t.g.filter_height * t.g.filter_width *
                                             t.g.in_channels * t.g.out_channels);
}

// The filter the (possibly cropped) primitive reads, in HWIO.
const float* croppedFilter(const Trim& t, const ConvGeometry& full, const float* w) {
  if (!t.active) return w;
  auto* cropped = static_cast<float*>(sharedBuffer(BufferRole::Temporary).get(croppedFilterBytes(t)));
  copyTaps(t, full, w, cropped, false);
  return cropped;
}

}  // namespace

void convolutionForward(const ConvGeometry& full, const float* x, const float* w, const float* bias,
                        bool relu, float* y) {
  Trim t = trimmed(full);
  const float* filter = croppedFilter(t, full, w);
  ConvPlan& plan = planFor(Direction::Forward, t.g, bias != nullptr, relu);
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, wrap(plan.src, x)},
      {DNNL_ARG_WEIGHTS, weightsForPrimitive(plan, filter)},
      {DNNL_ARG_DST, wrap(plan.dst, y)},
      {DNNL_ARG_SCRATCHPAD, scratchpadFor(plan)},
  };
  if (bias != nullptr) args.emplace(DNNL_ARG_BIAS, wrap(plan.bias, bias));
  plan.primitive.execute(cpuStream(), args);
  cpuStream().wait();
}

void convolutionBackwardData(const ConvGeometry& full, const float* dy, const float* w, float* dx) {
  Trim t = trimmed(full);
  const float* filter = croppedFilter(t, full, w);
  ConvPlan& plan = planFor(Direction::BackwardData, t.g, false, false);
  plan.primitive.execute(cpuStream(), {
                                          {DNNL_ARG_DIFF_DST, wrap(plan.dst, dy)},
                                          {DNNL_ARG_WEIGHTS, weightsForPrimitive(plan, filter)},
                                          {DNNL_ARG_DIFF_SRC, wrap(plan.src, dx)},
                                          {DNNL_ARG_SCRATCHPAD, scratchpadFor(plan)},
                                      });
  cpuStream().wait();
}

void convolutionBackwardWeights(const ConvGeometry& full, const float* x, const float* dy,
                                float* dw) {
  Trim t = trimmed(full);
  float* target = t.active
      ? static_cast<float*>(sharedBuffer(BufferRole::Temporary).get(croppedFilterBytes(t)))
      : dw;
  ConvPlan& plan = planFor(Direction::BackwardWeights, t.g, false, false);
  memory user = wrap(plan.user_weights, target);
  memory computed = plan.reorder_needed
      ? memory(plan.weights, cpuEngine(),
               sharedBuffer(BufferRole::Weights).get(plan.weights.get_size()))
      : user;
  plan.primitive.execute(cpuStream(), {
                                          {DNNL_ARG_SRC, wrap(plan.src, x)},
                                          {DNNL_ARG_DIFF_DST, wrap(plan.dst, dy)},
                                          {DNNL_ARG_DIFF_WEIGHTS, computed},
                                          {DNNL_ARG_SCRATCHPAD, scratchpadFor(plan)},
                                      });
  if (plan.reorder_needed) plan.weights_reorder.execute(cpuStream(), computed, user);
  cpuStream().wait();
  if (t.active) copyTaps(t, full, target, dw, true);
}

size_t convolutionCacheSize() { return plans.size(); }

std::vector<std::string> describeConvolutionPlans() {
  static const char* kDirections[] = {"forward", "backward-data", "backward-weights"};
  std::vector<std::string> lines;
  for (const auto& [key, plan] : plans) {
    ConvGeometry g;
    std::memcpy(&g, key.data() + 3, sizeof(ConvGeometry));
    char line[256];
    std::snprintf(line, sizeof line, "%s n%lld %lldx%lldx%lld -> %lldx%lldx%lld k%lldx%lld s%lld: %s",
                  kDirections[static_cast<int>(key[0])], (long long)g.batch, (long long)g.in_height,
                  (long long)g.in_width, (long long)g.in_channels, (long long)g.out_height,
                  (long long)g.out_width, (long long)g.out_channels, (long long)g.filter_height,
                  (long long)g.filter_width, (long long)g.stride_height, plan->implementation.c_str());
    lines.emplace_back(line);
  }
  return lines;
}

void clearConvolutionCache() { plans.clear(); }

}  // namespace onednn_addon
