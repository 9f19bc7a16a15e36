// mantra::matrix_normal_sample / matrix_normal_linear from C++: the convention Cov(vec_r W) = U⊗V
// by Monte Carlo, the local reparameterization against Wᵀx, exact values and gradients against
// the dense composition, and bad input.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mantra/bayes/matrix_normal.h>

#include "../test_util.h"

namespace {

torch::Tensor lower_factor(int64_t n, torch::Generator& g) {
  auto L = torch::randn({n, n}, g, torch::kFloat64).tril(-1) * 0.5;
  return L + torch::diag(torch::rand({n}, g, torch::kFloat64) + 0.5);
}

// K samples (K, n, m) of MN(M, AAᵀ, BBᵀ) in K/c calls: c samples side by side per call, as the
// column blocks of one sample with the mean [M ... M] and the column factor diag(B, ..., B).
torch::Tensor samples(const torch::Tensor& M, const torch::Tensor& A, const torch::Tensor& B, int64_t K, int64_t c,
                      torch::Generator& g) {
  const int64_t n = M.size(0), m = M.size(1);
  auto Mc = M.repeat({1, c}), Bc = torch::kron(torch::eye(c, torch::kFloat64), B);
  std::vector<torch::Tensor> out;
  for (int64_t k = 0; k < K; k += c) {
    auto W = mantra::matrix_normal_sample(Mc, A, Bc, torch::randn({n, c * m}, g, torch::kFloat64));
    out.push_back(W.reshape({n, c, m}).permute({1, 0, 2}));
  }
  return torch::cat(out);
}

// Every entry of `est` within z standard errors `se` of `ref`.
void expect_within(const torch::Tensor& est, const torch::Tensor& ref, const torch::Tensor& se, double z,
                   const char* what) {
  const auto dev = ((est - ref).abs() / se).max().item<double>();
  EXPECT_LT(dev, z) << what << ": max deviation " << dev << " standard errors";
}

// Sample covariance of the rows of S (K samples × d) and the standard errors of its entries
// for a Gaussian, sqrt((Σ_ii Σ_jj + Σ_ij²)/K), from the reference covariance.
std::pair<torch::Tensor, torch::Tensor> sample_cov(const torch::Tensor& S, const torch::Tensor& ref) {
  const int64_t K = S.size(0);
  auto C = S - S.mean(0);
  auto cov = C.t().mm(C) / static_cast<double>(K - 1);
  auto d = ref.diagonal();
  auto se = ((torch::outer(d, d) + ref.square()) / static_cast<double>(K)).sqrt() + 1e-12;
  return {cov, se};
}

TEST(MatrixNormalSample, MonteCarloMeanAndKroneckerCovariance) {
  torch::NoGradGuard ng;
  auto g = at::make_generator<at::CPUGeneratorImpl>(7);
  const int64_t n = 3, m = 2, K = 40000;
  auto M = torch::randn({n, m}, g, torch::kFloat64);
  auto A = lower_factor(n, g), B = lower_factor(m, g);
  auto U = A.mm(A.t()), V = B.mm(B.t());
  auto S = samples(M, A, B, K, 400, g).reshape({K, n * m});  // rows: vec_r(W) = W.reshape(-1)
  auto kron = torch::kron(U, V);
  expect_within(S.mean(0), M.reshape(-1), (kron.diagonal() / static_cast<double>(K)).sqrt(), 5.0, "mean");
  auto [cov, se] = sample_cov(S, kron);
  expect_within(cov, kron, se, 5.0, "Cov(vec_r W) vs U⊗V");
  // The other order is far off: the test can tell the conventions apart.
  auto swapped = torch::kron(V, U);
  EXPECT_GT(((cov - swapped).abs() / se).max().item<double>(), 20.0);
}

TEST(MatrixNormalLinear, LocalReparameterizationHasTheDistributionOfWtx) {
  torch::NoGradGuard ng;
  auto g = at::make_generator<at::CPUGeneratorImpl>(11);
  const int64_t n = 4, m = 3, K = 40000;
  auto M = torch::randn({n, m}, g, torch::kFloat64);
  auto A = lower_factor(n, g), B = lower_factor(m, g);
  auto U = A.mm(A.t()), V = B.mm(B.t());
  auto x = torch::randn({1, n}, g, torch::kFloat64);
  auto X = x.expand({K, n}).contiguous();
  auto O = mantra::matrix_normal_linear(X, M, A, B, torch::randn({K, m}, g, torch::kFloat64));
  auto Owx = torch::matmul(x, samples(M, A, B, K, 400, g)).reshape({K, m});  // xᵀW per weight sample
  auto mean = x.mm(M).reshape(-1);
  auto cov_ref = x.mm(U).mm(x.t()).item<double>() * V;  // (xᵀUx)·V
  auto se_mean = (cov_ref.diagonal() / static_cast<double>(K)).sqrt();
  for (const auto& [S, what] : {std::pair{O, "local"}, std::pair{Owx, "weights"}}) {
    expect_within(S.mean(0), mean, se_mean, 5.0, what);
    auto [cov, se] = sample_cov(S, cov_ref);
    expect_within(cov, cov_ref, se, 5.0, what);
  }
  // The two estimators agree with each other (difference of two independent means).
  expect_within(O.mean(0), Owx.mean(0), se_mean * std::sqrt(2.0), 5.0, "local vs weights");
}

// Sizes where the triangular products recurse (factors over 64 rows, products of at least 2^18
// multiply-adds) and where they are one dense leaf.
TEST(MatrixNormalOps, EqualTheDenseCompositionWithGradients) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(3);
  for (auto [N, n, m] : {std::tuple<int64_t, int64_t, int64_t>{5, 3, 2}, {37, 150, 200}, {130, 200, 71}}) {
    auto opt = torch::TensorOptions().dtype(torch::kFloat64);
    auto M = torch::randn({n, m}, g, torch::kFloat64).requires_grad_();
    // Upper triangles full of junk: the ops must ignore them.
    auto A = (lower_factor(n, g) + torch::randn({n, n}, g, torch::kFloat64).triu(1)).requires_grad_();
    auto B = (lower_factor(m, g) + torch::randn({m, m}, g, torch::kFloat64).triu(1)).requires_grad_();
    auto E = torch::randn({n, m}, g, torch::kFloat64).requires_grad_();
    auto X = torch::randn({N, n}, g, torch::kFloat64).requires_grad_();
    auto E2 = torch::randn({N, m}, g, torch::kFloat64).requires_grad_();
    auto bias = torch::randn({m}, g, torch::kFloat64).requires_grad_();
    auto GW = torch::randn({n, m}, g, torch::kFloat64), GO = torch::randn({N, m}, g, torch::kFloat64);
    std::vector<torch::Tensor> inputs{M, A, B, E, X, E2, bias};

    auto W = mantra::matrix_normal_sample(M, A, B, E);
    auto O = mantra::matrix_normal_linear(X, M, A, B, E2, bias);
    auto mine = torch::autograd::grad({W, O}, inputs, {GW, GO});
    auto Wr = M + A.tril().mm(E).mm(B.tril().t());
    auto s = X.mm(A.tril()).square().sum(1, true).sqrt();
    auto Or = X.mm(M) + s * E2.mm(B.tril().t()) + bias;
    auto ref = torch::autograd::grad({Wr, Or}, inputs, {GW, GO});
    EXPECT_TRUE(torch::allclose(W, Wr, 1e-12, 1e-11)) << n << "x" << m;
    EXPECT_TRUE(torch::allclose(O, Or, 1e-12, 1e-11)) << N << "x" << n << "x" << m;
    const char* names[] = {"M", "A", "B", "E", "X", "E'", "bias"};
    for (size_t k = 0; k < inputs.size(); ++k)
      EXPECT_TRUE(torch::allclose(mine[k], ref[k], 1e-11, 1e-10)) << "gradient of " << names[k] << " " << n << "x" << m;
    EXPECT_EQ(mine[1].triu(1).abs().max().item<double>(), 0.0) << "upper triangle of A";
    EXPECT_EQ(mine[2].triu(1).abs().max().item<double>(), 0.0) << "upper triangle of B";
  }
}

