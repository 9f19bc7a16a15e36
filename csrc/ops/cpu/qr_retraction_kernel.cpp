// CPU kernels of the QR retraction operators (qr_retraction_algorithm.h): for n <= 32 the
// per-matrix form in cache (cpu/tiny_qr_retraction.h); otherwise matrix by matrix on BLAS and
// LAPACK called in place on the row-major data (a row-major n×k matrix is the column-major k×n
// transpose, so X R⁻¹ is one TRSM on the left of Xᵀ and no copy is made), with CholeskyQR's
// first pass kept where the Gram matrix certifies it (qr_retraction_rule.h). Kernel-call counters:
// "qr_retraction.householder" (matrices that took the Householder fallback) and
// "qr_retraction.one_pass" (matrices done in one CholeskyQR pass) and
// "qr_retraction_backward.inverse" (matrices whose backward applied R⁻ᵀ by its explicit inverse).
#include <ATen/ATen.h>
#include <ATen/Config.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#if AT_BUILD_WITH_BLAS() && AT_BUILD_WITH_LAPACK()
#define MANTRA_QR_BLAS 1
// The Fortran BLAS/LAPACK entries of the library ATen is built with (ATen's own C++ wrappers
// are not exported from libtorch_cpu).
extern "C" {
void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc);
void dgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc);
void strsm_(const char* side, const char* uplo, const char* ta, const char* diag, const int* m, const int* n,
            const float* alpha, const float* a, const int* lda, float* b, const int* ldb);
void dtrsm_(const char* side, const char* uplo, const char* ta, const char* diag, const int* m, const int* n,
            const double* alpha, const double* a, const int* lda, double* b, const int* ldb);
void spotrf_(const char* uplo, const int* n, float* a, const int* lda, int* info);
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
}
#else
#define MANTRA_QR_BLAS 0
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "ops/cpu/tiny_qr_retraction.h"
#include "ops/kernel_calls.h"
#include "ops/qr_retraction_algorithm.h"
#include "ops/qr_retraction_rule.h"

