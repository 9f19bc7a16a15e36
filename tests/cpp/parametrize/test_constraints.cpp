// Every geotorch-style constraint on representative shapes (square, tall, wide, batched conv
// kernels) in float32 and float64: the weight satisfies the constraint after attaching, after
// assignment (which round-trips), and after 100 steps of Adam with dynamic trivialization; a
// rebase does not move it; bad arguments are clear errors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mantra/mantra.h>

#include "../test_util.h"

#include <functional>

using namespace mantra;
namespace pz = mantra::parametrize;

namespace {

struct ConstraintCase {
  std::string name;
  std::function<pz::Constraint(torch::nn::Module&)> attach;
  bool needs_square;
};

std::vector<ConstraintCase> constraint_cases() {
  auto wrap = [](auto holder) { return pz::Constraint(std::static_pointer_cast<pz::ConstraintImpl>(holder.ptr())); };
  return {
      {"orthogonal_expm", [=](torch::nn::Module& m) { return wrap(pz::orthogonal(m, "weight", "expm")); }, false},
      {"orthogonal_cayley", [=](torch::nn::Module& m) { return wrap(pz::orthogonal(m, "weight", "cayley")); }, false},
      {"orthogonal_qr", [=](torch::nn::Module& m) { return wrap(pz::orthogonal(m, "weight", "qr")); }, false},
      {"orthogonal_polar", [=](torch::nn::Module& m) { return wrap(pz::orthogonal(m, "weight", "polar")); }, false},
      {"orthogonal_householder", [=](torch::nn::Module& m) { return pz::orthogonal(m, "weight", "householder"); }, false},
      {"grassmannian", [=](torch::nn::Module& m) { return wrap(pz::grassmannian(m, "weight")); }, false},
      {"sphere", [=](torch::nn::Module& m) { return wrap(pz::sphere(m, "weight")); }, false},
      {"oblique", [=](torch::nn::Module& m) { return wrap(pz::oblique(m, "weight")); }, false},
      {"low_rank", [=](torch::nn::Module& m) { return wrap(pz::low_rank(m, "weight", 2)); }, false},
      {"fixed_rank", [=](torch::nn::Module& m) { return wrap(pz::fixed_rank(m, "weight", 2)); }, false},
      {"almost_orthogonal", [=](torch::nn::Module& m) { return wrap(pz::almost_orthogonal(m, "weight", 0.3)); }, false},
      {"hyperbolic_lorentz", [=](torch::nn::Module& m) { return wrap(pz::hyperbolic(m, "weight", "lorentz")); }, false},
      {"hyperbolic_poincare", [=](torch::nn::Module& m) { return wrap(pz::hyperbolic(m, "weight", "poincare")); }, false},
      {"positive_definite", [=](torch::nn::Module& m) { return wrap(pz::positive_definite(m, "weight")); }, true},
      {"positive_definite_cholesky", [=](torch::nn::Module& m) { return wrap(pz::positive_definite_cholesky(m, "weight")); }, true},
      {"positive_semidefinite", [=](torch::nn::Module& m) { return wrap(pz::positive_semidefinite(m, "weight")); }, true},
      {"psd_low_rank", [=](torch::nn::Module& m) { return wrap(pz::positive_semidefinite_low_rank(m, "weight", 2)); }, true},
      {"psd_fixed_rank", [=](torch::nn::Module& m) { return wrap(pz::positive_semidefinite_fixed_rank(m, "weight", 2)); }, true},
      {"invertible", [=](torch::nn::Module& m) { return wrap(pz::invertible(m, "weight")); }, true},
      {"symmetric", [=](torch::nn::Module& m) { return wrap(pz::symmetric(m, "weight")); }, true},
      {"skew", [=](torch::nn::Module& m) { return wrap(pz::skew(m, "weight")); }, true},
      {"alpha_stable", [=](torch::nn::Module& m) { return wrap(pz::alpha_stable(m, "weight", 0.5)); }, true},
      {"alpha_stable_cholesky", [=](torch::nn::Module& m) { return wrap(pz::alpha_stable(m, "weight", -0.2, "cholesky")); },
       true},
      // geotorch's options, in C++ too.
      {"orthogonal_callable",
       [=](torch::nn::Module& m) {
         return pz::orthogonal(m, "weight", [](const torch::Tensor& A) { return torch::linalg_matrix_exp(A); });
       },
       false},
      {"sphere_radius", [=](torch::nn::Module& m) { return wrap(pz::sphere(m, "weight", 2.5)); }, false},
      {"sphere_embedded", [=](torch::nn::Module& m) { return wrap(pz::sphere(m, "weight", 0.5, true)); }, false},
      {"almost_orthogonal_tanh",
       [=](torch::nn::Module& m) { return wrap(pz::almost_orthogonal(m, "weight", 0.3, "tanh")); }, false},
      {"almost_orthogonal_callable",
       [=](torch::nn::Module& m) {
         pz::SpectrumFunction f{[](const torch::Tensor& s) { return torch::tanh(s); },
                                [](const torch::Tensor& x) { return torch::atanh(x); }};
         return wrap(pz::almost_orthogonal(m, "weight", 0.3, f));
       },
       false},
      {"fixed_rank_callable",
       [=](torch::nn::Module& m) {
         pz::SpectrumFunction f{[](const torch::Tensor& s) { return torch::exp(s); },
                                [](const torch::Tensor& x) { return torch::log(x); }};
         return wrap(pz::fixed_rank(m, "weight", 2, f));
       },
       false},
      {"symmetric_upper", [=](torch::nn::Module& m) { return wrap(pz::symmetric(m, "weight", false)); }, true},
      {"skew_upper", [=](torch::nn::Module& m) { return wrap(pz::skew(m, "weight", false)); }, true},
  };
}

// A module with one parameter "weight" of the given shape.
struct Holder : torch::nn::Module {
  Holder(std::vector<int64_t> shape, torch::Dtype dtype) {
    weight = register_parameter("weight", torch::randn(shape, dtype) * 0.3);
  }
  torch::Tensor weight;
};

using Shape = std::vector<int64_t>;

}  // namespace

