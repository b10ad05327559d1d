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
// A worker's spin before it sleeps: long enough to bridge back-to-back calls (a few us apart), short
// enough not to hold a core that a busy machine needs.
constexpr auto kSpinTime = std::chrono::microseconds(100);

// Spins politely, then yields the core (a thread we wait for may need it).
void backoff(uint32_t &spins) {
  if (++spins < 2048)
    ONNXGAN_PAUSE();
  else
    std::this_thread::yield();
}
}  // namespace

ThreadPool::ThreadPool(int threads) {
  workers_.reserve(size_t(threads - 1));
  for (int participant = 1; participant < threads; ++participant) workers_.emplace_back([this, participant] { work(participant); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (std::thread &worker : workers_) worker.join();
}

void ThreadPool::take_items(int participant) {
  for (int64_t item; (item = next_item_.fetch_add(1)) < items_;) {
    function_(context_, item, participant);
    done_items_.fetch_add(1, std::memory_order_release);
  }
}

void ThreadPool::run_raw(int64_t items, Function function, void *context) {
  if (workers_.empty() || items <= 1) {
    for (int64_t item = 0; item < items; ++item) function(context, item, 0);
    return;
  }
  function_ = function;
  context_ = context;
  items_ = items;
  next_item_.store(0);
  done_items_.store(0);
  {
    std::lock_guard<std::mutex> lock(mutex_);  // pairs with the sleeping workers' predicate check
    const uint64_t generation = generation_.load() + 1;
    open_generation_.store(generation);
    generation_.store(generation);
  }
  wake_.notify_all();
  take_items(0);
  uint32_t spins = 0;
  while (done_items_.load(std::memory_order_acquire) != items) backoff(spins);
  // Close the job, then wait for workers that entered it: after this none can still touch it.
  open_generation_.store(0);
  while (in_job_.load() != 0) backoff(spins);
}

void ThreadPool::work(int participant) {
  uint64_t seen = 0;
  for (;;) {
    auto start = std::chrono::steady_clock::now();
    uint32_t spins = 0;
    uint64_t generation;
    while ((generation = generation_.load(std::memory_order_acquire)) == seen && !stop_.load(std::memory_order_relaxed)) {
      ONNXGAN_PAUSE();
      if (++spins % 64 == 0 && std::chrono::steady_clock::now() - start > kSpinTime) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load() != seen || stop_.load(); });
        start = std::chrono::steady_clock::now();
      }
    }
    if (stop_.load()) return;
    seen = generation;
    in_job_.fetch_add(1);  // seq_cst with the caller's close: it either waits for us or we see it closed
    if (open_generation_.load() == generation) take_items(participant);
    in_job_.fetch_sub(1);
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
