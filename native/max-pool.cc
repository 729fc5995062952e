#include "max-pool.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "parallel.h"

namespace onednn_addon {

PoolGeometry poolGeometryFrom(const int32_t* f) {
  return PoolGeometry{f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11]};
}

namespace {

// The window of output (oy, ox) clipped to the input: rows [y0, y1), columns [x0, x1).
struct Window {
  int64_t y0, y1, x0, x1;
};

Window windowAt(const PoolGeometry& g, int64_t oy, int64_t ox) {
  int64_t ys = oy * g.stride_height - g.pad_top;
  int64_t xs = ox * g.stride_width - g.pad_left;
  return Window{std::max<int64_t>(ys, 0), std::min<int64_t>(ys + g.filter_height, g.in_height),
                std::max<int64_t>(xs, 0), std::min<int64_t>(xs + g.filter_width, g.in_width)};
}

ONEDNN_ADDON_CLONES void maxInto(const float* x, float* best, int64_t c) {
  for (int64_t k = 0; k < c; k++) best[k] = x[k] > best[k] ? x[k] : best[k];
}

// Tracks the arg-max as an element offset; strict > keeps the first maximum.
ONEDNN_ADDON_CLONES void argMaxInto(const float* x, int64_t offset, float* best, int64_t* where,
                                    int64_t c) {
  for (int64_t k = 0; k < c; k++) {
    bool better = x[k] > best[k];
    best[k] = better ? x[k] : best[k];
    where[k] = better ? offset + k : where[k];
  }
}

void forwardImage(const PoolGeometry& g, const float* x, float* y) {
  const int64_t c = g.channels;
  for (int64_t oy = 0; oy < g.out_height; oy++) {
    for (int64_t ox = 0; ox < g.out_width; ox++) {
      float* out = y + (oy * g.out_width + ox) * c;
      std::fill(out, out + c, -INFINITY);
      Window w = windowAt(g, oy, ox);
      for (int64_t iy = w.y0; iy < w.y1; iy++) {
        for (int64_t ix = w.x0; ix < w.x1; ix++) maxInto(x + (iy * g.in_width + ix) * c, out, c);
      }
    }
  }
}

void backwardImage(const PoolGeometry& g, const float* x, const float* dy, float* dx,
                   std::vector<float>& best, std::vector<int64_t>& where) {
  const int64_t c = g.channels;
  std::memset(dx, 0, sizeof(float) * g.in_height * g.in_width * c);
  for (int64_t oy = 0; oy < g.out_height; oy++) {
    for (int64_t ox = 0; ox < g.out_width; ox++) {
      std::fill(best.begin(), best.end(), -INFINITY);
      std::fill(where.begin(), where.end(), int64_t{-1});
      Window w = windowAt(g, oy, ox);
      for (int64_t iy = w.y0; iy < w.y1; iy++) {
        for (int64_t ix = w.x0; ix < w.x1; ix++) {
          int64_t offset = (iy * g.in_width + ix) * c;
          argMaxInto(x + offset, offset, best.data(), where.data(), c);
        }
      }
      const float* grad = dy + (oy * g.out_width + ox) * c;
      for (int64_t k = 0; k < c; k++) {
        if (where[k] >= 0) dx[where[k]] += grad[k];
      }
    }
  }
}

}  // namespace

void maxPoolForward(const PoolGeometry& g, const float* x, float* y) {
  const int64_t in_image = g.in_height * g.in_width * g.channels;
  const int64_t out_image = g.out_height * g.out_width * g.channels;
  int64_t min_images = std::max<int64_t>(1, kMinElementsPerThread / std::max<int64_t>(1, in_image));
  parallelChunks(g.batch, min_images, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; n++) forwardImage(g, x + n * in_image, y + n * out_image);
  });
}

void maxPoolBackward(const PoolGeometry& g, const float* x, const float* dy, float* dx) {
  const int64_t in_image = g.in_height * g.in_width * g.channels;
  const int64_t out_image = g.out_height * g.out_width * g.channels;
  int64_t min_images = std::max<int64_t>(1, kMinElementsPerThread / std::max<int64_t>(1, in_image));
  parallelChunks(g.batch, min_images, [&](int64_t begin, int64_t end) {
    std::vector<float> best(static_cast<size_t>(g.channels));
    std::vector<int64_t> where(static_cast<size_t>(g.channels));
    for (int64_t n = begin; n < end; n++) {
      backwardImage(g, x + n * in_image, dy + n * out_image, dx + n * in_image, best, where);
    }
  });
}

}  // namespace onednn_addon
