/* onnxgan native sampler: C ABI.
 * Every function reports failure by a return code and never aborts or throws across this boundary. */
#ifndef ONNXGAN_SAMPLER_H
#define ONNXGAN_SAMPLER_H

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, e.g. "0.1.0"; the same string as the Python package's. */
const char *onnxgan_version(void);

#ifdef __cplusplus
}
#endif
#endif
