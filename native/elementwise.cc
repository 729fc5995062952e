#include "elementwise.h"

#include <cmath>
#include <stdexcept>

#include "parallel.h"

namespace onednn_addon {
namespace {

struct AddOp { static float apply(float a, float b) { return a + b; } };
struct SubOp { static float apply(float a, float b) { return a - b; } };
struct MulOp { static float apply(float a, float b) { return a * b; } };
struct DivOp { static float apply(float a, float b) { return a / b; } };
struct SquaredDifferenceOp {
  static float apply(float a, float b) {
    float d = a - b;
    return d * d;
  }
};
// Math.max/Math.min semantics: NaN if either operand is NaN.
struct MaximumOp {
  static float apply(float a, float b) { return (a != a || b != b) ? NAN : (a > b ? a : b); }
};
struct MinimumOp {
  static float apply(float a, float b) { return (a != a || b != b) ? NAN : (a < b ? a : b); }
};
struct CopyFirstOp { static float apply(float a, float) { return a; } };

// The innermost loop, one version per operand kind (vector or broadcast scalar).
template <typename Op>
ONEDNN_ADDON_CLONES void innerVV(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = Op::apply(a[i], b[i]);
}
template <typename Op>
ONEDNN_ADDON_CLONES void innerVS(const float* a, float b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = Op::apply(a[i], b);
}
template <typename Op>
ONEDNN_ADDON_CLONES void innerSV(float a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = Op::apply(a, b[i]);
}

template <typename Op>
void inner(const float* a, int64_t sa, const float* b, int64_t sb, float* out, int64_t n) {
  if (sa != 0 && sb != 0) {
    innerVV<Op>(a, b, out, n);
  } else if (sa != 0) {
    innerVS<Op>(a, *b, out, n);
  } else if (sb != 0) {
    innerSV<Op>(*a, b, out, n);
  } else {
    float v = Op::apply(*a, *b);
    for (int64_t i = 0; i < n; i++) out[i] = v;
  }
}

// Walks rows [begin, end) of the outer dimensions like an odometer, so only the first row's
// offsets need divisions.
template <typename Op>
void rows(int rank, const int64_t* dims, const int64_t* as, const int64_t* bs, const float* a,
          const float* b, float* out, int64_t begin, int64_t end) {
  const int outer_rank = rank - 1;
  const int64_t n = dims[rank - 1];
  int64_t index[kMaxBroadcastRank] = {0};
  int64_t a_off = 0, b_off = 0;
  int64_t rest = begin;
  for (int d = outer_rank - 1; d >= 0; d--) {
    index[d] = rest % dims[d];
    rest /= dims[d];
    a_off += index[d] * as[d];
    b_off += index[d] * bs[d];
  }
  for (int64_t row = begin; row < end; row++) {
    inner<Op>(a + a_off, as[rank - 1], b + b_off, bs[rank - 1], out + row * n, n);
    for (int d = outer_rank - 1; d >= 0; d--) {
      index[d]++;
      a_off += as[d];
      b_off += bs[d];
      if (index[d] < dims[d]) break;
      a_off -= index[d] * as[d];
      b_off -= index[d] * bs[d];
      index[d] = 0;
    }
  }
}

template <typename Op>
void broadcastLoop(int rank, const int64_t* dims, const int64_t* as, const int64_t* bs,
                   const float* a, const float* b, float* out) {
  const int64_t n = dims[rank - 1];
  int64_t outer = 1;
  for (int d = 0; d < rank - 1; d++) outer *= dims[d];
  if (outer == 1) {
    // One long row: split it between threads.
    parallelChunks(n, kMinElementsPerThread, [&](int64_t begin, int64_t end) {
      inner<Op>(a + begin * as[rank - 1], as[rank - 1], b + begin * bs[rank - 1], bs[rank - 1],
                out + begin, end - begin);
    });
    return;
  }
  int64_t min_rows = std::max<int64_t>(1, kMinElementsPerThread / std::max<int64_t>(1, n));
  parallelChunks(outer, min_rows, [&](int64_t begin, int64_t end) {
    rows<Op>(rank, dims, as, bs, a, b, out, begin, end);
  });
}

struct ReluOp { static float apply(float x, float) { return x < 0.0f ? 0.0f : x; } };
struct StepOp {
  static float apply(float x, float alpha) { return x != x ? x : (x > 0.0f ? 1.0f : alpha); }
};
struct NegOp { static float apply(float x, float) { return -x; } };
struct SquareOp { static float apply(float x, float) { return x * x; } };
struct SqrtOp { static float apply(float x, float) { return std::sqrt(x); } };
struct RsqrtOp { static float apply(float x, float) { return 1.0f / std::sqrt(x); } };
struct AbsOp { static float apply(float x, float) { return std::fabs(x); } };
struct ReciprocalOp { static float apply(float x, float) { return 1.0f / x; } };

template <typename Op>
ONEDNN_ADDON_CLONES void unaryLoop(const float* x, float* out, int64_t n, float alpha) {
  for (int64_t i = 0; i < n; i++) out[i] = Op::apply(x[i], alpha);
}

template <typename Op>
void unaryParallel(const float* x, float* out, int64_t n, float alpha) {
  parallelChunks(n, kMinElementsPerThread, [&](int64_t begin, int64_t end) {
    unaryLoop<Op>(x + begin, out + begin, end - begin, alpha);
  });
}

ONEDNN_ADDON_CLONES void scaledAddLoop(const float* x, const float* g, float alpha, float* out,
                                       int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float step = alpha * g[i];
    out[i] = x[i] + step;
  }
}

}  // namespace

