// The lowering and the forward pass of conv.h.
#include "conv.h"

#include <algorithm>
#include <cstring>

namespace onnxgan {
namespace {

// The phases of one axis. Conv: one phase, input o * stride - pad + k * dilation. ConvTranspose:
// output o = i * stride - pad + k * dilation, so output o = origin + stride * q reads, through tap k,
// input i = q + (origin + pad - k * dilation) / stride wherever that division is exact.
std::vector<ConvAxis> axis_phases(const Conv &conv, int axis, int64_t out) {
  const int64_t stride = conv.stride[axis], pad = conv.pad_begin[axis], dilation = conv.dilation[axis];
  std::vector<ConvAxis> phases;
  const auto finish = [&](ConvAxis &phase) {
    if (conv.transposed) {  // taps in ascending order of the input they read
      std::reverse(phase.taps.begin(), phase.taps.end());
      std::reverse(phase.offsets.begin(), phase.offsets.end());
    }
    phase.contiguous = true;
    for (size_t t = 1; t < phase.offsets.size(); ++t) phase.contiguous &= phase.offsets[t] == phase.offsets[t - 1] + 1;
    phases.push_back(phase);
  };
  if (!conv.transposed) {
    ConvAxis phase;
    phase.count = out;
    for (int64_t k = 0; k < conv.kernel[axis]; ++k) phase.taps.push_back(k), phase.offsets.push_back(k * dilation - pad);
    finish(phase);
    return phases;
  }
  for (int64_t origin = 0; origin < stride && origin < out; ++origin) {
    ConvAxis phase;
    phase.origin = origin;
    phase.count = (out - origin + stride - 1) / stride;
    for (int64_t k = 0; k < conv.kernel[axis]; ++k) {
      const int64_t reach = origin + pad - k * dilation;  // stride * (input - q)
      if (((reach % stride) + stride) % stride == 0) phase.taps.push_back(k), phase.offsets.push_back(reach / stride);
    }
    finish(phase);
  }
  return phases;
}

int64_t padded(int64_t columns) { return (columns + kPanelWidth - 1) / kPanelWidth * kPanelWidth; }

// Where input index i reaches through tap k on one axis: Conv, the output o with
// i = o * stride - pad + k * dilation; ConvTranspose, o = i * stride - pad + k * dilation; -1 where none.
std::vector<int64_t> targets(const Conv &conv, int axis, int64_t in, int64_t out) {
  const int64_t kernel = conv.kernel[axis], stride = conv.stride[axis], pad = conv.pad_begin[axis], dilation = conv.dilation[axis];
  std::vector<int64_t> target(size_t(in * kernel), -1);
  for (int64_t i = 0; i < in; ++i)
    for (int64_t k = 0; k < kernel; ++k) {
      const int64_t reach = conv.transposed ? i * stride - pad + k * dilation : i + pad - k * dilation;
      const int64_t o = conv.transposed ? reach : (reach >= 0 && reach % stride == 0 ? reach / stride : -1);
      if (o >= 0 && o < out) target[size_t(i * kernel + k)] = o;
    }
  return target;
}

// The scatter form of conv.h: the (C_in, taps * C_out) layer, columns (ky, kx, co).
void pack_scatter(const ImageStep &step, bool half, int64_t block_rows, PackedConv &packed) {
  const Conv &conv = step.conv;
  const int64_t cin = conv.in_channels, cout = conv.out_channels, taps = conv.kernel[0] * conv.kernel[1];
  Layer layer;
  layer.in = cin;
  layer.out = taps * cout;
  layer.weight.resize(size_t(layer.in * layer.out));
  for (int64_t t = 0; t < taps; ++t)
    for (int64_t co = 0; co < cout; ++co)
      for (int64_t ci = 0; ci < cin; ++ci)
        layer.weight[size_t((t * cout + co) * cin + ci)] = conv.weight[size_t((co * cin + ci) * taps + t)];
  layer.bias.assign(size_t(layer.out), 0.0f);
  packed.scattered = true;
  packed.scatter = pack_layer(layer, half);
  packed.target_y = targets(conv, 0, step.in_shape[1], step.out_shape[1]);
  packed.target_x = targets(conv, 1, step.in_shape[2], step.out_shape[2]);
  packed.bias = conv.bias;
  packed.activation = step.activation;
  packed.alpha = step.alpha;
  packed.max_rows = std::min(block_rows, step.in_shape[1] * step.in_shape[2]);
}

}  // namespace

PackedConv pack_conv(const ImageStep &step, bool half, int64_t block_rows) {
  const Conv &conv = step.conv;
  PackedConv packed;
  std::copy(step.in_shape, step.in_shape + 3, packed.in_shape);
  std::copy(step.out_shape, step.out_shape + 3, packed.out_shape);
  const int64_t cin = conv.in_channels, cout = conv.out_channels, kh = conv.kernel[0], kw = conv.kernel[1];
  for (int axis = 0; axis < 2; ++axis) {
    packed.in_step[axis] = conv.transposed ? 1 : conv.stride[axis];
    packed.out_step[axis] = conv.transposed ? conv.stride[axis] : 1;
  }
  for (const ConvAxis &y : axis_phases(conv, 0, step.out_shape[1])) {
    for (const ConvAxis &x : axis_phases(conv, 1, step.out_shape[2])) {
      Layer layer;  // (C_out, taps * C_in), column (ty, tx, ci) = weight[co, ci, ky, kx]
      layer.in = int64_t(y.taps.size() * x.taps.size()) * cin;
      layer.out = cout;
      layer.weight.resize(size_t(layer.in * cout));
      for (int64_t co = 0; co < cout; ++co)
        for (size_t ty = 0; ty < y.taps.size(); ++ty)
          for (size_t tx = 0; tx < x.taps.size(); ++tx)
            for (int64_t ci = 0; ci < cin; ++ci)
              layer.weight[size_t(co * layer.in + int64_t(ty * x.taps.size() + tx) * cin + ci)] =
                  conv.weight[size_t(((co * cin + ci) * kh + y.taps[ty]) * kw + x.taps[tx])];
      layer.bias = conv.bias;
      layer.activation = step.activation;
      layer.alpha = step.alpha;
      const size_t index = packed.phases.size();
      packed.phases.push_back(ConvPhase{y, x, pack_layer(layer, half)});
      packed.max_k = std::max(packed.max_k, layer.in);
      const int64_t lines = std::max<int64_t>(1, block_rows / x.count);  // x.count >= 1: empty phases are never made
      const int64_t columns = std::min(x.count, block_rows);
      for (int64_t q0 = 0; q0 < y.count; q0 += lines)
        for (int64_t r0 = 0; r0 < x.count; r0 += columns) {
          const ConvBlock block{index, q0, std::min(y.count, q0 + lines), r0, std::min(x.count, r0 + columns)};
          packed.blocks.push_back(block);
          packed.max_rows = std::max(packed.max_rows, (block.q1 - block.q0) * (block.r1 - block.r0));
        }
    }
  }
  // Multiply-adds of each form, panels padded to 16 columns (a scattered sum costs about an FMA).
  const int64_t taps = kh * kw, in_pixels = step.in_shape[1] * step.in_shape[2];
  double gathered = 0;
  for (const ConvPhase &phase : packed.phases) gathered += double(phase.y.count * phase.x.count) * double(phase.layer.in) * double(padded(cout));
  const double scattered = double(in_pixels) * (double(cin) * double(padded(taps * cout)) + double(taps * cout));
  if (scattered < gathered) {
    packed.phases.clear();
    packed.blocks.clear();
    pack_scatter(step, half, block_rows, packed);
  }
  return packed;
}

namespace {

void run_gathered(const PackedConv &conv, const Kernel &kernel, const ConvBlock &block, const float *in, float *out,
                  float *scratch) {
  const ConvPhase &phase = conv.phases[block.phase];
  const int64_t cin = conv.in_shape[0], in_h = conv.in_shape[1], in_w = conv.in_shape[2];
  const int64_t cout = conv.out_shape[0], out_w = conv.out_shape[2];
  const int64_t columns = block.r1 - block.r0, rows = (block.q1 - block.q0) * columns, k = phase.layer.in;
  const size_t tap_bytes = size_t(cin) * sizeof(float);
  float *a = scratch;  // (rows, k): row (qy, qx) = the input pixels its taps read, zeros outside the image
  for (int64_t qy = block.q0; qy < block.q1; ++qy) {
    for (int64_t qx = block.r0; qx < block.r1; ++qx) {
      float *row = a + ((qy - block.q0) * columns + qx - block.r0) * k;
      // Where the x taps read adjacent pixels inside the image, one copy per y tap instead of one per tap:
      // dcgan G, median us per sample at batch 256, interleaved runs on a loaded AVX-512 Xeon, one thread
      // 86.0 -> 84.6, two 48.9 -> 48.1; dcgan-upsample (5x5 convs) batch 64, 491 -> 474 and 251 -> 245.
      const int64_t taps_x = int64_t(phase.x.offsets.size()), ix0 = qx * conv.in_step[1] + (taps_x ? phase.x.offsets[0] : 0);
      const bool run = phase.x.contiguous && ix0 >= 0 && ix0 + taps_x <= in_w;
      for (size_t ty = 0; ty < phase.y.offsets.size(); ++ty) {
        const int64_t iy = qy * conv.in_step[0] + phase.y.offsets[ty];
        if (run && iy >= 0 && iy < in_h) {
          std::memcpy(row, in + (iy * in_w + ix0) * cin, size_t(taps_x) * tap_bytes);
          row += taps_x * cin;
          continue;
        }
        for (size_t tx = 0; tx < phase.x.offsets.size(); ++tx, row += cin) {
          const int64_t ix = qx * conv.in_step[1] + phase.x.offsets[tx];
          if (iy >= 0 && iy < in_h && ix >= 0 && ix < in_w)
            std::memcpy(row, in + (iy * in_w + ix) * cin, tap_bytes);
          else
            std::memset(row, 0, tap_bytes);
        }
      }
    }
  }
  // A Conv's block is whole output lines or part of one, contiguous in out: the kernel writes there. A
  // transposed conv's phase pixels lie out_step apart: they go to scratch, then to their places.
  const bool direct = conv.out_step[0] == 1 && conv.out_step[1] == 1;
  float *c = direct ? out + (block.q0 * out_w + block.r0) * cout : scratch + conv.max_rows * conv.max_k;  // (rows, C_out)
  kernel.gemm(GemmTask{a, size_t(k), rows, &phase.layer, 0, phase.layer.panels, c, size_t(cout)});
  if (direct) return;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t oy = phase.y.origin + (block.q0 + r / columns) * conv.out_step[0];
    const int64_t ox = phase.x.origin + (block.r0 + r % columns) * conv.out_step[1];
    std::memcpy(out + (oy * out_w + ox) * cout, c + r * cout, size_t(cout) * sizeof(float));
  }
}

void run_scattered(const PackedConv &conv, const Kernel &kernel, const float *in, float *out, float *scratch) {
  const int64_t cin = conv.in_shape[0], in_h = conv.in_shape[1], in_w = conv.in_shape[2];
  const int64_t cout = conv.out_shape[0], out_h = conv.out_shape[1], out_w = conv.out_shape[2];
  const int64_t kh = int64_t(conv.target_y.size()) / in_h, kw = int64_t(conv.target_x.size()) / in_w;
  const int64_t plane = out_h * out_w, width = conv.scatter.out, pixels = in_h * in_w;
  std::memset(out, 0, size_t(cout * plane) * sizeof(float));
  for (int64_t p0 = 0; p0 < pixels; p0 += conv.max_rows) {
    const int64_t rows = std::min(conv.max_rows, pixels - p0);
    kernel.gemm(GemmTask{in + p0 * cin, size_t(cin), rows, &conv.scatter, 0, conv.scatter.panels, scratch, size_t(width)});
    for (int64_t r = 0; r < rows; ++r) {  // input pixel p0 + r: each tap's C_out sums to the pixel it reaches
      const int64_t iy = (p0 + r) / in_w, ix = (p0 + r) % in_w;
      const float *sums = scratch + r * width;
      for (int64_t ky = 0; ky < kh; ++ky) {
        const int64_t oy = conv.target_y[size_t(iy * kh + ky)];
        if (oy < 0) continue;
        for (int64_t kx = 0; kx < kw; ++kx) {
          const int64_t ox = conv.target_x[size_t(ix * kw + kx)];
          if (ox < 0) continue;
          const float *tap = sums + (ky * kw + kx) * cout;
          for (int64_t co = 0; co < cout; ++co) out[co * plane + oy * out_w + ox] += tap[co];
        }
      }
    }
  }
  for (int64_t co = 0; co < cout; ++co) kernel.activate(out + co * plane, plane, conv.bias[size_t(co)], conv.activation, conv.alpha);
}

}  // namespace

