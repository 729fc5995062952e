#include "float-add.h"

namespace collective_addon {

void add_into(float* dst, const float* src, size_t n) {
  // A plain loop the compiler vectorises (-O3): additions are independent, so the order of
  // evaluation cannot change any result.
  for (size_t i = 0; i < n; ++i) dst[i] += src[i];
}

}  // namespace collective_addon
