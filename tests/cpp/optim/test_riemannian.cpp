// RiemannianSGD and RiemannianAdam: exactly torch's SGD/Adam on Euclidean tensors, the known
// optima on manifolds, float32 points on the manifold after 10,000 steps, in-place updates,
// and state save/load that resumes identically.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mantra/mantra.h>

#include "../test_util.h"

#include <sstream>

#include "known_optima.h"

using namespace mantra;
using namespace mantra::manifolds;
using optim::RiemannianAdam;
using optim::RiemannianAdamOptions;
using optim::RiemannianSGD;
using optim::RiemannianSGDOptions;

namespace {

std::vector<torch::Tensor> make_params(uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({4, 3}, torch::requires_grad()), torch::randn({7}, torch::requires_grad()),
          torch::randn({2, 2, 5}, torch::requires_grad())};
}

torch::Tensor quadratic_loss(const std::vector<torch::Tensor>& params, int step) {
  torch::Tensor loss = torch::zeros({});
  for (size_t i = 0; i < params.size(); ++i) {
    loss = loss + (params[i] - 0.1 * (step % 5)).pow(2).sum() * (1.0 + i) + params[i].sin().sum();
  }
  return loss;
}

template <typename Ours, typename Theirs>
void expect_identical_trajectories(Ours& ours, std::vector<torch::Tensor>& a, Theirs& theirs,
                                   std::vector<torch::Tensor>& b, int steps) {
  for (int t = 0; t < steps; ++t) {
    ours.zero_grad();
    theirs.zero_grad();
    quadratic_loss(a, t).backward();
    quadratic_loss(b, t).backward();
    ours.step();
    theirs.step();
    for (size_t i = 0; i < a.size(); ++i) ASSERT_TRUE(torch::equal(a[i], b[i])) << "step " << t << " param " << i;
  }
}

}  // namespace

TEST(RiemannianAdam, EuclideanIsTorchAdamBitForBit) {
  for (bool amsgrad : {false, true}) {
    for (double wd : {0.0, 0.01}) {
      auto a = make_params(1), b = make_params(1);
      RiemannianAdam ours(a, RiemannianAdamOptions(0.01).amsgrad(amsgrad).weight_decay(wd));
      torch::optim::Adam theirs(b, torch::optim::AdamOptions(0.01).amsgrad(amsgrad).weight_decay(wd));
      expect_identical_trajectories(ours, a, theirs, b, 40);
    }
  }
}

TEST(RiemannianSGD, EuclideanIsTorchSgdBitForBit) {
  struct Setting {
    double momentum, dampening, wd;
    bool nesterov;
  };
  for (Setting s : {Setting{0, 0, 0, false}, Setting{0.9, 0, 0.01, false}, Setting{0.9, 0, 0, true},
                    Setting{0.5, 0.3, 0, false}}) {
    auto a = make_params(2), b = make_params(2);
    RiemannianSGD ours(a, RiemannianSGDOptions(0.01).momentum(s.momentum).dampening(s.dampening).weight_decay(s.wd).nesterov(s.nesterov));
    torch::optim::SGD theirs(b, torch::optim::SGDOptions(0.01).momentum(s.momentum).dampening(s.dampening).weight_decay(s.wd).nesterov(s.nesterov));
    expect_identical_trajectories(ours, a, theirs, b, 40);
  }
}

namespace {

// Optimizes the problem's point directly (a manifold parameter) with a decaying step size.
template <typename Make>
std::pair<double, std::string> run(const optima::Problem& problem, Make make_optimizer, double lr0, int steps) {
  torch::manual_seed(7);
  torch::Tensor X = problem.manifold->random(problem.shape, torch::kFloat64).requires_grad_(true);
  auto opt = make_optimizer(X, lr0);
  const void* storage = X.data_ptr();
  for (int t = 0; t < steps; ++t) {
    for (auto& group : opt->param_groups()) group.options().set_lr(lr0 * std::pow(0.998, t));
    opt->zero_grad();
    problem.loss(X).backward();
    opt->step();
  }
  EXPECT_EQ(X.data_ptr(), storage) << "the parameter must be updated in place";
  torch::NoGradGuard ng;
  const double final_loss = problem.loss(X).item().toDouble();
  return {final_loss, problem.manifold->check_point(X, 1e-10)};
}

}  // namespace

