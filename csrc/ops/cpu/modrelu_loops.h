// The CPU loops of modReLU (modrelu_algorithm.h) over rows of H features, shared by the kernels
// of mantra::modrelu / modrelu_backward and the fused loops of mantra::orthogonal_rnn.
#pragma once

#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "ops/modrelu_algorithm.h"

namespace mantra::detail {

// Rows per parallel chunk so that a chunk is ~16k elements (smaller runs stay serial).
inline int64_t row_grain(int64_t H) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(H, 1)); }

// z[i, j] ← modReLU(z[i, j], b[j]) in place over `rows` contiguous rows. In place on purpose:
// with one pointer the compiler vectorizes the row loop (with distinct input and output
// pointers that may alias it falls back to scalar code). Half types are computed in float32.
template <typename scalar_t>
void modrelu_rows_(scalar_t* z, const scalar_t* b, int64_t rows, int64_t H) {
  using acc_t = at::opmath_type<scalar_t>;
  at::parallel_for(0, rows, row_grain(H), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      scalar_t* zi = z + i * H;
      for (int64_t j = 0; j < H; ++j)
        zi[j] = static_cast<scalar_t>(modrelu<acc_t>(static_cast<acc_t>(zi[j]), static_cast<acc_t>(b[j])));
    }
  });
}

// z[i, j] ← modReLU(z[i, j] + u[i, j], b[j]) in place: the recurrence's GEMM output plus the
// input projection, so that the GEMM runs with beta = 0 and the addition rides on this pass.
template <typename scalar_t>
void modrelu_add_rows_(scalar_t* z, const scalar_t* u, const scalar_t* b, int64_t rows, int64_t H) {
  using acc_t = at::opmath_type<scalar_t>;
  at::parallel_for(0, rows, row_grain(H), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      scalar_t* zi = z + i * H;
      const scalar_t* ui = u + i * H;
      for (int64_t j = 0; j < H; ++j)
        zi[j] = static_cast<scalar_t>(
            modrelu<acc_t>(static_cast<acc_t>(ui[j]) + static_cast<acc_t>(zi[j]), static_cast<acc_t>(b[j])));
    }
  });
}

// grad_b[j] = Σ_i g[i, j]·∂h/∂b at h[i, j] over `rows` contiguous rows: partial sums per thread
// in double, added up and rounded once.
template <typename scalar_t>
void modrelu_bias_grad_rows(const scalar_t* g, const scalar_t* h, scalar_t* grad_b, int64_t rows, int64_t H) {
  const int64_t threads = at::get_num_threads();
  std::vector<double> partial(static_cast<size_t>(threads * H), 0.0);
  at::parallel_for(0, rows, row_grain(H), [&](int64_t begin, int64_t end) {
    double* acc = partial.data() + at::get_thread_num() * H;
    for (int64_t r = begin; r < end; ++r) {
      const scalar_t* gr = g + r * H;
      const scalar_t* hr = h + r * H;
      for (int64_t j = 0; j < H; ++j)
        acc[j] += static_cast<double>(gr[j]) * modrelu_db(static_cast<double>(hr[j]));
    }
  });
  for (int64_t j = 0; j < H; ++j) {
    double sum = 0;
    for (int64_t p = 0; p < threads; ++p) sum += partial[p * H + j];
    grad_b[j] = static_cast<scalar_t>(sum);
  }
}

}  // namespace mantra::detail
