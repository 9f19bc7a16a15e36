// Jacobian spectrum and Fisher eigenvalue against dense linear algebra (float64).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mantra/diagnostics/critical_init.h"
#include "mantra/diagnostics/spectrum.h"
#include "mantra/nn/linear.h"
#include "../test_util.h"

namespace dg = mantra::diagnostics;
using mantra::test::expect_error;

namespace {

const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);

torch::Tensor orthogonal(int64_t n, uint64_t seed) {
  torch::Tensor W = torch::empty({n, n}, f64);
  auto gen = at::detail::createCPUGenerator(seed);
  dg::orthogonal_init_(W, 1.0, gen);
  return W;
}

// A tiny tanh MLP 3 -> 4 -> 3 with its parameters (float64).
struct TinyNet {
  torch::Tensor W1, b1, W2, b2;
  TinyNet() {
    torch::manual_seed(3);
    W1 = torch::randn({4, 3}, f64).requires_grad_(true);
    b1 = (0.3 * torch::randn({4}, f64)).requires_grad_(true);
    W2 = torch::randn({3, 4}, f64).requires_grad_(true);
    b2 = (0.3 * torch::randn({3}, f64)).requires_grad_(true);
  }
  std::vector<torch::Tensor> params() const { return {W1, b1, W2, b2}; }
  dg::Function fn() const {
    return [this](const torch::Tensor& x) { return torch::linear(torch::tanh(torch::linear(x, W1, b1)), W2, b2); };
  }
};

// Dense G = (1/N) Σ_i J_iᵀ H_i J_i from per-sample parameter Jacobians built entry by entry.
torch::Tensor dense_fisher(const dg::Function& f, const std::vector<torch::Tensor>& params, const torch::Tensor& data,
                           bool cross_entropy) {
  int64_t P = 0;
  for (auto& p : params) P += p.numel();
  torch::Tensor G = torch::zeros({P, P}, f64);
  for (int64_t i = 0; i < data.size(0); ++i) {
    torch::Tensor z = f(data.slice(0, i, i + 1)).squeeze(0);
    std::vector<torch::Tensor> rows;
    for (int64_t k = 0; k < z.size(0); ++k) {
      auto gs = torch::autograd::grad({z[k]}, params, {}, true, false, true);
      std::vector<torch::Tensor> flat;
      for (size_t j = 0; j < gs.size(); ++j) flat.push_back(gs[j].defined() ? gs[j].reshape(-1) : torch::zeros({params[j].numel()}, f64));
      rows.push_back(torch::cat(flat));
    }
    torch::Tensor J = torch::stack(rows);  // (k, P)
    torch::Tensor H = torch::eye(z.size(0), f64);
    if (cross_entropy) {
      torch::Tensor p = torch::softmax(z.detach(), 0);
      H = torch::diag(p) - torch::outer(p, p);
    }
    G += J.t().mm(H).mm(J);
  }
  return G / static_cast<double>(data.size(0));
}

}  // namespace

TEST(JacobianSpectrum, OrthogonalLinearNetworkHasUnitSingularValues) {
  std::vector<torch::Tensor> Ws = {orthogonal(6, 1), orthogonal(6, 2), orthogonal(6, 3)};
  dg::Function f = [&](const torch::Tensor& x) {
    torch::Tensor h = x;
    for (auto& W : Ws) h = torch::linear(h, W);
    return h;
  };
  torch::manual_seed(0);
  torch::Tensor x = torch::randn({4, 6}, f64);
  dg::JacobianSpectrumOptions o;
  o.tolerance = 1e-12;
  dg::JacobianSpectrum s = dg::jacobian_spectrum(f, x, o);
  EXPECT_TRUE(s.converged);
  EXPECT_NEAR((s.s_max - 1).abs().max().item<double>(), 0, 1e-12);
  // Hutchinson is exact for an orthogonal J (‖Jr‖² = ‖r‖² = n for every Rademacher r).
  EXPECT_NEAR((s.chi - 1).abs().max().item<double>(), 0, 1e-12);
  o.full_spectrum = true;
  dg::JacobianSpectrum full = dg::jacobian_spectrum(f, x, o);
  EXPECT_NEAR((full.singular_values - 1).abs().max().item<double>(), 0, 1e-12);
  EXPECT_NEAR((full.chi - 1).abs().max().item<double>(), 0, 1e-12);
}

