// Optimization problems on manifolds with known optimal values, shared by the optimizer tests.
#pragma once

#include <torch/torch.h>

#include <mantra/mantra.h>

#include <functional>
#include <string>
#include <vector>

namespace mantra::optima {

struct Problem {
  std::string name;
  manifolds::ManifoldPtr manifold;
  std::vector<int64_t> shape;
  std::function<torch::Tensor(const torch::Tensor&)> loss;  // scalar, differentiable
  double optimum;                                           // the known minimum
  // The retraction trivializations use (some manifolds have only projection).
  manifolds::Retraction retraction = manifolds::Retraction::Exp;
  // Learning-rate scale for this problem (its curvature differs).
  double lr_scale = 1.0;
  // The constraint trivializations use; default: a Parametrization of `manifold`. (A static
  // trivialization must be onto the manifold: for fixed rank the projection retraction is
  // not, the factorization U diag(softplus(s)+ε) Vᵀ is.)
  std::function<std::shared_ptr<parametrize::ConstraintImpl>()> constraint;
};

inline torch::Tensor spd_with_gap(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  torch::Tensor Q = std::get<0>(torch::linalg_qr(torch::randn({n, n}, torch::kFloat64)));
  torch::Tensor ev = torch::linspace(1.0, 10.0, n, torch::kFloat64);  // distinct eigenvalues
  return torch::matmul(Q * ev, Q.t());
}

inline std::vector<Problem> known_optima() {
  std::vector<Problem> problems;
  {
    // Brockett / PCA: min −tr(XᵀAX) over St(10, 3) is minus the sum of the 3 top eigenvalues.
    torch::Tensor A = spd_with_gap(10, 1);
    const double top = torch::linalg_eigvalsh(A).slice(0, 7).sum().item<double>();
    problems.push_back({"brockett_stiefel", std::make_shared<manifolds::Stiefel>(), {10, 3},
                        [A](const torch::Tensor& X) { return -(X * torch::matmul(A, X)).sum(); }, -top});
  }
  {
    // Dominant eigenvector: min −xᵀAx over the sphere is −λmax.
    torch::Tensor A = spd_with_gap(8, 2);
    const double lmax = torch::linalg_eigvalsh(A).max().item<double>();
    problems.push_back({"eigenvector_sphere", std::make_shared<manifolds::Sphere>(), {8},
                        [A](const torch::Tensor& x) { return -(x * torch::matmul(A, x)).sum(); }, -lmax});
  }
  for (bool negative_det : {false, true}) {
    // Procrustes on SO(n): min ‖X − T‖² is attained at the closest rotation U diag(1,…,1,±1) Vᵀ.
    torch::manual_seed(3);
    torch::Tensor T = torch::randn({6, 6}, torch::kFloat64);
    if ((torch::linalg_det(T).item<double>() < 0) != negative_det) T.select(0, 0).neg_();
    auto svd = torch::linalg_svd(T);
    torch::Tensor U = std::get<0>(svd), Vh = std::get<2>(svd);
    torch::Tensor d = torch::ones({6}, torch::kFloat64);
    d[5] = torch::linalg_det(torch::matmul(U, Vh)).item<double>() < 0 ? -1.0 : 1.0;
    torch::Tensor R = torch::matmul(U * d, Vh);
    const double best = (R - T).pow(2).sum().item<double>();
    problems.push_back({negative_det ? "procrustes_SO_det_negative" : "procrustes_SO",
                        std::make_shared<manifolds::Stiefel>(manifolds::StiefelOptions().set_special(true)),
                        {6, 6},
                        [T](const torch::Tensor& X) { return (X - T).pow(2).sum(); }, best});
  }
  {
    // Closest point on the oblique manifold: the columns of T normalized.
    torch::manual_seed(4);
    torch::Tensor T = torch::randn({5, 4}, torch::kFloat64) * 2;
    const double best = (T.norm(2, 0) - 1).pow(2).sum().item<double>();
    problems.push_back({"closest_oblique", std::make_shared<manifolds::Oblique>(), {5, 4},
                        [T](const torch::Tensor& X) { return (X - T).pow(2).sum(); }, best});
  }
  {
    // Invariant subspace: min −tr(XᵀAX) over Gr(10, 3) is minus the sum of the top 3 eigenvalues.
    torch::Tensor A = spd_with_gap(10, 5);
    const double top = torch::linalg_eigvalsh(A).slice(0, 7).sum().item<double>();
    problems.push_back({"invariant_subspace_grassmannian", std::make_shared<manifolds::Grassmannian>(), {10, 3},
                        [A](const torch::Tensor& X) { return -(X * torch::matmul(A, X)).sum(); }, -top});
  }
  {
    // Truncated SVD: min ‖X − A‖² over rank-2 matrices is the sum of the other σ_i².
    torch::manual_seed(6);
    torch::Tensor U = std::get<0>(torch::linalg_qr(torch::randn({7, 5}, torch::kFloat64)));
    torch::Tensor V = std::get<0>(torch::linalg_qr(torch::randn({5, 5}, torch::kFloat64)));
    torch::Tensor sigma = torch::tensor({5.0, 4.0, 1.0, 0.5, 0.2}, torch::kFloat64);
    torch::Tensor A = torch::matmul(U * sigma, V.t());
    problems.push_back({"truncated_svd_fixed_rank", std::make_shared<manifolds::FixedRank>(2), {7, 5},
                        [A](const torch::Tensor& X) { return (X - A).pow(2).sum(); }, 1.0 + 0.25 + 0.04,
                        manifolds::Retraction::Projection, 1.0, [] {
                          return std::make_shared<parametrize::SpectralImpl>(
                              std::vector<int64_t>{7, 5},
                              parametrize::SpectralOptions().rank(2).map(parametrize::SpectrumMap::Positive),
                              torch::kFloat64);
                        }});
  }
  {
    // Karcher mean of two SPD matrices: min d²(X, A) + d²(X, B) = d²(A, B)/2, at the geometric mean.
    auto spd = std::make_shared<manifolds::SPD>();
    torch::manual_seed(7);
    torch::Tensor A = spd->random({4, 4}, torch::kFloat64), B = spd->random({4, 4}, torch::kFloat64);
    const double dab = spd->distance(A, B).item<double>();
    problems.push_back({"karcher_mean_spd", spd, {4, 4},
                        [spd, A, B](const torch::Tensor& X) {
                          return spd->distance(X, A).pow(2) + spd->distance(X, B).pow(2);
                        },
                        dab * dab / 2, manifolds::Retraction::Exp, 0.4});
  }
  {
    // Hyperbolic: min d²(x, a) + d²(x, b) over the hyperboloid = d²(a, b)/2, at the midpoint.
    auto H = std::make_shared<manifolds::Lorentz>();
    torch::manual_seed(8);
    torch::Tensor a = H->random({4}, torch::kFloat64), b = H->random({4}, torch::kFloat64);
    const double dab = H->distance(a, b).item<double>();
    problems.push_back({"hyperbolic_midpoint_lorentz", H, {4},
                        [H, a, b](const torch::Tensor& x) { return H->distance(x, a).pow(2) + H->distance(x, b).pow(2); },
                        dab * dab / 2, manifolds::Retraction::Exp, 0.6});
  }
  return problems;
}

}  // namespace mantra::optima