class Constraints : public ::testing::TestWithParam<std::tuple<int, Shape, torch::Dtype>> {};

TEST_P(Constraints, HoldThroughAssignmentAndTraining) {
  const auto cases = constraint_cases();
  const auto& c = cases[std::get<0>(GetParam())];
  const Shape shape = std::get<1>(GetParam());
  const torch::Dtype dtype = std::get<2>(GetParam());
  torch::manual_seed(1);
  auto module = std::make_shared<Holder>(shape, dtype);
  pz::Constraint constraint = c.attach(*module);
  auto weight = [&] { return module->weight.detach().clone(); };
  EXPECT_EQ(module->weight.scalar_type(), dtype);
  EXPECT_EQ(module->weight.sizes(), torch::IntArrayRef(shape));
  EXPECT_EQ(constraint->check(weight()), "") << c.name << " after attaching";

  // Assignment: a valid value from a second, trained copy round-trips.
  auto other = std::make_shared<Holder>(shape, dtype);
  pz::Constraint other_c = c.attach(*other);
  {
    torch::NoGradGuard ng;
    for (auto& p : other->parameters()) p.add_(torch::randn_like(p) * 0.2);
  }
  pz::refresh(*other);
  torch::Tensor X = other->weight.detach().clone();
  ASSERT_EQ(constraint->check(X), "") << c.name;
  constraint->set(X);
  const double tol = dtype == torch::kFloat64 ? 1e-9 : 2e-4;
  EXPECT_LT((weight() - X).abs().max().item<double>(), tol * std::max(1.0, X.abs().max().item<double>())) << c.name;

  // From a new sample, 100 steps of Adam towards X with a rebase every 10 steps (the last
  // step is a rebase).
  constraint->sample("uniform");
  EXPECT_EQ(constraint->check(weight()), "") << c.name << " after sample()";
  auto adam = std::make_shared<torch::optim::Adam>(module->parameters(), torch::optim::AdamOptions(0.02));
  optim::DynamicTrivialization opt(adam, *module, 10);
  const double start = (weight() - X).pow(2).sum().item<double>();
  for (int t = 0; t < 100; ++t) {
    pz::ParametrizationScope scope(*module);
    opt.zero_grad();
    (module->weight - X).pow(2).sum().backward();
    opt.step();
  }
  // Gr(n, n) is a single point (every frame spans R^n): nothing can move there.
  const bool single_point = c.name == "grassmannian" && shape[shape.size() - 1] == shape[shape.size() - 2];
  if (!single_point) {
    EXPECT_LT((weight() - X).pow(2).sum().item<double>(), start) << c.name << " did not move towards X";
  }
  EXPECT_EQ(constraint->check(weight()), "") << c.name << " after 100 steps";
  // A rebase does not move the weight.
  torch::Tensor before = weight();
  for (auto& p : pz::parametrizations(*module)) p.second->rebase();
  pz::refresh(*module);
  EXPECT_LT((weight() - before).abs().max().item<double>(), tol * std::max(1.0, before.abs().max().item<double>()))
      << c.name;
}

