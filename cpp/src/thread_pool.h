// A tiny fork-join pool in which the calling thread works too. Workers spin for a bounded time after
// each job (so back-to-back calls start at once) and then sleep on a condition variable (so an idle
// model costs nothing and cannot starve other pools in the process, unlike OpenMP's barriers).
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

  // Calls job(index) for every index in [0, size()) concurrently, the caller taking index 0, and
  // returns when all have returned. job must not throw.
  template <class Job>
  void run(Job &job) {
    run_raw([](void *context, int index) { (*static_cast<Job *>(context))(index); }, &job);
  }

 private:
  void run_raw(void (*function)(void *, int), void *context);
  void work(int index);

  std::vector<std::thread> workers_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> remaining_{0};
  std::atomic<bool> stop_{false};
  void (*function_)(void *, int) = nullptr;
  void *context_ = nullptr;
  std::mutex mutex_;
  std::condition_variable wake_;
};

// Threads for a request: 0 means the cores this process may use, at most 8 (an MLP generator does not
// scale further); otherwise 1..256.
int resolve_threads(int requested);

}  // namespace onnxgan
#endif
