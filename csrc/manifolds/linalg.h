// Small dense linear algebra shared by the manifolds: the one place for these maps.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace mantra::linalg {

// Symmetric part (A + Aᵀ)/2 and skew part (A − Aᵀ)/2 of the last two dimensions.
at::Tensor sym(const at::Tensor& A);
at::Tensor skew(const at::Tensor& A);

// at::linalg_eigh, except that a float32/half decomposition that comes back non-finite from a
// finite S is redone in float64 and rounded: LAPACK's ssyevd can return NaN without an error
// when S has a large cluster of equal eigenvalues (a 784×784 covariance step with hundreds of
// zero rows did). Every eigh of the manifolds and maps goes through it.
std::tuple<at::Tensor, at::Tensor> eigh(const at::Tensor& S);

// f(S) for symmetric S (..., k, k) through eigh, with a backward that stays finite when
// eigenvalues coincide (Daleckii–Krein divided differences, f' on the diagonal and for
// near-equal pairs). InvSqrt and Log need S positive definite.
// CosSqrt, SincSqrt, VersSqrt are cos(√s), sin(√s)/√s and (1 − cos√s)/s: entire functions of
// s, so maps of VᵀV built from them (Grassmann geodesics) are smooth at V = 0.
// ClampMin is max(s, floor) with `floor` of the batch shape (...) (or a scalar tensor);
// SqrtFloor and InvSqrtFloor are the roots of max(s, floor), defined for every symmetric S
// (the SPD retraction uses them so that a point drifted to the edge of the cone is lifted);
// ExpClamp is exp(clamp(s, −floor, floor)): finite for every step (floor > 0 is the cap).
// ExpClampHalf is exp(clamp(s, −floor, floor)/2), the root of ExpClamp (the SPD transport).
enum class SymFunction {
  Sqrt, InvSqrt, Log, Exp, CosSqrt, SincSqrt, VersSqrt, ClampMin, SqrtFloor, InvSqrtFloor, ExpClamp, ExpClampHalf
};
at::Tensor sym_funm(const at::Tensor& S, SymFunction f, const at::Tensor& floor = {});
// Several functions of one S from a single eigendecomposition (all with the same `floor`),
// differentiable as sym_funm: the SPD maps need both roots of a point, the Grassmann geodesic
// cos and sinc of one Gram matrix; an eigh costs about five matrix products.
std::vector<at::Tensor> sym_funms(const at::Tensor& S, const std::vector<SymFunction>& fs, const at::Tensor& floor = {});

// cos√λ and sin√λ/√λ (1 at 0) elementwise, negative λ read as 0: the values sym_funm's CosSqrt
// and SincSqrt take (one definition, also for the skew expm route).
std::pair<at::Tensor, at::Tensor> cos_sinc_sqrt(const at::Tensor& lambda);

// Divided differences F = f[λi, λj], G = g[λi, λj] of f(s) = cos√s and g(s) = sin√s/√s for
// λ (..., n) ≥ 0 on the CPU, each (..., n, n): f', g' on the diagonal, cancellation-free for
// equal, close and zero arguments (checked against 50-digit arithmetic to 2e-15 relative).
// The Daleckii–Krein matrices of the skew expm route and of sym_funm's CosSqrt and SincSqrt.
std::pair<at::Tensor, at::Tensor> cos_sinc_sqrt_divided_differences(const at::Tensor& lambda);

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

// Q factor of the reduced QR of A (..., n, k), n >= k, with diag(R) > 0 (unique; Haar sampling
// relies on it): the qr_retraction operator, as the Stiefel QR retraction.
at::Tensor qr_positive(const at::Tensor& A);

// One Newton–Schulz step toward the closest frame, Y (3I − YᵀY)/2, for tall Y: a frame off by
// E = YᵀY − I comes out off by about (3/4)E² (contractive for ‖E‖ < 1), and the derivative at
// a frame is the tangent projection, so a retraction followed by it keeps its first-order
// terms. Two matmuls, O(nk²).
at::Tensor newton_schulz_step(const at::Tensor& Y);

// The matrices of A (..., n, k) that hold a NaN or Inf, as a mask (..., 1, 1). LAPACK's SVD
// throws on NaN and returns a finite frame for Inf, so the SVD-based maps run on
// A.masked_fill(mask, 0) and return NaN for those matrices (no host synchronization).
at::Tensor nonfinite_matrices(const at::Tensor& A);
at::Tensor fill_nan(const at::Tensor& T, const at::Tensor& mask);

// The polar factor M (MᵀM)^{-1/2} of a tall M of full column rank: the closest frame to M,
// computed through the SVD (accurate at any condition number), with a backward that stays
// finite at repeated singular values; NaN for matrices that hold a NaN or Inf.
at::Tensor polar_factor(const at::Tensor& M);
// The same map as M (MᵀM)^{-1/2} through a k×k eigh: cheaper, and as accurate as polar_factor
// for the nearly orthonormal M it is used on (the end of exp/cayley), where MᵀM is well
// conditioned. Not for ill-conditioned M (the Gram matrix squares the condition number).
at::Tensor polar_factor_near_frame(const at::Tensor& M);

// Identity matrices shaped like the last two dims of `like` (n x k), broadcast over batch.
at::Tensor eye_like(const at::Tensor& like);

}  // namespace mantra::linalg