class RiemannianKnownOptima : public ::testing::TestWithParam<std::tuple<int, std::string>> {};

TEST_P(RiemannianKnownOptima, ReachesTheOptimum) {
  const auto problems = optima::known_optima();
  const auto& problem = problems[std::get<0>(GetParam())];
  const std::string which = std::get<1>(GetParam());
  std::pair<double, std::string> result;
  if (which == "sgd") {
    result = run(problem, [&](torch::Tensor& X, double lr) {
      return std::make_shared<RiemannianSGD>(
          std::vector<torch::Tensor>{X},
          RiemannianSGDOptions(lr).momentum(0.9).manifold(problem.manifold).retraction(problem.retraction));
    }, 0.02 * problem.lr_scale, 4000);
  } else {
    result = run(problem, [&](torch::Tensor& X, double lr) {
      return std::make_shared<RiemannianAdam>(
          std::vector<torch::Tensor>{X}, RiemannianAdamOptions(lr).manifold(problem.manifold).retraction(problem.retraction));
    }, 0.05 * problem.lr_scale, 4000);
  }
  EXPECT_EQ(result.second, "") << problem.name;
  EXPECT_NEAR(result.first, problem.optimum, 1e-6 * std::max(1.0, std::abs(problem.optimum)))
      << problem.name << " " << which;
}

INSTANTIATE_TEST_SUITE_P(All, RiemannianKnownOptima,
                         ::testing::Combine(::testing::Range(0, static_cast<int>(optima::known_optima().size())),
                                            ::testing::Values("sgd", "adam")),
                         [](const auto& info) {
                           return optima::known_optima()[std::get<0>(info.param)].name + "_" + std::get<1>(info.param);
                         });

TEST(RiemannianOptimizers, Float32StaysOnTheManifoldFor10000Steps) {
  // Noisy losses keep the point moving; rounding must not accumulate past 1e-5. Compact
  // manifolds get random linear losses; on the unbounded ones (hyperbolic, SPD) a linear loss
  // has no minimum and the walk would run off, so they chase a new random point each step
  // (the squared geodesic distance), which keeps them in a bounded region.
  torch::manual_seed(3);
  using Distance = std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>;
  struct DriftCase {
    ManifoldPtr M;
    std::vector<int64_t> shape;
    Distance distance;  // empty: linear losses
  };
  auto lorentz = std::make_shared<Lorentz>();
  auto ball = std::make_shared<PoincareBall>();
  auto spd = std::make_shared<SPD>();
  std::vector<DriftCase> cases = {
      {std::make_shared<Stiefel>(), {40, 8}, nullptr},
      {std::make_shared<Stiefel>(StiefelOptions().set_special(true)), {12, 12}, nullptr},
      {std::make_shared<Sphere>(), {4, 30}, nullptr},
      {std::make_shared<Oblique>(), {10, 6}, nullptr},
      {std::make_shared<Grassmannian>(), {20, 4}, nullptr},
      {lorentz, {3, 6}, [lorentz](const torch::Tensor& a, const torch::Tensor& b) { return lorentz->distance(a, b); }},
      {ball, {3, 6}, [ball](const torch::Tensor& a, const torch::Tensor& b) { return ball->distance(a, b); }},
      {spd, {4, 4}, [spd](const torch::Tensor& a, const torch::Tensor& b) { return spd->distance(a, b); }}};
  for (auto& c : cases) {
    SCOPED_TRACE(c.M->name());
    torch::Tensor X = c.M->random(c.shape, torch::kFloat32).requires_grad_(true);
    torch::Tensor Y = c.M->random(c.shape, torch::kFloat32).requires_grad_(true);
    RiemannianAdam adam({X}, RiemannianAdamOptions(1e-2).manifold(c.M));
    RiemannianSGD sgd({Y}, RiemannianSGDOptions(1e-2).momentum(0.9).manifold(c.M));
    for (int t = 0; t < 10000; ++t) {
      adam.zero_grad();
      sgd.zero_grad();
      if (c.distance) {
        torch::Tensor target = c.M->random(c.shape, torch::kFloat32);
        c.distance(X, target).pow(2).sum().backward();
        c.distance(Y, target).pow(2).sum().backward();
      } else {
        torch::Tensor C = torch::randn(c.shape);
        (X * C).sum().backward();
        (Y * C).sum().backward();
      }
      adam.step();
      sgd.step();
    }
    EXPECT_EQ(c.M->check_point(X.detach(), 1e-5), "") << c.M->name() << " (Adam)";
    EXPECT_EQ(c.M->check_point(Y.detach(), 1e-5), "") << c.M->name() << " (SGD)";
  }
}

