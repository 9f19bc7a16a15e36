// The constraint maps and their policy as plain functions of tensors: the one home of the
// parametrization layer's math. The C++ constraint modules (constraints.h, parametrization.h)
// and the Python torch.nn.utils.parametrize modules (python/mantra/parametrize/) both call
// exactly these; the maps a forward needs are also dispatcher ops (torch.ops.mantra.*, see
// csrc/parametrize/functional_ops.cpp) so that torch.compile and torch.export see through a
// constrained model. Every map acts on leading batch dimensions, is differentiable, and
// computes float16/bfloat16 in float32 (the result is cast back).
#pragma once

#include <ATen/ATen.h>

#include <mantra/manifolds/manifold.h>

#include <functional>
#include <string>
#include <tuple>
#include <utility>

namespace mantra::manifolds {
class LowRankCoupled;  // mantra/manifolds/low_rank_coupled.h
}  // namespace mantra::manifolds

namespace mantra::parametrize {

// ---------------------------------------------------------------- the defaults (one table)
// Both frontends read these (Python: mantra._C.functional.defaults()); names follow geotorch.
struct Defaults {
  static constexpr const char* triv = "expm";           // orthogonal, grassmannian, spectral factors
  static constexpr const char* init = "uniform";        // sample()
  static constexpr double atol = 1e-5;                  // assignment and check tolerance
  static constexpr int64_t reproject_every = 100;       // rebases between re-projections of the base
  static constexpr double lam = 0.1;                    // almost_orthogonal
  static constexpr const char* almost_orthogonal_f = "sin";
  static constexpr const char* positive_f = "softplus";  // fixed_rank, positive_definite, PSD fixed rank
  static constexpr double eps = 1e-5;                   // softplus(s) + eps
  static constexpr const char* positive_definite_triv = "expm";
  static constexpr bool lower = true;                   // symmetric/skew: the triangle v is read from
  static constexpr double radius = 1.0;                 // sphere
  static constexpr const char* hyperbolic_model = "lorentz";
  static constexpr double cholesky_init_std = 0.1;      // Cholesky sample: v ~ N(0, 0.1²), near I
  static constexpr const char* low_rank_coupled_triv = "polar";  // low_rank_oblique, _sphere, _stacked_stiefel
  static constexpr double alpha_stable_alpha = 0.0;     // alpha_stable: every eigenvalue has Re λ < −α
};

// ---------------------------------------------------------------- spectrum maps
// How singular values (eigenvalues when symmetric) are made from the free vector s.
enum class SpectrumMap {
  Identity,        // σ = s (rank ≤ r, any sign)
  Positive,        // σ = softplus(s) + eps (exactly rank r)
  Square,          // σ = s² (positive semidefinite, rank ≤ r)
  NearOne,         // σ = 1 + λ tanh(s) (singular values in (1 − λ, 1 + λ))
  NearOneSin,      // σ = 1 + λ sin(s) (geotorch's default for almost_orthogonal)
  NearOneSigmoid,  // σ = 1 + λ (2 sigmoid(s) − 1)
};
// identity, softplus, square, tanh, sin, scaled_sigmoid; throws naming `arg` otherwise.
SpectrumMap spectrum_map_from_string(const std::string& f, const char* arg = "f");
std::string to_string(SpectrumMap map);
bool near_one(SpectrumMap map);

// A user's function in place of the named map's (geotorch's callable f): σ = 1 + λ f(s) for
// the near-one maps, σ = f(s) otherwise. f_inv (optional) makes assignment possible.
using TensorFunction = std::function<at::Tensor(const at::Tensor&)>;
struct SpectrumFunction {
  TensorFunction f, f_inv;
};

namespace functional {

// ---------------------------------------------------------------- manifold trivializations
// φ(v) = scale · R_base(ι_base(v)) with the manifold's retraction, from the base as from a point
// (Manifold::retract_from_point: the base is checked on set/load and pulled back at rebases);
// ι = Manifold::chart_vector, the tangent projection P_base except where the metric is not the
// embedding's (SPD: base^{1/2} sym(v) base^{1/2}).
at::Tensor trivialize(const manifolds::Manifold& manifold, const at::Tensor& base, const at::Tensor& v,
                      manifolds::Retraction retraction, double scale = 1.0);
// The base after the `rebases`-th rebase onto `point` (the current chart point): pulled back
// toward the manifold (a zero step of its retraction), and re-projected onto it every
// `reproject_every` rebases against rounding drift (0: never).
at::Tensor rebased_base(const manifolds::Manifold& manifold, const at::Tensor& point, int64_t rebases,
                        int64_t reproject_every);
// A base converted from dtype `before` to base's dtype: re-projected when the dtype widened,
// so that a float32 point becomes accurate to float64; unchanged otherwise.
at::Tensor converted_base(const manifolds::Manifold& manifold, const at::Tensor& base, at::ScalarType before);
// Why X is not a value of `scale` · manifold (shape, finiteness, the manifold's check), or "".
std::string point_check(const manifolds::Manifold& manifold, const at::Tensor& X, at::IntArrayRef shape,
                        double atol, double scale = 1.0);
// The attach policy: a parameter's current value is kept when it satisfies the constraint
// (why is empty), else the constraint keeps its sampled value.
inline bool keep_on_attach(const std::string& why) { return why.empty(); }
// A point drawn as Parametrization::sample(init): "uniform" (Haar/uniform), "origin", and on
// square SO(n)/O(n) "torus" / "henaff" (block rotations with angles U(−π, π)) and "cayley"
// (expRNN's Cayley init).
at::Tensor sample_point(const manifolds::Manifold& manifold, at::IntArrayRef shape, const std::string& init,
                        const at::TensorOptions& options);
// expRNN's static trivialization at the identity: (base = I, v = L), L the block-skew
// logarithm of a rotation init, so the point is exp(L). Needs square SO(n)/O(n) and `exp`.
std::pair<at::Tensor, at::Tensor> sample_in_chart(const manifolds::Manifold& manifold, at::IntArrayRef shape,
                                                  manifolds::Retraction retraction, const std::string& init,
                                                  const at::TensorOptions& options);
// The retraction a geotorch triv name ("expm", "cayley", "qr", "polar") means on `manifold`;
// throws naming `fn` and listing the manifold's retractions when it has no such one.
manifolds::Retraction triv_retraction(const std::string& triv, const manifolds::Manifold& manifold, const char* fn);
// True for the Stiefel manifold itself (O(n)/SO(n) when square), not a subclass such as the
// Grassmannian, whose points are subspaces.
bool is_stiefel(const manifolds::Manifold& manifold);

// ---------------------------------------------------------------- callable trivializations
// geotorch's custom triv: X = (B · Q)[:, :k] for Q = triv(A) orthogonal and B an n×n
// orthogonal base, transposed when `wide`, times scale. A = chart_skew(v) = the skew matrix
// of v's strictly lower triangle.
at::Tensor frame_from_chart(const at::Tensor& base, const at::Tensor& Q, int64_t k, bool wide, double scale = 1.0);
at::Tensor chart_skew(const at::Tensor& v);
// An orthogonal (…, n, n) whose first k columns are the frame T (…, n, k) (QR of [T, G] with
// G drawn from the global generator, columns signed so that the first k equal T).
at::Tensor complete_frame(const at::Tensor& T, int64_t n);

// ---------------------------------------------------------------- spectral U diag(σ) Vᵀ
at::Tensor spectrum(const at::Tensor& s, SpectrumMap map, double lambda = Defaults::lam, double eps = Defaults::eps);
// σ from f(s) for a user's f (see SpectrumFunction).
at::Tensor spectrum_of(const at::Tensor& fs, SpectrumMap map, double lambda = Defaults::lam);
// A right inverse s = f⁻¹(σ), clamped into f's range; inverse_spectrum_of gives the value a
// user's f_inv inverts ((σ − 1)/λ for the near-one maps, σ otherwise).
at::Tensor inverse_spectrum(const at::Tensor& sigma, SpectrumMap map, double lambda = Defaults::lam,
                            double eps = Defaults::eps);
at::Tensor inverse_spectrum_of(const at::Tensor& sigma, SpectrumMap map, double lambda = Defaults::lam);
// U diag(σ) Vᵀ, or U diag(σ) Uᵀ when V is undefined.
at::Tensor spectral_compose(const at::Tensor& U, const at::Tensor& sigma, const at::Tensor& V);
// The top-`rank` singular triple of X (eigenpairs by decreasing eigenvalue when symmetric):
// U (…, n, r), σ (…, r), V (…, k, r) (undefined when symmetric).
std::tuple<at::Tensor, at::Tensor, at::Tensor> spectral_factors(const at::Tensor& X, int64_t rank, bool symmetric);
// Why X (of `shape`) is not a value of U diag(map(s)) Vᵀ of rank `rank`, or "".
std::string spectral_check(const at::Tensor& X, at::IntArrayRef shape, int64_t rank, bool symmetric, SpectrumMap map,
                           double lambda, double atol);
// The free vector of singular values 1 (the well-conditioned point U Vᵀ) that sample() uses.
at::Tensor spectral_initial_s(at::IntArrayRef s_shape, SpectrumMap map, double lambda, double eps,
                              const SpectrumFunction& custom, const at::TensorOptions& options);

// ---------------------------------------------------------------- Householder, Cholesky, symmetric
// H_1 ⋯ H_k [I; 0] from the reflectors in the strictly lower part of v (…, n, k), n >= k; on
// SO(n) with odd n the last column is negated (det = +1); transposed when `wide`.
// householder_vectors is its inverse (throws when X has no Householder vectors).
at::Tensor householder(const at::Tensor& v, bool special, bool wide);
at::Tensor householder_vectors(const at::Tensor& X, bool special, bool wide);
// L Lᵀ with L = tril(v, −1) + diag(exp(diag v)), its inverse, and sample()'s draw (near I).
at::Tensor cholesky(const at::Tensor& v);
at::Tensor cholesky_inverse(const at::Tensor& X);
at::Tensor cholesky_sample(at::IntArrayRef shape, const at::TensorOptions& options);
std::string positive_definite_check(const at::Tensor& X, at::IntArrayRef shape, double atol);
// Symmetric (skew = false) or skew-symmetric matrices from v: "lower" / "upper" use that
// triangle of v (strictly, for skew) and mirror it; "both" gives (v ± vᵀ)/2.
at::Tensor linear_map(const at::Tensor& v, bool skew, const std::string& triangle = "lower");
std::string linear_map_check(const at::Tensor& X, at::IntArrayRef shape, bool skew, double atol);
// sample()'s draw for symmetric/skew: entries N(0, 1/n).
at::Tensor linear_map_sample(at::IntArrayRef shape, const at::TensorOptions& options);

// ---------------------------------------------------------------- low rank coupled X = H Vᵀ
// `manifold` is a manifolds::LowRankCoupled (LowRankOblique, LowRankSphere,
// LowRankStackedStiefel); its point P = [H; V] (..., m+n, r) is the constraint's chart point
// (a Parametrization's base and retraction), the value is the m×n weight H Vᵀ. Each function
// throws naming `fn`'s manifold when it is another manifold.
const manifolds::LowRankCoupled& as_low_rank_coupled(const manifolds::Manifold& manifold, const char* fn);
// The weight H Vᵀ of P (the constraint's output; the op torch.ops.mantra.low_rank_coupled_compose).
at::Tensor low_rank_coupled_compose(const manifolds::Manifold& manifold, const at::Tensor& P);
// input @ (diag(g) H Vᵀ)ᵀ + bias without forming the weight: (input V) (diag(g) H)ᵀ + bias,
// (m+n)·r multiply-adds per sample instead of m·n. input (..., n) -> (..., m); scale g (m, 1)
// or (1) and bias (m) optional (undefined). The op torch.ops.mantra.low_rank_coupled_linear.
at::Tensor low_rank_coupled_linear(const at::Tensor& input, const manifolds::Manifold& manifold, const at::Tensor& P,
                                   const at::Tensor& scale, const at::Tensor& bias);
// The base that makes X (…, m, n) the value: the projection of factor(X) (set() and Python's
// assignment; X must pass low_rank_coupled_check).
at::Tensor low_rank_coupled_base(const manifolds::Manifold& manifold, const at::Tensor& X);
// Why X is not a value (shape, finiteness, rank ≤ r, h(X) = 0 within atol), or "".
std::string low_rank_coupled_check(const manifolds::Manifold& manifold, const at::Tensor& X, at::IntArrayRef shape,
                                   double atol);

// ---------------------------------------------------------------- α-stable (Hurwitz) matrices
// X = P (S − Q/2) − αI with P, Q positive definite and S skew: every eigenvalue of X has real
// part < −α, and every such X is one (Lyapunov: with B = X + αI and Y = P⁻¹,
// BᵀY + YB = −Q ≺ 0). The op torch.ops.mantra.hurwitz_compose; batched over leading dims.
at::Tensor hurwitz_compose(const at::Tensor& P, const at::Tensor& Q, const at::Tensor& S, double alpha);
// Factors (P, Q, S) of an α-stable X with Q = I: Y solves the Lyapunov equation
// BᵀY + YB = −I (matrix-sign iteration, float64), P = Y⁻¹, S = skew(YB). X must pass
// hurwitz_check; throws naming `fn` if the solve does not converge.
std::tuple<at::Tensor, at::Tensor, at::Tensor> hurwitz_factors(const at::Tensor& X, double alpha,
                                                               const char* fn = "alpha_stable");
// Why X is not α-stable (shape, finiteness, real dtype, the largest real part of an eigenvalue
// not below −α), or "". The set is open: no tolerance widens it.
std::string hurwitz_check(const at::Tensor& X, at::IntArrayRef shape, double alpha);
// The largest real part of the eigenvalues of each matrix (the spectral abscissa), float64.
at::Tensor spectral_abscissa(const at::Tensor& X);

}  // namespace functional
}  // namespace mantra::parametrize
