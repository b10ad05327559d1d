// The SIMD kernels, written once over an ISA traits type V and instantiated by kernel_avx2.cpp (V =
// AVX2: 8 lanes, 16 registers) and kernel_avx512.cpp (V = AVX-512: 16 lanes, 32 registers), each
// compiled with its own -m flags. Everything here is a template on V, and each V lives in its file's
// anonymous namespace, so the two instantiations never meet at link time.
//
// A tile is kRows rows x kVectors vectors of V::kLanes columns: the accumulators are named variables
// (GCC 12 spills an accumulator array to memory); the tile stores its sums, then one pass over the
// stored block adds the bias and applies the activation (finish). Vector v of a tile starting at panel p
// reads columns 16p + v * kLanes ...: with 8 lanes both vectors lie in panel p, with 16 lanes vector v
// is panel p + v.
#ifndef ONNXGAN_KERNEL_SIMD_H
#define ONNXGAN_KERNEL_SIMD_H

#include <algorithm>

#include "kernel.h"

namespace onnxgan {
namespace {

template <class V>
using Reg = typename V::Reg;

// tanh as a rational function (Eigen's fast float tanh: within a few ulp; |x| clamped at 7.9, where
// tanh rounds to +-1 in float; tiny |x| pass through, where tanh(x) == x in float).
template <class V>
Reg<V> tanh_approx(Reg<V> x) {
  const Reg<V> limit = V::set1(7.90531110763549805f);
  const Reg<V> clamped = V::min(V::max(x, V::set1(-7.90531110763549805f)), limit);
  const Reg<V> x2 = V::mul(clamped, clamped);
  Reg<V> p = V::set1(-2.76076847742355e-16f);
  p = V::fma(x2, p, V::set1(2.00018790482477e-13f));
  p = V::fma(x2, p, V::set1(-8.60467152213735e-11f));
  p = V::fma(x2, p, V::set1(5.12229709037114e-08f));
  p = V::fma(x2, p, V::set1(1.48572235717979e-05f));
  p = V::fma(x2, p, V::set1(6.37261928875436e-04f));
  p = V::fma(x2, p, V::set1(4.89352455891786e-03f));
  p = V::mul(clamped, p);
  Reg<V> q = V::set1(1.19825839466702e-06f);
  q = V::fma(x2, q, V::set1(1.18534705686654e-04f));
  q = V::fma(x2, q, V::set1(2.26843463243900e-03f));
  q = V::fma(x2, q, V::set1(4.89352518554385e-03f));
  return V::where_tiny(x, V::div(p, q), 0.0004f);
}

template <class V>
Reg<V> activate(Reg<V> x, Activation activation, float alpha) {
  switch (activation) {
    case Activation::kRelu: return V::max(x, V::zero());
    case Activation::kLeakyRelu: return V::where_negative(x, V::mul(V::set1(alpha), x));
    case Activation::kTanh: return tanh_approx<V>(x);
    case Activation::kSigmoid: {  // sigmoid(x) = (1 + tanh(x / 2)) / 2
      const Reg<V> half = V::set1(0.5f);
      return V::fma(tanh_approx<V>(V::mul(x, half)), half, half);
    }
    case Activation::kNone: break;
  }
  return x;
}

// Where vector v of a tile at panel p reads its weights, bias and valid column count.
template <class V>
struct VectorSlot {
  static constexpr int64_t kPanelsPerVector = V::kLanes / kPanelWidth;  // 0 (AVX2) or 1 (AVX-512)
  static int64_t panel(int64_t p, int v) { return p + v * kPanelsPerVector; }
  static int64_t offset(int v) { return kPanelsPerVector ? 0 : v * V::kLanes; }
  static int64_t columns(const PackedLayer &layer, int64_t p, int v) {
    const int64_t c = layer.columns(panel(p, v)) - offset(v);
    return c < V::kLanes ? c : V::kLanes;
  }
};

template <class V, class Weight>
Reg<V> load_weights(const Weight *row) {
  if constexpr (sizeof(Weight) == 2)
    return V::load_half(row);
  else
    return V::load(row);
}

// Adds the bias, activates and stores vector v of the matrix-vector kernel's one row.
template <class V>
void store(const PackedLayer &layer, int64_t p, int v, float *c, Reg<V> acc) {
  using Slot = VectorSlot<V>;
  const Reg<V> x = activate<V>(V::add(acc, V::load(layer.bias(Slot::panel(p, v)) + Slot::offset(v))), layer.activation, layer.alpha);
  V::store(c + v * V::kLanes, x, Slot::columns(layer, p, v));
}

// Bias and activation over a tile's stored sums c (rows, vectors * kLanes), the block still in L1: one
// switch per tile and a tight loop per activation, where applying them to each accumulator in
// registers took a call and a switch per register. Zen 5, one thread, quiet, median per call: batch 16
// 209 -> 198 us, 64 828 -> 788, 256 3365 -> 3227 (AVX2 kernel, batch 64: 1680 -> 1610). The sums
// round-trip through memory exactly, so the results are unchanged.
template <class V, Activation kActivation>
void finish_as(const PackedLayer &layer, int64_t p, int vectors, int rows, float *c, size_t ldc) {
  using Slot = VectorSlot<V>;
  for (int v = 0; v < vectors; ++v) {
    const Reg<V> bias = V::load(layer.bias(Slot::panel(p, v)) + Slot::offset(v));
    const int64_t columns = Slot::columns(layer, p, v);
    for (int r = 0; r < rows; ++r) {
      float *row = c + size_t(r) * ldc + v * V::kLanes;
      V::store(row, activate<V>(V::add(V::load_columns(row, columns), bias), kActivation, layer.alpha), columns);
    }
  }
}

template <class V>
void finish(const PackedLayer &layer, int64_t p, int vectors, int rows, float *c, size_t ldc) {
  switch (layer.activation) {
    case Activation::kRelu: return finish_as<V, Activation::kRelu>(layer, p, vectors, rows, c, ldc);
    case Activation::kLeakyRelu: return finish_as<V, Activation::kLeakyRelu>(layer, p, vectors, rows, c, ldc);
    case Activation::kTanh: return finish_as<V, Activation::kTanh>(layer, p, vectors, rows, c, ldc);
    case Activation::kSigmoid: return finish_as<V, Activation::kSigmoid>(layer, p, vectors, rows, c, ldc);
    case Activation::kNone: return finish_as<V, Activation::kNone>(layer, p, vectors, rows, c, ldc);
  }
}

#define ONNXGAN_ROW(i)                                                 \
  if constexpr (kRows > i) {                                           \
    const Reg<V> x = V::broadcast(a + (i) * lda + k);                  \
    c##i##_0 = V::fma(x, b0, c##i##_0);                                \
    if constexpr (kVectors > 1) c##i##_1 = V::fma(x, b1, c##i##_1);   \
  }
#define ONNXGAN_STORE(i)                                                          \
  if constexpr (kRows > i) {                                                      \
    V::store(c + (i) * ldc, c##i##_0, columns0);                                  \
    if constexpr (kVectors > 1) V::store(c + (i) * ldc + V::kLanes, c##i##_1, columns1);   \
  }

// Each panel's weights are one sequential stream (in rows of 64 bytes for fp32, 32 for fp16), first read
// from L3 (no layer of the seed MLP fits L2); prefetching 2 KB ahead in each stream keeps more reads in
// flight than the hardware prefetcher does. Zen 5, one thread: no change on warm calls (batch 1 54 us,
// batch 16 198 us either way), a gain where the weights come from a contended L3 or DRAM (beside
// training jobs, rounds of a few calls after an idle gap: batch 1 67 -> 57 us, batch 16 334 -> 306,
// AVX2 kernel 623 -> 528; p90 of single calls at batch 64 4.9 -> 3.0 ms).
constexpr size_t kPrefetchBytes = 2048;
template <class Weight>
void prefetch_ahead(const Weight *row) { __builtin_prefetch(reinterpret_cast<const char *>(row) + kPrefetchBytes); }

// c (kRows, kVectors * kLanes) = act(a (kRows, in) . W[:, tile columns] + bias). noinline keeps the
// accumulators in registers: inlined into its caller, GCC runs out of them and spills.
template <class V, class Weight, int kRows, int kVectors>
__attribute__((noinline)) void tile(const float *a, size_t lda, const PackedLayer &layer, int64_t p, float *c, size_t ldc) {
  static_assert(kRows <= 12 && kRows <= V::kMaxRows && kVectors <= 2, "tile too big for the registers");
  using Slot = VectorSlot<V>;
  const Weight *w0 = static_cast<const Weight *>(layer.weights(Slot::panel(p, 0))) + Slot::offset(0);
  const Weight *w1 = static_cast<const Weight *>(layer.weights(Slot::panel(p, kVectors - 1))) + Slot::offset(kVectors - 1);
  const Reg<V> z = V::zero();
  Reg<V> c0_0 = z, c0_1 = z, c1_0 = z, c1_1 = z, c2_0 = z, c2_1 = z, c3_0 = z, c3_1 = z, c4_0 = z, c4_1 = z;
  Reg<V> c5_0 = z, c5_1 = z, c6_0 = z, c6_1 = z, c7_0 = z, c7_1 = z, c8_0 = z, c8_1 = z, c9_0 = z, c9_1 = z;
  Reg<V> c10_0 = z, c10_1 = z, c11_0 = z, c11_1 = z;
  for (int64_t k = 0; k < layer.in; ++k) {
    prefetch_ahead(w0 + k * kPanelWidth);
    if constexpr (kVectors > 1) prefetch_ahead(w1 + k * kPanelWidth);
    const Reg<V> b0 = load_weights<V>(w0 + k * kPanelWidth);
    const Reg<V> b1 = kVectors > 1 ? load_weights<V>(w1 + k * kPanelWidth) : z;
    ONNXGAN_ROW(0) ONNXGAN_ROW(1) ONNXGAN_ROW(2) ONNXGAN_ROW(3) ONNXGAN_ROW(4) ONNXGAN_ROW(5)
    ONNXGAN_ROW(6) ONNXGAN_ROW(7) ONNXGAN_ROW(8) ONNXGAN_ROW(9) ONNXGAN_ROW(10) ONNXGAN_ROW(11)
  }
  const int64_t columns0 = Slot::columns(layer, p, 0), columns1 = Slot::columns(layer, p, kVectors - 1);
  ONNXGAN_STORE(0) ONNXGAN_STORE(1) ONNXGAN_STORE(2) ONNXGAN_STORE(3) ONNXGAN_STORE(4) ONNXGAN_STORE(5)
  ONNXGAN_STORE(6) ONNXGAN_STORE(7) ONNXGAN_STORE(8) ONNXGAN_STORE(9) ONNXGAN_STORE(10) ONNXGAN_STORE(11)
  finish<V>(layer, p, kVectors, kRows, c, ldc);
}
#undef ONNXGAN_ROW
#undef ONNXGAN_STORE

// All rows of one tile column in as few tiles as fit kMaxRows rows: full tiles and the remainder, or, where
// V::kBalancedHeights, heights that differ by at most one (see the traits for what was measured).
template <class V, class Weight, int kVectors>
void tile_column(const GemmTask &task, int64_t p) {
  constexpr int kFull = V::kMaxRows;
  using Tile = void (*)(const float *, size_t, const PackedLayer &, int64_t, float *, size_t);
  static constexpr Tile kTiles[13] = {nullptr,
                                      tile<V, Weight, 1, kVectors>, tile<V, Weight, (kFull >= 2 ? 2 : 1), kVectors>,
                                      tile<V, Weight, (kFull >= 3 ? 3 : 1), kVectors>, tile<V, Weight, (kFull >= 4 ? 4 : 1), kVectors>,
                                      tile<V, Weight, (kFull >= 5 ? 5 : 1), kVectors>, tile<V, Weight, (kFull >= 6 ? 6 : 1), kVectors>,
                                      tile<V, Weight, (kFull >= 7 ? 7 : 1), kVectors>, tile<V, Weight, (kFull >= 8 ? 8 : 1), kVectors>,
                                      tile<V, Weight, (kFull >= 9 ? 9 : 1), kVectors>, tile<V, Weight, (kFull >= 10 ? 10 : 1), kVectors>,
                                      tile<V, Weight, (kFull >= 11 ? 11 : 1), kVectors>, tile<V, Weight, (kFull >= 12 ? 12 : 1), kVectors>};
  const int64_t tiles = (task.rows + kFull - 1) / kFull;
  float *c = task.c + p * kPanelWidth;
  for (int64_t t = 0, r = 0; t < tiles; ++t) {
    const int64_t rows = V::kBalancedHeights ? task.rows * (t + 1) / tiles - r : std::min<int64_t>(kFull, task.rows - r);
    kTiles[rows](task.a + r * task.lda, task.lda, *task.layer, p, c + r * task.ldc, task.ldc);
    r += rows;
  }
}

// Tile column by tile column (its weights stay in cache while the rows go by).
template <class V, class Weight>
void gemm(const GemmTask &task) {
  constexpr int64_t kStep = VectorSlot<V>::kPanelsPerVector ? 2 : 1;  // panels per two-vector tile
  int64_t p = task.panel_begin;
  for (; p + kStep <= task.panel_end; p += kStep) tile_column<V, Weight, 2>(task, p);
  if (p < task.panel_end) tile_column<V, Weight, 1>(task, p);
}

// One row (batch 1, bound by reading the weights): the k loop split four ways gives 4 * kVectors
// independent FMA chains where a 1-row tile has only kVectors and would wait on FMA latency.
template <class V, class Weight, int kVectors>
void gemv_column(const GemmTask &task, int64_t p) {
  using Slot = VectorSlot<V>;
  const PackedLayer &layer = *task.layer;
  const Weight *w0 = static_cast<const Weight *>(layer.weights(Slot::panel(p, 0))) + Slot::offset(0);
  const Weight *w1 = static_cast<const Weight *>(layer.weights(Slot::panel(p, kVectors - 1))) + Slot::offset(kVectors - 1);
  const float *a = task.a;
  const Reg<V> z = V::zero();
  Reg<V> s0 = z, s1 = z, s2 = z, s3 = z, s4 = z, s5 = z, s6 = z, s7 = z;
  int64_t k = 0;
  for (; k + 4 <= layer.in; k += 4) {
    for (int64_t i = 0; i < 4; i += 64 / int64_t(kPanelWidth * sizeof(Weight))) {  // each 64-byte line once
      prefetch_ahead(w0 + (k + i) * kPanelWidth);
      if constexpr (kVectors > 1) prefetch_ahead(w1 + (k + i) * kPanelWidth);
    }
    const Reg<V> x0 = V::broadcast(a + k), x1 = V::broadcast(a + k + 1), x2 = V::broadcast(a + k + 2), x3 = V::broadcast(a + k + 3);
    s0 = V::fma(x0, load_weights<V>(w0 + k * kPanelWidth), s0);
    s2 = V::fma(x1, load_weights<V>(w0 + (k + 1) * kPanelWidth), s2);
    s4 = V::fma(x2, load_weights<V>(w0 + (k + 2) * kPanelWidth), s4);
    s6 = V::fma(x3, load_weights<V>(w0 + (k + 3) * kPanelWidth), s6);
    if constexpr (kVectors > 1) {
      s1 = V::fma(x0, load_weights<V>(w1 + k * kPanelWidth), s1);
      s3 = V::fma(x1, load_weights<V>(w1 + (k + 1) * kPanelWidth), s3);
      s5 = V::fma(x2, load_weights<V>(w1 + (k + 2) * kPanelWidth), s5);
      s7 = V::fma(x3, load_weights<V>(w1 + (k + 3) * kPanelWidth), s7);
    }
  }
  for (; k < layer.in; ++k) {
    const Reg<V> x = V::broadcast(a + k);
    s0 = V::fma(x, load_weights<V>(w0 + k * kPanelWidth), s0);
    if constexpr (kVectors > 1) s1 = V::fma(x, load_weights<V>(w1 + k * kPanelWidth), s1);
  }
  store<V>(layer, p, 0, task.c + p * kPanelWidth, V::add(V::add(s0, s2), V::add(s4, s6)));
  if constexpr (kVectors > 1) store<V>(layer, p, 1, task.c + p * kPanelWidth, V::add(V::add(s1, s3), V::add(s5, s7)));
}

template <class V, class Weight>
void gemv(const GemmTask &task) {
  constexpr int64_t kStep = VectorSlot<V>::kPanelsPerVector ? 2 : 1;
  int64_t p = task.panel_begin;
  for (; p + kStep <= task.panel_end; p += kStep) gemv_column<V, Weight, 2>(task, p);
  if (p < task.panel_end) gemv_column<V, Weight, 1>(task, p);
}

template <class V, Activation kActivation>
void activate_as(float *x, int64_t n, float bias, float alpha) {
  const Reg<V> b = V::set1(bias);
  for (int64_t i = 0; i < n; i += V::kLanes) {
    const int64_t columns = std::min<int64_t>(V::kLanes, n - i);
    V::store(x + i, activate<V>(V::add(V::load_columns(x + i, columns), b), kActivation, alpha), columns);
  }
}

template <class V>
void activate_array(float *x, int64_t n, float bias, Activation activation, float alpha) {
  switch (activation) {
    case Activation::kRelu: return activate_as<V, Activation::kRelu>(x, n, bias, alpha);
    case Activation::kLeakyRelu: return activate_as<V, Activation::kLeakyRelu>(x, n, bias, alpha);
    case Activation::kTanh: return activate_as<V, Activation::kTanh>(x, n, bias, alpha);
    case Activation::kSigmoid: return activate_as<V, Activation::kSigmoid>(x, n, bias, alpha);
    case Activation::kNone: return activate_as<V, Activation::kNone>(x, n, bias, alpha);
  }
}

template <class V>
void gemm_any(const GemmTask &task) { task.layer->half ? gemm<V, uint16_t>(task) : gemm<V, float>(task); }
template <class V>
void gemv_any(const GemmTask &task) { task.layer->half ? gemv<V, uint16_t>(task) : gemv<V, float>(task); }

}  // namespace
}  // namespace onnxgan
#endif
