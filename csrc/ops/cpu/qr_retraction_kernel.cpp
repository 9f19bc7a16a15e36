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

// C (m×n) = alpha op(A) op(B) + beta C, column-major.
inline void blas_gemm(char ta, char tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
                      int ldb, float beta, float* c, int ldc) {
  sgemm_(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc);
}
inline void blas_gemm(char ta, char tb, int m, int n, int k, double alpha, const double* a, int lda, const double* b,
                      int ldb, double beta, double* c, int ldc) {
  dgemm_(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc);
}
template <typename T>
void gemm(char ta, char tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b, int64_t ldb,
          T beta, T* c, int64_t ldc) {
  blas_gemm(ta, tb, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda), b,
            static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}
// B (m×n, leading dimension ldb) ← op(A)⁻¹ B for the lower triangular column-major A (m×m).
inline void blas_trsm(char ta, int m, int n, const float* a, int lda, float* b, int ldb) {
  const float one = 1;
  strsm_("L", "L", &ta, "N", &m, &n, &one, a, &lda, b, &ldb);
}
inline void blas_trsm(char ta, int m, int n, const double* a, int lda, double* b, int ldb) {
  const double one = 1;
  dtrsm_("L", "L", &ta, "N", &m, &n, &one, a, &lda, b, &ldb);
}
template <typename T>
void trsm_left_lower(char ta, int64_t m, int64_t n, const T* a, int64_t lda, T* b, int64_t ldb) {
  blas_trsm(ta, static_cast<int>(m), static_cast<int>(n), a, static_cast<int>(lda), b, static_cast<int>(ldb));
}
inline void potrf_lower(int n, float* a, int64_t lda, int* info) {
  const int ld = static_cast<int>(lda);
  spotrf_("L", &n, a, &ld, info);
}
inline void potrf_lower(int n, double* a, int64_t lda, int* info) {
  const int ld = static_cast<int>(lda);
  dpotrf_("L", &n, a, &ld, info);
}

// G (k×k) = XᵀX for row-major X (n×k): column-major Xᵀ·(Xᵀ)ᵀ.
template <typename T>
void gram(const T* X, T* G, int64_t n, int64_t k) {
  gemm('N', 'T', k, k, n, T(1), X, k, X, k, T(0), G, k);
}

template <typename T>
T frobenius(const T* A, int64_t count) {
  T s = 0;
  for (int64_t e = 0; e < count; ++e) s += A[e] * A[e];
  return std::sqrt(s);
}

// Explicit inverses are applied only where they are well conditioned: ‖A‖_F‖A⁻¹‖_F <=
// kInverseMaxCondition·m for an m×m triangle A (κ₂(A) is at least this product over m).
constexpr double kInverseMaxCondition = 4;
// The blocked solve: diagonal blocks of kSolveBlock columns, right-hand sides in slabs of kSolveSlab rows.
constexpr int64_t kSolveBlock = 32;
constexpr int64_t kSolveSlab = 256;
inline int64_t solve_scratch(int64_t k) { return std::min(kSolveBlock, k) * (k + kSolveSlab); }

// Z (bj×bj column-major) = A⁻¹ for the lower triangle A (bj×bj, leading dimension lda); true
// where it passes the kInverseMaxCondition test.
template <typename T>
bool invert_lower_block(const T* A, int64_t lda, T* Z, int64_t bj) {
  std::fill(Z, Z + bj * bj, T(0));
  for (int64_t i = 0; i < bj; ++i) Z[i * bj + i] = T(1);
  trsm_left_lower('N', bj, bj, A, lda, Z, bj);
  T l = 0;
  for (int64_t c = 0; c < bj; ++c)
    for (int64_t r = c; r < bj; ++r) l += A[c * lda + r] * A[c * lda + r];
  return std::sqrt(l) * frobenius(Z, bj * bj) <= static_cast<T>(kInverseMaxCondition * bj);  // NaN: false
}

