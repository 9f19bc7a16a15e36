// Constraints with geotorch's names, attached to any torch::nn module's parameter:
//   mantra::parametrize::orthogonal(*linear, "weight", "cayley");
// and the composite constraints they use.
//
// | constraint                          | value                              | built on                      |
// | orthogonal(triv)                    | SO(n) if square, else Stiefel       | Parametrization (exp, cayley, qr, polar); Householder |
// | grassmannian, sphere, oblique       | the manifold                        | Parametrization               |
// | positive_definite                   | SPD (affine-invariant exp)          | Parametrization               |
// | positive_definite_cholesky          | L Lᵀ, L = tril(v,−1) + diag(e^{diag v}) | Cholesky                  |
// | invertible                          | GL+(n), det > 0                     | Parametrization               |
// | sln                                 | SL(n), det = 1                      | Parametrization               |
// | hyperbolic(model)                   | Lorentz / Poincaré ball (last dim)  | Parametrization               |
// | low_rank(r)                         | U diag(s) Vᵀ, rank ≤ r              | Spectral                      |
// | fixed_rank(r)                       | U diag(softplus(s)+ε) Vᵀ, rank = r  | Spectral                      |
// | positive_semidefinite(_low_rank(r)) | U diag(s²) Uᵀ                       | Spectral (symmetric)          |
// | positive_semidefinite_fixed_rank(r) | U diag(softplus(s)+ε) Uᵀ            | Spectral (symmetric)          |
// | almost_orthogonal(λ, f)             | U diag(1 + λ f(s)) Vᵀ, f = sin      | Spectral                      |
// | symmetric, skew (lower)             | a triangle of v, mirrored           | LinearMap                     |
// | orthogonal(callable triv)           | (B triv(A))[:, :k]                  | CallableTrivialization        |
// | sphere(radius, embedded)            | radius · unit vectors               | Parametrization (scale)       |
// | low_rank_oblique / _sphere(r),      | H Vᵀ, rank ≤ r, unit rows / unit    | CoupledLowRank (Parametrization |
// |   low_rank_stacked_stiefel(r, p)    |   norm / orthonormal p-row blocks   |   of [H; V] on H_r × St(n, r)) |
// | alpha_stable(α, triv)               | P (S − Q/2) − αI, Re λ < −α         | Hurwitz (P, Q positive definite, S skew) |
// U and V are Stiefel Parametrizations, so DynamicTrivialization rebases them too. The maps
// are the functions of functional.h, which the Python frontend calls as well.
#pragma once

#include <mantra/manifolds/low_rank_coupled.h>
#include <mantra/parametrize/parametrization.h>
#include <mantra/parametrize/parametrize.h>

#include <string>
#include <tuple>

namespace mantra::parametrize {

struct SpectralOptions {
  TORCH_ARG(int64_t, rank) = 1;
  TORCH_ARG(bool, symmetric) = false;  // U diag(σ) Uᵀ
  TORCH_ARG(SpectrumMap, map) = SpectrumMap::Identity;
  TORCH_ARG(double, lambda) = Defaults::lam;  // NearOne, NearOneSin, NearOneSigmoid
  TORCH_ARG(double, eps) = Defaults::eps;     // Positive
  // The factors' trivialization: a retraction of the Stiefel manifold, or (when set) a
  // callable triv (see CallableTrivialization).
  TORCH_ARG(manifolds::Retraction, retraction) = manifolds::Retraction::Exp;
  TORCH_ARG(TensorFunction, triv);
  // A user's f in place of map's function (σ = 1 + λ f(s) for the near-one maps, f(s)
  // otherwise); `map` still decides what set()/check() accept.
  TORCH_ARG(SpectrumFunction, f);
  TORCH_ARG(double, atol) = Defaults::atol;  // tolerance of set()/check()
};

// X = U diag(f(s)) Vᵀ for tensors of shape (..., n, k).
class SpectralImpl : public ConstraintImpl {
 public:
  SpectralImpl(std::vector<int64_t> shape, SpectralOptions options,
               const at::TensorOptions& tensor_options = at::TensorOptions().dtype(at::kFloat));
  void set(const at::Tensor& X) override;
  void sample(const std::string& init = "uniform") override;
  std::string check(const at::Tensor& X) const override;
  const SpectralOptions& options() const { return options_; }
  void pretty_print(std::ostream& stream) const override;

