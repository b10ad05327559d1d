// Minimal, locale-independent JSON scalars and number lists for metadata_props.
#include "metadata.h"

#include <charconv>
#include <cmath>

#include "error.h"

namespace onnxgan {
namespace {

struct Cursor {
  const char *pos, *end;
  void skip_space() {
    while (pos != end && (*pos == ' ' || *pos == '\t' || *pos == '\n' || *pos == '\r')) ++pos;
  }
  bool eat(char c) {
    skip_space();
    if (pos != end && *pos == c) {
      ++pos;
      return true;
    }
    return false;
  }
  bool number(double &value) {
    skip_space();
    const auto result = std::from_chars(pos, end, value);
    if (result.ec != std::errc() || !std::isfinite(value)) return false;
    pos = result.ptr;
    return true;
  }
  bool at_end() {
    skip_space();
    return pos == end;
  }
};

[[noreturn]] void bad_value(const std::string &key, const char *expected) {
  fail_format("metadata '" + key + "' is not " + expected);
}

}  // namespace

const std::string *Metadata::find(const std::string &key) const {
  const std::string *found = nullptr;
  for (const auto &entry : *entries_)
    if (entry.first == key) found = &entry.second;  // the last entry wins, as in a JSON object
  return found;
}

std::optional<long long> Metadata::integer(const std::string &key) const {
  const std::string *text = find(key);
  if (!text) return std::nullopt;
  Cursor cursor{text->data(), text->data() + text->size()};
  double value;
  if (!cursor.number(value) || !cursor.at_end() || value != std::floor(value) || std::fabs(value) > 1e15)
    bad_value(key, "an integer");
  return static_cast<long long>(value);
}

std::optional<std::vector<double>> Metadata::numbers(const std::string &key) const {
  const std::string *text = find(key);
  if (!text) return std::nullopt;
  Cursor cursor{text->data(), text->data() + text->size()};
  std::vector<double> values;
  if (!cursor.eat('[')) bad_value(key, "a list of numbers");
  if (!cursor.eat(']')) {
    do {
      double value;
      if (values.size() >= 16 || !cursor.number(value)) bad_value(key, "a short list of numbers");
      values.push_back(value);
    } while (cursor.eat(','));
    if (!cursor.eat(']')) bad_value(key, "a list of numbers");
  }
  if (!cursor.at_end()) bad_value(key, "a list of numbers");
  return values;
}

std::optional<std::string> Metadata::string(const std::string &key) const {
  const std::string *text = find(key);
  if (!text) return std::nullopt;
  Cursor cursor{text->data(), text->data() + text->size()};
  if (!cursor.eat('"')) bad_value(key, "a string");
  const char *begin = cursor.pos;
  while (cursor.pos != cursor.end && *cursor.pos != '"') {
    if (*cursor.pos == '\\') bad_value(key, "a plain string");
    ++cursor.pos;
  }
  std::string value(begin, cursor.pos);
  if (!cursor.eat('"') || !cursor.at_end()) bad_value(key, "a string");
  return value;
}

}  // namespace onnxgan
