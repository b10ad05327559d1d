// The image steps of conv generators on the packed-panel GEMM kernels (kernel.h), on channels-last
// images (H, W, C): a pixel's channels are one contiguous row, which is what a GEMM row reads and writes.
//
// A convolution is lowered to GEMMs by phases: output pixels are grouped by their position modulo the
// output step (a ConvTranspose of stride s has s x s phases, a Conv one), and within a phase every
// output pixel reads the same kernel taps at fixed input offsets. So a phase is one GEMM:
// A (pixels, taps * C_in), gathered from the input with zeros outside it (im2col), times the phase's
// packed weights (taps * C_in, C_out), bias and activation applied by the kernel. A transposed conv
// never multiplies the zeros that the textbook zero-insertion form would (75% of them at stride 2).
//
// A convolution with few output channels (the last one, to 1 or 3 channels) would fill a 16-column
// panel with one or three: there the scatter form wastes less. The GEMM multiplies each input pixel's
// channels (pixels, C_in) by all taps at once (C_in, taps * C_out), and each of its taps * C_out sums
// is added to the output pixel that tap reaches (col2im); then bias and activation run over each
// channel plane (Kernel::activate). Its output is channels-first (C, H, W): the image's own layout.
// pack_conv picks the form with fewer multiply-adds, counting the padded panels.
//
// The plain reference of these ops is tests/native_reference.py (numpy), compared in tests/test_native_conv.py.
#ifndef ONNXGAN_CONV_H
#define ONNXGAN_CONV_H

#include <vector>

#include "kernel.h"
#include "plan.h"

namespace onnxgan {

// One phase along one axis: outputs origin + out_step * q for q < count read inputs
// q * in_step + offsets[t] for each tap t (kernel index taps[t]).
struct ConvAxis {
  int64_t origin = 0, count = 0;
  std::vector<int64_t> taps, offsets;  // offsets ascending
  bool contiguous = false;             // offsets step by 1: the taps read one run of adjacent input pixels
};

struct ConvPhase {
  ConvAxis y, x;
  PackedLayer layer;  // in = y.taps * x.taps * C_in (tap-major, then channel), out = C_out
};

// Outputs q0 .. q1 (lines) x r0 .. r1 (columns) of a phase, at most `block_rows` pixels: one work item.
// Whole lines where they fit, else part of one line (so a block's scratch stays small whatever the width).
struct ConvBlock {
  size_t phase = 0;
  int64_t q0 = 0, q1 = 0, r0 = 0, r1 = 0;
};

struct PackedConv {
  int64_t in_shape[3] = {0, 0, 0}, out_shape[3] = {0, 0, 0};  // (C, H, W)
  int64_t in_step[2] = {1, 1}, out_step[2] = {1, 1};          // (h, w)
  std::vector<ConvPhase> phases;
  std::vector<ConvBlock> blocks;
  int64_t max_rows = 0, max_k = 0;
  // The scatter form: `scatter` (C_in, kh * kw * C_out), columns tap-major; target_y[i * kh + ky]: the
  // output line that input line i reaches through tap ky, or -1 (target_x alike); the bias, activation.
  bool scattered = false;
  PackedLayer scatter;
  std::vector<int64_t> target_y, target_x;
  std::vector<float> bias;
  Activation activation = Activation::kNone;
  float alpha = 0.0f;
  // Floats of scratch one work item needs: gather form, a block's im2col rows (max_rows, max_k) and its
  // output rows (max_rows, C_out); scatter form, a block of input pixels' sums (max_rows, taps * C_out).
  size_t scratch_floats() const { return size_t(max_rows * (scattered ? scatter.out : max_k + out_shape[0])); }
  // Work items per image: the gather form's blocks, or one (the scatter form's sums overlap).
  int64_t items() const { return scattered ? 1 : int64_t(blocks.size()); }
};

PackedConv pack_conv(const ImageStep &step, bool half, int64_t block_rows);

// Work item `item` (< conv.items()) of one image: in (H, W, C_in) -> gather form, that block's pixels of
// out (H_out, W_out, C_out); scatter form, all of out (C_out, H_out, W_out).
void run_conv_item(const PackedConv &conv, const Kernel &kernel, int64_t item, const float *in, float *out, float *scratch);

// Nearest upsampling of one image by the step's whole factors: in (H, W, C) -> out (H * sh, W * sw, C).
void upsample(const ImageStep &step, const float *in, float *out);

// One image (channels, pixels) -> (pixels, channels), and back.
void to_channels_last(int64_t channels, int64_t pixels, const float *in, float *out);
void to_channels_first(int64_t channels, int64_t pixels, const float *in, float *out);

}  // namespace onnxgan
#endif