TEST(MatrixNormalOps, Float32AndHalfAgreeWithFloat64) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(5);
  const int64_t N = 9, n = 70, m = 66;
  auto M = torch::randn({n, m}, g, torch::kFloat64), A = lower_factor(n, g), B = lower_factor(m, g);
  auto E = torch::randn({n, m}, g, torch::kFloat64), X = torch::randn({N, n}, g, torch::kFloat64);
  auto E2 = torch::randn({N, m}, g, torch::kFloat64);
  auto W64 = mantra::matrix_normal_sample(M, A, B, E), O64 = mantra::matrix_normal_linear(X, M, A, B, E2);
  for (auto [dt, tol] : {std::pair{torch::kFloat32, 1e-4}, std::pair{torch::kBFloat16, 1e-1}}) {
    auto W = mantra::matrix_normal_sample(M.to(dt), A.to(dt), B.to(dt), E.to(dt));
    auto O = mantra::matrix_normal_linear(X.to(dt), M.to(dt), A.to(dt), B.to(dt), E2.to(dt));
    EXPECT_EQ(W.scalar_type(), dt);
    const double scaleW = W64.abs().max().item<double>(), scaleO = O64.abs().max().item<double>();
    EXPECT_LT((W.to(torch::kFloat64) - W64).abs().max().item<double>() / scaleW, tol);
    EXPECT_LT((O.to(torch::kFloat64) - O64).abs().max().item<double>() / scaleO, tol);
  }
}