  Parametrization U{nullptr}, V{nullptr};  // V is empty when symmetric
  at::Tensor s;

 protected:
  at::Tensor compute() override;

 private:
  at::Tensor spectrum(const at::Tensor& s) const;
  at::Tensor inverse_spectrum(const at::Tensor& sigma) const;
  SpectralOptions options_;
};
TORCH_MODULE(Spectral);

// X = H_1 ⋯ H_k [I; 0]: a product of Householder reflections H_i = I − τ_i u_i u_iᵀ whose
// vectors u_i (1 at position i, zeros above, v's entries below) are the columns of the
// strictly lower part of v, τ_i = 2/‖u_i‖². A static trivialization of the Stiefel manifold
// (on SO(n), odd n, the last column is negated so that det = +1); wide matrices through the
// transpose. set(X) computes the reflectors of X (any X whose Householder vectors exist, i.e.
// no column needs the identity in place of a reflection, as X = I does).
class HouseholderImpl : public ConstraintImpl {
 public:
  HouseholderImpl(std::vector<int64_t> shape, bool special,
                  const at::TensorOptions& tensor_options = at::TensorOptions().dtype(at::kFloat), double atol = 1e-5);
  void set(const at::Tensor& X) override;
  void sample(const std::string& init = "uniform") override;
  std::string check(const at::Tensor& X) const override;
  void pretty_print(std::ostream& stream) const override;
  at::Tensor v;

 protected:
  at::Tensor compute() override;

 private:
  bool wide_, special_;
  double atol_;
  manifolds::ManifoldPtr manifold_;
};
TORCH_MODULE(Householder);

// X = L Lᵀ with L lower triangular, L = tril(v, −1) + diag(exp(diag v)): positive definite
// matrices through their Cholesky factor with a log-parametrized diagonal.
class CholeskyImpl : public ConstraintImpl {
 public:
  CholeskyImpl(std::vector<int64_t> shape, const at::TensorOptions& tensor_options = at::TensorOptions().dtype(at::kFloat),
               double atol = 1e-5);
  void set(const at::Tensor& X) override;
  void sample(const std::string& init = "uniform") override;
  std::string check(const at::Tensor& X) const override;
  void pretty_print(std::ostream& stream) const override;
  at::Tensor v;

 protected:
  at::Tensor compute() override;

 private:
  double atol_;
};
TORCH_MODULE(Cholesky);

// Symmetric or skew-symmetric matrices from one triangle of v (geotorch's): the lower one
// (strictly, for skew) mirrored, or the upper one; triangle "both" gives (v ± vᵀ)/2.
class LinearMapImpl : public ConstraintImpl {
 public:
  LinearMapImpl(std::vector<int64_t> shape, bool skew,
                const at::TensorOptions& tensor_options = at::TensorOptions().dtype(at::kFloat),
                double atol = Defaults::atol, std::string triangle = "lower");
  void set(const at::Tensor& X) override;
  void sample(const std::string& init = "uniform") override;
  std::string check(const at::Tensor& X) const override;
  void pretty_print(std::ostream& stream) const override;
  // geotorch's: attaching reads the chosen triangle of any current value (v ← current).
  void attach_from(const at::Tensor& current) override;
  at::Tensor v;

 protected:
  at::Tensor compute() override;