TEST(RiemannianOptimizers, DynamicTrivializationFloat32StaysOnTheManifold) {
  torch::manual_seed(4);
  auto holder = std::make_shared<torch::nn::Module>();
  parametrize::Parametrization p(std::make_shared<Stiefel>(StiefelOptions().set_special(true)), {12, 12});
  holder->register_module("p", p.ptr());
  auto adam = std::make_shared<torch::optim::Adam>(holder->parameters(), torch::optim::AdamOptions(1e-2));
  optim::DynamicTrivialization opt(adam, *holder, 1);
  for (int t = 0; t < 10000; ++t) {
    opt.zero_grad();
    (p->forward() * torch::randn({12, 12})).sum().backward();
    opt.step();
  }
  EXPECT_EQ(p->manifold().check_point(p->forward().detach(), 1e-5), "");
}

TEST(RiemannianOptimizers, StateSaveLoadResumesIdentically) {
  auto M = std::make_shared<Stiefel>();
  auto loss_at = [](const torch::Tensor& X, int t) {
    return (X * torch::full_like(X, 0.1 * (t % 7))).sum() + X.pow(3).sum();
  };
  auto train = [&](torch::Tensor& X, torch::optim::Optimizer& opt, int from, int to) {
    for (int t = from; t < to; ++t) {
      opt.zero_grad();
      loss_at(X, t).backward();
      opt.step();
    }
  };
  for (bool adam : {true, false}) {
    torch::manual_seed(5);
    torch::Tensor X = M->random({9, 3}, torch::kFloat64).requires_grad_(true);
    auto make = [&](torch::Tensor& P) -> std::shared_ptr<torch::optim::Optimizer> {
      if (adam) return std::make_shared<RiemannianAdam>(std::vector<torch::Tensor>{P}, RiemannianAdamOptions(0.01).amsgrad(true).manifold(M));
      return std::make_shared<RiemannianSGD>(std::vector<torch::Tensor>{P}, RiemannianSGDOptions(0.01).momentum(0.9).manifold(M));
    };
    auto opt = make(X);
    train(X, *opt, 0, 20);
    std::stringstream saved_opt;
    torch::save(*opt, saved_opt);
    torch::Tensor X_saved = X.detach().clone();
    train(X, *opt, 20, 40);
    // A fresh parameter and optimizer, restored, must follow the same trajectory.
    torch::Tensor Z = X_saved.clone().requires_grad_(true);
    auto restored = make(Z);
    torch::load(*restored, saved_opt);
    train(Z, *restored, 20, 40);
    EXPECT_TRUE(torch::equal(X, Z)) << (adam ? "adam" : "sgd");
  }
}

TEST(RiemannianOptimizers, LoadingIntoAnotherManifoldIsAClearError) {
  torch::manual_seed(6);
  auto st = std::make_shared<Stiefel>();
  torch::Tensor X = st->random({4, 1}, torch::kFloat64).requires_grad_(true);
  RiemannianAdam saved({X}, RiemannianAdamOptions(0.01).manifold(st));
  X.sum().backward();
  saved.step();
  std::stringstream buffer;
  torch::save(saved, buffer);
  // The same point is also on the sphere (a unit column), but the optimizer state is not.
  torch::Tensor Y = X.detach().clone().requires_grad_(true);
  RiemannianAdam other({Y}, RiemannianAdamOptions(0.01).manifold(std::make_shared<Oblique>()));
  mantra::test::expect_error([&] { torch::load(other, buffer); },
                             "param group 0 was saved on Stiefel but this optimizer's group is on Oblique");
}