// R (row-major upper, strictly lower part zeroed) with RᵀR = G; false where the factorization
// fails (a non-positive pivot: LAPACK potrf's info > 0). On the column-major L = Rᵀ, LLᵀ = G:
// for k > kSolveBlock right-looking by blocks of kSolveBlock, whose panel solve uses the explicit
// inverse of the diagonal block and whose trailing update is one GEMM (LAPACK's potrf takes 2×
// the time of a k³ GEMM at k = 128 here, for a sixth of its flops); LAPACK's potrf for small k,
// and for the whole matrix again where a diagonal block fails the kInverseMaxCondition test.
// Scratch: solve_scratch(k).
template <typename T>
bool cholesky(const T* G, T* R, int64_t k, T* w) {
  std::memcpy(R, G, sizeof(T) * k * k);
  const auto finish = [&] {
    for (int64_t i = 1; i < k; ++i) std::fill(R + i * k, R + i * k + i, T(0));
    return true;
  };
  int info = 0;
  const int64_t b = kSolveBlock;
  bool blocked = k > b;
  for (int64_t j0 = 0; j0 < k && blocked; j0 += b) {
    const int64_t bj = std::min(b, k - j0), j1 = j0 + bj, m = k - j1;
    T* A11 = R + j0 * k + j0;
    potrf_lower(static_cast<int>(bj), A11, k, &info);
    if (info != 0) return false;
    if (m == 0) break;
    T* Z = w;            // L11⁻¹
    T* tmp = w + b * b;  // m × bj
    if (!(blocked = invert_lower_block(A11, k, Z, bj))) break;
    T* A21 = R + j0 * k + j1;  // m × bj
    gemm('N', 'T', m, bj, bj, T(1), A21, k, Z, bj, T(0), tmp, m);  // L21 = A21 L11⁻ᵀ
    for (int64_t c = 0; c < bj; ++c) std::copy(tmp + c * m, tmp + (c + 1) * m, A21 + c * k);
    gemm('N', 'T', m, m, bj, T(-1), A21, k, A21, k, T(1), R + j1 * k + j1, k);  // A22 −= L21 L21ᵀ
  }
  if (blocked) return finish();
  std::memcpy(R, G, sizeof(T) * k * k);
  potrf_lower(static_cast<int>(k), R, k, &info);
  return info == 0 && finish();
}

// Y ← Y R⁻¹ (trans = 'N') or Y ← Y R⁻ᵀ (trans = 'T') in place, Y row-major n×k, R upper k×k:
// on the column-major Yᵀ these are Yᵀ ← L⁻¹ Yᵀ and Yᵀ ← L⁻ᵀ Yᵀ with L = Rᵀ (R's buffer read
// column-major). The BLAS's TRSM runs at a fraction of GEMM speed on these shapes (measured:
// 30000×50 float32, TRSM 11 ms against 3 ms for the GEMM of twice its flops; 64×128×128, 8.5
// against 4), so the solve goes by blocks of kSolveBlock with the explicit inverses of L's
// diagonal blocks: all its work is GEMM. Its error bound is TRSM's times the diagonal blocks'
// condition numbers (block substitution with explicit inverses), so it is taken only where every
// diagonal block passes the kInverseMaxCondition test; TRSM otherwise. Scratch: solve_scratch(k).
template <typename T>
void solve_right_upper(T* Y, const T* R, int64_t n, int64_t k, char trans, T* w) {
  const int64_t b = std::min(kSolveBlock, k);
  T* inv = w;         // the inverse of L's diagonal block at j0: bj×bj (leading dimension bj) at inv + j0·b
  T* tmp = w + k * b;  // bj × slab
  bool blocked = true;
  for (int64_t j0 = 0; j0 < k && blocked; j0 += b)
    blocked = invert_lower_block(R + j0 * k + j0, k, inv + j0 * b, std::min(b, k - j0));
  if (!blocked) {
    trsm_left_lower(trans, k, n, R, k, Y, k);
    return;
  }
  for (int64_t s0 = 0; s0 < n; s0 += kSolveSlab) {
    const int64_t sn = std::min(kSolveSlab, n - s0);
    T* Ys = Y + s0 * k;  // column-major k × sn
    const auto diagonal = [&](int64_t j0, int64_t bj, char t) {  // Ys[j0 : j0+bj] ← op(L_jj⁻¹) Ys[j0 : j0+bj]
      gemm(t, 'N', bj, sn, bj, T(1), inv + j0 * b, bj, Ys + j0, k, T(0), tmp, bj);
      for (int64_t c = 0; c < sn; ++c) std::copy(tmp + c * bj, tmp + (c + 1) * bj, Ys + c * k + j0);
    };
    if (trans == 'N') {  // forward substitution by blocks: B_j −= L_j,<j Y_<j, Y_j = L_jj⁻¹ B_j
      for (int64_t j0 = 0; j0 < k; j0 += b) {
        const int64_t bj = std::min(b, k - j0);
        if (j0 > 0) gemm('N', 'N', bj, sn, j0, T(-1), R + j0, k, Ys, k, T(1), Ys + j0, k);
        diagonal(j0, bj, 'N');
      }
    } else {  // back substitution with Lᵀ: B_j −= (L_>j,j)ᵀ Y_>j, Y_j = L_jj⁻ᵀ B_j
      for (int64_t j0 = ((k - 1) / b) * b; j0 >= 0; j0 -= b) {
        const int64_t bj = std::min(b, k - j0), j1 = j0 + bj;
        if (j1 < k) gemm('T', 'N', bj, sn, k - j1, T(-1), R + j0 * k + j1, k, Ys + j1, k, T(1), Ys + j0, k);
        diagonal(j0, bj, 'T');
      }
    }
  }
}

// Tall matrices (n >= kInverseMinRatio·k) apply a well-conditioned R⁻¹ as one GEMM with its
// explicit inverse (k³ against nk², and out of place: no copy of X). Well conditioned:
// certified by the one-pass rule in the forward (κ(XD) <= 2); in the backward the
// kInverseMaxCondition test on R, else the blocked solve.
constexpr int64_t kInverseMinRatio = 4;