namespace mantra {
namespace detail {

#if MANTRA_QR_BLAS
namespace {

// Column-major BLAS on row-major buffers: a row-major n×k matrix A is the column-major k×n Aᵀ
// (leading dimension k); a row-major upper triangular R is the column-major lower Rᵀ.

// C (m×n) = op(A) op(B) + beta C, column-major.
inline void gemm(char ta, char tb, int m, int n, int k, const float* a, int lda, const float* b, int ldb, float beta,
                 float* c, int ldc) {
  const float one = 1;
  sgemm_(&ta, &tb, &m, &n, &k, &one, a, &lda, b, &ldb, &beta, c, &ldc);
}
inline void gemm(char ta, char tb, int m, int n, int k, const double* a, int lda, const double* b, int ldb,
                 double beta, double* c, int ldc) {
  const double one = 1;
  dgemm_(&ta, &tb, &m, &n, &k, &one, a, &lda, b, &ldb, &beta, c, &ldc);
}
// B (m×n) ← op(A)⁻¹ B for the lower triangular column-major A (m×m).
inline void trsm_left_lower(char ta, int m, int n, const float* a, float* b) {
  const float one = 1;
  strsm_("L", "L", &ta, "N", &m, &n, &one, a, &m, b, &m);
}
inline void trsm_left_lower(char ta, int m, int n, const double* a, double* b) {
  const double one = 1;
  dtrsm_("L", "L", &ta, "N", &m, &n, &one, a, &m, b, &m);
}
inline void potrf_lower(int n, float* a, int* info) { spotrf_("L", &n, a, &n, info); }
inline void potrf_lower(int n, double* a, int* info) { dpotrf_("L", &n, a, &n, info); }

// G (k×k) = XᵀX for row-major X (n×k): column-major Xᵀ·(Xᵀ)ᵀ.
template <typename T>
void gram(const T* X, T* G, int64_t n, int64_t k) {
  gemm('N', 'T', k, k, n, X, k, X, k, T(0), G, k);
}

// R (row-major upper, strictly lower part zeroed) with RᵀR = G; false where potrf fails.
template <typename T>
bool cholesky(const T* G, T* R, int64_t k) {
  std::memcpy(R, G, sizeof(T) * k * k);
  int info = 0;
  potrf_lower(static_cast<int>(k), R, &info);
  if (info != 0) return false;
  for (int64_t i = 1; i < k; ++i) std::fill(R + i * k, R + i * k + i, T(0));
  return true;
}

// Y ← Y R⁻¹ (trans = 'N') or Y ← Y R⁻ᵀ (trans = 'T') in place, Y row-major n×k, R upper k×k:
// on the column-major Yᵀ these are Yᵀ ← R⁻ᵀ Yᵀ and Yᵀ ← R⁻¹ Yᵀ, one TRSM on the left with the
// column-major lower Rᵀ.
template <typename T>
void solve_right_upper(T* Y, const T* R, int64_t n, int64_t k, char trans) {
  trsm_left_lower(trans, static_cast<int>(k), static_cast<int>(n), R, Y);
}

// Tall matrices (n >= kInverseMinRatio·k) apply a well-conditioned R⁻¹ as one GEMM with its
// explicit inverse: the BLAS's TRSM runs at a fraction of GEMM speed on these shapes (measured:
// 30000×50 float32, TRSM 11 ms against GEMM 3 ms), and the inverse costs k³ against nk².
// Well conditioned: certified by the one-pass rule in the forward (κ(XD) <= 2); in the backward
// ‖R‖_F‖R⁻¹‖_F <= kInverseMaxCondition·k (κ₂(R) is at least this product over k), else TRSM.
constexpr int64_t kInverseMinRatio = 4;
constexpr double kInverseMaxCondition = 4;

// Z (row-major upper k×k) = R⁻¹: the column-major Zᵀ = (Rᵀ)⁻¹ I, one TRSM.
template <typename T>
void invert_upper(const T* R, T* Z, int64_t k) {
  std::fill(Z, Z + k * k, T(0));
  for (int64_t i = 0; i < k; ++i) Z[i * k + i] = T(1);
  trsm_left_lower('N', static_cast<int>(k), static_cast<int>(k), R, Z);
}

template <typename T>
T frobenius(const T* A, int64_t count) {
  T s = 0;
  for (int64_t e = 0; e < count; ++e) s += A[e] * A[e];
  return std::sqrt(s);
}

enum class Branch : uint8_t { kOnePass, kTwoPass, kHouseholder };

// The CholeskyQR (one or two passes) of one matrix into Q, R; kHouseholder where it must fall
// back (Q, R then undefined). Scratch: 2k² + 2k.
template <typename T>
Branch cholesky_qr_one(const T* X, T* Q, T* R, T* w, int64_t n, int64_t k) {
  T* G = w;
  T* R2 = G + k * k;
  T* rule = R2 + k * k;
  gram(X, G, n, k);
  if (!cholesky(G, R, k)) return Branch::kHouseholder;
  const bool one_pass = cholesky_qr_one_pass_suffices(G, k, rule);
  if (one_pass && n >= kInverseMinRatio * k) {
    T* Z = R2;
    invert_upper(R, Z, k);
    gemm('N', 'N', k, n, k, Z, k, X, k, T(0), Q, k);  // Q = X R⁻¹: column-major Qᵀ = Zᵀ Xᵀ
    return Branch::kOnePass;
  }
  std::memcpy(Q, X, sizeof(T) * n * k);
  solve_right_upper(Q, R, n, k, 'N');  // Q₁ = X R₁⁻¹
  if (one_pass) return Branch::kOnePass;
  gram(Q, G, n, k);
  T loss = 0;
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) {
      const T e = G[i * k + j] - (i == j ? T(1) : T(0));
      loss += e * e;
    }
  if (!(std::sqrt(loss) <= static_cast<T>(kCholeskyQR2MaxLoss))) return Branch::kHouseholder;  // NaN too
  if (!cholesky(G, R2, k)) return Branch::kHouseholder;
  solve_right_upper(Q, R2, n, k, 'N');
  // R ← R₂R₁ (both upper): row i of the product is Σ_{p >= i} R₂[i][p] R₁[p][·], computed top down in place.
  for (int64_t i = 0; i < k; ++i) {
    T* ri = R + i * k;
    const T* r2 = R2 + i * k;
    for (int64_t j = i; j < k; ++j) {
      T acc = 0;
      for (int64_t p = i; p <= j; ++p) acc += r2[p] * R[p * k + j];
      G[j] = acc;  // (G is free now)
    }
    std::copy(G + i, G + k, ri + i);
  }
  return Branch::kTwoPass;
}

// ∇X = [G + Q (tril₋₁(B − Bᵀ) − B)] R⁻ᵀ with B = QᵀG, for one matrix. Scratch: 4k².
// Returns true where it applied R⁻ᵀ by the explicit inverse.
template <typename T>
bool qr_backward_one(const T* Gr, const T* Q, const T* R, T* out, T* w, int64_t n, int64_t k) {
  T* B = w;
  T* N = B + k * k;
  T* Z = N + k * k;
  T* W = Z + k * k;
  // Row-major B = QᵀG is the column-major Bᵀ = GᵀQ = (column-major Gᵀ)·(column-major Qᵀ)ᵀ.
  gemm('N', 'T', k, k, n, Gr, k, Q, k, T(0), B, k);
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) N[i * k + j] = (i > j ? B[i * k + j] - B[j * k + i] : T(0)) - B[i * k + j];
  if (n >= kInverseMinRatio * k) {
    invert_upper(R, Z, k);
    if (frobenius(R, k * k) * frobenius(Z, k * k) <= static_cast<T>(kInverseMaxCondition * k)) {
      // out = G Zᵀ + Q (N Zᵀ) with Z = R⁻¹, two GEMMs: column-major outᵀ = Z Gᵀ + (Z Nᵀ) Qᵀ
      // (the column-major Z is 'T' of its row-major buffer, and W holds Z Nᵀ column-major).
      gemm('T', 'N', k, n, k, Z, k, Gr, k, T(0), out, k);
      gemm('T', 'N', k, k, k, Z, k, N, k, T(0), W, k);
      gemm('N', 'N', k, n, k, W, k, Q, k, T(1), out, k);
      return true;
    }
  }
  // out = G + Q N: column-major outᵀ = Gᵀ + Nᵀ Qᵀ.
  std::memcpy(out, Gr, sizeof(T) * n * k);
  gemm('N', 'N', k, n, k, N, k, Q, k, T(1), out, k);
  solve_right_upper(out, R, n, k, 'T');
  return false;
}

// Matrices [0, batch) by `f(i, scratch)`, parallel over the batch (one matrix: BLAS's threads).
template <typename T, typename F>
void for_each_matrix(int64_t batch, int64_t scratch, const F& f) {
  const auto body = [&](int64_t begin, int64_t end) {
    std::vector<T> w(scratch);
    for (int64_t i = begin; i < end; ++i) f(i, w.data());
  };
  if (batch == 1)
    body(0, 1);
  else
    at::parallel_for(0, batch, 1, body);
}

std::tuple<at::Tensor, at::Tensor> factors_blas(const at::Tensor& X, int64_t* householder_count,
                                                int64_t* one_pass_count) {
  check_qr_retraction_argument(X, "mantra::qr_retraction", "X");
  const std::vector<int64_t> rs = qr_r_shape(X.sizes());
  if (X.numel() == 0) return {at::empty(X.sizes(), X.options()), at::zeros(rs, X.options())};
  const at::Tensor X3 = to_batch3(X);
  const int64_t batch = X3.size(0), n = X3.size(1), k = X3.size(2);
  at::Tensor Q3 = at::empty_like(X3);
  at::Tensor R3 = at::empty({batch, k, k}, X3.options());
  std::vector<Branch> branch(batch);
  AT_DISPATCH_FLOATING_TYPES(X3.scalar_type(), "qr_retraction_cpu", [&] {
    const scalar_t* x = X3.const_data_ptr<scalar_t>();
    scalar_t* q = Q3.mutable_data_ptr<scalar_t>();
    scalar_t* r = R3.mutable_data_ptr<scalar_t>();
    for_each_matrix<scalar_t>(batch, 2 * k * k + 2 * k, [&](int64_t i, scalar_t* w) {
      branch[i] = cholesky_qr_one(x + i * n * k, q + i * n * k, r + i * k * k, w, n, k);
    });
  });
  std::vector<int64_t> fallback;
  for (int64_t i = 0; i < batch; ++i) {
    if (branch[i] == Branch::kHouseholder) fallback.push_back(i);
    if (branch[i] == Branch::kOnePass) ++*one_pass_count;
  }
  if (!fallback.empty()) {
    qr_householder_into(X3, at::tensor(fallback, at::TensorOptions().dtype(at::kLong)), Q3, R3);
    *householder_count = static_cast<int64_t>(fallback.size());
  }
  return {from_batch3(Q3, X.sizes(), X.scalar_type()), from_batch3(R3, rs, X.scalar_type())};
}

at::Tensor backward_blas(const at::Tensor& grad, const at::Tensor& Q, const at::Tensor& R) {
  check_qr_retraction_backward_arguments(grad, Q, R, "mantra::qr_retraction_backward");
  if (Q.numel() == 0) return at::zeros(Q.sizes(), Q.options());
  const at::Tensor G3 = to_batch3(grad), Q3 = to_batch3(Q), R3 = to_batch3(R);
  const int64_t batch = Q3.size(0), n = Q3.size(1), k = Q3.size(2);
  at::Tensor out = at::empty_like(Q3);
  std::vector<uint8_t> inverse(batch);
  AT_DISPATCH_FLOATING_TYPES(Q3.scalar_type(), "qr_retraction_backward_cpu", [&] {
    const scalar_t* g = G3.const_data_ptr<scalar_t>();
    const scalar_t* q = Q3.const_data_ptr<scalar_t>();
    const scalar_t* r = R3.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    for_each_matrix<scalar_t>(batch, 4 * k * k, [&](int64_t i, scalar_t* w) {
      inverse[i] = qr_backward_one(g + i * n * k, q + i * n * k, r + i * k * k, o + i * n * k, w, n, k);
    });
  });
  const int64_t count = std::count(inverse.begin(), inverse.end(), uint8_t(1));
  if (count > 0) {
    static std::atomic<int64_t>& counter = kernel_call_counter("qr_retraction_backward.inverse");
    counter.fetch_add(count, std::memory_order_relaxed);
  }
  return from_batch3(out, Q.sizes(), Q.scalar_type());
}

}  // namespace
#endif

