#include "float16.h"

#include <cstring>

namespace collective_addon {
namespace {

// Every lane computes each case and a mask selects one (no branches, constant shifts only), so
// GCC vectorises the loops below at the baseline x86-64 SSE2.
inline uint32_t all_if(bool condition) { return 0u - static_cast<uint32_t>(condition); }

inline uint32_t select(uint32_t mask, uint32_t if_set, uint32_t if_clear) { return (if_set & mask) | (if_clear & ~mask); }

inline uint32_t to_half_bits(uint32_t x) {
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t a = x & 0x7fffffffu;
  // Normal binary16 range (|x| >= 2^-14): rebias the exponent and round the 13 dropped mantissa
  // bits to nearest even; a carry out of the mantissa bumps the exponent, up to infinity.
  const uint32_t normal = (a + 0xc8000fffu + ((a >> 13) & 1u)) >> 13;
  // Subnormal range (|x| < 2^-14): in |x| + 0.5 the float32 unit in the last place is 2^-24,
  // binary16's subnormal step, so the float add rounds |x| to nearest even there and leaves the
  // count of steps in the low mantissa bits (0x400 when it rounds up to 2^-14: the right bits).
  float magnitude_value;
  std::memcpy(&magnitude_value, &a, sizeof magnitude_value);
  const float shifted = magnitude_value + 0.5f;
  uint32_t shifted_bits;
  std::memcpy(&shifted_bits, &shifted, sizeof shifted_bits);
  const uint32_t subnormal = shifted_bits - 0x3f000000u;
  // Infinity or NaN: a NaN keeps the payload's top bits, never becoming infinity.
  const uint32_t nan = 0x7c00u | ((a & 0x7fffffu) >> 13) | (all_if((a & 0x7fe000u) == 0u) & 1u);
  const uint32_t special = select(all_if(a > 0x7f800000u), nan, 0x7c00u);
  const uint32_t finite = select(all_if(a < 0x38800000u), subnormal, normal);
  return sign | select(all_if(a >= 0x47800000u), special, finite);
}

inline uint32_t to_float_bits(uint32_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  const uint32_t normal = ((exponent + 112u) << 23) | (mantissa << 13);
  const uint32_t special = 0x7f800000u | (mantissa << 13);
  // A subnormal m * 2^-24 is exact as a float; its bits come from the float conversion.
  const float sub = static_cast<float>(static_cast<int32_t>(mantissa)) * 5.9604644775390625e-8f;
  uint32_t subnormal;
  std::memcpy(&subnormal, &sub, sizeof subnormal);
  return sign | select(all_if(exponent == 0u), subnormal, select(all_if(exponent == 31u), special, normal));
}

inline float bits_float(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

inline uint32_t float_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

}  // namespace

void float_to_half(const float* src, uint16_t* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, src + i, sizeof bits);
    dst[i] = static_cast<uint16_t>(to_half_bits(bits));
  }
}

void half_to_float(const uint16_t* src, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = bits_float(to_float_bits(src[i]));
}

void round_to_half(float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = bits_float(to_float_bits(to_half_bits(float_bits(dst[i]))));
}

void add_half_into(float* dst, const uint16_t* src, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const float sum = dst[i] + bits_float(to_float_bits(src[i]));
    dst[i] = bits_float(to_float_bits(to_half_bits(float_bits(sum))));
  }
}

}  // namespace collective_addon