void run_conv_item(const PackedConv &conv, const Kernel &kernel, int64_t item, const float *in, float *out, float *scratch) {
  if (conv.scattered)
    run_scattered(conv, kernel, in, out, scratch);
  else
    run_gathered(conv, kernel, conv.blocks[size_t(item)], in, out, scratch);
}

void upsample(const ImageStep &step, const float *in, float *out) {
  const int64_t channels = step.in_shape[0], in_h = step.in_shape[1], in_w = step.in_shape[2];
  const int64_t sh = step.scale[0], sw = step.scale[1], out_w = in_w * sw;
  const size_t pixel_bytes = size_t(channels) * sizeof(float);
  for (int64_t iy = 0; iy < in_h; ++iy) {
    float *line = out + iy * sh * out_w * channels;  // output line iy * sh, then copied sh - 1 times
    for (int64_t ix = 0; ix < in_w; ++ix)
      for (int64_t j = 0; j < sw; ++j) std::memcpy(line + (ix * sw + j) * channels, in + (iy * in_w + ix) * channels, pixel_bytes);
    for (int64_t j = 1; j < sh; ++j) std::memcpy(line + j * out_w * channels, line, size_t(out_w) * pixel_bytes);
  }
}

void to_channels_last(int64_t channels, int64_t pixels, const float *in, float *out) {
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t p = 0; p < pixels; ++p) out[p * channels + c] = in[c * pixels + p];
}

void to_channels_first(int64_t channels, int64_t pixels, const float *in, float *out) {
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t p = 0; p < pixels; ++p) out[c * pixels + p] = in[p * channels + c];
}

}  // namespace onnxgan
