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

// δ = min(Gershgorin radius, ‖C − I‖_F) of the scaled k×k Gram matrix G (row-major; the upper
// triangle is read), for one matrix (Ops = ScalarRuleOps) or for lanes of matrices at once (the
// tiny kernels' LaneRuleOps, one vector per element): Ops::V is the value, Ops::at(p, i) the i-th
// value at p, and Ops supplies what the arithmetic operators do not, in place: zero, abs, rsqrt
// (1/√x), sqrt, max (m = x > m ? x : m) and min (a = a < b ? a : b). A NaN entry makes δ NaN (the
// Frobenius sum takes it, the min then keeps it). `scratch`: 2k values.
template <typename Ops, typename T>
inline void cholesky_qr_one_pass_delta(typename Ops::V& delta, const T* G, int64_t k, T* scratch) {
  using V = typename Ops::V;
  T* d = scratch;  // G_ii^-½
  T* r = Ops::advance(scratch, k);  // Gershgorin row sums of |C − I|
  for (int64_t i = 0; i < k; ++i) {
    auto& di = Ops::at(d, i);
    di = Ops::at(G, i * k + i);
    Ops::rsqrt(di);
    Ops::zero(Ops::at(r, i));
  }
  V frob;
  Ops::zero(frob);
  for (int64_t i = 0; i < k; ++i) {
    const V di = Ops::at(d, i);
    V ri;
    Ops::zero(ri);
    for (int64_t j = i + 1; j < k; ++j) {
      V c = Ops::at(G, i * k + j);
      Ops::abs(c);
      c = c * di * Ops::at(d, j);
      ri += c;
      Ops::at(r, j) += c;
      frob += c * c;
    }
    Ops::at(r, i) += ri;
  }
  V gershgorin;
  Ops::zero(gershgorin);
  for (int64_t i = 0; i < k; ++i) Ops::max(gershgorin, Ops::at(r, i));
  V frobenius = frob + frob;
  Ops::sqrt(frobenius);
  delta = gershgorin;
  Ops::min(delta, frobenius);
}

template <typename T>
struct ScalarRuleOps {
  using V = T;
  static T* advance(T* p, int64_t i) { return p + i; }
  static T& at(T* p, int64_t i) { return p[i]; }
  static const T& at(const T* p, int64_t i) { return p[i]; }
  static void zero(T& x) { x = T(0); }
  static void abs(T& x) { x = std::abs(x); }
  static void rsqrt(T& x) { x = T(1) / std::sqrt(x); }
  static void sqrt(T& x) { x = std::sqrt(x); }
  static void max(T& m, const T& x) { m = x > m ? x : m; }
  static void min(T& a, const T& b) { a = a < b ? a : b; }
};

// True when one pass suffices for the k×k Gram matrix G (row-major; the upper triangle is read);
// false for a non-positive or NaN diagonal, or a NaN anywhere. `scratch`: 2k elements.
template <typename T>
inline bool cholesky_qr_one_pass_suffices(const T* G, int64_t k, T* scratch) {
  for (int64_t i = 0; i < k; ++i)
    if (!(G[i * k + i] > T(0))) return false;
  T delta;
  cholesky_qr_one_pass_delta<ScalarRuleOps<T>>(delta, G, k, scratch);
  return delta <= static_cast<T>(kCholeskyQROnePassMaxDelta);
}

}  // namespace
}  // namespace mantra::detail
