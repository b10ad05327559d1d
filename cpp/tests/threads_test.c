/* One model handle, many C threads: every onnxgan_sample call must equal the single-thread result for
 * the same (n, seed). Exits non-zero on any difference or error (ctest: threads).
 *   threads_test MODEL.onnx [threads] [calls per thread] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnxgan/sampler.h"

#define REQUESTS 24 /* distinct (n, seed) pairs, n = 1..3 */

static onnxgan_model *model;
static onnxgan_info info;
static float *expected[REQUESTS];
static int calls_per_thread = 1000;
static pthread_barrier_t start; /* all threads begin together, so that their calls overlap */

static int64_t request_n(int r) { return 1 + r % 3; }

static int sample(int r, float *out) {
  size_t size = sizeof(float) * (size_t)(request_n(r) * info.image_size);
  return onnxgan_sample(model, request_n(r), (uint64_t)r * 7919u, 0.0, NULL, ONNXGAN_OUTPUT_FLOAT32, out, size);
}

static void *worker(void *arg) {
  long t = (long)arg, failures = 0;
  float *out = malloc(sizeof(float) * 3 * (size_t)info.image_size);
  pthread_barrier_wait(&start);
  for (int i = 0; i < calls_per_thread && out; i++) {
    int r = (int)((t * 31 + i) % REQUESTS);
    if (sample(r, out) != ONNXGAN_OK) {
      fprintf(stderr, "thread %ld call %d: %s\n", t, i, onnxgan_last_error());
      failures++;
    } else if (memcmp(out, expected[r], sizeof(float) * (size_t)(request_n(r) * info.image_size)) != 0) {
      fprintf(stderr, "thread %ld call %d: request %d differs from the single-thread result\n", t, i, r);
      failures++;
    }
  }
  free(out);
  return (void *)(failures + (out == NULL));
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL.onnx [threads] [calls per thread]\n", argv[0]);
    return 2;
  }
  int threads = argc > 2 ? atoi(argv[2]) : 16;
  if (argc > 3) calls_per_thread = atoi(argv[3]);
  if (threads < 1 || threads > 256 || calls_per_thread < 1) return 2;
  onnxgan_options options = {2, ONNXGAN_PRECISION_FLOAT32, ONNXGAN_KERNEL_AUTO}; /* its own pool, too */
  if (onnxgan_open_file(argv[1], &options, &model) != ONNXGAN_OK || onnxgan_get_info(model, &info) != ONNXGAN_OK) {
    fprintf(stderr, "%s\n", onnxgan_last_error());
    return 1;
  }
  for (int r = 0; r < REQUESTS; r++) {
    expected[r] = malloc(sizeof(float) * (size_t)(request_n(r) * info.image_size));
    if (!expected[r] || sample(r, expected[r]) != ONNXGAN_OK) {
      fprintf(stderr, "single-thread request %d: %s\n", r, onnxgan_last_error());
      return 1;
    }
  }
  pthread_t ids[256];
  long failures = 0;
  pthread_barrier_init(&start, NULL, (unsigned)threads);
  for (long t = 0; t < threads; t++)
    if (pthread_create(&ids[t], NULL, worker, (void *)t) != 0) return 1;
  for (int t = 0; t < threads; t++) {
    void *result;
    pthread_join(ids[t], &result);
    failures += (long)result;
  }
  pthread_barrier_destroy(&start);
  for (int r = 0; r < REQUESTS; r++) free(expected[r]);
  onnxgan_close(model);
  printf("%d threads x %d calls: %ld failures\n", threads, calls_per_thread, failures);
  return failures != 0;
}
