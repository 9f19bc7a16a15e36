// KL terms against the brute-force Gaussian KL with U⊗V formed (float64, small n, m).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mantra/bayes/matrix_normal.h>

#include <cmath>

namespace {

namespace mb = mantra::bayes;

// KL(N(mu, S) ‖ N(0, P)) in float64 from dense matrices.
double gaussian_kl(const torch::Tensor& mu, const torch::Tensor& S, const torch::Tensor& P) {
  const double K = static_cast<double>(mu.numel());
  auto Pi = torch::linalg_inv(P);
  auto quad = mu.reshape({1, -1}).mm(Pi).mm(mu.reshape({-1, 1})).item<double>();
  return 0.5 * (torch::trace(Pi.mm(S)).item<double>() + quad - K + torch::logdet(P).item<double>() -
                torch::logdet(S).item<double>());
}

struct Posterior {
  torch::Tensor M, A, B, U, V, S;
};
Posterior make(int64_t n, int64_t m, int seed) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
  Posterior p;
  p.M = torch::randn({n, m}, g, torch::kFloat64);
  p.A = mb::cholesky_factor(torch::randn({n, n}, g, torch::kFloat64) * 0.4);
  p.B = mb::cholesky_factor(torch::randn({m, m}, g, torch::kFloat64) * 0.4);
  p.U = p.A.mm(p.A.t());
  p.V = p.B.mm(p.B.t());
  p.S = torch::kron(p.U, p.V);  // Cov(vec_r W)
  return p;
}

TEST(MatrixNormalKL, NormalPriorEqualsBruteForce) {
  for (auto [n, m] : {std::pair<int64_t, int64_t>{3, 2}, {4, 5}, {1, 6}}) {
    auto p = make(n, m, 1 + n * m);
    const double s2 = 0.7;
    const double ref = gaussian_kl(p.M, p.S, s2 * torch::eye(n * m, torch::kFloat64));
    EXPECT_NEAR(mb::kl_mn_normal(p.M, p.A, p.B, s2).item<double>(), ref, 1e-10 * std::max(1.0, std::abs(ref)));
  }
}

TEST(MatrixNormalKL, ArdIsTheKLAtTheOptimalAlpha) {
  for (auto [n, m] : {std::pair<int64_t, int64_t>{3, 2}, {4, 5}}) {
    auto p = make(n, m, 2 + n * m);
    // Optimal α_k = 1/(S_kk + μ_k²): the brute-force KL to that prior is the closed form.
    auto alpha_inv = p.S.diagonal() + p.M.reshape(-1).square();
    const double ref = gaussian_kl(p.M, p.S, torch::diag(alpha_inv));
    EXPECT_NEAR(mb::kl_mn_ard(p.M, p.A, p.B).item<double>(), ref, 1e-10 * std::max(1.0, std::abs(ref)));
    // And it is the minimum over α: any other α gives a larger KL.
    EXPECT_LT(ref, gaussian_kl(p.M, p.S, torch::diag(alpha_inv * 1.3)));
    EXPECT_LT(ref, gaussian_kl(p.M, p.S, torch::diag(alpha_inv * 0.8)));
    // DIAG: ½Σ log(1 + μ²/σ²).
    auto ls2 = torch::randn({n, m}, torch::kFloat64);
    const double ref_d = gaussian_kl(p.M, torch::diag(ls2.exp().reshape(-1)),
                                     torch::diag(ls2.exp().reshape(-1) + p.M.reshape(-1).square()));
    EXPECT_NEAR(mb::kl_diag_ard(p.M, ls2).item<double>(), ref_d, 1e-10 * std::max(1.0, ref_d));
    EXPECT_NEAR(mb::kl_diag_ard(p.M, ls2).item<double>(),
                0.5 * (1 + p.M.square() / ls2.exp()).log().sum().item<double>(), 1e-10 * std::max(1.0, ref_d));
  }
}

TEST(MatrixNormalKL, GroupArdEqualsBruteForce) {
  for (auto [n, m] : {std::pair<int64_t, int64_t>{3, 2}, {4, 5}}) {
    auto p = make(n, m, 3 + n * m);
    auto log_tau = torch::randn({n}, torch::kFloat64), log_gamma = torch::randn({m}, torch::kFloat64);
    // Prior MN(0, diag(τ)⁻¹, diag(γ)⁻¹): Cov(vec_r W) = diag(1/τ) ⊗ diag(1/γ).
    auto P = torch::kron(torch::diag((-log_tau).exp()), torch::diag((-log_gamma).exp()));
    const double ref = gaussian_kl(p.M, p.S, P);
    EXPECT_NEAR(mb::kl_mn_group_ard(p.M, p.A, p.B, log_tau, log_gamma).item<double>(), ref,
                1e-10 * std::max(1.0, std::abs(ref)));
    auto ls2 = torch::randn({n, m}, torch::kFloat64) - 1.0;
    const double ref_d = gaussian_kl(p.M, torch::diag(ls2.exp().reshape(-1)), P);
    EXPECT_NEAR(mb::kl_diag_group_ard(p.M, ls2, log_tau, log_gamma).item<double>(), ref_d,
                1e-10 * std::max(1.0, std::abs(ref_d)));
    const double ref_n = gaussian_kl(p.M, torch::diag(ls2.exp().reshape(-1)), 2.0 * torch::eye(n * m, torch::kFloat64));
    EXPECT_NEAR(mb::kl_diag_normal(p.M, ls2, 2.0).item<double>(), ref_n, 1e-10 * std::max(1.0, std::abs(ref_n)));
  }
}

TEST(MatrixNormalKL, MinkowskiBoundOfTheSumFamilyIsAnUpperBound) {
  auto p = make(3, 4, 9);
  auto ls2 = torch::randn({3, 4}, torch::kFloat64) - 2.0;
  auto D = torch::diag(ls2.exp().reshape(-1));
  auto S = p.S + D;
  auto ld = mb::log_det_sum_lower_bound(mb::mn_log_det(p.A, p.B), ls2.sum(), 12);
  EXPECT_LE(ld.item<double>(), torch::logdet(S).item<double>() + 1e-12);
  const double exact = gaussian_kl(p.M, S, torch::eye(12, torch::kFloat64));
  const double bound = mb::kl_normal(p.M, mb::mn_variance(p.A, p.B) + ls2.exp(), ld, 1.0).item<double>();
  EXPECT_GE(bound, exact - 1e-12);
  EXPECT_LT(bound - exact, 0.5 * std::abs(exact));  // a bound, not a loose one
  // Equality when S and D are proportional: U⊗V = 0.25·I, D = 0.5·I, log|S + D| = 12·log 0.75.
  auto I3 = torch::eye(3, torch::kFloat64), I4 = torch::eye(4, torch::kFloat64);
  auto ldc = mb::log_det_sum_lower_bound(mb::mn_log_det(I3, I4 * 0.5), torch::tensor(12 * std::log(0.5), torch::kFloat64), 12);
  EXPECT_NEAR(ldc.item<double>(), 12 * std::log(0.75), 1e-12);
}

}  // namespace
