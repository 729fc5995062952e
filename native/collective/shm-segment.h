// A POSIX shared-memory segment mapped into this process, and the futex-backed counters the
// ranks on one host signal each other with (native/collective/addon.cc binds them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace collective_addon {

// Maps the segment `name` (a shm_open name, "/..."), creating it with `bytes` bytes when
// `create` (fails if it exists). Returns nullptr and sets errno when it cannot.
void* map_segment(const std::string& name, size_t bytes, bool create);
void unmap_segment(void* address, size_t bytes);
// 0, or -1 with errno.
int unlink_segment(const std::string& name);

// Adds `delta` to the 32-bit counter, wakes every waiter, returns the new value.
int32_t counter_add(int32_t* counter, int32_t delta);
int32_t counter_load(const int32_t* counter);
// Waits until the counter is at least `target` or `timeout_ms` has passed; true when reached.
bool counter_wait(int32_t* counter, int32_t target, int timeout_ms);

}  // namespace collective_addon
