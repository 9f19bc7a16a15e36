// Small dense linear algebra shared by the manifolds: the one place for these maps.
#pragma once

#include <ATen/ATen.h>

namespace mantra::linalg {

// Symmetric part (A + Aᵀ)/2 and skew part (A − Aᵀ)/2 of the last two dimensions.
at::Tensor sym(const at::Tensor& A);
at::Tensor skew(const at::Tensor& A);

// f(S) for symmetric S (..., k, k) through eigh, with a backward that stays finite when
// eigenvalues coincide (Daleckii–Krein divided differences, f' on the diagonal and for
// near-equal pairs). InvSqrt and Log need S positive definite.
// CosSqrt, SincSqrt, VersSqrt are cos(√s), sin(√s)/√s and (1 − cos√s)/s: entire functions of
// s, so maps of VᵀV built from them (Grassmann geodesics) are smooth at V = 0.
// ClampMin is max(s, floor) with `floor` of the batch shape (...) (or a scalar tensor).
enum class SymFunction { Sqrt, InvSqrt, Log, Exp, CosSqrt, SincSqrt, VersSqrt, ClampMin };
at::Tensor sym_funm(const at::Tensor& S, SymFunction f, const at::Tensor& floor = {});

// Spectral functions of the Gram matrix AᵀA of a tall A (..., n, k), n >= k, restricted to its
// top r eigenpairs (λ = σ², from the SVD of A): P = V_r V_rᵀ (projector onto the top-r right
// singular subspace) and Pinv = V_r Σ_r⁻² V_rᵀ. Differentiable while σ_r > σ_{r+1}, including
// at rank-r A where the trailing singular values coincide at 0.
std::pair<at::Tensor, at::Tensor> gram_top(const at::Tensor& A, int64_t r);

// Best rank-r approximation of A (..., n, m) in any norm (truncated SVD), differentiable as above.
at::Tensor truncate_rank(const at::Tensor& A, int64_t r);

// Maps on tall matrices handle a wide argument through its transpose.
inline bool is_wide(const at::Tensor& X) { return X.size(-2) < X.size(-1); }
inline at::Tensor tall(const at::Tensor& T, bool wide) { return wide ? T.mT() : T; }

// Q factor of the reduced QR of A (..., n, k), n >= k, with diag(R) > 0 (unique; the Stiefel
// QR retraction and Haar sampling rely on it).
at::Tensor qr_positive(const at::Tensor& A);

// Identity matrices shaped like the last two dims of `like` (n x k), broadcast over batch.
at::Tensor eye_like(const at::Tensor& like);

}  // namespace mantra::linalg
