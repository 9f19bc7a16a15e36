// GL+(n) = {X ∈ R^{n×n} : det X > 0}, the identity component of the invertible matrices: an
// open subset of R^{n×n} (the full-rank case of FixedRank, with a sign), with the Euclidean
// metric, so proj_tangent and transport are the identity.
// Retractions: projection (default): X + V, falling back to X expm(X⁻¹V) for the batch
// entries where det(X + V) <= 0, so a step never leaves GL+; exp: X expm(X⁻¹V), the
// Lie-group exponential (not the Euclidean geodesic), which always stays in GL+.
#pragma once

#include <mantra/manifolds/fixed_rank.h>

namespace mantra::manifolds {

class GLPlus : public FixedRank {
 public:
  // Matrices (..., n, n). Singular values below max(min_singular_value, n·eps·σ_1) count as
  // drift: project() lifts them to that floor.
  explicit GLPlus(int64_t n, double min_singular_value = 0.0);
  std::string name() const override { return "GLPlus"; }
  std::string spec() const override;

  at::Tensor proj_tangent(const at::Tensor& X, const at::Tensor& G) const override;
  std::vector<Retraction> retractions() const override { return {Retraction::Projection, Retraction::Exp}; }
  at::Tensor transport(const at::Tensor& X, const at::Tensor& Y, const at::Tensor& V) const override;
  // The closest point with det > 0 and singular values >= the floor: singular values below it
  // are lifted to it, and where det X < 0 the smallest one is reflected through 0 (to the
  // floor). Its derivative is taken as the identity, exact where X already lies in GL+ with
  // singular values above the floor (where project fixes X).
  at::Tensor project(const at::Tensor& X) const override;
  // U diag(s) Vᵀ with Haar U, V, s uniform in [1, 2), one column negated where det < 0.
  at::Tensor random(at::IntArrayRef shape, const at::TensorOptions& options = {}) const override;
  std::string check_point(const at::Tensor& X, double atol = 1e-5) const override;

 protected:
  at::Tensor retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const override;

 private:
  double min_singular_value_;
};

// SL(n) = {X ∈ R^{n×n} : det X = 1}, the special linear group: a hypersurface of GL+(n) with
// the Euclidean metric. Its normal at X is ∇det = X⁻ᵀ, so the tangent projection is
// G − (tr(X⁻¹G)/‖X⁻ᵀ‖²) X⁻ᵀ and transport is the projection at the new point.
// Retractions land on det = 1 for any V (not only tangent ones), dividing by det^{1/n}:
// projection (default): (X + V)/det(X + V)^{1/n}, falling back to the exp retraction where
// det(X + V) <= 0; exp: X expm(A − tr(A)/n·I) with A = X⁻¹V (the group exponential for
// tangent V, where tr A = 0), rescaled the same way so that rounding does not accumulate.
// For tangent V both are first order: det(X + tV) = 1 + O(t²).
class SL : public GLPlus {
 public:
  explicit SL(int64_t n);
  std::string name() const override { return "SL"; }
  std::string spec() const override;

  at::Tensor proj_tangent(const at::Tensor& X, const at::Tensor& G) const override;
  at::Tensor transport(const at::Tensor& X, const at::Tensor& Y, const at::Tensor& V) const override;
  // GL+'s projection (sign and singular-value floor), then divided by det^{1/n}: fixes every
  // point of SL; not the Frobenius-closest point of SL in general.
  at::Tensor project(const at::Tensor& X) const override;
  // GL+'s random point divided by det^{1/n}.
  at::Tensor random(at::IntArrayRef shape, const at::TensorOptions& options = {}) const override;
  // A point of GL+ (see there) with |log det X| <= n·atol: the geometric mean of the singular
  // values is 1 within atol.
  std::string check_point(const at::Tensor& X, double atol = 1e-5) const override;

 protected:
  at::Tensor retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const override;
};

}  // namespace mantra::manifolds
