#include "dnnl-context.h"

#include <cstdlib>
#include <new>

namespace onednn_addon {

dnnl::engine& cpuEngine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& cpuStream() {
  static dnnl::stream stream(cpuEngine());
  return stream;
}

GrowableBuffer::~GrowableBuffer() { release(); }

void GrowableBuffer::release() {
  std::free(data_);
  data_ = nullptr;
  capacity_ = 0;
}

void* GrowableBuffer::get(size_t bytes) {
  if (bytes <= capacity_ && data_ != nullptr) return data_;
  // Round up to 64 bytes (aligned_alloc requires a multiple of the alignment) and grow
  // geometrically so a sequence of slightly larger layers does not reallocate each time.
  size_t wanted = bytes < 64 ? 64 : bytes;
  if (wanted < capacity_ + capacity_ / 2) wanted = capacity_ + capacity_ / 2;
  wanted = (wanted + 63) / 64 * 64;
  void* fresh = std::aligned_alloc(64, wanted);
  if (fresh == nullptr) throw std::bad_alloc();
  std::free(data_);
  data_ = fresh;
  capacity_ = wanted;
  return data_;
}

static GrowableBuffer buffers[3];

GrowableBuffer& sharedBuffer(BufferRole role) { return buffers[static_cast<int>(role)]; }

size_t sharedBufferBytes() {
  size_t total = 0;
  for (const auto& buffer : buffers) total += buffer.capacity();
  return total;
}

void releaseSharedBuffers() {
  for (auto& buffer : buffers) buffer.release();
}

}  // namespace onednn_addon