TEST(RiemannianOptimizers, BadArgumentsAreClearErrors) {
  auto M = std::make_shared<Stiefel>();
  torch::Tensor off = torch::ones({4, 2}, torch::requires_grad());
  using mantra::test::expect_error;
  expect_error([&] { RiemannianAdam({off}, RiemannianAdamOptions().manifold(M)); },
               "parameter 0 of param group 0 is not a point of Stiefel");
  expect_error([&] { RiemannianSGD({off}, RiemannianSGDOptions(0.1).nesterov(true)); }, "argument 'nesterov'");
  expect_error([&] { RiemannianAdam({off}, RiemannianAdamOptions(-1.0)); }, "argument 'lr'");
  expect_error([&] { RiemannianAdam({off}, RiemannianAdamOptions().betas({0.9, 1.0})); }, "argument 'betas'");
}

// Every option of a group, the shared ones (RiemannianGroupOptions) and each optimizer's own,
// survives save and load; builder chains mix the two kinds in either order.
TEST(RiemannianOptimizers, OptionsSurviveSaveAndLoad) {
  auto st = std::make_shared<Stiefel>();
  torch::manual_seed(7);
  torch::Tensor X = st->random({5, 2}, torch::kFloat64).requires_grad_(true);
  RiemannianSGD sgd({X}, RiemannianSGDOptions(0.02).weight_decay(0.1).momentum(0.5).dampening(0.25).manifold(st)
                             .retraction(Retraction::QR).stabilize(7));
  RiemannianAdam adam({X}, RiemannianAdamOptions(0.03).stabilize(9).betas({0.8, 0.99}).weight_decay(0.2).eps(1e-6)
                               .amsgrad(true).manifold(st).retraction(Retraction::Cayley));
  std::stringstream sgd_buffer, adam_buffer;
  torch::save(sgd, sgd_buffer);
  torch::save(adam, adam_buffer);
  RiemannianSGD sgd2({X}, RiemannianSGDOptions(1.0).manifold(st));
  RiemannianAdam adam2({X}, RiemannianAdamOptions().manifold(st));
  torch::load(sgd2, sgd_buffer);
  torch::load(adam2, adam_buffer);
  const auto& s = static_cast<const RiemannianSGDOptions&>(sgd2.param_groups()[0].options());
  EXPECT_EQ(s.lr(), 0.02);
  EXPECT_EQ(s.weight_decay(), 0.1);
  EXPECT_EQ(s.momentum(), 0.5);
  EXPECT_EQ(s.dampening(), 0.25);
  EXPECT_FALSE(s.nesterov());
  EXPECT_EQ(s.retraction(), Retraction::QR);
  EXPECT_EQ(s.stabilize(), 7);
  EXPECT_EQ(s.manifold(), st);
  EXPECT_EQ(sgd2.param_groups()[0].options().get_lr(), 0.02);
  const auto& a = static_cast<const RiemannianAdamOptions&>(adam2.param_groups()[0].options());
  EXPECT_EQ(a.lr(), 0.03);
  EXPECT_EQ(a.weight_decay(), 0.2);
  EXPECT_EQ(std::get<0>(a.betas()), 0.8);
  EXPECT_EQ(std::get<1>(a.betas()), 0.99);
  EXPECT_EQ(a.eps(), 1e-6);
  EXPECT_TRUE(a.amsgrad());
  EXPECT_EQ(a.retraction(), Retraction::Cayley);
  EXPECT_EQ(a.stabilize(), 9);
  EXPECT_EQ(a.manifold(), st);
  // set_lr (as torch's schedulers call it) goes through the shared base.
  adam2.param_groups()[0].options().set_lr(0.5);
  EXPECT_EQ(a.lr(), 0.5);
}
