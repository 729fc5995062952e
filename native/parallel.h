// Helpers for the addon's own loops (everything that is not a oneDNN primitive): OpenMP
// chunking that skips fork/join for small inputs, and function multiversioning so the inner
// loops use AVX-512 or AVX2 where the CPU has them while the binary still runs on any x86-64.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

// GCC emits one clone per target and picks one at load time (ifunc).
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define ONEDNN_ADDON_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ONEDNN_ADDON_CLONES
#endif

namespace onednn_addon {

// Below this many elements per thread, a parallel region costs more than it saves.
constexpr int64_t kMinElementsPerThread = 32 * 1024;

// Number of threads worth using for `work` units when each thread should get at least
// `min_per_thread` of them.
inline int threadsFor(int64_t work, int64_t min_per_thread) {
  int64_t useful = min_per_thread > 0 ? work / min_per_thread : work;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(omp_get_max_threads(), useful)));
}

// Calls fn(t, begin, end) on `threads` contiguous slices of [0, n), slice t on thread t (all on
// the calling thread when `threads` <= 1), for loops that keep per-thread partial results.
template <typename Fn>
void parallelSlices(int64_t n, int threads, Fn&& fn) {
  if (threads <= 1) {
    if (n > 0) fn(0, int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num();
    int64_t nt = omp_get_num_threads();
    int64_t begin = n * t / nt;
    int64_t end = n * (t + 1) / nt;
    if (begin < end) fn(t, begin, end);
  }
}

// Calls fn(begin, end) on contiguous slices of [0, n), one slice per thread.
template <typename Fn>
void parallelChunks(int64_t n, int64_t min_per_thread, Fn&& fn) {
  parallelSlices(n, threadsFor(n, min_per_thread), [&](int, int64_t begin, int64_t end) { fn(begin, end); });
}

}  // namespace onednn_addon
