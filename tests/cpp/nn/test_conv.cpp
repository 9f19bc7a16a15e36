// mantra::nn::Conv2d: a drop-in for torch::nn::Conv2d whose kernel's matrix view
// (out × in/groups·kh·kw) carries a constraint, and the factored weight-normalized low-rank
// forward (low_rank_coupled_conv2d) that never forms the kernel.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mantra/mantra.h>

#include "../test_util.h"

#include <sstream>

using namespace mantra;

namespace {

double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

// The dense convolution of the layer's effective kernel (the reference of the factored forward).
torch::Tensor dense_forward(nn::Conv2d& layer, const torch::Tensor& x) {
  const auto& o = layer->options;
  return torch::conv2d(x, layer->effective_weight(), layer->bias, *o.stride(), *o.padding(), *o.dilation(),
                       o.groups());
}

bool uses_rank(const std::string& c) {
  return c == "low_rank" || c == "fixed_rank" || c == "low_rank_oblique" || c == "low_rank_sphere";
}

}  // namespace

TEST(Conv2d, UnconstrainedMatchesTorchConv2d) {
  for (int64_t groups : {1, 2}) {
    torch::manual_seed(0);
    torch::nn::Conv2d reference(
        torch::nn::Conv2dOptions(4, 6, {3, 2}).stride({2, 1}).padding({1, 2}).dilation({1, 2}).groups(groups));
    torch::manual_seed(0);
    nn::Conv2d ours(
        nn::Conv2dOptions(4, 6, {3, 2}).stride({2, 1}).padding({1, 2}).dilation({1, 2}).groups(groups).constraint("none"));
    EXPECT_TRUE(torch::equal(reference->weight, ours->weight));  // same init
    EXPECT_TRUE(torch::equal(reference->bias, ours->bias));
    torch::Tensor x = torch::randn({2, 4, 9, 8});
    EXPECT_TRUE(torch::equal(reference->forward(x), ours->forward(x)));
    EXPECT_EQ(ours->named_parameters().keys(), (std::vector<std::string>{"weight", "bias"}));
  }
}

TEST(Conv2d, EveryConstraintHoldsAfterConstructionAndTraining) {
  // Square matrix views (8 × 2·2·2) for the square constraints, wide ones (6 × 3·2·3) otherwise.
  const std::vector<std::string> square{"orthogonal",       "invertible", "positive_definite",
                                        "positive_definite_cholesky", "positive_semidefinite", "symmetric",
                                        "skew"};
  const std::vector<std::string> wide{"orthogonal", "grassmannian",      "sphere",           "oblique",
                                      "low_rank",   "fixed_rank",        "almost_orthogonal", "low_rank_oblique",
                                      "low_rank_sphere"};
  torch::manual_seed(1);
  for (bool is_square : {true, false}) {
    for (const std::string& c : is_square ? square : wide) {
      const int64_t in = is_square ? 2 : 3, out = is_square ? 8 : 6;
      const std::vector<int64_t> k = is_square ? std::vector<int64_t>{2, 2} : std::vector<int64_t>{2, 3};
      nn::Conv2d layer(nn::Conv2dOptions(in, out, {k[0], k[1]}).padding(1).constraint(c).rank(uses_rank(c) ? 2 : 1));
      layer->to(torch::kFloat64);
      EXPECT_EQ(layer->weight.sizes(), (std::vector<int64_t>{out, in, k[0], k[1]})) << c;
      EXPECT_EQ(layer->constraint->check(layer->effective_weight().reshape({out, -1})), "") << c;
      auto adam = std::make_shared<torch::optim::Adam>(layer->parameters(), torch::optim::AdamOptions(0.02));
      optim::DynamicTrivialization opt(adam, *layer, 5);
      torch::Tensor x = torch::randn({4, in, 6, 5}, torch::kFloat64);
      torch::Tensor target = torch::randn_like(layer->forward(x));
      const double first = (layer->forward(x) - target).pow(2).mean().item<double>();
      for (int t = 0; t < 30; ++t) {
        parametrize::ParametrizationScope scope;
        opt.zero_grad();
        (layer->forward(x) - target).pow(2).mean().backward();
        opt.step();
      }
      torch::NoGradGuard no_grad;
      torch::Tensor W = layer->effective_weight().reshape({out, -1});
      EXPECT_EQ(layer->constraint->check(W), "") << c;
      // The attached tensor holds the kernel after the step's refresh.
      EXPECT_LT(max_abs(layer->weight - layer->effective_weight()), 1e-12) << c;
      EXPECT_LT((layer->forward(x) - target).pow(2).mean().item<double>(), first) << c;  // it trained
      EXPECT_LT(max_abs(layer->forward(x) - dense_forward(layer, x)), 1e-12) << c;
    }
  }
}

TEST(Conv2d, FactoredForwardEqualsDenseConvolution) {
  torch::manual_seed(2);
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    const double tol = dtype == torch::kFloat64 ? 1e-12 : 1e-5;
    for (const char* c : {"low_rank_oblique", "low_rank_sphere"}) {
      for (int64_t groups : {1, 2}) {
        for (const char* s : {"none", "isotropic", "per_row"}) {
          nn::Conv2d layer(nn::Conv2dOptions(4, 6, {3, 3})
                               .stride({2, 1})
                               .padding({1, 0})
                               .dilation({1, 2})
                               .groups(groups)
                               .constraint(c)
                               .rank(3)
                               .scale(s));
          layer->to(dtype);
          {
            torch::NoGradGuard ng;
            if (layer->scale.defined()) layer->scale.copy_(torch::rand_like(layer->scale) + 0.5);
          }
          torch::Tensor x = torch::randn({3, 4, 9, 10}, dtype);
          torch::Tensor y = layer->forward(x);
          EXPECT_EQ(y.sizes(), dense_forward(layer, x).sizes());
          EXPECT_LT(max_abs(y - dense_forward(layer, x)), tol) << c << " groups " << groups << " scale " << s;
          // Rank ≤ 3 and unit rows (oblique) of the composed kernel's matrix view.
          torch::Tensor X = layer->constraint->forward().detach().to(torch::kFloat64);
          EXPECT_LT(torch::linalg_svdvals(X)[3].item<double>(), tol);
          if (std::string(c) == "low_rank_oblique") {
            EXPECT_LT(max_abs(X.pow(2).sum(1) - 1), tol);
          }
        }
      }
    }
  }
}

