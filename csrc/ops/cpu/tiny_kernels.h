// Per-matrix kernels of the tiny-matrix CPU paths (tiny_expm.cpp, tiny_qr_retraction.cpp): each
// runs matrix by matrix over [begin, end) of a contiguous batch, in the caller's scratch. They
// are compiled twice (tiny_kernels_impl.h): for the baseline x86-64/any target, and with
// AVX2+FMA (tiny_kernels_avx2.cpp), chosen at run time by the CPU; the FMA build rounds like
// ATen's vectorized kernels and BLAS do (fused multiply-adds). Plain data only crosses here.
#pragma once

#include <cstdint>

namespace mantra::detail::tiny {

constexpr int kTinyMaxSize = 32;   // largest n served
constexpr int kMaxRegisters = 12;  // the largest expm scheme (degree 18)
constexpr int kMaxTerms = 5;

// An ExpmScheme (expm_algorithm.h) as plain data.
struct FlatStep {
  int product, out, a, b, addend;
  double identity;
  int num_terms;
  int src[kMaxTerms];
  double coef[kMaxTerms];
};
struct FlatScheme {
  int registers, num_steps;
  FlatStep steps[16];
};

// Scratch elements expm_range needs for n×n matrices of at most `max_squarings` squarings
// (8 lanes of matrices for n <= 8).
inline int64_t expm_scratch_size(int64_t n, int64_t max_squarings) {
  return (2 * kMaxRegisters + 3 + max_squarings + 1) * n * n * (n <= 8 ? 8 : 1);
}
inline int64_t qr_scratch_size(int64_t n, int64_t k) { return k * n + 3 * k * k + 3 * k; }

// The branch qr_f/qr_d took for a matrix (their `ok` output).
constexpr uint8_t kQrHouseholder = 0, kQrTwoPass = 1, kQrOnePass = 2;

// Kernel entries, one set per build; `kernels()` picks the build for this CPU.
struct Kernels {
  // out = exp(A_i), or (G non-null) the gradient of <G_i, exp(A_i)>, for i = order[p], p in
  // [begin, end); order lists the batch sorted by plan (degree, squarings: indices into schemes)
  // so that matrices sharing a plan run together.
  void (*expm_f)(const float* A, const float* G, float* out, int64_t n, int64_t begin, int64_t end,
                 const int64_t* order, const int64_t* degree, const int64_t* squarings, const FlatScheme* schemes,
                 float* scratch);
  void (*expm_d)(const double* A, const double* G, double* out, int64_t n, int64_t begin, int64_t end,
                 const int64_t* order, const int64_t* degree, const int64_t* squarings, const FlatScheme* schemes,
                 double* scratch);
  // CholeskyQR (one or two passes) of X_i (n×k) into Q_i, R_i; ok[i] the branch (kQr*), kQrHouseholder
  // where the Householder branch must take it.
  void (*qr_f)(const float* X, float* Q, float* R, uint8_t* ok, int64_t n, int64_t k, int64_t begin, int64_t end,
               float* scratch);
  void (*qr_d)(const double* X, double* Q, double* R, uint8_t* ok, int64_t n, int64_t k, int64_t begin,
               int64_t end, double* scratch);
  // The gradient of <G_i, Q(X_i)> from Q_i, R_i.
  void (*qr_backward_f)(const float* G, const float* Q, const float* R, float* out, int64_t n, int64_t k,
                        int64_t begin, int64_t end, float* scratch);
  void (*qr_backward_d)(const double* G, const double* Q, const double* R, double* out, int64_t n, int64_t k,
                        int64_t begin, int64_t end, double* scratch);
  const char* name;
};
const Kernels& kernels();

// The builds (defined in tiny_kernels_impl.h's two translation units).
const Kernels& kernels_baseline();
const Kernels* kernels_avx2();  // null where not built

}  // namespace mantra::detail::tiny
