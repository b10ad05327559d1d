// Reading the JSON values of the contract's metadata_props (docs/onnx-contract.md): integers, lists
// of numbers and strings only; anything else is a format error naming the key.
#ifndef ONNXGAN_METADATA_H
#define ONNXGAN_METADATA_H

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace onnxgan {

class Metadata {
 public:
  explicit Metadata(const std::vector<std::pair<std::string, std::string>> &entries) : entries_(&entries) {}
  std::optional<long long> integer(const std::string &key) const;
  std::optional<std::vector<double>> numbers(const std::string &key) const;  // a JSON list of numbers
  std::optional<std::string> string(const std::string &key) const;

 private:
  const std::string *find(const std::string &key) const;
  const std::vector<std::pair<std::string, std::string>> *entries_;
};

}  // namespace onnxgan
#endif