TEST(MatrixNormalOps, BadInputNamesTheArgument) {
  using mantra::test::expect_error;
  auto M = torch::randn({3, 2}, torch::kFloat64), A = torch::eye(3, torch::kFloat64),
       B = torch::eye(2, torch::kFloat64), E = torch::randn({3, 2}, torch::kFloat64);
  auto X = torch::randn({4, 3}, torch::kFloat64), E2 = torch::randn({4, 2}, torch::kFloat64);
  expect_error([&] { mantra::matrix_normal_sample(M, torch::ones({3, 2}, torch::kFloat64), B, E); }, "argument 'A' must be a square");
  expect_error([&] { mantra::matrix_normal_sample(M, A, torch::ones({2, 3}, torch::kFloat64), E); }, "argument 'B' must be a square");
  expect_error([&] { mantra::matrix_normal_sample(M, torch::eye(4, torch::kFloat64), B, E); }, "argument 'A' must be (n, n) with n = M.size(0) = 3");
  expect_error([&] { mantra::matrix_normal_sample(M, A, torch::eye(3, torch::kFloat64), E); }, "argument 'B' must be (m, m) with m = M.size(1) = 2");
  expect_error([&] { mantra::matrix_normal_sample(M, A, B, E.t()); }, "argument 'E' must have shape [3, 2]");
  expect_error([&] { mantra::matrix_normal_sample(M.to(torch::kLong), A, B, E); }, "argument 'M' must be float32 or float64");
  expect_error([&] { mantra::matrix_normal_sample(M, A.to(torch::kFloat32), B, E); }, "argument 'A' must have the dtype of 'M'");
  auto An = A.clone();
  An[1][0] = std::nan("");
  expect_error([&] { mantra::matrix_normal_sample(M, An, B, E); }, "argument 'A' contains NaN");
  expect_error([&] { mantra::matrix_normal_sample(M, A, B, E * std::nan("")); }, "argument 'E' contains NaN");
  auto Az = A.clone();
  Az[2][2] = 0.0;
  expect_error([&] { mantra::matrix_normal_sample(M, Az, B, E); }, "argument 'A' is a Cholesky factor and must have a positive diagonal");
  expect_error([&] { mantra::matrix_normal_linear(X, M, A, -B, E2); }, "argument 'B' is a Cholesky factor");
  expect_error([&] { mantra::matrix_normal_linear(X.t(), M, A, B, E2); }, "argument 'X' must be (N, n) with n = M.size(0) = 3");
  expect_error([&] { mantra::matrix_normal_linear(X, M, A, B, E); }, "argument 'E' must have shape [4, 2]");
  expect_error([&] { mantra::matrix_normal_linear(X, M, A, B, E2, torch::zeros({3}, torch::kFloat64)); }, "argument 'bias' must have shape [2]");
  expect_error([&] { mantra::matrix_normal_linear(X * std::nan(""), M, A, B, E2); }, "argument 'X' contains NaN");
}

}  // namespace
