// The contract's metadata_props, checked key by key in the order of docs/onnx-contract.md's table:
// present, then of its JSON type (strict JSON: no NaN, no trailing commas), then in range. The JSON
// reading is minimal and locale-independent: integers, finite numbers, strings and lists of them.
#include "metadata.h"

#include <charconv>
#include <cmath>
#include <limits>

#include "error.h"

namespace onnxgan {
namespace {

constexpr long long kMaxSide = 2147483647;  // latent_dim, image sides and num_classes fit an int32
constexpr const char *kLatentRng = "splitmix64-boxmuller-v1";

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// A cursor over one JSON text. Each reader returns false on text that is not its type.
struct Json {
  const char *pos, *end;

  void skip_space() {
    while (pos != end && (*pos == ' ' || *pos == '\t' || *pos == '\n' || *pos == '\r')) ++pos;
  }
  bool eat(char c) {
    skip_space();
    if (pos == end || *pos != c) return false;
    ++pos;
    return true;
  }
  bool at_end() {
    skip_space();
    return pos == end;
  }
  // JSON's number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; `integral` when no fraction or exponent.
  bool number_text(const char *&begin, bool &integral) {
    skip_space();
    begin = pos;
    const char *p = pos;
    if (p != end && *p == '-') ++p;
    if (p == end || !is_digit(*p)) return false;
    if (*p == '0') ++p;
    else
      while (p != end && is_digit(*p)) ++p;
    integral = true;
    if (p != end && *p == '.') {
      integral = false;
      if (++p == end || !is_digit(*p)) return false;
      while (p != end && is_digit(*p)) ++p;
    }
    if (p != end && (*p == 'e' || *p == 'E')) {
      integral = false;
      if (++p != end && (*p == '+' || *p == '-')) ++p;
      if (p == end || !is_digit(*p)) return false;
      while (p != end && is_digit(*p)) ++p;
    }
    pos = p;
    return true;
  }
  // An integer literal; `overflow` when it does not fit in 64 bits (out of range for every key).
  bool integer(long long &value, bool &overflow) {
    const char *begin;
    bool integral;
    if (!number_text(begin, integral) || !integral) return false;
    overflow = std::from_chars(begin, pos, value).ec != std::errc();
    return true;
  }
  // A finite number. Like Python's json: a literal too large for a double is not finite (Python reads
  // it as inf), one too small for a double is 0.
  bool number(double &value) {
    const char *begin;
    bool integral;
    if (!number_text(begin, integral)) return false;
    const auto result = std::from_chars(begin, pos, value);
    if (result.ec == std::errc::result_out_of_range && magnitude(begin) < 0) value = 0.0;
    else if (result.ec != std::errc() || !std::isfinite(value)) return false;
    return true;
  }
  // The decimal exponent of the number text [begin, pos): digits before the point (leading zeros
  // not counted, or minus the zeros after "0.") plus the exponent; negative for |x| < 1.
  long long magnitude(const char *begin) const {
    const char *p = begin + (*begin == '-');
    long long digits = 0;
    while (p != pos && *p == '0') ++p;
    while (p != pos && is_digit(*p)) ++p, ++digits;
    if (digits == 0 && p != pos && *p == '.')
      for (++p; p != pos && *p == '0'; ++p) --digits;
    while (p != pos && *p != 'e' && *p != 'E') ++p;
    long long exponent = 0;
    if (p != pos) {
      const char *e = p + 1 + (p[1] == '+');
      if (std::from_chars(e, pos, exponent).ec != std::errc()) exponent = *e == '-' ? -(1LL << 60) : 1LL << 60;
    }
    return digits + exponent;
  }
  bool string(std::string &out) {
    if (!eat('"')) return false;
    out.clear();
    while (pos != end && *pos != '"') {
      const unsigned char c = static_cast<unsigned char>(*pos++);
      if (c < 0x20) return false;
      if (c != '\\') {
        out += char(c);
        continue;
      }
      if (pos == end) return false;
      const char escape = *pos++;
      switch (escape) {
        case '"': case '\\': case '/': out += escape; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned code = 0;
          if (!hex4(code)) return false;
          if (code >= 0xD800 && code < 0xDC00 && end - pos >= 6 && pos[0] == '\\' && pos[1] == 'u') {
            const char *mark = pos;
            unsigned low = 0;
            pos += 2;
            if (hex4(low) && low >= 0xDC00 && low < 0xE000) code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
            else pos = mark;  // a lone surrogate, as Python's json keeps it
          }
          utf8(code, out);
          break;
        }
        default: return false;
      }
    }
    return eat('"');
  }
  bool hex4(unsigned &code) {
    for (int i = 0; i < 4; ++i, ++pos) {
      if (pos == end) return false;
      const char c = *pos;
      const int digit = is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
      if (digit < 0) return false;
      code = code * 16 + unsigned(digit);
    }
    return true;
  }
  static void utf8(unsigned code, std::string &out) {
    if (code < 0x80) {
      out += char(code);
    } else if (code < 0x800) {
      out += char(0xC0 | (code >> 6)), out += char(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      out += char(0xE0 | (code >> 12)), out += char(0x80 | ((code >> 6) & 0x3F)), out += char(0x80 | (code & 0x3F));
    } else {
      out += char(0xF0 | (code >> 18)), out += char(0x80 | ((code >> 12) & 0x3F));
      out += char(0x80 | ((code >> 6) & 0x3F)), out += char(0x80 | (code & 0x3F));
    }
  }
  // A JSON list whose items `item` reads; false if any item is not of its type.
  template <class Item>
  bool list(Item item) {
    if (!eat('[')) return false;
    if (eat(']')) return true;
    do {
      if (!item()) return false;
    } while (eat(','));
    return eat(']');
  }
};

class Reader {
 public:
  explicit Reader(const std::vector<std::pair<std::string, std::string>> &entries) : entries_(entries) {}

