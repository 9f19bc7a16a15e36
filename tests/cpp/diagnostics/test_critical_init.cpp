// Mean-field critical initialization: quadrature accuracy, the q* fixed point, χ = 1.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <utility>
#include <vector>

#include "mantra/diagnostics/critical_init.h"
#include "../test_util.h"

namespace dg = mantra::diagnostics;
using mantra::test::expect_error;

TEST(GaussHermite, IntegratesGaussianMomentsExactly) {
  auto [x, w] = dg::gauss_hermite(20);
  EXPECT_NEAR(w.sum().item<double>(), 1.0, 1e-15);
  // E h^{2k} = (2k − 1)!!, exact for 2k ≤ 2n − 1 = 39.
  double dfact = 1;
  for (int k = 1; k <= 10; ++k) {
    dfact *= 2 * k - 1;
    const double m = (w * x.pow(2 * k)).sum().item<double>();
    EXPECT_NEAR(m / dfact, 1.0, 1e-12) << "k = " << k;
    EXPECT_NEAR((w * x.pow(2 * k - 1)).sum().item<double>(), 0.0, 1e-12 * dfact);
  }
}

TEST(GaussHermite, TanhIntegralsToTheStatedAccuracy) {
  // Reference: the trapezoid rule with step 0.005 on [−15, 15] (spectrally accurate for these
  // analytic, fast-decaying integrands; its error here is below 1e-16).
  torch::Tensor h = torch::arange(-3000, 3001, torch::kFloat64) * 0.005;
  torch::Tensor mu = torch::exp(-0.5 * h * h) * (0.005 / std::sqrt(2 * M_PI));
  for (auto [q, tol] : std::vector<std::pair<double, double>>{{9e-4, 1e-14}, {1.0 / 64, 1e-14}, {0.1, 1e-14},
                                                               {0.5, 1e-14}, {1.0, 1e-14}, {2.0, 1e-9}, {4.0, 1e-6}}) {
    torch::Tensor t = torch::tanh(std::sqrt(q) * h);
    const double a = (t * t * mu).sum().item<double>();
    const double d = ((1 - t * t).pow(2) * mu).sum().item<double>();
    EXPECT_NEAR(dg::mean_squared_activation("tanh", q), a, tol) << q;
    EXPECT_NEAR(dg::mean_squared_derivative("tanh", q), d, tol) << q;
  }
}

TEST(CriticalInit, FixedPointAndChiOneToTenDigits) {
  for (double q : {9e-4, 1.0 / 64, 0.05, 0.2, 0.5}) {
    dg::CriticalPoint p = dg::critical_point("tanh", q);
    EXPECT_NEAR(dg::q_map("tanh", p.sigma_w, p.sigma_b, q), q, 1e-10) << q;
    EXPECT_NEAR(dg::chi("tanh", p.sigma_w, q), 1.0, 1e-10) << q;
    EXPECT_NEAR(p.chi, 1.0, 1e-10);
    EXPECT_GT(p.sigma_w, 1.0);
    EXPECT_GT(p.sigma_b, 0.0);
    // The fixed-point solver recovers q* from (σ_w, σ_b).
    EXPECT_NEAR(dg::fixed_point_q("tanh", p.sigma_w, p.sigma_b), q, 1e-10 * std::max(1.0, q)) << q;
  }
}

TEST(CriticalInit, TanhSmallQApproachesTheLinearNetwork) {
  // Theory: σ_w² = 1 + 2q* + O(q*²) and σ_b² = O(q*³) (tanh z = z − z³/3 + …).
  double previous_w = 10;
  for (double q : {1e-1, 1e-2, 1e-3, 1e-4, 1e-5}) {
    dg::CriticalPoint p = dg::critical_point("tanh", q);
    EXPECT_LT(p.sigma_w, previous_w);
    previous_w = p.sigma_w;
    EXPECT_NEAR(p.sigma_w * p.sigma_w, 1 + 2 * q, 20 * q * q) << q;
    EXPECT_LT(p.sigma_b, 3 * std::pow(q, 1.5)) << q;
  }
  dg::CriticalPoint tiny = dg::critical_point("tanh", 1e-6);
  EXPECT_NEAR(tiny.sigma_w, 1.0, 2e-6);
  EXPECT_LT(tiny.sigma_b, 1e-8);
}

TEST(CriticalInit, ClosedForms) {
  for (double q : {1e-3, 0.5, 3.0}) {
    dg::CriticalPoint r = dg::critical_point("relu", q);
    EXPECT_DOUBLE_EQ(r.sigma_w, std::sqrt(2.0));
    EXPECT_DOUBLE_EQ(r.sigma_b, 0.0);
    dg::CriticalPoint l = dg::critical_point("linear", q);
    EXPECT_DOUBLE_EQ(l.sigma_w, 1.0);
    EXPECT_DOUBLE_EQ(l.sigma_b, 0.0);
  }
  EXPECT_NEAR(dg::fixed_point_q("relu", 1.0, 0.5), 0.25 / 0.5, 1e-15);
  EXPECT_NEAR(dg::fixed_point_q("linear", 0.5, 0.3), 0.09 / 0.75, 1e-15);
  EXPECT_EQ(dg::fixed_point_q("tanh", 0.9, 0.0), 0.0);
}

TEST(CriticalInit, BadInputNamesTheArgument) {
  expect_error([] { dg::critical_point("tanh", 0.0); }, "'q_star'");
  expect_error([] { dg::critical_point("tanh", -1.0); }, "'q_star'");
  expect_error([] { dg::critical_point("gelu", 0.1); }, "'activation'");
  expect_error([] { dg::fixed_point_q("relu", 2.0, 0.1); }, "diverges");
  expect_error([] { dg::fixed_point_q("tanh", -1.0, 0.1); }, "'sigma_w'");
  expect_error([] { dg::gauss_hermite(1); }, "'nodes'");
  expect_error([] { dg::orthogonal_init_(torch::empty({3}), 1.0); }, "'weight'");
}

TEST(Init, OrthogonalGaussianAndBias) {
  for (auto shape : {std::vector<int64_t>{7, 4}, std::vector<int64_t>{4, 7}, std::vector<int64_t>{5, 5}}) {
    torch::Tensor W = torch::empty(shape, torch::kFloat64);
    auto g1 = at::detail::createCPUGenerator(11);
    dg::orthogonal_init_(W, 1.3, g1);
    torch::Tensor G = W.size(0) >= W.size(1) ? W.t().mm(W) : W.mm(W.t());
    EXPECT_NEAR((G - 1.69 * torch::eye(G.size(0), torch::kFloat64)).abs().max().item<double>(), 0, 1e-13);
    torch::Tensor W2 = torch::empty(shape, torch::kFloat64);
    auto g2 = at::detail::createCPUGenerator(11);
    dg::orthogonal_init_(W2, 1.3, g2);
    EXPECT_TRUE(torch::equal(W, W2));
  }
  torch::Tensor W = torch::empty({400, 400});
  dg::gaussian_init_(W, 1.5, at::detail::createCPUGenerator(1));
  EXPECT_NEAR(W.std().item<double>(), 1.5 / 20, 0.01 * 1.5 / 20);  // 160000 samples: ~0.2% standard error
  torch::Tensor b = torch::empty({100000});
  dg::bias_init_(b, 0.2, at::detail::createCPUGenerator(2));
  EXPECT_NEAR(b.std().item<double>(), 0.2, 0.002);
  EXPECT_NEAR(b.mean().item<double>(), 0.0, 0.003);
}