 private:
  bool skew_;
  double atol_;
  std::string triangle_;
};
TORCH_MODULE(LinearMap);

// X = H Vᵀ on a manifolds::LowRankCoupled (low rank ∩ oblique / sphere / stacked Stiefel): a
// Parametrization whose chart point is the factor pair P = [H; V] (base and v of shape
// (..., m+n, r)) and whose value is the m×n weight H Vᵀ (functional::low_rank_coupled_*).
// DynamicTrivialization rebases it like any Parametrization; set(X) factors X (thin SVD).
class CoupledLowRankImpl : public ParametrizationImpl {
 public:
  CoupledLowRankImpl(std::shared_ptr<const manifolds::LowRankCoupled> manifold, std::vector<int64_t> shape,
                     ParametrizationOptions options = {},
                     const at::TensorOptions& tensor_options = at::TensorOptions().dtype(at::kFloat));
  void set(const at::Tensor& X) override;
  std::string check(const at::Tensor& X) const override;
  // The current chart point P = [H; V] = R_base(P_base(v)), differentiable in v; the value is
  // its H Vᵀ. Layers use it to apply the weight in factored form (mantra::nn::Linear).
  at::Tensor point() const { return retract(base, v); }
  const manifolds::LowRankCoupled& coupled() const { return *coupled_; }
  void pretty_print(std::ostream& stream) const override;

 protected:
  at::Tensor output(const at::Tensor& point) const override;

 private:
  std::shared_ptr<const manifolds::LowRankCoupled> coupled_;
};
TORCH_MODULE(CoupledLowRank);

// The α-stable (Hurwitz) matrices {X : every eigenvalue has real part < −α}, an open subset of
// R^{n×n}, as X = P (S − Q/2) − αI (functional::hurwitz_compose): P and Q positive definite
// (SPD Parametrizations for triv "expm", so DynamicTrivialization rebases them; Cholesky for
// "cholesky"), S skew (LinearMap). Every α-stable X has such factors (set() solves a Lyapunov
// equation with Q = I); sample() draws each factor (eigenvalues of order one).
class HurwitzImpl : public ConstraintImpl {
 public:
  HurwitzImpl(std::vector<int64_t> shape, double alpha = Defaults::alpha_stable_alpha,
              const std::string& triv = Defaults::positive_definite_triv,
              const at::TensorOptions& tensor_options = at::TensorOptions().dtype(at::kFloat));
  void set(const at::Tensor& X) override;
  void sample(const std::string& init = "uniform") override;
  std::string check(const at::Tensor& X) const override;
  void pretty_print(std::ostream& stream) const override;
  double alpha() const { return alpha_; }

  Constraint P{nullptr}, Q{nullptr};
  LinearMap S{nullptr};

 protected:
  at::Tensor compute() override;

