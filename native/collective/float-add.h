// The reduce step of the collective: element-wise float32 addition in place.
#pragma once

#include <cstddef>

namespace collective_addon {

// dst[i] = dst[i] + src[i] for i < n, each sum rounded to float32 on its own (built with
// -ffp-contract=off and without -ffast-math, so vectorised code gives the same bits as a scalar
// loop and as JavaScript's Float32Array addition). dst and src may alias only exactly.
void add_into(float* dst, const float* src, size_t n);

}  // namespace collective_addon