  // The JSON text of `key`, refused when absent; the last entry wins, as in a JSON object.
  Json text(const std::string &key) const {
    const std::string *found = nullptr;
    for (const auto &entry : entries_)
      if (entry.first == key) found = &entry.second;
    if (!found) {
      if (key == "onnxgan_format") refuse("metadata", key, "is missing", "not an onnxgan generator; make one with gan-export");
      refuse("metadata", key, "is missing", "re-export the model with gan-export");
    }
    return Json{found->data(), found->data() + found->size()};
  }

  long long integer(const std::string &key, long long low, long long high) const {
    Json json = text(key);
    long long value = 0;
    bool overflow = false;
    if (!json.integer(value, overflow) || !json.at_end()) wrong_type(key, "an integer");
    if (overflow || value < low || value > high)
      refuse("metadata", key, "is out of range", "it must be " + std::to_string(low) + ".." + std::to_string(high));
    return value;
  }

  std::vector<long long> integers(const std::string &key, size_t count, long long low, long long high) const {
    Json json = text(key);
    std::vector<long long> values;
    bool overflow = false;
    const bool ok = json.list([&] {
      long long value = 0;
      bool too_big = false;
      if (!json.integer(value, too_big)) return false;
      overflow |= too_big;
      values.push_back(value);
      return true;
    });
    if (!ok || !json.at_end()) wrong_type(key, "a list of integers");
    bool in_range = !overflow && values.size() == count;
    for (long long value : values) in_range = in_range && value >= low && value <= high;
    if (!in_range)
      refuse("metadata", key, "is out of range", "it must be " + std::to_string(count) + " integers in " +
                                                    std::to_string(low) + ".." + std::to_string(high));
    return values;
  }

  std::vector<double> numbers(const std::string &key) const {
    Json json = text(key);
    std::vector<double> values;
    const bool ok = json.list([&] {
      double value = 0.0;
      if (!json.number(value)) return false;
      values.push_back(value);
      return true;
    });
    if (!ok || !json.at_end()) wrong_type(key, "a list of finite numbers");
    return values;
  }

  std::string string(const std::string &key) const {
    Json json = text(key);
    std::string value;
    if (!json.string(value) || !json.at_end()) wrong_type(key, "a string");
    return value;
  }

  size_t string_count(const std::string &key) const {
    Json json = text(key);
    size_t count = 0;
    std::string item;
    const bool ok = json.list([&] { return json.string(item) && ++count; });
    if (!ok || !json.at_end()) wrong_type(key, "a list of strings");
    return count;
  }

 private:
  [[noreturn]] static void wrong_type(const std::string &key, const char *expected) {
    refuse("metadata", key, "has the wrong type", std::string("expected ") + expected);
  }
  const std::vector<std::pair<std::string, std::string>> &entries_;
};

}  // namespace

void refuse(const char *subject, const std::string &name, const char *verdict, const std::string &detail) {
  const std::string message = std::string(subject) + " '" + name + "' " + verdict + ": " + detail;
  const std::string verdict_text = verdict;
  if (verdict_text == "is not supported" || (name == "onnxgan_format" && verdict_text == "is missing"))
    fail_unsupported(message);  // valid ONNX, but not a file this library runs
  fail_format(message);
}

Contract read_contract(const std::vector<std::pair<std::string, std::string>> &metadata) {
  const Reader reader(metadata);
  const long long int64_max = std::numeric_limits<long long>::max();
  Contract contract;
  const long long format = reader.integer("onnxgan_format", -int64_max, int64_max);
  if (format != 1)
    refuse("metadata", "onnxgan_format", "is not supported", "format " + std::to_string(format) +
                                                                 " is not the one this library reads (1); upgrade onnxgan or re-export");
  reader.string("model");
  contract.latent_dim = reader.integer("latent_dim", 1, kMaxSide);
  const std::vector<long long> shape = reader.integers("image_shape", 3, 1, kMaxSide);
  contract.channels = shape[0], contract.height = shape[1], contract.width = shape[2];
  contract.num_classes = reader.integer("num_classes", 0, kMaxSide);
  const size_t names = reader.string_count("class_names");
  if (names != 0 && names != size_t(contract.num_classes))
    refuse("metadata", "class_names", "is out of range", std::to_string(names) + " names for " +
                                                              std::to_string(contract.num_classes) + " classes (it must be none or one per class)");
  reader.integer("training_step", 0, int64_max);
  reader.string("package_version");
  const std::string dtype = reader.string("weights_dtype");
  if (dtype != "float32" && dtype != "float16")
    refuse("metadata", "weights_dtype", "is not supported", "'" + dtype + "' (float32 or float16)");
  const std::vector<double> range = reader.numbers("value_range");
  const double float_max = std::numeric_limits<float>::max();
  if (range.size() != 2 || !(std::fabs(range[0]) <= float_max && std::fabs(range[1]) <= float_max) ||
      !(float(range[0]) < float(range[1])))
    refuse("metadata", "value_range", "is out of range", "it must be [low, high], float32 numbers with low < high");
  contract.value_min = float(range[0]), contract.value_max = float(range[1]);
  const std::string rng = reader.string("latent_rng");
  if (rng != kLatentRng)
    refuse("metadata", "latent_rng", "is not supported", "'" + rng + "' is unknown to this library (it knows " +
                                                             std::string(kLatentRng) + "); upgrade onnxgan");
  return contract;
}

}  // namespace onnxgan
