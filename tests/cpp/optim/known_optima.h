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
  return problems;
}

}  // namespace mantra::optima
