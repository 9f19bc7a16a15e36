// Dynamic trivialization over Adam reaches the known optima at K = 1, 100 and ∞, keeps
// points on the manifold, and rebases on schedule.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mantra/mantra.h>

#include "known_optima.h"

#include <sstream>

using namespace mantra;
using mantra::parametrize::Parametrization;

namespace {

struct DtrivRun {
  double final_loss;
  std::string off_manifold;
};

// Adam on v with an exponentially decaying learning rate, DTRIV-K on top.
DtrivRun run_dtriv(const optima::Problem& problem, int64_t K, int64_t steps) {
  torch::manual_seed(7);
  auto holder = std::make_shared<torch::nn::Module>();
  std::shared_ptr<parametrize::ConstraintImpl> p =
      problem.constraint ? problem.constraint()
                         : Parametrization(problem.manifold, problem.shape,
                                           parametrize::ParametrizationOptions().retraction(problem.retraction),
                                           torch::kFloat64)
                               .ptr();
  holder->register_module("p", p);
  const double lr0 = 0.05 * problem.lr_scale;
  auto adam = std::make_shared<torch::optim::Adam>(holder->parameters(), torch::optim::AdamOptions(lr0));
  optim::DynamicTrivialization opt(adam, *holder, K);
  for (int64_t t = 0; t < steps; ++t) {
    for (auto& group : adam->param_groups()) {
      static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr0 * std::pow(0.9975, t));
    }
    opt.zero_grad();
    problem.loss(p->forward()).backward();
    opt.step();
  }
  torch::NoGradGuard ng;
  torch::Tensor X = p->forward();
  return {problem.loss(X).item<double>(), problem.manifold->check_point(X, 1e-10)};
}

}  // namespace

class DtrivKnownOptima : public ::testing::TestWithParam<std::tuple<int, int64_t>> {};

TEST_P(DtrivKnownOptima, ReachesTheOptimum) {
  const auto problems = optima::known_optima();
  const auto& problem = problems[std::get<0>(GetParam())];
  const int64_t K = std::get<1>(GetParam());
  const DtrivRun run = run_dtriv(problem, K, 3000);
  EXPECT_EQ(run.off_manifold, "") << problem.name;
  // Stated tolerance: 1e-6 relative to the optimum's scale.
  EXPECT_NEAR(run.final_loss, problem.optimum, 1e-6 * std::max(1.0, std::abs(problem.optimum)))
      << problem.name << " K=" << K;
}

INSTANTIATE_TEST_SUITE_P(AdamK, DtrivKnownOptima,
                         ::testing::Combine(::testing::Range(0, static_cast<int>(optima::known_optima().size())), ::testing::Values<int64_t>(1, 100, 0)),
                         [](const auto& info) {
                           return optima::known_optima()[std::get<0>(info.param)].name + "_K" +
                                  std::to_string(std::get<1>(info.param));
                         });

TEST(DynamicTrivialization, RebasesEveryKSteps) {
  torch::manual_seed(8);
  auto holder = std::make_shared<torch::nn::Module>();
  Parametrization p(std::make_shared<manifolds::Stiefel>(), {5, 2}, {}, torch::kFloat64);
  holder->register_module("p", p.ptr());
  auto sgd = std::make_shared<torch::optim::SGD>(holder->parameters(), torch::optim::SGDOptions(0.1));
  optim::DynamicTrivialization opt(sgd, *holder, 3);
  for (int t = 1; t <= 7; ++t) {
    opt.zero_grad();
    p->forward().sum().backward();
    opt.step();
    EXPECT_EQ(p->rebase_count(), t / 3);
    EXPECT_EQ(p->v.abs().max().item<double>() == 0.0, t % 3 == 0) << t;
  }
}

TEST(DynamicTrivialization, KEqualsOneIsRiemannianGradientDescent) {
  // One SGD step with K = 1 is X ← R_X(−lr · rgrad).
  torch::manual_seed(9);
  auto st = std::make_shared<manifolds::Stiefel>();
  auto holder = std::make_shared<torch::nn::Module>();
  Parametrization p(st, {6, 3}, {}, torch::kFloat64);
  holder->register_module("p", p.ptr());
  torch::Tensor C = torch::randn({6, 3}, torch::kFloat64);
  torch::Tensor X0 = p->forward().detach();
  auto sgd = std::make_shared<torch::optim::SGD>(holder->parameters(), torch::optim::SGDOptions(0.2));
  optim::DynamicTrivialization opt(sgd, *holder, 1);
  (p->forward() * C).sum().backward();
  opt.step();
  torch::Tensor expected = st->retract(X0, -0.2 * st->proj_tangent(X0, C));
  EXPECT_LT((p->base - expected).abs().max().item<double>(), 1e-14);
}

TEST(DynamicTrivialization, WorksOverRmspropAndAdagrad) {
  // Procrustes on SO(6): every torch::optim optimizer drives the loss to the optimum.
  const auto problem = optima::known_optima()[2];
  for (const std::string which : {"rmsprop", "adagrad"}) {
    torch::manual_seed(10);
    auto holder = std::make_shared<torch::nn::Module>();
    Parametrization p(problem.manifold, problem.shape, {}, torch::kFloat64);
    holder->register_module("p", p.ptr());
    std::shared_ptr<torch::optim::Optimizer> inner;
    if (which == "rmsprop") {
      inner = std::make_shared<torch::optim::RMSprop>(holder->parameters(), torch::optim::RMSpropOptions(0.01));
    } else {
      inner = std::make_shared<torch::optim::Adagrad>(holder->parameters(), torch::optim::AdagradOptions(0.3));
    }
    optim::DynamicTrivialization opt(inner, *holder, 100);
    const double lr0 = inner->param_groups()[0].options().get_lr();
    for (int t = 0; t < 2000; ++t) {
      for (auto& group : inner->param_groups()) group.options().set_lr(lr0 * std::pow(0.998, t));
      opt.zero_grad();
      problem.loss(p->forward()).backward();
      opt.step();
    }
    torch::NoGradGuard ng;
    EXPECT_NEAR(problem.loss(p->forward()).item<double>(), problem.optimum, 1e-6 * problem.optimum) << which;
  }
}