TEST(JacobianSpectrum, DiagonalNetworkSmaxIsTheLargestProduct) {
  torch::Tensor d1 = torch::tensor({0.5, -2.0, 1.5, 0.1}, f64), d2 = torch::tensor({3.0, 1.0, -0.4, 2.0}, f64),
                d3 = torch::tensor({1.0, 0.7, 2.0, -1.0}, f64);
  dg::Function f = [&](const torch::Tensor& x) { return x * d1 * d2 * d3; };
  // |products| = 1.5, 1.4, 1.2, 0.2: s_max = 1.5, χ = mean of squares.
  torch::Tensor x = torch::ones({2, 4}, f64);
  dg::JacobianSpectrumOptions o;
  o.tolerance = 1e-13;
  o.max_iterations = 2000;
  o.full_spectrum = true;
  dg::JacobianSpectrum s = dg::jacobian_spectrum(f, x, o);
  EXPECT_TRUE(s.converged) << s.residual;
  EXPECT_NEAR(s.s_max[0].item<double>(), 1.5, 1e-10);
  EXPECT_NEAR(s.s_max[1].item<double>(), 1.5, 1e-10);
  const double chi = (1.5 * 1.5 + 1.4 * 1.4 + 1.2 * 1.2 + 0.2 * 0.2) / 4;
  EXPECT_NEAR(s.chi[0].item<double>(), chi, 1e-12);
  EXPECT_NEAR(s.singular_values[0][3].item<double>(), 0.2, 1e-12);
}

TEST(JacobianSpectrum, TanhLayerMatchesTheAnalyticJacobian) {
  torch::manual_seed(1);
  torch::Tensor W = torch::randn({5, 3}, f64), b = torch::randn({5}, f64);  // a tall layer: m = 5, n = 3
  dg::Function f = [&](const torch::Tensor& x) { return torch::tanh(torch::linear(x, W, b)); };
  torch::Tensor x = torch::randn({3, 3}, f64);
  torch::Tensor J = dg::jacobian(f, x);
  ASSERT_EQ(J.sizes(), (c10::IntArrayRef{3, 5, 3}));
  for (int64_t i = 0; i < 3; ++i) {
    torch::Tensor t = torch::tanh(torch::mv(W, x[i]) + b);
    torch::Tensor expect = (1 - t * t).unsqueeze(1) * W;
    EXPECT_NEAR((J[i] - expect).abs().max().item<double>(), 0, 1e-14);
  }
  dg::JacobianSpectrumOptions o;
  o.tolerance = 1e-12;
  o.max_iterations = 5000;
  o.chi_probes = 4000;
  dg::JacobianSpectrum s = dg::jacobian_spectrum(f, x, o);
  torch::Tensor sv = torch::linalg_svdvals(J);
  EXPECT_NEAR((s.s_max - sv.select(1, 0)).abs().max().item<double>(), 0, 1e-9);
  // Hutchinson χ with 4000 probes: within 5 standard errors of the exact ‖J‖²_F / 3.
  torch::Tensor exact = J.pow(2).sum({1, 2}) / 3;
  EXPECT_TRUE(((s.chi - exact).abs() <= 5 * s.chi_stderr + 1e-12).all().item<bool>());
  EXPECT_LT((s.chi_stderr / exact).max().item<double>(), 0.03);
  // Deterministic in the seed.
  dg::JacobianSpectrum again = dg::jacobian_spectrum(f, x, o);
  EXPECT_TRUE(torch::equal(s.chi, again.chi));
  EXPECT_EQ(s.iterations, again.iterations);
}

TEST(JacobianSpectrum, Float32WithinRounding) {
  torch::Tensor W = orthogonal(8, 5).to(torch::kFloat32);
  dg::Function f = [&](const torch::Tensor& x) { return torch::linear(torch::linear(x, W), W); };
  dg::JacobianSpectrumOptions o;
  o.tolerance = 1e-5;
  dg::JacobianSpectrum s = dg::jacobian_spectrum(f, torch::randn({2, 8}), o);
  EXPECT_EQ(s.s_max.scalar_type(), torch::kFloat32);
  EXPECT_NEAR((s.s_max - 1).abs().max().item<double>(), 0, 1e-5);
}