void scaledAdd(const float* x, const float* g, float alpha, float* out, int64_t n) {
  parallelChunks(n, kMinElementsPerThread, [&](int64_t begin, int64_t end) {
    scaledAddLoop(x + begin, g + begin, alpha, out + begin, end - begin);
  });
}

void binaryBroadcast(BinaryOp op, int rank, const int64_t* dims, const int64_t* a_strides,
                     const int64_t* b_strides, const float* a, const float* b, float* out) {
  if (rank < 1 || rank > kMaxBroadcastRank) throw std::invalid_argument("broadcast rank out of range");
  switch (op) {
    case BinaryOp::Add: return broadcastLoop<AddOp>(rank, dims, a_strides, b_strides, a, b, out);
    case BinaryOp::Sub: return broadcastLoop<SubOp>(rank, dims, a_strides, b_strides, a, b, out);
    case BinaryOp::Mul: return broadcastLoop<MulOp>(rank, dims, a_strides, b_strides, a, b, out);
    case BinaryOp::Div: return broadcastLoop<DivOp>(rank, dims, a_strides, b_strides, a, b, out);
    case BinaryOp::SquaredDifference:
      return broadcastLoop<SquaredDifferenceOp>(rank, dims, a_strides, b_strides, a, b, out);
    case BinaryOp::Maximum: return broadcastLoop<MaximumOp>(rank, dims, a_strides, b_strides, a, b, out);
    case BinaryOp::Minimum: return broadcastLoop<MinimumOp>(rank, dims, a_strides, b_strides, a, b, out);
    case BinaryOp::CopyFirst:
      return broadcastLoop<CopyFirstOp>(rank, dims, a_strides, b_strides, a, b, out);
  }
  throw std::invalid_argument("unknown binary op");
}

void unary(UnaryOp op, const float* x, float* out, int64_t n, float alpha) {
  switch (op) {
    case UnaryOp::Relu: return unaryParallel<ReluOp>(x, out, n, alpha);
    case UnaryOp::Step: return unaryParallel<StepOp>(x, out, n, alpha);
    case UnaryOp::Neg: return unaryParallel<NegOp>(x, out, n, alpha);
    case UnaryOp::Square: return unaryParallel<SquareOp>(x, out, n, alpha);
    case UnaryOp::Sqrt: return unaryParallel<SqrtOp>(x, out, n, alpha);
    case UnaryOp::Rsqrt: return unaryParallel<RsqrtOp>(x, out, n, alpha);
    case UnaryOp::Abs: return unaryParallel<AbsOp>(x, out, n, alpha);
    case UnaryOp::Reciprocal: return unaryParallel<ReciprocalOp>(x, out, n, alpha);
  }
  throw std::invalid_argument("unknown unary op");
}

}  // namespace onednn_addon
