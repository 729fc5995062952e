// IEEE 754 binary16 ("fp16") conversions for the compressed all-reduce (--grad-compression fp16).
#pragma once

#include <cstddef>
#include <cstdint>

namespace collective_addon {

// dst[i] = the binary16 bits of src[i], rounded to nearest, ties to even: float32 subnormals and
// values below half the smallest binary16 subnormal give a signed zero, values from 65520 up give
// a signed infinity, a NaN keeps its sign and the top 10 bits of its payload (made non-zero) as
// numpy's float16 does. Integer arithmetic, except one float32 add that rounds subnormals (in
// the default round-to-nearest mode; flushing denormals to zero would not change its result).
void float_to_half(const float* src, uint16_t* dst, size_t n);

// dst[i] = the float32 holding exactly the value of the binary16 bits src[i].
void half_to_float(const uint16_t* src, float* dst, size_t n);

// dst[i] = half_to_float(float_to_half(dst[i])): rounds float32 values to binary16 in place.
void round_to_half(float* dst, size_t n);

// dst[i] = round_to_half(dst[i] + half_to_float(src[i])), the float32 sum rounded once to
// float32, then to binary16: the reduce-scatter step of the compressed all-reduce.
void add_half_into(float* dst, const uint16_t* src, size_t n);

}  // namespace collective_addon
