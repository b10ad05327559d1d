// Included before every library source of the WebAssembly build (-include): Debian's emscripten 3.1.6
// ships libc++ 14, whose <charconv> has from_chars for integers only, and src/metadata.cpp reads JSON
// numbers with from_chars(double). This supplies that overload for the characters a JSON number may
// hold ([-]digits[.digits][e[+-]digits]), converted by strtod (correctly rounded, "C" locale), with
// from_chars' contract: no leading space or '+', ptr past the number, errc::invalid_argument without one.
#ifndef ONNXGAN_WASM_FROM_CHARS_H
#define ONNXGAN_WASM_FROM_CHARS_H
#ifdef __cplusplus
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>

namespace std {
inline from_chars_result from_chars(const char *first, const char *last, double &value) {
  const char *p = first;
  auto digits = [&] {
    const char *start = p;
    while (p != last && *p >= '0' && *p <= '9') ++p;
    return p != start;
  };
  if (p != last && *p == '-') ++p;
  if (!digits()) return {first, errc::invalid_argument};
  if (p != last && *p == '.') {
    const char *dot = p++;
    if (!digits()) p = dot;
  }
  if (p != last && (*p == 'e' || *p == 'E')) {
    const char *e = p++;
    if (p != last && (*p == '+' || *p == '-')) ++p;
    if (!digits()) p = e;
  }
  const std::string text(first, p);
  errno = 0;
  const double parsed = std::strtod(text.c_str(), nullptr);
  if (errno == ERANGE && std::isinf(parsed)) return {p, errc::result_out_of_range};
  value = parsed;
  return {p, errc()};
}
}  // namespace std
#endif
#endif
