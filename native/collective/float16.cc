#include "float16.h"

#include <cstring>

namespace collective_addon {
namespace {

// Branch-free selects on 32-bit integers, so the compiler may vectorise the loops below.
inline uint32_t to_half_bits(uint32_t x) {
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t a = x & 0x7fffffffu;
  // Normal binary16 range (|x| >= 2^-14): rebias the exponent and round the 13 dropped mantissa
  // bits to nearest even; a carry out of the mantissa bumps the exponent, up to infinity.
  const uint32_t normal = (a + 0xc8000fffu + ((a >> 13) & 1u)) >> 13;
  // Subnormal range: the 24-bit significand shifted right by 126 - exponent (14 .. 24 for
  // |x| >= 2^-25; anything smaller rounds to zero), rounded to nearest even.
  const uint32_t exponent = a >> 23;
  const uint32_t shift = 126u - exponent;
  // Clamped to 14 .. 24 so that no shift below is undefined; the other lanes are not selected.
  const uint32_t small_shift = shift > 24u ? 24u : (shift < 14u ? 14u : shift);
  const uint32_t significand = (a & 0x7fffffu) | 0x800000u;
  const uint32_t kept = significand >> small_shift;
  const uint32_t rest = significand & ((1u << small_shift) - 1u);
  const uint32_t half = 1u << (small_shift - 1u);
  const uint32_t round_up = (rest > half) | ((rest == half) & kept);
  const uint32_t subnormal = shift > 24u ? 0u : kept + round_up;
  // Infinity or NaN: keep the payload's top bits, never letting a NaN become infinity.
  const uint32_t payload = (a & 0x7fffffu) >> 13;
  const uint32_t nan = 0x7c00u | (payload == 0u ? 1u : payload);
  const uint32_t special = a > 0x7f800000u ? nan : 0x7c00u;
  const uint32_t magnitude = a >= 0x47800000u ? special : (a < 0x38800000u ? subnormal : normal);
  return sign | magnitude;
}

inline uint32_t to_float_bits(uint32_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  const uint32_t normal = ((exponent + 112u) << 23) | (mantissa << 13);
  const uint32_t special = 0x7f800000u | (mantissa << 13);
  // A subnormal m * 2^-24 is exact as a float; its bits come from the float conversion.
  float sub = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
  uint32_t subnormal;
  std::memcpy(&subnormal, &sub, sizeof subnormal);
  const uint32_t magnitude = exponent == 0u ? subnormal : (exponent == 31u ? special : normal);
  return sign | magnitude;
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
  for (size_t i = 0; i < n; ++i) dst[i] = static_cast<uint16_t>(to_half_bits(float_bits(src[i])));
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
