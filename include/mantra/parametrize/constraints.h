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
// | hyperbolic(model)                   | Lorentz / Poincaré ball (last dim)  | Parametrization               |
// | low_rank(r)                         | U diag(s) Vᵀ, rank ≤ r              | Spectral                      |
// | fixed_rank(r)                       | U diag(softplus(s)+ε) Vᵀ, rank = r  | Spectral                      |
// | positive_semidefinite(_low_rank(r)) | U diag(s²) Uᵀ                       | Spectral (symmetric)          |
// | positive_semidefinite_fixed_rank(r) | U diag(softplus(s)+ε) Uᵀ            | Spectral (symmetric)          |
// | almost_orthogonal(λ)                | U diag(1 + λ tanh(s)) Vᵀ            | Spectral                      |
// | symmetric, skew                     | (v + vᵀ)/2, (v − vᵀ)/2              | LinearMap                     |
// U and V are Stiefel Parametrizations, so DynamicTrivialization rebases them too.
#pragma once

#include <mantra/parametrize/parametrization.h>
#include <mantra/parametrize/parametrize.h>

#include <string>
#include <tuple>

namespace mantra::parametrize {

// How singular values (eigenvalues when symmetric) are made from the free vector s.
enum class SpectrumMap {
  Identity,   // σ = s (rank ≤ r, any sign)
  Positive,   // σ = softplus(s) + eps (exactly rank r)
  Square,     // σ = s² (positive semidefinite, rank ≤ r)
  NearOne,    // σ = 1 + λ tanh(s) (singular values in (1 − λ, 1 + λ))
  NearOneSin,      // σ = 1 + λ sin(s) (geotorch's default for almost_orthogonal)
  NearOneSigmoid,  // σ = 1 + λ (2 sigmoid(s) − 1)
};

struct SpectralOptions {
  TORCH_ARG(int64_t, rank) = 1;
  TORCH_ARG(bool, symmetric) = false;  // U diag(σ) Uᵀ
  TORCH_ARG(SpectrumMap, map) = SpectrumMap::Identity;
  TORCH_ARG(double, lambda) = 0.1;   // NearOne, NearOneSin, NearOneSigmoid
  TORCH_ARG(double, eps) = 1e-5;     // Positive
  TORCH_ARG(manifolds::Retraction, retraction) = manifolds::Retraction::Exp;
  TORCH_ARG(double, atol) = 1e-5;    // tolerance of set()/check()
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

// X = (v + vᵀ)/2 or (v − vᵀ)/2: symmetric or skew-symmetric matrices.
class LinearMapImpl : public ConstraintImpl {
 public:
  LinearMapImpl(std::vector<int64_t> shape, bool skew,
                const at::TensorOptions& tensor_options = at::TensorOptions().dtype(at::kFloat), double atol = 1e-5);
  void set(const at::Tensor& X) override;
  void sample(const std::string& init = "uniform") override;
  std::string check(const at::Tensor& X) const override;
  void pretty_print(std::ostream& stream) const override;
  at::Tensor v;

 protected:
  at::Tensor compute() override;

 private:
  bool skew_;
  double atol_;
};
TORCH_MODULE(LinearMap);

// ---------------------------------------------------------------- geotorch-style functions
// Each constrains module.name and returns the attached constraint.
// triv: expm, cayley, qr, polar (a Parametrization) or householder (a Householder).
Constraint orthogonal(torch::nn::Module& module, const std::string& name, const std::string& triv = "expm");
Parametrization grassmannian(torch::nn::Module& module, const std::string& name, const std::string& triv = "expm");
Parametrization sphere(torch::nn::Module& module, const std::string& name);
Parametrization oblique(torch::nn::Module& module, const std::string& name);
Parametrization positive_definite(torch::nn::Module& module, const std::string& name);
Cholesky positive_definite_cholesky(torch::nn::Module& module, const std::string& name);
Parametrization invertible(torch::nn::Module& module, const std::string& name);
Parametrization hyperbolic(torch::nn::Module& module, const std::string& name, const std::string& model = "lorentz");
Spectral low_rank(torch::nn::Module& module, const std::string& name, int64_t rank);
Spectral fixed_rank(torch::nn::Module& module, const std::string& name, int64_t rank);
Spectral positive_semidefinite(torch::nn::Module& module, const std::string& name);
Spectral positive_semidefinite_low_rank(torch::nn::Module& module, const std::string& name, int64_t rank);
Spectral positive_semidefinite_fixed_rank(torch::nn::Module& module, const std::string& name, int64_t rank);
Spectral almost_orthogonal(torch::nn::Module& module, const std::string& name, double lambda);
LinearMap symmetric(torch::nn::Module& module, const std::string& name);
LinearMap skew(torch::nn::Module& module, const std::string& name);

// ---------------------------------------------------------------- functional maps
// The maps of the constraints above as plain functions of tensors (no module state): the
// constraint modules compute with them, and the Python frontend binds them (mantra._C), so
// each formula exists once. All act on leading batch dimensions and are differentiable.
namespace functional {
// σ = f(s) for the spectrum map, and a right inverse s = f⁻¹(σ) (clamped into f's range).
at::Tensor spectrum(const at::Tensor& s, SpectrumMap map, double lambda = 0.1, double eps = 1e-5);
at::Tensor inverse_spectrum(const at::Tensor& sigma, SpectrumMap map, double lambda = 0.1, double eps = 1e-5);
// U diag(σ) Vᵀ, or U diag(σ) Uᵀ when V is undefined.
at::Tensor spectral_compose(const at::Tensor& U, const at::Tensor& sigma, const at::Tensor& V);
// The top-`rank` singular triple of X (eigenpairs by decreasing eigenvalue when symmetric):
// U (…, n, r), σ (…, r), V (…, k, r) (undefined when symmetric).
std::tuple<at::Tensor, at::Tensor, at::Tensor> spectral_factors(const at::Tensor& X, int64_t rank, bool symmetric);
// Why X (of `shape`) is not a value of the spectral constraint with these options, or "".
std::string spectral_check(const at::Tensor& X, at::IntArrayRef shape, const SpectralOptions& options);
// H_1 ⋯ H_k [I; 0] from the reflectors in the strictly lower part of v (…, n, k), n >= k
// (see Householder); the result is transposed when `wide`. householder_vectors is its inverse
// (v from a point X; throws when X has no Householder vectors).
at::Tensor householder(const at::Tensor& v, bool special, bool wide);
at::Tensor householder_vectors(const at::Tensor& X, bool special, bool wide);
// L Lᵀ with L = tril(v, −1) + diag(exp(diag v)), and its inverse (v from positive definite X).
at::Tensor cholesky(const at::Tensor& v);
at::Tensor cholesky_inverse(const at::Tensor& X);
std::string positive_definite_check(const at::Tensor& X, at::IntArrayRef shape, double atol);
// Symmetric (skew = false) or skew-symmetric matrices from v: triangle "both" gives
// (v ± vᵀ)/2; "lower" / "upper" use that triangle of v (strictly, for skew) and mirror it.
at::Tensor linear_map(const at::Tensor& v, bool skew, const std::string& triangle = "both");
std::string linear_map_check(const at::Tensor& X, at::IntArrayRef shape, bool skew, double atol);
}  // namespace functional

}  // namespace mantra::parametrize
