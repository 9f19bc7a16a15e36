// Stiefel's "newton_schulz" retraction: the polar factor of X + V by 14 quintic + 6 cubic
// Newton–Schulz steps, exact to rounding while ‖I + VᵀV‖₁ <= 10¹⁴ (stiefel.cpp).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mantra/mantra.h>

namespace {

using mantra::manifolds::Retraction;
using mantra::manifolds::Stiefel;
using mantra::manifolds::StiefelOptions;

torch::Tensor exact_polar(const torch::Tensor& M) {
  auto [U, S, Vh] = torch::linalg_svd(M.to(torch::kFloat64), /*full_matrices=*/false);
  return torch::matmul(U, Vh);
}

TEST(NewtonSchulzRetraction, EqualsTheExactPolarFactorAndLandsOnTheManifold) {
  const Stiefel M;
  for (auto shape : std::vector<std::vector<int64_t>>{{9, 4}, {6, 6}, {3, 30, 5}}) {
    for (auto [dtype, tol] : {std::pair{torch::kFloat64, 1e-13}, std::pair{torch::kFloat32, 2e-6}}) {
      torch::manual_seed(1);
      const torch::Tensor X = M.random(shape, dtype);
      for (double scale : {1e-3, 0.5, 10.0}) {
        torch::Tensor V = M.proj_tangent(X, torch::randn(shape, dtype));
        V = scale * V / V.norm();
        const torch::Tensor Y = M.retract(X, V, Retraction::NewtonSchulz);
        EXPECT_LT((Y.to(torch::kFloat64) - exact_polar(X + V)).abs().max().item<double>(), tol * std::max(1.0, scale))
            << shape << " " << scale;
        EXPECT_EQ(M.check_point(Y, tol), "") << shape << " " << scale;
      }
    }
  }
}

TEST(NewtonSchulzRetraction, FirstOrderAndExactAtZero) {
  const Stiefel M;
  torch::manual_seed(2);
  const torch::Tensor X = M.random({8, 3}, torch::kFloat64);
  torch::Tensor V = M.proj_tangent(X, torch::randn({8, 3}, torch::kFloat64));
  V = V / V.norm();
  const double e1 = (M.retract(X, 1e-2 * V, Retraction::NewtonSchulz) - (X + 1e-2 * V)).norm().item<double>();
  const double e2 = (M.retract(X, 1e-3 * V, Retraction::NewtonSchulz) - (X + 1e-3 * V)).norm().item<double>();
  EXPECT_GT(e1 / e2, 80.0);
  EXPECT_LT(e1 / e2, 120.0);
  EXPECT_LT((M.retract(X, torch::zeros_like(X), Retraction::NewtonSchulz) - X).abs().max().item<double>(), 1e-15);
}

TEST(NewtonSchulzRetraction, ParsedAndUsableAsDefaultAndOnSO) {
  EXPECT_EQ(mantra::manifolds::retraction_from_string("newton_schulz"), Retraction::NewtonSchulz);
  EXPECT_EQ(mantra::manifolds::to_string(Retraction::NewtonSchulz), "newton_schulz");
  const Stiefel def(StiefelOptions().set_retraction(Retraction::NewtonSchulz));
  EXPECT_EQ(def.retractions().front(), Retraction::NewtonSchulz);
  const Stiefel so(StiefelOptions().set_special(true));
  torch::manual_seed(3);
  const torch::Tensor X = so.random({5, 5}, torch::kFloat64);
  const torch::Tensor V = 0.3 * so.proj_tangent(X, torch::randn({5, 5}, torch::kFloat64));
  EXPECT_EQ(so.check_point(so.retract(X, V, Retraction::NewtonSchulz), 1e-12), "");
}

}  // namespace