// Every constraint × shape × dtype, square shapes only for the square-only constraints.
std::vector<std::tuple<int, Shape, torch::Dtype>> constraint_params() {
  std::vector<std::tuple<int, Shape, torch::Dtype>> out;
  const auto cases = constraint_cases();
  for (int i = 0; i < static_cast<int>(cases.size()); ++i)
    for (const Shape& shape : {Shape{5, 5}, Shape{7, 3}, Shape{3, 6}, Shape{2, 3, 4, 4}})
      for (torch::Dtype dtype : {torch::kFloat32, torch::kFloat64})
        if (!cases[i].needs_square || shape[shape.size() - 1] == shape[shape.size() - 2])
          out.emplace_back(i, shape, dtype);
  return out;
}

INSTANTIATE_TEST_SUITE_P(
    All, Constraints, ::testing::ValuesIn(constraint_params()),
    [](const auto& info) {
      std::string name = constraint_cases()[std::get<0>(info.param)].name;
      for (auto d : std::get<1>(info.param)) name += "_" + std::to_string(d);
      return name + (std::get<2>(info.param) == torch::kFloat64 ? "_f64" : "_f32");
    });

TEST(Constraints, BadArgumentsNameTheArgument) {
  using mantra::test::expect_error;
  auto m = [] { return std::make_shared<Holder>(Shape{4, 3}, torch::kFloat32); };
  expect_error([&] { pz::low_rank(*m(), "weight", 4); }, "argument 'rank' must be in [1, min(n, k) = 3], got 4");
  expect_error([&] { pz::fixed_rank(*m(), "weight", 0); }, "argument 'rank'");
  expect_error([&] { pz::positive_definite(*m(), "weight"); }, "'weight' must be square");
  expect_error([&] { pz::invertible(*m(), "weight"); }, "'weight' must be square");
  expect_error([&] { pz::orthogonal(*m(), "bias"); }, "has no parameter 'bias'");
  expect_error([&] { pz::orthogonal(*m(), "weight", "householderx"); },
               "argument 'triv' must be one of expm, cayley, qr, polar, newton_schulz, householder or a callable; got 'householderx'");
  auto sq3 = std::make_shared<Holder>(Shape{3, 3}, torch::kFloat64);
  auto h = pz::orthogonal(*sq3, "weight", "householder");
  expect_error([&] { h->set(torch::eye(3, torch::kFloat64)); }, "has no Householder vectors");
  expect_error([&] { pz::almost_orthogonal(*m(), "weight", 1.5); }, "argument 'lambda' must be in [0, 1] (geotorch's range), got 1.5");
  expect_error([&] { pz::hyperbolic(*m(), "weight", "klein"); }, "argument 'model' must be 'lorentz' or 'poincare'");
  auto sq = std::make_shared<Holder>(Shape{3, 3}, torch::kFloat64);
  auto c = pz::symmetric(*sq, "weight");
  expect_error([&] { c->set(torch::randn({3, 3}, torch::kFloat64) + torch::triu(torch::ones({3, 3}, torch::kFloat64), 1)); },
               "argument 'X' violates the constraint: it is not symmetric");
  // NaN is rejected where values enter: assignment and optimizer construction.
  auto orth = pz::orthogonal(*std::make_shared<Holder>(Shape{3, 3}, torch::kFloat64), "weight");
  torch::Tensor nan = torch::eye(3, torch::kFloat64);
  nan[0][1] = std::nan("");
  expect_error([&] { orth->set(nan); }, "argument 'X' is not a point of SO: it contains NaN or Inf");
  auto chol = pz::positive_definite_cholesky(*std::make_shared<Holder>(Shape{3, 3}, torch::kFloat64), "weight");
  expect_error([&] { chol->set(nan); }, "argument 'X' violates the constraint: it contains NaN");
  expect_error([&] { chol->set(-torch::eye(3, torch::kFloat64)); }, "it is not positive definite");
  torch::Tensor nan_param = nan.clone().requires_grad_(true);
  expect_error([&] {
    optim::RiemannianSGD({nan_param}, optim::RiemannianSGDOptions(0.1).manifold(std::make_shared<manifolds::Stiefel>()));
  }, "parameter 0 of param group 0 is not a point of Stiefel: it contains NaN or Inf");
  auto lr = pz::low_rank(*std::make_shared<Holder>(Shape{4, 4}, torch::kFloat64), "weight", 1);
  expect_error([&] { lr->set(torch::eye(4, torch::kFloat64)); }, "its rank exceeds 1");
}

