// A tiny fork-join pool in which the calling thread works too. A job is a number of items that every
// participant takes in turn from a shared counter, so the caller never waits for a worker that has not
// started yet (on a busy machine a worker may be off its core for milliseconds): it does the items
// itself and waits only for items already taken. Workers spin for a bounded time after each job (so
// back-to-back calls start at once) and then sleep on a condition variable (so an idle model costs
// nothing and cannot starve other pools in the process, unlike OpenMP's barriers). A worker that the
// scheduler puts on the caller's CPU moves off it (thread_pool.cpp, on_callers_cpu).
#ifndef ONNXGAN_THREAD_POOL_H
#define ONNXGAN_THREAD_POOL_H

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace onnxgan {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads >= 1, the calling thread included
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  int size() const { return int(workers_.size()) + 1; }

  // Calls job(item, participant) once for every item in [0, items), spread over the pool;
  // participant (0 = the caller, < size()) tells which thread runs it, e.g. to pick its scratch.
  // Returns when all items are done. job must not throw.
  template <class Job>
  void run(int64_t items, Job &job) {
    run_raw(items, [](void *context, int64_t item, int participant) { (*static_cast<Job *>(context))(item, participant); }, &job);
  }

 private:
  using Function = void (*)(void *, int64_t, int);
  void run_raw(int64_t items, Function function, void *context);
  void take_items(int participant);
  bool on_callers_cpu() const;
  void work(int participant);

  std::vector<std::thread> workers_;
  // The current job: published by generation_, open while open_generation_ equals it. The two counters
  // that every item writes have a cache line each, apart from what the participants only read, so
  // taking an item moves one line between cores, not the job's description as well.
  Function function_ = nullptr;
  void *context_ = nullptr;
  int64_t items_ = 0;
  alignas(64) std::atomic<int64_t> next_item_{0};
  alignas(64) std::atomic<int64_t> done_items_{0};
  alignas(64) std::atomic<uint64_t> generation_{0};
  std::atomic<uint64_t> open_generation_{0};
  std::atomic<int> in_job_{0};  // workers that may be touching the current job
  std::atomic<int> caller_cpu_{-1};  // the CPU the caller started its last job on; -1 where unknown
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
};

// Threads for a request: 0 means the cores this process may use, at most 8 (an MLP generator does not
// scale further); otherwise 1..256.
int resolve_threads(int requested);

}  // namespace onnxgan
#endif
