/* The WebAssembly build's C side: nothing beyond the C ABI (include/onnxgan/sampler.h), which the page
 * (web/onnxgan-api.js) calls directly. What it fixes is the wasm32 layout of onnxgan_info that the
 * page reads field by field: a change here must change INFO_FIELDS in web/onnxgan-api.js too. */
#include <stddef.h>

#include "onnxgan/sampler.h"

_Static_assert(sizeof(void *) == 4, "the page assumes wasm32 pointers");
_Static_assert(offsetof(onnxgan_info, latent_dim) == 0 && offsetof(onnxgan_info, channels) == 8 &&
                   offsetof(onnxgan_info, height) == 16 && offsetof(onnxgan_info, width) == 24 &&
                   offsetof(onnxgan_info, image_size) == 32 && offsetof(onnxgan_info, num_classes) == 40 &&
                   offsetof(onnxgan_info, value_min) == 48 && offsetof(onnxgan_info, value_max) == 52 &&
                   offsetof(onnxgan_info, threads) == 56 && offsetof(onnxgan_info, precision) == 60 &&
                   offsetof(onnxgan_info, kernel) == 64 && offsetof(onnxgan_info, metadata_count) == 72 &&
                   sizeof(onnxgan_info) == 80,
               "onnxgan_info's wasm32 layout changed: update INFO_FIELDS in web/onnxgan-api.js");
