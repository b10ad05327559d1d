// A minimal assertion for the C++ tests: a failed CHECK prints where and why and exits with 1, so
// ctest sees the failure through the exit code.
#ifndef ONNXGAN_TESTS_CHECK_H
#define ONNXGAN_TESTS_CHECK_H

#include <cstdio>
#include <cstdlib>
#include <string>

#define CHECK(condition, message)                                                                    \
  do {                                                                                               \
    if (!(condition)) {                                                                              \
      std::fprintf(stderr, "%s:%d: CHECK(%s) failed: %s\n", __FILE__, __LINE__, #condition,         \
                   std::string(message).c_str());                                                    \
      std::exit(1);                                                                                  \
    }                                                                                                \
  } while (0)

#endif
