// The contract (docs/onnx-contract.md), the C++ twin of runtime/contract.py. Its metadata_props: every
// key required, each value a JSON text of one type and range. read_contract (metadata.cpp) checks the
// keys in the contract's order, check_graph_interface (graph_interface.cpp) the graph's inputs and
// output against them, with the same rules and the same refusal phrases as the Python reader;
// tests/test_contract.py feeds both readers the same broken files.
#ifndef ONNXGAN_METADATA_H
#define ONNXGAN_METADATA_H

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace onnxgan {

namespace onnx {
struct Model;
}

// What a model.onnx promises about itself (the fields the native sampler uses).
struct Contract {
  int64_t latent_dim = 0;
  int64_t channels = 0, height = 0, width = 0;
  int64_t num_classes = 0;
  float value_min = -1.0f, value_max = 1.0f;
};

Contract read_contract(const std::vector<std::pair<std::string, std::string>> &metadata);

// The graph's inputs (z, label) and output (image) against the contract; refuses like read_contract.
void check_graph_interface(const onnx::Model &model, const Contract &contract);

// A refusal in the contract's words: "<subject> '<name>' <verdict>: <detail>", e.g.
// "metadata 'latent_dim' is out of range: 0 (it must be 1..2147483647)". Verdicts: "is missing",
// "has the wrong type", "is out of range", "is not supported", "disagrees with the graph".
[[noreturn]] void refuse(const char *subject, const std::string &name, const char *verdict, const std::string &detail);

}  // namespace onnxgan
#endif