std::tuple<at::Tensor, at::Tensor> qr_retraction_factors_cpu_general(const at::Tensor& X, int64_t* householder_count,
                                                                     int64_t* one_pass_count) {
  if (householder_count) *householder_count = 0;
  if (one_pass_count) *one_pass_count = 0;
#if MANTRA_QR_BLAS
  int64_t h = 0, o = 0;
  auto result = factors_blas(X, &h, &o);
  if (householder_count) *householder_count = h;
  if (one_pass_count) *one_pass_count = o;
  return result;
#else
  return qr_retraction_factors_generic(X, householder_count);
#endif
}

at::Tensor qr_retraction_backward_cpu_general(const at::Tensor& grad, const at::Tensor& Q, const at::Tensor& R) {
#if MANTRA_QR_BLAS
  return backward_blas(grad, Q, R);
#else
  return qr_retraction_backward_generic(grad, Q, R);
#endif
}

}  // namespace detail

namespace {

// True (and counted as "tiny_qr_retraction.CPU") when the tiny-matrix path serves X.
bool tiny(const at::Tensor& X) {
  if (!detail::tiny_qr_retraction_serves(X)) return false;
  MANTRA_COUNT_KERNEL_CALL("tiny_qr_retraction.CPU");
  return true;
}

std::tuple<at::Tensor, at::Tensor> factors(const at::Tensor& X) {
  int64_t householder = 0, one_pass = 0;
  auto result = tiny(X) ? detail::tiny_qr_retraction_factors(X, &householder, &one_pass)
                        : detail::qr_retraction_factors_cpu_general(X, &householder, &one_pass);
  if (householder > 0) {
    static std::atomic<int64_t>& counter = detail::kernel_call_counter("qr_retraction.householder");
    counter.fetch_add(householder, std::memory_order_relaxed);
  }
  if (one_pass > 0) {
    static std::atomic<int64_t>& counter = detail::kernel_call_counter("qr_retraction.one_pass");
    counter.fetch_add(one_pass, std::memory_order_relaxed);
  }
  return result;
}

at::Tensor qr_retraction_cpu(const at::Tensor& X) {
  MANTRA_COUNT_KERNEL_CALL("qr_retraction.CPU");
  return std::get<0>(factors(X));
}

std::tuple<at::Tensor, at::Tensor> qr_retraction_factors_cpu(const at::Tensor& X) {
  MANTRA_COUNT_KERNEL_CALL("_qr_retraction_factors.CPU");
  return factors(X);
}

at::Tensor qr_retraction_backward_cpu(const at::Tensor& grad, const at::Tensor& Q, const at::Tensor& R) {
  MANTRA_COUNT_KERNEL_CALL("qr_retraction_backward.CPU");
  return tiny(Q) ? detail::tiny_qr_retraction_backward(grad, Q, R)
                 : detail::qr_retraction_backward_cpu_general(grad, Q, R);
}

}  // namespace
}  // namespace mantra

TORCH_LIBRARY_IMPL(mantra, CPU, m) {
  m.impl("qr_retraction", &mantra::qr_retraction_cpu);
  m.impl("_qr_retraction_factors", &mantra::qr_retraction_factors_cpu);
  m.impl("qr_retraction_backward", &mantra::qr_retraction_backward_cpu);
}