TEST(DynamicTrivialization, SavedModelAndOptimizerResumeIdentically) {
  auto make = [] {
    auto holder = std::make_shared<torch::nn::Module>();
    holder->register_module("p", Parametrization(std::make_shared<manifolds::Stiefel>(), {7, 3}, {}, torch::kFloat64).ptr());
    return holder;
  };
  torch::Tensor C = torch::randn({7, 3}, torch::kFloat64);
  auto loss = [&](torch::nn::Module& m, int t) {
    auto p = std::dynamic_pointer_cast<parametrize::ParametrizationImpl>(m.named_children()["p"]);
    return (p->forward() * C * (1 + 0.1 * (t % 3))).sum() + p->forward().pow(4).sum();
  };
  auto train = [&](torch::nn::Module& m, optim::DynamicTrivialization& opt, int from, int to) {
    for (int t = from; t < to; ++t) {
      opt.zero_grad();
      loss(m, t).backward();
      opt.step();
    }
  };
  torch::manual_seed(11);
  auto a = make();
  auto adam_a = std::make_shared<torch::optim::Adam>(a->parameters(), torch::optim::AdamOptions(0.01));
  optim::DynamicTrivialization opt_a(adam_a, *a, 7);
  train(*a, opt_a, 0, 25);  // stops between rebases (25 % 7 != 0)
  std::stringstream model_buf, opt_buf;
  torch::save(a, model_buf);
  torch::save(*adam_a, opt_buf);
  const int64_t steps = opt_a.steps();
  train(*a, opt_a, 25, 60);

  auto b = make();
  torch::load(b, model_buf);
  auto adam_b = std::make_shared<torch::optim::Adam>(b->parameters(), torch::optim::AdamOptions(0.01));
  torch::load(*adam_b, opt_buf);
  optim::DynamicTrivialization opt_b(adam_b, *b, 7);
  opt_b.set_steps(steps);
  train(*b, opt_b, 25, 60);
  for (const auto& name : {"p.base", "p.v"}) {
    auto ta = a->named_buffers().find(name) ? *a->named_buffers().find(name) : *a->named_parameters().find(name);
    auto tb = b->named_buffers().find(name) ? *b->named_buffers().find(name) : *b->named_parameters().find(name);
    EXPECT_TRUE(torch::equal(ta, tb)) << name;
  }
}

TEST(DynamicTrivialization, BadArgumentsAreClearErrors) {
  auto holder = std::make_shared<torch::nn::Module>();
  Parametrization p(std::make_shared<manifolds::Sphere>(), {4});
  holder->register_module("p", p.ptr());
  auto other = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{torch::zeros({1}, torch::requires_grad())},
                                                   torch::optim::SGDOptions(0.1));
  try {
    optim::DynamicTrivialization(other, *holder, 1);
    ADD_FAILURE();
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not own the parameter 'v'"), std::string::npos) << e.what();
  }
  auto sgd = std::make_shared<torch::optim::SGD>(holder->parameters(), torch::optim::SGDOptions(0.1));
  EXPECT_THROW(optim::DynamicTrivialization(sgd, *holder, -1), c10::Error);
}

TEST(DynamicTrivialization, KeepsABareModulesWeightCurrentWithoutAScope) {
  // step() refreshes the values attached to bare torch::nn modules (parametrize.h): three
  // forwards and backwards of a bare Linear, no scope, a rebase every 2 steps, each matching
  // φ(v) = R_base(P_base(v)) computed from scratch, to 1e-12 in float64.
  torch::manual_seed(8);
  torch::nn::Linear linear(torch::nn::LinearOptions(5, 5).bias(false));
  linear->to(torch::kFloat64);
  auto c = parametrize::orthogonal(*linear, "weight");
  auto p = std::dynamic_pointer_cast<parametrize::ParametrizationImpl>(c.ptr());
  ASSERT_NE(p, nullptr);
  auto adam = std::make_shared<torch::optim::Adam>(linear->parameters(), torch::optim::AdamOptions(0.05));
  optim::DynamicTrivialization opt(adam, *linear, 2);
  torch::Tensor previous;
  for (int step = 0; step < 3; ++step) {
    torch::Tensor x = torch::randn({4, 5}, torch::kFloat64), C = torch::randn({4, 5}, torch::kFloat64);
    torch::Tensor v = p->v.detach().clone().requires_grad_(true), base = p->base.detach().clone();
    torch::Tensor W = p->manifold().retract(base, p->manifold().proj_tangent(base, v), p->options().retraction());
    (torch::matmul(x, W.t()) * C).sum().backward();
    opt.zero_grad();
    torch::Tensor y = linear->forward(x);
    (y * C).sum().backward();
    EXPECT_LT((y - torch::matmul(x, W.t())).abs().max().item<double>(), 1e-12) << "step " << step;
    EXPECT_LT((p->v.grad() - v.grad()).abs().max().item<double>(), 1e-12) << "step " << step;
    if (step > 0) EXPECT_GT((W.detach() - previous).abs().max().item<double>(), 1e-3) << "step " << step;
    previous = W.detach().clone();
    opt.step();
  }
  EXPECT_EQ(p->rebase_count(), 1);
}