TEST(Fisher, VectorProductEqualsTheDenseProduct) {
  TinyNet net;
  torch::manual_seed(7);
  torch::Tensor data = torch::randn({5, 3}, f64);
  for (std::string loss : {"mse", "cross_entropy"}) {
    torch::Tensor G = dense_fisher(net.fn(), net.params(), data, loss == "cross_entropy");
    torch::Tensor Gf = dg::fisher_matrix(net.fn(), net.params(), loss, data);
    EXPECT_NEAR((Gf - G).abs().max().item<double>(), 0, 1e-12 * G.abs().max().item<double>()) << loss;
    std::vector<torch::Tensor> v;
    for (auto& p : net.params()) v.push_back(torch::randn_like(p));
    auto Gv = dg::fisher_vector_product(net.fn(), net.params(), loss, data, v);
    std::vector<torch::Tensor> flat, gflat;
    for (size_t i = 0; i < v.size(); ++i) {
      flat.push_back(v[i].reshape(-1));
      gflat.push_back(Gv[i].reshape(-1));
    }
    torch::Tensor expect = torch::mv(G, torch::cat(flat));
    EXPECT_NEAR((torch::cat(gflat) - expect).abs().max().item<double>(), 0, 1e-12 * expect.abs().max().item<double>()) << loss;
  }
}

TEST(Fisher, PowerIterationEqualsTheDenseEigenvalue) {
  TinyNet net;
  torch::manual_seed(8);
  torch::Tensor data = torch::randn({6, 3}, f64);
  for (std::string loss : {"mse", "cross_entropy"}) {
    torch::Tensor G = dense_fisher(net.fn(), net.params(), data, loss == "cross_entropy");
    const double dense = torch::linalg_eigvalsh(G).max().item<double>();
    dg::PowerIterationOptions o;
    o.tolerance = 1e-10;
    o.max_iterations = 20000;
    dg::FisherEigen e = dg::fisher_max_eigenvalue(net.fn(), net.params(), loss, data, o);
    EXPECT_TRUE(e.converged) << loss << " residual " << e.residual;
    // Tolerance: residual·λ bounds the distance to an eigenvalue (Bauer–Fike); we ask 1e-9 relative.
    EXPECT_NEAR(e.lambda_max, dense, 1e-9 * dense) << loss;
    // Same seed, same answer.
    EXPECT_EQ(dg::fisher_max_eigenvalue(net.fn(), net.params(), loss, data, o).lambda_max, e.lambda_max);

    // Blocks: (W1, b1) and (W2, b2); λ_l are the dense blocks' eigenvalues and bracket λ_max.
    dg::FisherBlockBound bb = dg::fisher_block_bound(net.fn(), {{net.W1, net.b1}, {net.W2, net.b2}}, loss, data, o);
    ASSERT_EQ(bb.block_lambda_max.size(), 2u);
    const int64_t p1 = net.W1.numel() + net.b1.numel();
    const double l1 = torch::linalg_eigvalsh(G.slice(0, 0, p1).slice(1, 0, p1)).max().item<double>();
    const double l2 = torch::linalg_eigvalsh(G.slice(0, p1).slice(1, p1)).max().item<double>();
    EXPECT_NEAR(bb.block_lambda_max[0], l1, 1e-8 * l1) << loss;
    EXPECT_NEAR(bb.block_lambda_max[1], l2, 1e-8 * l2) << loss;
    EXPECT_LE(bb.lower, dense * (1 + 1e-9));
    EXPECT_GE(bb.upper, dense * (1 - 1e-9));
    EXPECT_NEAR(bb.sum, l1 + l2, 1e-8 * (l1 + l2));
  }
}

