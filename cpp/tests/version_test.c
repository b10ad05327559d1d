/* The version macros of the generated onnxgan/version.h agree with the library's onnxgan_version(),
 * both from pyproject.toml; plain C, so it also proves a C translation unit links the library. */
#include <stdio.h>
#include <string.h>

#include "onnxgan/sampler.h"

#define STRINGIFY(x) #x
#define JOIN(major, minor, patch) STRINGIFY(major) "." STRINGIFY(minor) "." STRINGIFY(patch)

int main(void) {
  const char *numbers = JOIN(ONNXGAN_VERSION_MAJOR, ONNXGAN_VERSION_MINOR, ONNXGAN_VERSION_PATCH);
  if (strcmp(onnxgan_version(), ONNXGAN_VERSION_STRING) != 0 || strcmp(numbers, ONNXGAN_VERSION_STRING) != 0) {
    fprintf(stderr, "version: library %s, header %s (%s)\n", onnxgan_version(), ONNXGAN_VERSION_STRING, numbers);
    return 1;
  }
  printf("onnxgan %s\n", onnxgan_version());
  return 0;
}
