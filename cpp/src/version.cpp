// The library version, fixed at build time from pyproject.toml (through the generated version.h).
#include "onnxgan/sampler.h"

extern "C" const char *onnxgan_version(void) { return ONNXGAN_VERSION_STRING; }
