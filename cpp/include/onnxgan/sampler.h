/* onnxgan native sampler: C ABI for the generators gan-export writes, MLP and conv (docs/onnx-contract.md).
 *
 * Every function reports failure by a status code and never aborts or throws across this boundary;
 * onnxgan_last_error() then gives a one-line message for the calling thread. A model handle may be
 * used from several threads, but calls on one handle run one at a time (it owns one thread pool).
 *
 *   onnxgan_model *model;
 *   if (onnxgan_open_file("model.onnx", NULL, &model) != ONNXGAN_OK) puts(onnxgan_last_error());
 *   onnxgan_info info; onnxgan_get_info(model, &info);
 *   float *images = malloc(sizeof(float) * 16 * info.image_size);          (16, C, H, W)
 *   onnxgan_sample(model, 16, 42, 0.0, NULL, ONNXGAN_OUTPUT_FLOAT32, images, sizeof(float) * 16 * info.image_size);
 *   onnxgan_close(model);
 *
 * Linking: the CMake package's onnxgan::sampler (static; its link interface carries the C++ runtime
 * and libm, so C-only projects link it) or onnxgan::sampler_shared (libonnxgan.so, self-contained).
 */
#ifndef ONNXGAN_SAMPLER_H
#define ONNXGAN_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "onnxgan/version.h" /* ONNXGAN_VERSION_MAJOR, _MINOR, _PATCH, ONNXGAN_VERSION_STRING */

/* The entry points are the only symbols the library exports (its internals are hidden). */
#if defined(__GNUC__) || defined(__clang__)
#define ONNXGAN_API __attribute__((visibility("default")))
#else
#define ONNXGAN_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum onnxgan_status {
  ONNXGAN_OK = 0,
  ONNXGAN_ERROR_IO = 1,          /* the file cannot be read */
  ONNXGAN_ERROR_FORMAT = 2,      /* not valid ONNX, or sizes that disagree with the contents */
  ONNXGAN_ERROR_UNSUPPORTED = 3, /* valid ONNX this library cannot run (the message names the op) */
  ONNXGAN_ERROR_ARGUMENT = 4,    /* a bad argument: null pointer, shape, label, buffer size */
  ONNXGAN_ERROR_MEMORY = 5,      /* out of memory */
  ONNXGAN_ERROR_INTERNAL = 6,    /* a bug: please report it with the message */
  ONNXGAN_ERROR_NONFINITE = 7    /* the model produced NaN or Inf (broken weights): out holds no usable images;
                                    gan-sample and gan-eval exit 1 for it */
} onnxgan_status;

typedef enum onnxgan_precision {
  ONNXGAN_PRECISION_AUTO = 0,    /* as the file stores its weights: fp16 when every layer's weights are fp16
                                    there (exact, so the same images) and the kernel widens fp16 in hardware
                                    (AVX2/AVX-512; the portable kernel keeps fp32), else fp32 */
  ONNXGAN_PRECISION_FLOAT32 = 1, /* weights kept as fp32 */
  ONNXGAN_PRECISION_FLOAT16 = 2  /* weights stored as fp16 (fp32 ones rounded to nearest even), fp32
                                    arithmetic: half the bytes, faster batch 1 */
} onnxgan_precision;

typedef enum onnxgan_kernel {
  ONNXGAN_KERNEL_AUTO = 0,     /* the fastest this CPU supports */
  ONNXGAN_KERNEL_PORTABLE = 1, /* plain C++ (the reference; any CPU) */
  ONNXGAN_KERNEL_AVX2 = 2,     /* AVX2 + FMA + F16C; an error where unsupported */
  ONNXGAN_KERNEL_AVX512 = 3    /* AVX-512F (+ FMA, F16C); an error where unsupported */
} onnxgan_kernel;

typedef enum onnxgan_output {
  ONNXGAN_OUTPUT_FLOAT32 = 0, /* float (N, C, H, W), values in the model's value_range */
  ONNXGAN_OUTPUT_UINT8 = 1    /* uint8 (N, H, W, C): value_range mapped to 0..255, rounded half to even */
} onnxgan_output;

/* The most threads a model may be opened with (onnxgan_options.threads). */
#define ONNXGAN_MAX_THREADS 256

typedef struct onnxgan_options {
  int threads;   /* 0: one per available core, at most 8; otherwise 1..ONNXGAN_MAX_THREADS */
  int precision; /* onnxgan_precision */
  int kernel;    /* onnxgan_kernel */
} onnxgan_options;

