// The coupled low-rank constraints of the C++ frontend (issue 13): low_rank_oblique,
// low_rank_sphere, low_rank_stacked_stiefel on torch::nn modules, and the weight-normalized
// low-rank option of mantra::nn::Linear (W = diag(g)·X, X ∈ low_rank_oblique(r)).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mantra/mantra.h>

#include "../test_util.h"

namespace pz = mantra::parametrize;
using mantra::manifolds::LowRankOblique;

namespace {
double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }
}  // namespace

TEST(CoupledLowRank, ValuesAreFeasibleAssignableAndRebaseKeepsThem) {
  torch::manual_seed(41);
  torch::nn::Linear a(torch::nn::LinearOptions(7, 6));
  a->to(torch::kFloat64);
  auto c = pz::low_rank_oblique(*a, "weight", 2);
  EXPECT_EQ(c->v.sizes(), torch::IntArrayRef({13, 2}));
  torch::Tensor W = c->forward().detach();
  EXPECT_EQ(W.sizes(), torch::IntArrayRef({6, 7}));
  EXPECT_LT(max_abs(W.norm(2, 1) - 1), 1e-12);
  EXPECT_LT(torch::linalg_svdvals(W).slice(0, 2).max().item<double>(), 1e-12);
  // set() of a point of the set keeps it; anything else is refused naming the reason.
  LowRankOblique M(6, 7, 2);
  torch::Tensor X = M.compose(M.random({13, 2}, torch::kFloat64));
  c->set(X);
  EXPECT_LT(max_abs(c->forward() - X), 1e-12);
  mantra::test::expect_error([&] { c->set(torch::randn({6, 7}, torch::kFloat64)); }, "rank exceeds 2");
  // A rebase moves the base, not the weight.
  {
    torch::NoGradGuard no_grad;
    c->v.add_(0.2 * torch::randn({13, 2}, torch::kFloat64));
  }
  torch::Tensor before = c->forward().detach().clone();
  c->rebase();
  EXPECT_LT(max_abs(c->forward() - before), 1e-10);
  EXPECT_EQ(M.check_point(c->base, 1e-12), "");
}

TEST(CoupledLowRank, SphereAndStackedStiefelValues) {
  torch::manual_seed(42);
  torch::nn::Linear a(torch::nn::LinearOptions(5, 8));
  a->to(torch::kFloat64);
  auto s = pz::low_rank_sphere(*a, "weight", 1, "expm");
  EXPECT_NEAR(s->forward().norm().item<double>(), 1.0, 1e-12);
  torch::nn::Linear b(torch::nn::LinearOptions(5, 6));
  b->to(torch::kFloat64);
  auto st = pz::low_rank_stacked_stiefel(*b, "weight", 3, 2, "qr");
  torch::Tensor W = st->forward();
  for (int j = 0; j < 3; ++j) {
    torch::Tensor B = W.narrow(0, 2 * j, 2);
    EXPECT_LT(max_abs(torch::matmul(B, B.t()) - torch::eye(2, torch::kFloat64)), 1e-12);
  }
}

TEST(CoupledLowRank, ErrorsNameTheArgument) {
  using mantra::test::expect_error;
  torch::nn::Linear a(torch::nn::LinearOptions(5, 7));
  expect_error([&] { pz::low_rank_oblique(*a, "weight", 6); }, "low_rank_oblique: argument 'rank' must be in [1, min(m, n) = 5]");
  expect_error([&] { pz::low_rank_stacked_stiefel(*a, "weight", 3, 2); }, "argument 'p'");
  expect_error([&] { pz::low_rank_stacked_stiefel(*a, "weight", 1, 7); }, "not satisfiable");
  expect_error([&] { pz::low_rank_sphere(*a, "weight", 2, "cayley"); }, "argument 'triv' must be one of polar, qr, expm");
  expect_error([&] { pz::low_rank_sphere(*a, "bias", 2); }, "at least 2 dimensions");
}

TEST(CoupledLowRank, DynamicTrivializationFitsAMatrixOfTheSet) {
  torch::manual_seed(43);
  LowRankOblique M(10, 8, 2);
  const torch::Tensor A = M.compose(M.random({18, 2}, torch::kFloat64));
  mantra::nn::Linear layer(mantra::nn::LinearOptions(8, 10).constraint("low_rank_oblique").rank(2));
  layer->to(torch::kFloat64);
  auto adam = std::make_shared<torch::optim::Adam>(layer->parameters(), torch::optim::AdamOptions(0.02));
  mantra::optim::DynamicTrivialization opt(adam, *layer, 1);
  for (int i = 0; i < 1500; ++i) {
    opt.zero_grad();
    (0.5 * (layer->effective_weight() - A).pow(2).sum()).backward();
    opt.step();
  }
  EXPECT_LT((layer->effective_weight() - A).norm().item<double>(), 1e-4);
}

TEST(WeightNormalizedLowRankLinear, FactoredForwardIsTheDenseOne) {
  torch::manual_seed(44);
  mantra::nn::Linear layer(mantra::nn::LinearOptions(20, 12).constraint("low_rank_oblique").rank(3).scale("per_row"));
  layer->to(torch::kFloat64);
  {
    torch::NoGradGuard no_grad;
    layer->scale.copy_(torch::rand({12, 1}, torch::kFloat64) + 0.5);
  }
  torch::Tensor W = layer->effective_weight();
  EXPECT_LT(max_abs(W.norm(2, 1, true) - layer->scale), 1e-12);  // row norms are g
  EXPECT_EQ(torch::linalg_matrix_rank(W.detach()).item<int64_t>(), 3);
  torch::Tensor x = torch::randn({5, 20}, torch::kFloat64);
  EXPECT_LT(max_abs(layer->forward(x) - torch::nn::functional::linear(x, W, layer->bias)), 1e-12);
  int64_t count = 0;
  for (const auto& p : layer->parameters()) count += p.numel();
  EXPECT_EQ(count, (12 + 20) * 3 + 12 + 12);  // factors, g, bias
  layer->forward(x).pow(2).sum().backward();
  EXPECT_GT(layer->scale.grad().abs().sum().item<double>(), 0);
  mantra::test::expect_error([] { mantra::nn::Linear(mantra::nn::LinearOptions(4, 3).constraint("oblique").rank(2)); },
                             "argument 'rank' has no effect");
}
