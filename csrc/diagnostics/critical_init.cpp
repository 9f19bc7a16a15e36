#include "mantra/diagnostics/critical_init.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <map>
#include <mutex>

namespace mantra::diagnostics {

namespace {

// Gauss–Hermite rules are cached per n (the eigendecomposition costs O(n³)).
const std::pair<std::vector<double>, std::vector<double>>& rule(int64_t n) {
  static std::mutex mutex;
  static std::map<int64_t, std::pair<std::vector<double>, std::vector<double>>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(n);
  if (it != cache.end()) return it->second;
  auto [x, w] = gauss_hermite(n);
  std::vector<double> xs(x.data_ptr<double>(), x.data_ptr<double>() + n);
  std::vector<double> ws(w.data_ptr<double>(), w.data_ptr<double>() + n);
  return cache.emplace(n, std::make_pair(std::move(xs), std::move(ws))).first->second;
}

template <typename F>
double expectation(int64_t nodes, double q, F f) {
  const auto& [x, w] = rule(nodes);
  const double s = std::sqrt(q);
  double sum = 0;
  for (size_t i = 0; i < x.size(); ++i) sum += w[i] * f(s * x[i]);
  return sum;
}

void check_q(double q, const char* function, const char* name) {
  TORCH_CHECK_VALUE(std::isfinite(q) && q > 0, function, ": argument '", name, "' must be a finite number > 0, got ", q);
}
void check_nodes(int64_t nodes, const char* function) {
  TORCH_CHECK_VALUE(nodes >= 2 && nodes <= 1000, function, ": argument 'nodes' must be in [2, 1000], got ", nodes);
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> gauss_hermite(int64_t n) {
  check_nodes(n, "gauss_hermite");
  // Jacobi matrix of the monic probabilists' Hermite polynomials: He_{k+1} = x He_k − k He_{k−1},
  // so the symmetric tridiagonal matrix has zero diagonal and off-diagonal √k. Its eigenvalues
  // are the nodes; the weights are the squared first components of the unit eigenvectors
  // (times the measure's mass, 1).
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  torch::Tensor off = torch::arange(1, n, opts).sqrt();
  torch::Tensor T = torch::diag(off, 1) + torch::diag(off, -1);
  auto [evals, evecs] = torch::linalg_eigh(T);
  torch::Tensor weights = evecs.select(0, 0).pow(2);
  weights = weights / weights.sum();  // the rule integrates 1 exactly
  // Symmetrize (the rule is symmetric about 0; this removes eigensolver asymmetry).
  torch::Tensor nodes = 0.5 * (evals - evals.flip(0));
  weights = 0.5 * (weights + weights.flip(0));
  return {nodes.contiguous(), weights.contiguous()};
}

void check_activation(const std::string& activation, const char* function) {
  TORCH_CHECK_VALUE(activation == "tanh" || activation == "relu" || activation == "linear", function,
                    ": argument 'activation' must be tanh, relu or linear (the activations with mean-field formulas), got '",
                    activation, "'");
}

double mean_squared_activation(const std::string& activation, double q, int64_t nodes) {
  check_activation(activation, "mean_squared_activation");
  check_q(q, "mean_squared_activation", "q");
  check_nodes(nodes, "mean_squared_activation");
  if (activation == "relu") return q / 2;
  if (activation == "linear") return q;
  return expectation(nodes, q, [](double z) { const double t = std::tanh(z); return t * t; });
}

double mean_squared_derivative(const std::string& activation, double q, int64_t nodes) {
  check_activation(activation, "mean_squared_derivative");
  check_q(q, "mean_squared_derivative", "q");
  check_nodes(nodes, "mean_squared_derivative");
  if (activation == "relu") return 0.5;
  if (activation == "linear") return 1.0;
  return expectation(nodes, q, [](double z) { const double t = std::tanh(z); const double d = 1 - t * t; return d * d; });
}

double q_map(const std::string& activation, double sigma_w, double sigma_b, double q, int64_t nodes) {
  return sigma_w * sigma_w * mean_squared_activation(activation, q, nodes) + sigma_b * sigma_b;
}

double chi(const std::string& activation, double sigma_w, double q, int64_t nodes) {
  return sigma_w * sigma_w * mean_squared_derivative(activation, q, nodes);
}

double fixed_point_q(const std::string& activation, double sigma_w, double sigma_b, int64_t nodes, double q_max) {
  const char* fn = "fixed_point_q";
  check_activation(activation, fn);
  TORCH_CHECK_VALUE(std::isfinite(sigma_w) && sigma_w > 0, fn, ": argument 'sigma_w' must be > 0, got ", sigma_w);
  TORCH_CHECK_VALUE(std::isfinite(sigma_b) && sigma_b >= 0, fn, ": argument 'sigma_b' must be >= 0, got ", sigma_b);
  check_q(q_max, fn, "q_max");
  const double sw2 = sigma_w * sigma_w, sb2 = sigma_b * sigma_b;
  if (activation != "tanh") {
    const double slope = activation == "relu" ? sw2 / 2 : sw2;  // q_map(q) = slope·q + σ_b²
    if (slope < 1) return sb2 / (1 - slope);
    TORCH_CHECK_VALUE(sb2 == 0 && slope == 1, fn, ": the ", activation, " q-map diverges for sigma_w = ", sigma_w,
                      ", sigma_b = ", sigma_b, " (it needs sigma_w² ", activation == "relu" ? "< 2" : "< 1",
                      "); no fixed point");
    TORCH_CHECK_VALUE(false, fn, ": every q is a fixed point of the ", activation, " q-map at sigma_w = ", sigma_w,
                      ", sigma_b = 0; q* is not determined by (sigma_w, sigma_b)");
  }
  // tanh: g(q) = q_map(q) − q has g(0) = σ_b² ≥ 0 and g(q) → −∞ (tanh² ≤ 1); q_map is increasing
  // and concave, so the positive root is unique.
  auto g = [&](double q) { return q_map(activation, sigma_w, sigma_b, q, nodes) - q; };
  double lo = 0, hi = std::min(q_max, sw2 + sb2 + 1);
  if (sb2 == 0) {
    if (sw2 <= 1) return 0.0;  // q = 0 is the only (stable) fixed point
    lo = 1e-300;
  }
  TORCH_CHECK_VALUE(g(hi) < 0, fn, ": no fixed point below q_max = ", q_max);
  for (int i = 0; i < 2000 && hi - lo > 1e-16 * hi; ++i) {
    const double mid = 0.5 * (lo + hi);
    (g(mid) > 0 ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

CriticalPoint critical_point(const std::string& activation, double q_star, int64_t nodes) {
  const char* fn = "critical_point";
  check_activation(activation, fn);
  check_q(q_star, fn, "q_star");
  CriticalPoint p;
  p.q_star = q_star;
  const double sw2 = 1.0 / mean_squared_derivative(activation, q_star, nodes);
  const double sb2 = q_star - sw2 * mean_squared_activation(activation, q_star, nodes);
  // For tanh σ_b² > 0 analytically (E tanh² < q·E sech⁴); rounding can make it −1e-17 at tiny q*.
  TORCH_CHECK_VALUE(sb2 > -1e-12 * q_star, fn, ": no critical point with q* = ", q_star, " for ", activation,
                    " (sigma_b² would be ", sb2, ")");
  p.sigma_w = std::sqrt(sw2);
  p.sigma_b = std::sqrt(std::max(sb2, 0.0));
  p.chi = chi(activation, p.sigma_w, q_star, nodes);
  return p;
}

namespace {
at::Generator pick(const std::optional<at::Generator>& g) {
  return g.has_value() ? *g : at::detail::getDefaultCPUGenerator();
}
void check_weight(const torch::Tensor& weight, const char* fn) {
  TORCH_CHECK_VALUE(weight.defined() && weight.dim() == 2, fn, ": argument 'weight' must be a matrix, got ",
                    weight.defined() ? weight.sizes() : c10::IntArrayRef{});
}
}  // namespace

void orthogonal_init_(const torch::Tensor& weight, double sigma_w, std::optional<at::Generator> generator) {
  check_weight(weight, "orthogonal_init_");
  TORCH_CHECK_VALUE(std::isfinite(sigma_w) && sigma_w > 0, "orthogonal_init_: argument 'sigma_w' must be > 0, got ", sigma_w);
  torch::NoGradGuard no_grad;
  const int64_t rows = weight.size(0), cols = weight.size(1);
  const bool tall = rows >= cols;
  // Haar: Q of a Gaussian matrix, with the signs of diag(R) moved into Q.
  torch::Tensor A = at::normal(0.0, 1.0, {std::max(rows, cols), std::min(rows, cols)}, pick(generator),
                               torch::TensorOptions().dtype(torch::kFloat64));
  auto [Q, R] = torch::linalg_qr(A);
  Q = Q * torch::sign(torch::diagonal(R)).unsqueeze(0);
  if (!tall) Q = Q.t();
  weight.copy_(sigma_w * Q);
}

void gaussian_init_(const torch::Tensor& weight, double sigma_w, std::optional<at::Generator> generator) {
  check_weight(weight, "gaussian_init_");
  TORCH_CHECK_VALUE(std::isfinite(sigma_w) && sigma_w > 0, "gaussian_init_: argument 'sigma_w' must be > 0, got ", sigma_w);
  torch::NoGradGuard no_grad;
  const double std = sigma_w / std::sqrt(static_cast<double>(weight.size(1)));
  weight.copy_(at::normal(0.0, std, weight.sizes(), pick(generator), torch::TensorOptions().dtype(torch::kFloat64)));
}

void bias_init_(const torch::Tensor& bias, double sigma_b, std::optional<at::Generator> generator) {
  TORCH_CHECK_VALUE(bias.defined(), "bias_init_: argument 'bias' is undefined");
  TORCH_CHECK_VALUE(std::isfinite(sigma_b) && sigma_b >= 0, "bias_init_: argument 'sigma_b' must be >= 0, got ", sigma_b);
  torch::NoGradGuard no_grad;
  if (sigma_b == 0) {
    bias.zero_();
    return;
  }
  bias.copy_(at::normal(0.0, sigma_b, bias.sizes(), pick(generator), torch::TensorOptions().dtype(torch::kFloat64)));
}

}  // namespace mantra::diagnostics
