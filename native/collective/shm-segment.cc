#include "shm-segment.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

namespace collective_addon {

void* map_segment(const std::string& name, size_t bytes, bool create) {
  int fd = create ? shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600) : shm_open(name.c_str(), O_RDWR, 0600);
  if (fd < 0) return nullptr;
  if (create && ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    int error = errno;
    close(fd);
    shm_unlink(name.c_str());
    errno = error;
    return nullptr;
  }
  if (!create) {
    struct stat info;
    if (fstat(fd, &info) != 0 || static_cast<size_t>(info.st_size) < bytes) {
      close(fd);
      errno = EAGAIN;  // the creator has not sized it yet
      return nullptr;
    }
  }
  void* address = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int error = errno;
  close(fd);
  errno = error;
  return address == MAP_FAILED ? nullptr : address;
}

void unmap_segment(void* address, size_t bytes) { munmap(address, bytes); }

int unlink_segment(const std::string& name) { return shm_unlink(name.c_str()); }

// The counters live in memory shared between processes: std::atomic_ref would do in C++20;
// the GCC builtins are the C++17 spelling of the same sequentially consistent operations.
int32_t counter_add(int32_t* counter, int32_t delta) {
  int32_t value = __atomic_add_fetch(counter, delta, __ATOMIC_SEQ_CST);
  syscall(SYS_futex, counter, FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
  return value;
}

int32_t counter_load(const int32_t* counter) { return __atomic_load_n(counter, __ATOMIC_SEQ_CST); }

bool counter_wait(int32_t* counter, int32_t target, int timeout_ms) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  const long long deadline = now.tv_sec * 1000000000LL + now.tv_nsec + timeout_ms * 1000000LL;
  for (;;) {
    int32_t value = counter_load(counter);
    if (value - target >= 0) return true;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long left = deadline - (now.tv_sec * 1000000000LL + now.tv_nsec);
    if (left <= 0) return false;
    struct timespec wait = {static_cast<time_t>(left / 1000000000LL), static_cast<long>(left % 1000000000LL)};
    // Sleeps only while the counter still holds `value`; a wake or a change returns at once.
    syscall(SYS_futex, counter, FUTEX_WAIT, value, &wait, nullptr, 0);
  }
}

}  // namespace collective_addon