TEST(Diagnostics, BadInputNamesTheArgument) {
  TinyNet net;
  torch::Tensor data = torch::randn({5, 3}, f64);
  expect_error([&] { dg::fisher_max_eigenvalue(net.fn(), {}, "mse", data); }, "'parameters'");
  expect_error([&] { dg::fisher_max_eigenvalue(net.fn(), net.params(), "hinge", data); }, "'loss'");
  expect_error([&] { dg::fisher_max_eigenvalue(net.fn(), net.params(), "mse", torch::randn({3}, f64)); }, "'data'");
  expect_error([&] { dg::fisher_max_eigenvalue(net.fn(), net.params(), "mse", torch::randn({0, 3}, f64)); }, "'data'");
  dg::Function scalar_out = [&](const torch::Tensor& x) { return net.fn()(x).sum(); };
  expect_error([&] { dg::fisher_max_eigenvalue(scalar_out, net.params(), "mse", data); }, "(N, k)");
  expect_error([&] { dg::jacobian_spectrum(net.fn(), torch::randn({3}, f64)); }, "'x'");
  expect_error([&] { dg::jacobian_spectrum(net.fn(), torch::ones({2, 3}, torch::kInt64)); }, "'x'");
  dg::PowerIterationOptions bad;
  bad.max_iterations = 0;
  expect_error([&] { dg::fisher_max_eigenvalue(net.fn(), net.params(), "mse", data, bad); }, "'max_iterations'");
  std::vector<torch::Tensor> wrong = {torch::zeros({1}, f64)};
  expect_error([&] { dg::fisher_vector_product(net.fn(), net.params(), "mse", data, wrong); }, "'v'");
}

TEST(Diagnostics, ConstrainedLinearLayers) {
  // mantra::nn::Linear with an orthogonal constraint (expm trivialization): the linear stack is
  // an isometry, and the Fisher in the trainable tensors matches the dense one.
  torch::manual_seed(4);
  mantra::nn::Linear l1(mantra::nn::LinearOptions(5, 5).bias(false)), l2(mantra::nn::LinearOptions(5, 5));
  l1->to(torch::kFloat64);
  l2->to(torch::kFloat64);
  dg::Function linear_stack = [&](const torch::Tensor& x) { return l2(l1(x)) - l2->bias; };
  dg::JacobianSpectrumOptions o;
  o.tolerance = 1e-12;
  dg::JacobianSpectrum s = dg::jacobian_spectrum(linear_stack, torch::randn({3, 5}, f64), o);
  EXPECT_NEAR((s.s_max - 1).abs().max().item<double>(), 0, 1e-10);
  // The Fisher differentiates the backward pass once more (the double-backward JVP): both the
  // Cayley and the expm trivializations (expm's backward is differentiable) are.
  for (const char* triv : {"cayley", "expm"}) {
    mantra::nn::Linear c1(mantra::nn::LinearOptions(5, 5).bias(false).triv(triv)), c2(mantra::nn::LinearOptions(5, 5).triv(triv));
    c1->to(torch::kFloat64);
    c2->to(torch::kFloat64);
    l1 = c1;
    l2 = c2;
    dg::Function net = [&](const torch::Tensor& x) { return l2(torch::tanh(l1(x))); };
    std::vector<torch::Tensor> params;
    for (auto& p : l1->parameters()) params.push_back(p);
    for (auto& p : l2->parameters()) params.push_back(p);
    torch::Tensor data = torch::randn({4, 5}, f64);
    torch::Tensor G = dense_fisher(net, params, data, true);
    torch::Tensor Gf = dg::fisher_matrix(net, params, "cross_entropy", data);
    EXPECT_NEAR((Gf - G).abs().max().item<double>(), 0, 1e-11 * G.abs().max().item<double>()) << triv;
  }
}

TEST(JacobianSpectrum, BatchedJacobianOverSeveralPasses) {
  // B = 3 rows and m = 700 outputs: 341 output rows per backward pass, three passes.
  torch::manual_seed(2);
  torch::Tensor W = torch::randn({700, 4}, f64), b = torch::randn({700}, f64);
  dg::Function f = [&](const torch::Tensor& x) { return torch::tanh(torch::linear(x, W, b)); };
  torch::Tensor x = torch::randn({3, 4}, f64);
  torch::Tensor J = dg::jacobian(f, x);
  for (int64_t i = 0; i < 3; ++i) {
    torch::Tensor t = torch::tanh(torch::mv(W, x[i]) + b);
    EXPECT_NEAR((J[i] - (1 - t * t).unsqueeze(1) * W).abs().max().item<double>(), 0, 1e-14);
  }
}
