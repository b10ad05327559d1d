// The fork-join pool (see thread_pool.h).
#include "thread_pool.h"

#include <chrono>
#include <string>

#include "error.h"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>
#define ONNXGAN_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define ONNXGAN_PAUSE() asm volatile("yield")
#else
#define ONNXGAN_PAUSE() ((void)0)
#endif

#ifdef __linux__
#include <sched.h>
#endif

namespace onnxgan {
namespace {
constexpr auto kSpinTime = std::chrono::microseconds(500);  // a worker's spin before it sleeps
}

ThreadPool::ThreadPool(int threads) {
  workers_.reserve(size_t(threads - 1));
  for (int index = 1; index < threads; ++index) workers_.emplace_back([this, index] { work(index); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (std::thread &worker : workers_) worker.join();
}

void ThreadPool::run_raw(void (*function)(void *, int), void *context) {
  if (workers_.empty()) {
    function(context, 0);
    return;
  }
  function_ = function;
  context_ = context;
  remaining_.store(int(workers_.size()), std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mutex_);  // pairs with the sleeping workers' predicate check
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  function(context, 0);
  for (uint32_t spins = 0; remaining_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < 4096)
      ONNXGAN_PAUSE();
    else
      std::this_thread::yield();  // a worker was descheduled: give the core back
  }
}

void ThreadPool::work(int index) {
  uint64_t seen = 0;
  for (;;) {
    auto start = std::chrono::steady_clock::now();
    uint32_t spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && !stop_.load(std::memory_order_relaxed)) {
      ONNXGAN_PAUSE();
      if (++spins % 64 == 0 && std::chrono::steady_clock::now() - start > kSpinTime) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen || stop_.load(); });
        start = std::chrono::steady_clock::now();
      }
    }
    if (stop_.load()) return;
    seen = generation_.load(std::memory_order_acquire);
    function_(context_, index);
    remaining_.fetch_sub(1, std::memory_order_release);
  }
}

int resolve_threads(int requested) {
  if (requested < 0 || requested > 256) fail_argument("threads must be 0 (automatic) or 1..256, got " + std::to_string(requested));
  if (requested > 0) return requested;
  int cores = int(std::thread::hardware_concurrency());
#ifdef __linux__
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) cores = CPU_COUNT(&set);
#endif
  return cores < 1 ? 1 : cores > 8 ? 8 : cores;
}

}  // namespace onnxgan