typedef struct onnxgan_info {
  int64_t latent_dim;
  int64_t channels, height, width; /* one image: (C, H, W) */
  int64_t image_size;              /* C * H * W */
  int64_t num_classes;             /* 0 for unconditional models */
  float value_min, value_max;      /* value_range from the metadata ([-1, 1] if absent) */
  int threads;                     /* threads in use, the calling one included */
  int precision;                   /* onnxgan_precision in use (never AUTO) */
  int kernel;                      /* onnxgan_kernel in use (never AUTO) */
  int64_t metadata_count;          /* entries of the file's metadata_props (onnxgan_metadata_entry) */
} onnxgan_info;

typedef struct onnxgan_model onnxgan_model;

/* The library's version, e.g. "0.1.0": ONNXGAN_VERSION_STRING of the build, the Python package's. */
ONNXGAN_API const char *onnxgan_version(void);

/* The message of the last failure on this thread ("" if none); valid until the next call here. */
ONNXGAN_API const char *onnxgan_last_error(void);

/* Loads a model. options may be NULL (defaults: all zero). On success *model is a new handle. The path must
 * name a regular file (a named pipe or a device is refused with ONNXGAN_ERROR_IO, never read). */
ONNXGAN_API onnxgan_status onnxgan_open_file(const char *path, const onnxgan_options *options, onnxgan_model **model);
/* The same from memory; the bytes are copied as needed and may be freed on return. */
ONNXGAN_API onnxgan_status onnxgan_open_memory(const void *data, size_t size, const onnxgan_options *options,
                                               onnxgan_model **model);

ONNXGAN_API onnxgan_status onnxgan_get_info(const onnxgan_model *model, onnxgan_info *info);

/* Metadata entry index (0 .. info.metadata_count - 1), in file order: *key and *value (a JSON text,
 * e.g. "class_names" -> ["0", "1"]; keys in docs/onnx-contract.md), valid until onnxgan_close. */
ONNXGAN_API onnxgan_status onnxgan_metadata_entry(const onnxgan_model *model, int64_t index, const char **key,
                                                  const char **value);
/* The JSON text of metadata key `key`, or *value = NULL (still ONNXGAN_OK) when the file lacks it. */
ONNXGAN_API onnxgan_status onnxgan_metadata(const onnxgan_model *model, const char *key, const char **value);

/* z float (n, latent_dim) -> images float (n, C, H, W). labels: int64 (n,) in 0..num_classes-1 for
 * conditional models, NULL otherwise. out_size is the size of out in bytes. n may be 0. A NaN or Inf in z
 * is ONNXGAN_ERROR_ARGUMENT (it would come out as black images). */
ONNXGAN_API onnxgan_status onnxgan_generate(onnxgan_model *model, int64_t n, const float *z, const int64_t *labels,
                                            float *out, size_t out_size);

/* generate() on z = onnxgan_latent(n, latent_dim, seed, truncation). For conditional models labels
 * NULL means row i gets class i % num_classes. out: format (onnxgan_output), out_size in bytes. */
ONNXGAN_API onnxgan_status onnxgan_sample(onnxgan_model *model, int64_t n, uint64_t seed, double truncation,
                                          const int64_t *labels, int format, void *out, size_t out_size);

/* images float (n, C, H, W), e.g. from onnxgan_generate -> uint8 (n, H, W, C) exactly as ONNXGAN_OUTPUT_UINT8
 * maps them. Sizes in bytes. A NaN or Inf in images is ONNXGAN_ERROR_NONFINITE (no pixel is garbage). */
ONNXGAN_API onnxgan_status onnxgan_to_uint8(const onnxgan_model *model, int64_t n, const float *images, size_t images_size,
                                            uint8_t *out, size_t out_size);

/* The latent RNG "splitmix64-boxmuller-v1" (runtime/latent.py): z float (n, latent_dim), bit for bit
 * the same as Python's. truncation 0: none; otherwise >= 0.1: every |z| above it is redrawn by the
 * rule "truncated-resample-v1" (runtime/latent.py; n * latent_dim <= 2**40). out_size in bytes. */
ONNXGAN_API onnxgan_status onnxgan_latent(int64_t n, int64_t latent_dim, uint64_t seed, double truncation, float *out,
                                          size_t out_size);

/* Frees the model; NULL is allowed. */
ONNXGAN_API void onnxgan_close(onnxgan_model *model);

#ifdef __cplusplus
}
#endif
#endif