TEST(Conv2d, FactoredGradientsEqualDenseGradients) {
  torch::manual_seed(3);
  nn::Conv2d layer(nn::Conv2dOptions(3, 5, {2, 3}).padding(1).constraint("low_rank_oblique").rank(2).scale("per_row"));
  layer->to(torch::kFloat64);
  {
    torch::NoGradGuard ng;
    layer->scale.copy_(torch::rand_like(layer->scale) + 0.5);
    for (auto& p : layer->parameters()) p.add_(0.1 * torch::randn_like(p));  // v ≠ 0: away from the base
  }
  torch::Tensor x = torch::randn({2, 3, 6, 7}, torch::kFloat64);
  torch::Tensor w = torch::randn_like(layer->forward(x));
  auto gradients = [&](bool factored) {
    layer->zero_grad();
    torch::Tensor y = factored ? layer->forward(x) : dense_forward(layer, x);
    (y * w).sum().backward();
    std::vector<torch::Tensor> g;
    for (auto& p : layer->parameters()) g.push_back(p.grad().clone());
    return g;
  };
  auto a = gradients(true), b = gradients(false);
  ASSERT_EQ(a.size(), 3u);  // bias, scale and the chart v (the base is a buffer)
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_LT(max_abs(a[i] - b[i]), 1e-12 * std::max(1.0, max_abs(b[i]))) << i;
    EXPECT_GT(max_abs(a[i]), 0.0) << i;
  }
}

TEST(Conv2d, SaveLoadRoundTrip) {
  torch::manual_seed(4);
  for (const char* c : {"none", "orthogonal", "low_rank", "low_rank_oblique"}) {
    auto options = [&] {
      return nn::Conv2dOptions(3, 4, {3, 3}).padding(1).constraint(c).rank(uses_rank(c) ? 2 : 1).scale("per_row");
    };
    nn::Conv2d a(options());
    for (auto& p : a->parameters()) {
      torch::NoGradGuard ng;
      p.add_(torch::randn_like(p) * 0.1);
    }
    std::stringstream buffer;
    torch::save(a, buffer);
    nn::Conv2d b(options());
    torch::load(b, buffer);
    torch::Tensor x = torch::randn({2, 3, 5, 5});
    EXPECT_TRUE(torch::equal(a->forward(x), b->forward(x))) << c;
  }
}

TEST(Conv2d, BadOptionsAreClearErrors) {
  using mantra::test::expect_error;
  expect_error([] { nn::Conv2d(nn::Conv2dOptions(3, 4, {0, 3})); }, "argument 'kernel_size' must be two ints >= 1");
  expect_error([] { nn::Conv2d(nn::Conv2dOptions(3, 4, 3).stride(0)); }, "argument 'stride'");
  expect_error([] { nn::Conv2d(nn::Conv2dOptions(3, 4, 3).padding(-1)); }, "argument 'padding'");
  expect_error([] { nn::Conv2d(nn::Conv2dOptions(3, 4, 3).dilation(0)); }, "argument 'dilation'");
  expect_error([] { nn::Conv2d(nn::Conv2dOptions(3, 4, 3).groups(2)); }, "argument 'groups' must be >= 1 and divide");
  expect_error([] { nn::Conv2d(nn::Conv2dOptions(0, 4, 3)); }, "must be positive");
  expect_error([] { nn::Conv2d(nn::Conv2dOptions(3, 4, 3).constraint("unitary")); }, "argument 'constraint' must be");
  expect_error([] { nn::Conv2d(nn::Conv2dOptions(3, 4, 3).scale("columns")); }, "argument 'scale'");
  // The matrix view is 4 × 27: rank ≤ 4.
  expect_error([] { nn::Conv2d(nn::Conv2dOptions(3, 4, 3).constraint("low_rank_oblique").rank(5)); },
               "low_rank_oblique: argument 'rank' must be in [1, min(m, n) = 4]");
  expect_error([] { nn::Conv2d(nn::Conv2dOptions(3, 4, 3).constraint("sphere").rank(2)); },
               "mantra::nn::Conv2d: argument 'rank' has no effect with constraint 'sphere'");
  // The op checks its input against the manifold.
  manifolds::LowRankOblique M(4, 27, 2);
  torch::Tensor P = M.random({31, 2});
  expect_error([&] { nn::low_rank_coupled_conv2d(torch::randn({1, 2, 5, 5}), M, P, {3, 3}, {1, 1}, {0, 0}, {1, 1}, 1, {}, {}); },
               "low_rank_coupled_conv2d: argument 'input' must be (N, C, H, W) or (C, H, W) with C/groups·kh·kw = 27");
  expect_error([&] { nn::low_rank_coupled_conv2d(torch::randn({1, 3, 5, 5}), manifolds::Sphere(), P, {3, 3}, {1, 1},
                                                 {0, 0}, {1, 1}, 1, {}, {}); },
               "low_rank_coupled_conv2d");
}
