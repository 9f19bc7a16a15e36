// Critical initialization by mean-field theory (Poole et al. 2016; Pennington et al. 2017; the
// Isometry paper's §2.2). With pre-activations h ~ N(0, q) in the wide limit:
//   q-map  (eq. 4)  q ← σ_w² ∫ φ(√q h)² dμ(h) + σ_b²,  μ = N(0, 1), fixed point q*;
//   χ      (eq. 5)  χ = σ_w² ∫ φ'(√q* h)² dμ(h), the mean squared singular value of one layer's
//                   Jacobian; χ = 1 is the critical line.
// Given q*, χ = 1 fixes σ_w² = 1/∫φ'(√q* h)²dμ and then eq. 4 fixes σ_b² = q* − σ_w²∫φ(√q* h)²dμ.
// Integrals are n-point Gauss–Hermite quadrature (exact for polynomials of degree ≤ 2n − 1; for
// tanh, whose integrands have poles at h = ±iπ/(2√q), the error grows with q: with the default
// 201 nodes it is below 1e-14 for q ≤ 1, ~2e-10 at q = 2 and ~3e-7 at q = 4, against a
// trapezoid reference, tests/cpp/diagnostics; use more nodes for larger q). ReLU and linear
// have closed forms (ReLU: σ_w = √2, σ_b = 0; linear: σ_w = 1, σ_b = 0, for every q*).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace mantra::diagnostics {

// Nodes and weights of the n-point Gauss–Hermite rule for the standard normal measure
// (Σ w_i f(x_i) ≈ E f(h), h ~ N(0, 1)), float64, by Golub–Welsch (the eigenvalues of the
// Jacobi matrix of the probabilists' Hermite polynomials).
std::pair<torch::Tensor, torch::Tensor> gauss_hermite(int64_t n = 101);

// "tanh", "relu" or "linear"; anything else is an error naming `activation`.
void check_activation(const std::string& activation, const char* function);

// E φ(√q h)² and E φ'(√q h)² for h ~ N(0, 1).
double mean_squared_activation(const std::string& activation, double q, int64_t nodes = 201);
double mean_squared_derivative(const std::string& activation, double q, int64_t nodes = 201);

// The right-hand side of eq. 4 at q.
double q_map(const std::string& activation, double sigma_w, double sigma_b, double q, int64_t nodes = 201);
// χ of eq. 5 at q.
double chi(const std::string& activation, double sigma_w, double q, int64_t nodes = 201);

// The stable fixed point q* of eq. 4 for (σ_w, σ_b): tanh by bisection on q_map(q) − q over
// (0, q_max] to relative accuracy ~1e-15 (0 when σ_b = 0 and σ_w ≤ 1); ReLU/linear in closed
// form, q* = σ_b²/(1 − σ_w²/2) and σ_b²/(1 − σ_w²). Errors when the q-map diverges (ReLU
// σ_w² ≥ 2, linear σ_w ≥ 1, except σ_b = 0 at criticality where every q is fixed) or no fixed
// point lies below q_max.
double fixed_point_q(const std::string& activation, double sigma_w, double sigma_b, int64_t nodes = 201,
                     double q_max = 1e6);

struct CriticalPoint {
  double sigma_w = 0, sigma_b = 0;
  double q_star = 0;
  double chi = 0;  // χ at q* (1 up to rounding)
};
// (σ_w, σ_b) on the critical line χ = 1 with fixed point q* > 0.
CriticalPoint critical_point(const std::string& activation, double q_star, int64_t nodes = 201);

// Initializations, in place, drawn from `generator` (the default generator when none):
// W ← σ_w·Q with Q Haar orthogonal (rows or columns orthonormal, the smaller side);
void orthogonal_init_(const torch::Tensor& weight, double sigma_w, std::optional<at::Generator> generator = std::nullopt);
// W ← N(0, σ_w²/fan_in), the Gaussian comparison (fan_in = W.size(1));
void gaussian_init_(const torch::Tensor& weight, double sigma_w, std::optional<at::Generator> generator = std::nullopt);
// b ← N(0, σ_b²).
void bias_init_(const torch::Tensor& bias, double sigma_b, std::optional<at::Generator> generator = std::nullopt);

}  // namespace mantra::diagnostics