// alpha_stable: the value is α-stable, assignment solves the Lyapunov equation (factors that give
// X back, P ≻ 0, S skew), a refused assignment changes nothing, and bad arguments are named.
TEST(Constraints, AlphaStableFactorsAndRefusals) {
  using mantra::test::expect_error;
  namespace fn = pz::functional;
  torch::manual_seed(3);
  const double alpha = 0.25;
  auto holder = std::make_shared<Holder>(Shape{6, 6}, torch::kFloat64);
  auto c = pz::alpha_stable(*holder, "weight", alpha);
  EXPECT_LT(fn::spectral_abscissa(holder->weight).item<double>(), -alpha);
  // A strongly non-normal stable X: a Jordan-like upper triangle on a stable diagonal.
  torch::Tensor X = torch::diag(-torch::linspace(0.3, 2.0, 6, torch::kFloat64)) +
                    torch::triu(torch::randn({6, 6}, torch::kFloat64), 1) * 2;
  ASSERT_LT(fn::spectral_abscissa(X).item<double>(), -alpha);
  auto [P, Q, S] = fn::hurwitz_factors(X, alpha);
  EXPECT_LT((fn::hurwitz_compose(P, Q, S, alpha) - X).abs().max().item<double>(), 1e-10);
  EXPECT_GT(torch::linalg_eigvalsh(P).min().item<double>(), 0.0);
  EXPECT_LT((S + S.mT()).abs().max().item<double>(), 1e-15);
  // The Lyapunov identity: with B = X + αI and Y = P⁻¹, BᵀY + YB = −Q.
  const torch::Tensor B = X + alpha * torch::eye(6, torch::kFloat64), Y = torch::linalg_inv(P);
  EXPECT_LT((B.mT().matmul(Y) + Y.matmul(B) + Q).abs().max().item<double>(), 1e-9);
  c->set(X);
  EXPECT_LT((holder->weight - X).abs().max().item<double>(), 1e-10);
  // Unstable, or stable with too little margin: refused, the weight unchanged.
  const torch::Tensor before = holder->weight.detach().clone();
  expect_error([&] { c->set(torch::eye(6, torch::kFloat64)); },
               "Hurwitz.set: argument 'X' violates the constraint: it is not α-stable: the largest real part of its "
               "eigenvalues is 1");
  expect_error([&] { c->set(-0.2 * torch::eye(6, torch::kFloat64)); }, "not below −alpha = -0.25");
  torch::Tensor nan = X.clone();
  nan[0][0] = std::nan("");
  expect_error([&] { c->set(nan); }, "it contains NaN or Inf");
  EXPECT_TRUE(torch::equal(holder->weight, before));
  auto m = [] { return std::make_shared<Holder>(Shape{4, 3}, torch::kFloat32); };
  expect_error([&] { pz::alpha_stable(*m(), "weight"); }, "alpha_stable: 'weight' must be square");
  auto sq = [] { return std::make_shared<Holder>(Shape{3, 3}, torch::kFloat32); };
  expect_error([&] { pz::alpha_stable(*sq(), "weight", INFINITY); }, "argument 'alpha' must be finite, got inf");
  expect_error([&] { pz::alpha_stable(*sq(), "weight", 0.0, "cayley"); },
               "argument 'triv' must be 'expm' or 'cholesky', got 'cayley'");
}

// Gradient descent on ‖W − T‖² keeps W α-stable for an unstable target T, and reaches a
// stable target exactly (the closest α-stable matrix to an α-stable T is T).
TEST(Constraints, AlphaStableTrainingStaysStableAndReachesAStableTarget) {
  namespace fn = pz::functional;
  torch::manual_seed(4);
  const double alpha = 0.1;
  for (bool stable_target : {false, true}) {
    auto holder = std::make_shared<Holder>(Shape{5, 5}, torch::kFloat64);
    pz::alpha_stable(*holder, "weight", alpha);
    torch::Tensor T = stable_target ? -torch::eye(5, torch::kFloat64) + 0.3 * torch::randn({5, 5}, torch::kFloat64)
                                    : torch::eye(5, torch::kFloat64) + 0.3 * torch::randn({5, 5}, torch::kFloat64);
    if (stable_target) ASSERT_LT(fn::spectral_abscissa(T).item<double>(), -alpha);
    auto adam = std::make_shared<torch::optim::Adam>(holder->parameters(), torch::optim::AdamOptions(0.02));
    optim::DynamicTrivialization opt(adam, *holder, 20);
    double worst = -INFINITY;
    for (int t = 0; t < 1500; ++t) {
      pz::ParametrizationScope scope(*holder);
      opt.zero_grad();
      (holder->weight - T).pow(2).sum().backward();
      opt.step();
      if (t % 50 == 0) worst = std::max(worst, fn::spectral_abscissa(holder->weight).item<double>());
    }
    pz::refresh(*holder);
    worst = std::max(worst, fn::spectral_abscissa(holder->weight).item<double>());
    EXPECT_LT(worst, -alpha) << "stable_target " << stable_target;
    if (stable_target) EXPECT_LT((holder->weight - T).abs().max().item<double>(), 1e-3);
  }
}
