// The image ops of image_reader.h. Conv and ConvTranspose take any kernel, stride, dilation and
// explicit pads within ImageLimits (group 1, auto_pad NOTSET); Resize and Upsample take nearest
// upsampling by whole factors in the coordinate modes where it is out[o] = in[o / scale].
#include "image_reader.h"

#include <string>

#include "error.h"

namespace onnxgan {
namespace {

std::string text(const std::vector<int64_t> &values) {
  std::string out = "(";
  for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + std::to_string(values[i]);
  return out + ")";
}

// The node's ints attribute `name`: `fallback` when absent, else exactly `count` values in [low, high].
std::vector<int64_t> ints(const onnx::Node &node, const char *name, size_t count, std::vector<int64_t> fallback,
                          int64_t low, int64_t high) {
  const onnx::Attribute *a = node.attribute(name);
  if (!a) return fallback;
  if (a->ints.size() != count) refuse_node(node, std::string(name) + " must have " + std::to_string(count) + " values, got " + text(a->ints));
  for (int64_t v : a->ints)
    if (v < low || v > high)
      refuse_node(node, std::string(name) + " " + text(a->ints) + " is outside " + std::to_string(low) + ".." + std::to_string(high));
  return a->ints;
}

std::string string_attribute(const onnx::Node &node, const char *name, const char *fallback) {
  const onnx::Attribute *a = node.attribute(name);
  return a ? a->s : fallback;
}

void check_image_size(const onnx::Node &node, const int64_t shape[3]) {
  if (shape[1] < 1 || shape[2] < 1) refuse_node(node, "its output would be empty (" + std::to_string(shape[1]) + " x " + std::to_string(shape[2]) + ")");
  if (double(shape[0]) * double(shape[1]) * double(shape[2]) > double(ImageLimits::kMaxImageValues))
    refuse_node(node, "its output image (" + std::to_string(shape[0]) + ", " + std::to_string(shape[1]) + ", " +
                          std::to_string(shape[2]) + ") has more than " + std::to_string(ImageLimits::kMaxImageValues) + " values");
}

}  // namespace

ImageStep read_conv(const onnx::Node &node, const std::vector<int64_t> &in, const std::vector<int64_t> &weight_dims,
                    const std::vector<float> &weight, std::vector<float> bias) {
  if (in.size() != 3) refuse_node(node, "its input must be an image (N, C, H, W); reshape the features first");
  const bool transposed = node.op_type == "ConvTranspose";
  if (weight_dims.size() != 4)
    refuse_node(node, "the weight must be 4-D " + std::string(transposed ? "(C_in, C_out, kh, kw)" : "(C_out, C_in, kh, kw)") + ", got " + text(weight_dims));
  const onnx::Attribute *group = node.attribute("group");
  if (group && group->i != 1) refuse_node(node, "group " + std::to_string(group->i) + " is not supported (only 1)");
  const std::string auto_pad = string_attribute(node, "auto_pad", "NOTSET");
  if (auto_pad != "NOTSET") refuse_node(node, "auto_pad '" + auto_pad + "' is not supported (give explicit pads)");
  if (node.attribute("output_shape")) refuse_node(node, "output_shape is not supported (give pads and output_padding)");
  ImageStep step;
  step.kind = ImageStep::kConv;
  Conv &conv = step.conv;
  conv.transposed = transposed;
  const int64_t weight_in = transposed ? weight_dims[0] : weight_dims[1];
  conv.out_channels = transposed ? weight_dims[1] : weight_dims[0];
  conv.in_channels = in[0];
  if (weight_in != in[0])
    refuse_node(node, "the weight " + text(weight_dims) + " takes " + std::to_string(weight_in) + " input channels, the image has " + std::to_string(in[0]));
  if (conv.out_channels < 1) refuse_node(node, "the weight " + text(weight_dims) + " has no output channels");
  const std::vector<int64_t> kernel = {weight_dims[2], weight_dims[3]};
  for (int64_t k : kernel)
    if (k < 1 || k > ImageLimits::kKernel)
      refuse_node(node, "kernel " + text(kernel) + " is outside 1.." + std::to_string(ImageLimits::kKernel) + " per side");
  if (ints(node, "kernel_shape", 2, kernel, 1, ImageLimits::kKernel) != kernel)
    refuse_node(node, "kernel_shape disagrees with the weight " + text(weight_dims));
  const std::vector<int64_t> stride = ints(node, "strides", 2, {1, 1}, 1, ImageLimits::kStride);
  const std::vector<int64_t> dilation = ints(node, "dilations", 2, {1, 1}, 1, ImageLimits::kDilation);
  const int64_t max_pad = ImageLimits::kKernel * ImageLimits::kDilation;
  const std::vector<int64_t> pads = ints(node, "pads", 4, {0, 0, 0, 0}, 0, max_pad);  // (h0, w0, h1, w1)
  const std::vector<int64_t> output_padding = transposed ? ints(node, "output_padding", 2, {0, 0}, 0, ImageLimits::kStride) : std::vector<int64_t>{0, 0};
  step.in_shape[0] = in[0], step.in_shape[1] = in[1], step.in_shape[2] = in[2];
  step.out_shape[0] = conv.out_channels;
  for (int axis = 0; axis < 2; ++axis) {
    const int64_t span = dilation[axis] * (kernel[axis] - 1);  // reach of the kernel beyond one pixel
    if (pads[axis] > span || pads[axis + 2] > span)
      refuse_node(node, "pads " + text(pads) + " reach beyond the kernel's span (" + std::to_string(span) + ")");
    if (transposed && output_padding[axis] >= stride[axis])  // onnxruntime refuses it too, when it runs the model
      refuse_node(node, "output_padding " + text(output_padding) + " must be smaller than the strides " + text(stride));
    conv.kernel[axis] = kernel[axis], conv.stride[axis] = stride[axis], conv.dilation[axis] = dilation[axis];
    conv.pad_begin[axis] = pads[axis];
    const int64_t side = in[size_t(axis) + 1];
    step.out_shape[axis + 1] = transposed ? stride[axis] * (side - 1) + output_padding[axis] + span + 1 - pads[axis] - pads[axis + 2]
                                          : (side + pads[axis] + pads[axis + 2] - span - 1) / stride[axis] + 1;
    if (!transposed && side + pads[axis] + pads[axis + 2] <= span) step.out_shape[axis + 1] = 0;  // kernel larger than the padded image
  }
  check_image_size(node, step.out_shape);
  // (out, in, kh, kw) for both kinds: ConvTranspose's (in, out, kh, kw) swapped once here.
  const int64_t taps = kernel[0] * kernel[1], cin = conv.in_channels, cout = conv.out_channels;
  if (transposed) {
    conv.weight.resize(weight.size());
    for (int64_t i = 0; i < cin; ++i)
      for (int64_t o = 0; o < cout; ++o)
        for (int64_t t = 0; t < taps; ++t) conv.weight[size_t((o * cin + i) * taps + t)] = weight[size_t((i * cout + o) * taps + t)];
  } else {
    conv.weight = weight;
  }
  if (bias.empty()) bias.assign(size_t(cout), 0.0f);
  if (int64_t(bias.size()) != cout) refuse_node(node, "the bias has " + std::to_string(bias.size()) + " values for " + std::to_string(cout) + " output channels");
  conv.bias = std::move(bias);
  return step;
}

ImageStep read_upsample(const onnx::Node &node, const std::vector<int64_t> &in, const std::vector<float> &scales) {
  if (in.size() != 3) refuse_node(node, "its input must be an image (N, C, H, W); reshape the features first");
  const std::string mode = string_attribute(node, "mode", "nearest");
  if (mode != "nearest") refuse_node(node, "mode '" + mode + "' is not supported (only nearest)");
  if (node.op_type == "Resize") {
    // out[o] = in[o / scale] for whole scales: asymmetric + floor (what torch writes), or half_pixel
    // with rounding to the nearest, where (o + 0.5) / scale - 0.5 never reaches a half.
    const std::string transform = string_attribute(node, "coordinate_transformation_mode", "half_pixel");
    const std::string rounding = string_attribute(node, "nearest_mode", "round_prefer_floor");
    const bool floor = transform == "asymmetric" && rounding == "floor";
    const bool half_pixel = (transform == "half_pixel" || transform == "pytorch_half_pixel") &&
                            (rounding == "round_prefer_floor" || rounding == "round_prefer_ceil");
    if (!floor && !half_pixel)
      refuse_node(node, "coordinate_transformation_mode '" + transform + "' with nearest_mode '" + rounding +
                            "' is not supported (asymmetric + floor, or half_pixel + round_prefer_floor)");
    if (node.attribute("axes")) refuse_node(node, "axes is not supported (give the 4 scales)");
  }
  if (scales.size() != 4 || scales[0] != 1.0f || scales[1] != 1.0f)
    refuse_node(node, "the scales must be 4 values (1, 1, scale_h, scale_w)");
  ImageStep step;
  step.kind = ImageStep::kUpsample;
  step.in_shape[0] = in[0], step.in_shape[1] = in[1], step.in_shape[2] = in[2];
  step.out_shape[0] = in[0];
  for (int axis = 0; axis < 2; ++axis) {
    const float scale = scales[size_t(axis) + 2];
    if (!(scale >= 1.0f && scale <= float(ImageLimits::kScale)) || scale != float(int64_t(scale)))
      refuse_node(node, "scale " + std::to_string(scale) + " is not supported (whole factors 1.." + std::to_string(ImageLimits::kScale) + ")");
    step.scale[axis] = int64_t(scale);
    step.out_shape[axis + 1] = in[size_t(axis) + 1] * step.scale[axis];
  }
  check_image_size(node, step.out_shape);
  return step;
}

}  // namespace onnxgan
