// The branch rule of the QR retraction's CPU kernels (qr_retraction_algorithm.h explains it), in
// plain C++ with no ATen, so that the tiny-matrix kernels (cpu/tiny_kernels_impl.h, compiled once
// per instruction set) and the BLAS kernel (cpu/qr_retraction_kernel.cpp) share one definition.
#pragma once

#include <cmath>
#include <cstdint>

namespace mantra::detail {

// CholeskyQR2 is kept while ‖Q₁ᵀQ₁ − I‖_F <= kCholeskyQR2MaxLoss after its first pass
// (estimated κ(X) <= (0.1/u)^½); Householder beyond.
constexpr double kCholeskyQR2MaxLoss = 0.1;

// One CholeskyQR pass suffices when the Gram matrix G = XᵀX, scaled to unit diagonal
// (C = D G D, D = diag(G)^-½), satisfies ‖C − I‖₂ <= δ with δ = min(Gershgorin radius,
// ‖C − I‖_F) <= kCholeskyQROnePassMaxDelta: then κ(XD)² = κ(C) <= (1 + δ)/(1 − δ) = 4, and
// the first pass's loss of orthogonality, about κ(XD)² times the rounding of the Gram matrix,
// is within 4× of what the second pass would leave (CholeskyQR is invariant under column scaling).
constexpr double kCholeskyQROnePassMaxDelta = 0.6;

// Internal linkage: each instruction-set build of the tiny kernels keeps its own copy (no
// AVX2 instantiation may stand in for the baseline one at link time).
namespace {

// True when one pass suffices for the k×k Gram matrix G (row-major; the upper triangle is read);
// false for a non-positive or NaN diagonal, or a NaN anywhere. `scratch`: 2k elements.
template <typename T>
inline bool cholesky_qr_one_pass_suffices(const T* G, int64_t k, T* scratch) {
  T* d = scratch;      // G_ii^-½
  T* r = scratch + k;  // Gershgorin row sums of |C − I|
  for (int64_t i = 0; i < k; ++i) {
    const T g = G[i * k + i];
    if (!(g > T(0))) return false;
    d[i] = T(1) / std::sqrt(g);
    r[i] = T(0);
  }
  T frob = 0;
  for (int64_t i = 0; i < k; ++i) {
    const T di = d[i];
    const T* gi = G + i * k;
    T ri = 0;
    for (int64_t j = i + 1; j < k; ++j) {
      const T c = std::abs(gi[j]) * di * d[j];
      ri += c;
      r[j] += c;
      frob += c * c;
    }
    r[i] += ri;
  }
  T gershgorin = 0;
  for (int64_t i = 0; i < k; ++i) gershgorin = r[i] > gershgorin ? r[i] : gershgorin;
  const T frobenius = std::sqrt(2 * frob);
  const T delta = gershgorin < frobenius ? gershgorin : frobenius;
  // A NaN entry makes frob NaN, hence delta NaN (the min takes frobenius): false.
  return delta <= static_cast<T>(kCholeskyQROnePassMaxDelta);
}

}  // namespace
}  // namespace mantra::detail
