// mantra::nn::Linear: a drop-in for torch::nn::Linear with a constrained, optionally scaled
// weight and an orthogonality penalty.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mantra/mantra.h>

#include "../test_util.h"

#include <sstream>

using namespace mantra;

TEST(Linear, UnconstrainedMatchesTorchLinear) {
  torch::manual_seed(0);
  torch::nn::Linear reference(torch::nn::LinearOptions(6, 4));
  torch::manual_seed(0);
  nn::Linear ours(nn::LinearOptions(6, 4).constraint("none"));
  torch::Tensor x = torch::randn({3, 6});
  EXPECT_TRUE(torch::equal(reference->forward(x), ours->forward(x)));  // same init, same forward
  EXPECT_EQ(ours->named_parameters().keys(), (std::vector<std::string>{"weight", "bias"}));
}

TEST(Linear, OrthogonalWeightEveryTrivialization) {
  torch::manual_seed(1);
  for (const char* triv : {"expm", "cayley", "qr", "polar", "householder"}) {
    for (auto [in, out] : {std::pair{8, 8}, std::pair{8, 3}, std::pair{3, 8}}) {
      nn::Linear layer(nn::LinearOptions(in, out).triv(triv));
      layer->to(torch::kFloat64);
      torch::Tensor W = layer->effective_weight().detach();
      torch::Tensor G = out <= in ? torch::matmul(W, W.t()) : torch::matmul(W.t(), W);
      EXPECT_LT((G - torch::eye(G.size(0), torch::kFloat64)).abs().max().item<double>(), 1e-12) << triv;
      if (in == out) EXPECT_NEAR(torch::linalg_det(W).item<double>(), 1.0, 1e-12);  // SO(n)
      torch::Tensor x = torch::randn({5, in}, torch::kFloat64);
      EXPECT_LT((layer->forward(x) - (torch::matmul(x, W.t()) + layer->bias)).abs().max().item<double>(), 1e-13);
    }
  }
}

TEST(Linear, ScaledWeightsLearnTheirScale) {
  torch::manual_seed(2);
  // Target: 3·Q for a rotation Q; a per-row scale must reach 3 on every row.
  torch::Tensor Q = manifolds::Stiefel(manifolds::StiefelOptions().set_special(true)).random({4, 4}, torch::kFloat64);
  for (const char* scale : {"isotropic", "per_row"}) {
    nn::Linear layer(nn::LinearOptions(4, 4).bias(false).scale(scale));
    layer->to(torch::kFloat64);
    auto adam = std::make_shared<torch::optim::Adam>(layer->parameters(), torch::optim::AdamOptions(0.05));
    optim::DynamicTrivialization opt(adam, *layer, 10);
    for (int t = 0; t < 1500; ++t) {
      parametrize::ParametrizationScope scope;
      opt.zero_grad();
      torch::Tensor x = torch::randn({32, 4}, torch::kFloat64);
      (layer->forward(x) - 3 * torch::matmul(x, Q.t())).pow(2).mean().backward();
      opt.step();
    }
    EXPECT_LT((layer->scale - 3).abs().max().item<double>(), 1e-3) << scale;
    EXPECT_LT((layer->effective_weight() - 3 * Q).abs().max().item<double>(), 1e-3) << scale;
  }
}

TEST(Linear, OrthogonalityPenalty) {
  nn::Linear layer(nn::LinearOptions(3, 5).constraint("none").bias(false).orthogonality_penalty(0.5));
  layer->to(torch::kFloat64);
  {
    torch::NoGradGuard ng;
    layer->weight.copy_(2 * torch::eye(5, 3, torch::kFloat64));
  }
  // WᵀW = 4·I₃: 0.5/2 · 3 · (4 − 1)² = 6.75.
  EXPECT_NEAR(layer->penalty().item<double>(), 6.75, 1e-12);
  nn::Linear orth(nn::LinearOptions(3, 5).orthogonality_penalty(0.5));
  EXPECT_LT(orth->penalty().item<double>(), 1e-10);
}

TEST(Linear, SaveLoadAndOtherConstraints) {
  torch::manual_seed(3);
  for (const char* c : {"low_rank", "fixed_rank", "almost_orthogonal", "sphere", "oblique", "grassmannian"}) {
    const bool ranked = std::string(c) == "low_rank" || std::string(c) == "fixed_rank";
    nn::Linear a(nn::LinearOptions(6, 5).constraint(c).rank(ranked ? 2 : 1));
    for (auto& p : a->parameters()) {
      torch::NoGradGuard ng;
      p.add_(torch::randn_like(p) * 0.1);
    }
    std::stringstream buffer;
    torch::save(a, buffer);
    nn::Linear b(nn::LinearOptions(6, 5).constraint(c).rank(ranked ? 2 : 1));
    torch::load(b, buffer);
    torch::Tensor x = torch::randn({2, 6});
    EXPECT_TRUE(torch::equal(a->forward(x), b->forward(x))) << c;
  }
}

TEST(Linear, BadOptionsAreClearErrors) {
  using mantra::test::expect_error;
  expect_error([] { nn::Linear(nn::LinearOptions(3, 3).constraint("unitary")); }, "argument 'constraint' must be");
  expect_error([] { nn::Linear(nn::LinearOptions(3, 3).scale("columns")); }, "argument 'scale'");
  expect_error([] { nn::Linear(nn::LinearOptions(0, 3)); }, "must be positive");
  expect_error([] { nn::Linear(nn::LinearOptions(3, 4).constraint("low_rank").rank(5)); }, "argument 'rank'");
  // Options the constraint does not use are refused, not ignored.
  expect_error([] { nn::Linear(nn::LinearOptions(3, 3).constraint("sphere").triv("foo")); },
               "argument 'triv' has no effect with constraint 'sphere'");
  expect_error([] { nn::Linear(nn::LinearOptions(3, 3).constraint("sphere").rank(-5)); },
               "argument 'rank' has no effect with constraint 'sphere' (it must stay 1), got -5");
  expect_error([] { nn::Linear(nn::LinearOptions(3, 3).constraint("orthogonal").lambda(0.5)); },
               "argument 'lambda' has no effect with constraint 'orthogonal'");
}