 private:
  double alpha_;
  std::string triv_;
};
TORCH_MODULE(Hurwitz);

// ---------------------------------------------------------------- geotorch-style functions
// Each constrains module.name and returns the attached constraint; names, arguments and
// defaults (the Defaults table) follow geotorch, as do the Python functions of the same names.
// triv: "expm", "cayley", "qr", "polar" (a Parametrization), "householder" (Householder), or a
// callable mapping skew matrices to orthogonal ones (CallableTrivialization).
Constraint orthogonal(torch::nn::Module& module, const std::string& name, const std::string& triv = Defaults::triv);
Constraint orthogonal(torch::nn::Module& module, const std::string& name, TensorFunction triv);
Parametrization grassmannian(torch::nn::Module& module, const std::string& name, const std::string& triv = Defaults::triv);
// Unit vectors along the last dimension times radius; embedded: retract by projection.
Parametrization sphere(torch::nn::Module& module, const std::string& name, double radius = Defaults::radius,
                       bool embedded = false);
Parametrization oblique(torch::nn::Module& module, const std::string& name);
// triv "expm": the SPD manifold (affine-invariant exp); "cholesky": L Lᵀ (Cholesky). With a
// user's f into (0, ∞): Q diag(f(s)) Qᵀ (a symmetric Spectral).
Constraint positive_definite(torch::nn::Module& module, const std::string& name,
                             const std::string& triv = Defaults::positive_definite_triv);
Spectral positive_definite(torch::nn::Module& module, const std::string& name, SpectrumFunction f,
                           const std::string& triv = Defaults::triv);
Cholesky positive_definite_cholesky(torch::nn::Module& module, const std::string& name);
Parametrization invertible(torch::nn::Module& module, const std::string& name);
// The special linear group SL(n) = {det X = 1} (geotorch's sln).
Parametrization sln(torch::nn::Module& module, const std::string& name);
Parametrization hyperbolic(torch::nn::Module& module, const std::string& name,
                           const std::string& model = Defaults::hyperbolic_model);
// The spectral constraints; triv is the factors' (a name of the four above, or a callable).
Spectral low_rank(torch::nn::Module& module, const std::string& name, int64_t rank,
                  const std::string& triv = Defaults::triv);
Spectral fixed_rank(torch::nn::Module& module, const std::string& name, int64_t rank,
                    const std::string& triv = Defaults::triv);
Spectral fixed_rank(torch::nn::Module& module, const std::string& name, int64_t rank, SpectrumFunction f,
                    const std::string& triv = Defaults::triv);
Spectral positive_semidefinite(torch::nn::Module& module, const std::string& name,
                               const std::string& triv = Defaults::triv);
Spectral positive_semidefinite_low_rank(torch::nn::Module& module, const std::string& name, int64_t rank,
                                        const std::string& triv = Defaults::triv);
Spectral positive_semidefinite_fixed_rank(torch::nn::Module& module, const std::string& name, int64_t rank,
                                          const std::string& triv = Defaults::triv);
Spectral positive_semidefinite_fixed_rank(torch::nn::Module& module, const std::string& name, int64_t rank,
                                          SpectrumFunction f, const std::string& triv = Defaults::triv);
// Singular values in [1 − λ, 1 + λ]: U diag(1 + λ f(s)) Vᵀ, f "sin" (default), "tanh",
// "scaled_sigmoid", or a user's f into [−1, 1].
Spectral almost_orthogonal(torch::nn::Module& module, const std::string& name, double lambda = Defaults::lam,
                           const std::string& f = Defaults::almost_orthogonal_f,
                           const std::string& triv = Defaults::triv);
Spectral almost_orthogonal(torch::nn::Module& module, const std::string& name, double lambda, SpectrumFunction f,
                           const std::string& triv = Defaults::triv);
// Low rank coupled with an orthogonally invariant constraint (rank ≤ r and h(X) = 0) as
// X = H Vᵀ, V ∈ St(n, r), H ∈ H_r (see manifolds/low_rank_coupled.h): unit-norm rows
// (oblique), unit Frobenius norm (sphere), or m/p stacked blocks of p orthonormal rows.
// triv: the retraction of both factors, "polar" (default), "qr" or "expm".
CoupledLowRank low_rank_oblique(torch::nn::Module& module, const std::string& name, int64_t rank,
                                const std::string& triv = Defaults::low_rank_coupled_triv);
CoupledLowRank low_rank_sphere(torch::nn::Module& module, const std::string& name, int64_t rank,
                               const std::string& triv = Defaults::low_rank_coupled_triv);
CoupledLowRank low_rank_stacked_stiefel(torch::nn::Module& module, const std::string& name, int64_t rank, int64_t p,
                                        const std::string& triv = Defaults::low_rank_coupled_triv);
// The α-stable matrices (geotorch's alpha_stable): every eigenvalue of module.name has real
// part < −alpha; triv "expm" (default) or "cholesky" for the positive definite factors.
Hurwitz alpha_stable(torch::nn::Module& module, const std::string& name, double alpha = Defaults::alpha_stable_alpha,
                     const std::string& triv = Defaults::positive_definite_triv);
// Xᵀ = X / Xᵀ = −X from the lower (or upper) triangle.
LinearMap symmetric(torch::nn::Module& module, const std::string& name, bool lower = Defaults::lower);
LinearMap skew(torch::nn::Module& module, const std::string& name, bool lower = Defaults::lower);

}  // namespace mantra::parametrize