// Z (row-major upper k×k) = R⁻¹: the column-major Zᵀ = (Rᵀ)⁻¹ I, one TRSM.
template <typename T>
void invert_upper(const T* R, T* Z, int64_t k) {
  std::fill(Z, Z + k * k, T(0));
  for (int64_t i = 0; i < k; ++i) Z[i * k + i] = T(1);
  trsm_left_lower('N', k, k, R, k, Z, k);
}

enum class Branch : uint8_t { kOnePass, kTwoPass, kHouseholder };

// The CholeskyQR (one or two passes) of one matrix into Q, R; kHouseholder where it must fall
// back (Q, R then undefined). Scratch: 2k² + 2k + solve_scratch(k).
template <typename T>
Branch cholesky_qr_one(const T* X, T* Q, T* R, T* w, int64_t n, int64_t k) {
  T* G = w;
  T* R2 = G + k * k;
  T* rule = R2 + k * k;
  T* sw = rule + 2 * k;
  gram(X, G, n, k);
  if (!cholesky(G, R, k, sw)) return Branch::kHouseholder;
  const bool one_pass = cholesky_qr_one_pass_suffices(G, k, rule);
  if (one_pass && n >= kInverseMinRatio * k) {
    T* Z = R2;
    invert_upper(R, Z, k);
    gemm('N', 'N', k, n, k, T(1), Z, k, X, k, T(0), Q, k);  // Q = X R⁻¹: column-major Qᵀ = Zᵀ Xᵀ
    return Branch::kOnePass;
  }
  std::memcpy(Q, X, sizeof(T) * n * k);
  solve_right_upper(Q, R, n, k, 'N', sw);  // Q₁ = X R₁⁻¹
  if (one_pass) return Branch::kOnePass;
  gram(Q, G, n, k);
  T loss = 0;
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) {
      const T e = G[i * k + j] - (i == j ? T(1) : T(0));
      loss += e * e;
    }
  if (!(std::sqrt(loss) <= static_cast<T>(kCholeskyQR2MaxLoss))) return Branch::kHouseholder;  // NaN too
  if (!cholesky(G, R2, k, sw)) return Branch::kHouseholder;
  solve_right_upper(Q, R2, n, k, 'N', sw);
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

// ∇X = [G + Q (tril₋₁(B − Bᵀ) − B)] R⁻ᵀ with B = QᵀG, for one matrix. Scratch: 4k² + solve_scratch(k).
// Returns true where it applied R⁻ᵀ by the explicit inverse.
template <typename T>
bool qr_backward_one(const T* Gr, const T* Q, const T* R, T* out, T* w, int64_t n, int64_t k) {
  T* B = w;
  T* N = B + k * k;
  T* Z = N + k * k;
  T* W = Z + k * k;
  // Row-major B = QᵀG is the column-major Bᵀ = GᵀQ = (column-major Gᵀ)·(column-major Qᵀ)ᵀ.
  gemm('N', 'T', k, k, n, T(1), Gr, k, Q, k, T(0), B, k);
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) N[i * k + j] = (i > j ? B[i * k + j] - B[j * k + i] : T(0)) - B[i * k + j];
  if (n >= kInverseMinRatio * k) {
    invert_upper(R, Z, k);
    if (frobenius(R, k * k) * frobenius(Z, k * k) <= static_cast<T>(kInverseMaxCondition * k)) {
      // out = G Zᵀ + Q (N Zᵀ) with Z = R⁻¹, two GEMMs: column-major outᵀ = Z Gᵀ + (Z Nᵀ) Qᵀ
      // (the column-major Z is 'T' of its row-major buffer, and W holds Z Nᵀ column-major).
      gemm('T', 'N', k, n, k, T(1), Z, k, Gr, k, T(0), out, k);
      gemm('T', 'N', k, k, k, T(1), Z, k, N, k, T(0), W, k);
      gemm('N', 'N', k, n, k, T(1), W, k, Q, k, T(1), out, k);
      return true;
    }
  }
  // out = G + Q N: column-major outᵀ = Gᵀ + Nᵀ Qᵀ.
  std::memcpy(out, Gr, sizeof(T) * n * k);
  gemm('N', 'N', k, n, k, T(1), N, k, Q, k, T(1), out, k);
  solve_right_upper(out, R, n, k, 'T', W + k * k);
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
    for_each_matrix<scalar_t>(batch, 2 * k * k + 2 * k + solve_scratch(k), [&](int64_t i, scalar_t* w) {
      branch[i] = cholesky_qr_one(x + i * n * k, q + i * n * k, r + i * k * k, w, n, k);
    });
  });
  return finish_qr_branches(X, X3, Q3, R3, branch, Branch::kHouseholder, Branch::kOnePass, householder_count,
                            one_pass_count);
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
    for_each_matrix<scalar_t>(batch, 4 * k * k + solve_scratch(k), [&](int64_t i, scalar_t* w) {
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
