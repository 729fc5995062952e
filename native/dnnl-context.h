// Process-wide oneDNN state: one CPU engine, one in-order stream, and growable aligned
// buffers reused across calls (primitive scratchpads, reordered weights), so a training step
// allocates nothing on the native side once every layer shape has been seen.
#pragma once

#include <cstddef>
#include <dnnl.hpp>

namespace onednn_addon {

dnnl::engine& cpuEngine();
dnnl::stream& cpuStream();

// A 64-byte aligned block that only grows. The pointer is valid until the next larger get().
class GrowableBuffer {
 public:
  GrowableBuffer() = default;
  GrowableBuffer(const GrowableBuffer&) = delete;
  GrowableBuffer& operator=(const GrowableBuffer&) = delete;
  ~GrowableBuffer();

  void* get(size_t bytes);
  size_t capacity() const { return capacity_; }
  void release();

 private:
  void* data_ = nullptr;
  size_t capacity_ = 0;
};

// Which reusable buffer a caller wants; two roles may be live during one primitive call.
enum class BufferRole { Scratchpad, Weights, Temporary };

GrowableBuffer& sharedBuffer(BufferRole role);

// Bytes currently held by the shared buffers (for tests that check memory is bounded).
size_t sharedBufferBytes();

// Frees the shared buffers and cached primitives' memory that can be rebuilt on demand.
void releaseSharedBuffers();

}  // namespace onednn_addon
