#include "convolution.h"

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

// Forward descriptor shared by the forward plan and as the hint for the backward ones.
dnnl::convolution_forward::primitive_desc forwardDesc(const Descs& d, bool with_bias, bool relu) {
  auto desc = with_bias
      ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                        algorithm::convolution_direct, d.src, d.any_weights, d.bias,
                                        d.dst, d.strides, d.dilates, d.pad_l, d.pad_r)
      : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                        algorithm::convolution_direct, d.src, d.any_weights, d.dst,
                                        d.strides, d.dilates, d.pad_l, d.pad_r);
  auto attr = userScratchpad();
  if (relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, algorithm::eltwise_relu, 0.0f, 0.0f);
    attr.set_post_ops(ops);
  }
  return dnnl::convolution_forward::primitive_desc(desc, attr, cpuEngine());
}

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
  auto pd = forwardDesc(d, with_bias, relu);
  auto plan = std::make_unique<ConvPlan>();
  plan->src = pd.src_desc();
  plan->dst = pd.dst_desc();
  plan->bias = d.bias;
  plan->user_weights = d.user_weights;
  plan->weights = pd.weights_desc();
  plan->primitive = dnnl::convolution_forward(pd);
  plan->scratchpad_bytes = pd.scratchpad_desc().get_size();
  attachWeightsReorder(*plan, true);
  return plan;
}

std::unique_ptr<ConvPlan> buildBackwardData(const ConvGeometry& g) {
  Descs d = descsFor(g, false);
  auto hint = forwardDesc(d, false, false);
  dnnl::convolution_backward_data::desc desc(algorithm::convolution_direct, d.src, d.any_weights,
                                             d.dst, d.strides, d.dilates, d.pad_l, d.pad_r);
  dnnl::convolution_backward_data::primitive_desc pd(desc, userScratchpad(), cpuEngine(), hint);
  auto plan = std::make_unique<ConvPlan>();
  plan->src = pd.diff_src_desc();
  plan->dst = pd.diff_dst_desc();
  plan->user_weights = d.user_weights;
  plan->weights = pd.weights_desc();
  plan->primitive = dnnl::convolution_backward_data(pd);
  plan->scratchpad_bytes = pd.scratchpad_desc().get_size();
  attachWeightsReorder(*plan, true);
  return plan;
}

std::unique_ptr<ConvPlan> buildBackwardWeights(const ConvGeometry& g) {
  Descs d = descsFor(g, false);
  auto hint = forwardDesc(d, false, false);
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

}  // namespace

void convolutionForward(const ConvGeometry& g, const float* x, const float* w, const float* bias,
                        bool relu, float* y) {
  ConvPlan& plan = planFor(Direction::Forward, g, bias != nullptr, relu);
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, wrap(plan.src, x)},
      {DNNL_ARG_WEIGHTS, weightsForPrimitive(plan, w)},
      {DNNL_ARG_DST, wrap(plan.dst, y)},
      {DNNL_ARG_SCRATCHPAD, scratchpadFor(plan)},
  };
  if (bias != nullptr) args.emplace(DNNL_ARG_BIAS, wrap(plan.bias, bias));
  plan.primitive.execute(cpuStream(), args);
  cpuStream().wait();
}

void convolutionBackwardData(const ConvGeometry& g, const float* dy, const float* w, float* dx) {
  ConvPlan& plan = planFor(Direction::BackwardData, g, false, false);
  plan.primitive.execute(cpuStream(), {
                                          {DNNL_ARG_DIFF_DST, wrap(plan.dst, dy)},
                                          {DNNL_ARG_WEIGHTS, weightsForPrimitive(plan, w)},
                                          {DNNL_ARG_DIFF_SRC, wrap(plan.src, dx)},
                                          {DNNL_ARG_SCRATCHPAD, scratchpadFor(plan)},
                                      });
  cpuStream().wait();
}

void convolutionBackwardWeights(const ConvGeometry& g, const float* x, const float* dy, float* dw) {
  ConvPlan& plan = planFor(Direction::BackwardWeights, g, false, false);
  memory user = wrap(plan.user_weights, dw);
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
}

size_t convolutionCacheSize() { return plans.size(); }

void clearConvolutionCache() { plans.clear(); }

}  // namespace onednn_addon
