// Parametrizations: the point stays on the manifold, rebase/set/sample, attaching to
// torch::nn modules (their own forward sees the constrained weight, gradients reach v),
// flattening, removal, the caching scope, and save/load.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mantra/mantra.h>

#include "../test_util.h"

#include <sstream>

using namespace mantra;
using namespace mantra::manifolds;
using mantra::parametrize::Parametrization;
using mantra::parametrize::ParametrizationOptions;

namespace {
double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }
std::shared_ptr<Stiefel> so() { return std::make_shared<Stiefel>(StiefelOptions().set_special(true)); }

using mantra::test::expect_error;
}  // namespace

TEST(Parametrization, PointStaysOnTheManifoldAndRebaseKeepsIt) {
  torch::manual_seed(0);
  for (Retraction r : {Retraction::Exp, Retraction::Cayley, Retraction::QR, Retraction::Polar}) {
    Parametrization p(std::make_shared<Stiefel>(), {2, 9, 4}, ParametrizationOptions().retraction(r),
                      torch::kFloat64);
    EXPECT_EQ(p->manifold().check_point(p->forward(), 1e-12), "");
    {
      torch::NoGradGuard ng;
      p->v.normal_();
    }
    torch::Tensor X = p->forward();
    EXPECT_EQ(p->manifold().check_point(X, 1e-12), "") << to_string(r);
    p->rebase();
    EXPECT_EQ(max_abs(p->v), 0.0);
    EXPECT_LT(max_abs(p->forward() - X), 1e-14) << to_string(r);  // φ_new(0) = base = old point
  }
}

TEST(Parametrization, StaticTrivializationIsExpOfTheSkewPart) {
  // From the identity, φ(v) = exp(skew(v)): expRNN's static parametrization.
  Parametrization p(so(), {5, 5}, ParametrizationOptions().retraction(Retraction::Exp), torch::kFloat64);
  p->sample("origin");
  torch::Tensor V = torch::randn({5, 5}, torch::kFloat64);
  {
    torch::NoGradGuard ng;
    p->v.copy_(V);
  }
  EXPECT_LT(max_abs(p->forward() - mantra::expm((V - V.t()) / 2)), 1e-13);
}

TEST(Parametrization, SetAcceptsPointsAndExplainsRejections) {
  Parametrization p(so(), {4, 4}, {}, torch::kFloat64);
  torch::Tensor Q = so()->random({4, 4}, torch::kFloat64);
  p->set(Q);
  EXPECT_LT(max_abs(p->forward() - Q), 1e-15);
  torch::Tensor R = torch::eye(4, torch::kFloat64);
  R[0][0] = -1;
  expect_error([&] { p->set(R); }, "argument 'X' is not a point of SO: its determinant");
  expect_error([&] { p->set(torch::ones({4, 4}, torch::kFloat64)); }, "not orthonormal");
  expect_error([&] { p->set(torch::eye(3, torch::kFloat64)); }, "argument 'X' must have shape [4, 4]");
  expect_error([&] { p->sample("gaussian"); }, "argument 'init' must be uniform, origin, torus, henaff or cayley");
  Parametrization sp(std::make_shared<Sphere>(), {6}, {}, torch::kFloat64);
  expect_error([&] { sp->sample("henaff"); }, "needs square matrices on SO(n)/O(n)");
}

TEST(Parametrization, RnnInitsAreRotationsWithTheirAngles) {
  torch::manual_seed(1);
  for (const char* init : {"torus", "henaff", "cayley"}) {
    Parametrization p(so(), {3, 8, 8}, {}, torch::kFloat64);
    p->sample(init);
    torch::Tensor X = p->forward();
    EXPECT_EQ(p->manifold().check_point(X, 1e-12), "") << init;
    // 2×2 rotation blocks: the entry (0, 1) is −sin θ, (0, 0) is cos θ.
    torch::Tensor c = X.select(-2, 0).select(-1, 0), s = X.select(-2, 0).select(-1, 1);
    EXPECT_LT(max_abs(c * c + s * s - 1), 1e-12);
    if (std::string(init) == "cayley") {
      // Block entry −tan(s/2), s ∈ (0, π/2): the rotation angle is in (0, π/2) in magnitude, cos > 0.
      EXPECT_GT(c.min().item<double>(), 0.0);
    }
  }
}

TEST(Parametrize, LinearSeesTheConstrainedWeightAndGradientsReachV) {
  torch::manual_seed(2);
  torch::nn::Linear linear(torch::nn::LinearOptions(6, 4));
  linear->to(torch::kFloat64);
  auto p = parametrize::parametrize(*linear, "weight", std::make_shared<Stiefel>());
  // The module's parameters are now bias and the parametrization's v (base is a buffer).
  auto names = linear->named_parameters().keys();
  EXPECT_EQ(names, (std::vector<std::string>{"bias", "parametrization_weight.v"}));
  EXPECT_EQ(linear->named_buffers().keys(), (std::vector<std::string>{"parametrization_weight.base"}));
  torch::Tensor W = linear->weight;
  EXPECT_EQ(W.sizes(), torch::IntArrayRef({4, 6}));
  EXPECT_EQ(p->manifold().check_point(W.detach(), 1e-12), "");  // wide: orthonormal rows
  torch::Tensor x = torch::randn({5, 6}, torch::kFloat64);
  torch::Tensor y = linear->forward(x);
  EXPECT_LT(max_abs(y - (torch::matmul(x, p->forward().t()) + linear->bias)), 1e-14);
  // Gradient with respect to v through the module, against central differences.
  torch::Tensor C = torch::randn({5, 4}, torch::kFloat64);
  (y * C).sum().backward();
  ASSERT_TRUE(p->v.grad().defined());
  torch::Tensor D = torch::randn_like(p->v);
  const double h = 1e-6;
  auto f = [&](double t) {
    torch::NoGradGuard ng;
    torch::Tensor saved = p->v.clone();
    p->v.add_(D, t);
    parametrize::refresh(*linear);
    const double value = (linear->forward(x) * C).sum().item<double>();
    p->v.copy_(saved);
    return value;
  };
  const double fd = (f(h) - f(-h)) / (2 * h);
  EXPECT_NEAR((p->v.grad() * D).sum().item<double>(), fd, 1e-7 * std::max(1.0, std::abs(fd)));
}

TEST(Parametrize, KeepsAWeightThatIsAlreadyOnTheManifold) {
  torch::nn::Linear linear(torch::nn::LinearOptions(5, 5).bias(false));
  linear->to(torch::kFloat64);
  torch::Tensor Q = so()->random({5, 5}, torch::kFloat64);
  {
    torch::NoGradGuard ng;
    linear->weight.copy_(Q);
  }
  parametrize::parametrize(*linear, "weight", so());
  EXPECT_LT(max_abs(linear->weight.detach() - Q), 1e-15);
}

TEST(Parametrize, ConvKernelsBatchedOrFlattened) {
  torch::manual_seed(3);
  torch::nn::Conv2d batched(torch::nn::Conv2dOptions(2, 3, 3));
  auto pb = parametrize::parametrize(*batched, "weight", so());
  EXPECT_EQ(pb->shape(), (std::vector<int64_t>{3, 2, 3, 3}));  // each 3×3 kernel in SO(3)
  EXPECT_EQ(pb->manifold().check_point(batched->weight.detach(), 1e-5), "");
  torch::nn::Conv2d flat(torch::nn::Conv2dOptions(2, 3, 3));
  auto pf = parametrize::parametrize(*flat, "weight", std::make_shared<Stiefel>(), {},
                                     parametrize::ParametrizeOptions().flatten(true));
  EXPECT_EQ(pf->shape(), (std::vector<int64_t>{3, 18}));
  EXPECT_EQ(flat->weight.sizes(), torch::IntArrayRef({3, 2, 3, 3}));
  EXPECT_EQ(pf->manifold().check_point(flat->weight.detach().reshape({3, 18}), 1e-5), "");
  torch::Tensor x = torch::randn({1, 2, 5, 5});
  EXPECT_EQ(flat->forward(x).sizes(), torch::IntArrayRef({1, 3, 3, 3}));
}

TEST(Parametrize, RnnWeightsAreConstrainedInsideTheModule) {
  torch::manual_seed(4);
  torch::nn::RNN rnn(torch::nn::RNNOptions(3, 6));
  rnn->to(torch::kFloat64);
  auto p = parametrize::parametrize(*rnn, "weight_hh_l0", so());
  torch::Tensor x = torch::randn({7, 2, 3}, torch::kFloat64);
  auto out = std::get<0>(rnn->forward(x));
  // Reference: the recurrence with the constrained matrix.
  auto params = rnn->named_parameters();
  torch::Tensor W = p->forward().detach(), h = torch::zeros({2, 6}, torch::kFloat64);
  for (int t = 0; t < 7; ++t) {
    h = torch::tanh(torch::matmul(x[t], params["weight_ih_l0"].t()) + params["bias_ih_l0"] + torch::matmul(h, W.t()) +
                    params["bias_hh_l0"]);
  }
  EXPECT_LT(max_abs(out[6] - h), 1e-12);
  out.sum().backward();
  EXPECT_TRUE(p->v.grad().defined());
}

TEST(Parametrize, RemoveKeepsTheCurrentValue) {
  torch::nn::Linear linear(torch::nn::LinearOptions(4, 4));
  auto p = parametrize::parametrize(*linear, "weight", so());
  {
    torch::NoGradGuard ng;
    p->v.normal_();
  }
  parametrize::refresh(*linear);
  torch::Tensor W = linear->weight.detach().clone();
  parametrize::remove_parametrization(*linear, "weight");
  EXPECT_FALSE(parametrize::is_parametrized(*linear, "weight"));
  EXPECT_TRUE(linear->weight.is_leaf());
  EXPECT_TRUE(linear->weight.requires_grad());
  EXPECT_LT(max_abs(linear->weight - W), 1e-7);
  auto keys = linear->named_parameters().keys();
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"bias", "weight"}));
  expect_error([&] { parametrize::remove_parametrization(*linear, "weight"); }, "'weight' of");
  expect_error([&] { parametrize::parametrize(*linear, "weigth", so()); }, "has no parameter 'weigth'");
}

TEST(Parametrize, ScopeComputesTheMapOncePerChange) {
  Parametrization p(so(), {6, 6});
  torch::Tensor a = p->forward(), b = p->forward();
  EXPECT_NE(a.unsafeGetTensorImpl(), b.unsafeGetTensorImpl());  // no scope: recomputed
  {
    parametrize::ParametrizationScope scope;
    torch::Tensor c = p->forward(), d = p->forward();
    EXPECT_EQ(c.unsafeGetTensorImpl(), d.unsafeGetTensorImpl());
    {
      torch::NoGradGuard ng;
      p->v.add_(0.1);  // an optimizer step: the version changes, the map is recomputed
    }
    torch::Tensor e = p->forward();
    EXPECT_NE(e.unsafeGetTensorImpl(), c.unsafeGetTensorImpl());
    EXPECT_GT(max_abs(e - c), 1e-3);
  }
  parametrize::ParametrizationScope other;
  EXPECT_NE(p->forward().unsafeGetTensorImpl(), a.unsafeGetTensorImpl());
}

TEST(Parametrize, SaveLoadRoundTripsBasePoints) {
  torch::manual_seed(5);
  auto make = [] {
    torch::nn::Sequential net(torch::nn::Linear(5, 5), torch::nn::Linear(5, 3));
    parametrize::parametrize(*net[0], "weight", so());
    parametrize::parametrize(*net[1], "weight", std::make_shared<Stiefel>());
    return net;
  };
  auto a = make();
  for (auto& item : parametrize::parametrizations(*a)) {
    torch::NoGradGuard ng;
    item.second->v.normal_();
    item.second->rebase();
    item.second->v.normal_();
  }
  parametrize::refresh(*a);
  std::stringstream buffer;
  torch::save(a, buffer);
  torch::manual_seed(99);
  auto b = make();
  torch::load(b, buffer);
  parametrize::refresh(*b);
  torch::Tensor x = torch::randn({4, 5});
  EXPECT_TRUE(torch::equal(a->forward(x), b->forward(x)));
}

TEST(Parametrization, LoadRefusesAnotherParametrizationAndABaseOffTheManifold) {
  torch::manual_seed(3);
  Parametrization saved(so(), {5, 5}, ParametrizationOptions().retraction(Retraction::Exp), torch::kFloat64);
  std::stringstream buffer;
  torch::save(saved, buffer);
  // Another retraction (the weight would change) or another manifold: refused, nothing changes.
  for (auto other : {Parametrization(so(), {5, 5}, ParametrizationOptions().retraction(Retraction::QR), torch::kFloat64),
                     Parametrization(std::make_shared<Oblique>(), {5, 5}, {}, torch::kFloat64)}) {
    const torch::Tensor before = other->base.clone();
    buffer.seekg(0);
    expect_error([&] { torch::load(other, buffer); }, "the state was saved from SO(retraction=exp)");
    EXPECT_TRUE(torch::equal(other->base, before));
  }
  // A base that is not a point (a reflection, det −1): refused, the previous state stays.
  Parametrization tampered(so(), {5, 5}, ParametrizationOptions().retraction(Retraction::Exp), torch::kFloat64);
  {
    torch::NoGradGuard no_grad;
    torch::Tensor R = torch::eye(5, torch::kFloat64);
    R[0][0] = -1;
    tampered->base.copy_(R);
  }
  std::stringstream bad;
  torch::save(tampered, bad);
  Parametrization target(so(), {5, 5}, ParametrizationOptions().retraction(Retraction::Exp), torch::kFloat64);
  const torch::Tensor before = target->base.clone();
  expect_error([&] { torch::load(target, bad); }, "the saved base is not a point of SO");
  EXPECT_TRUE(torch::equal(target->base, before));
  buffer.seekg(0);
  torch::load(target, buffer);
  EXPECT_TRUE(torch::equal(target->base, saved->base));
}

TEST(Parametrization, Float32StateLoadedIntoFloat64IsReprojected) {
  torch::manual_seed(4);
  Parametrization p32(so(), {8, 8}, ParametrizationOptions().retraction(Retraction::Exp), torch::kFloat32);
  {
    torch::NoGradGuard no_grad;
    p32->v.normal_(0.0, 0.1);
  }
  p32->rebase();
  std::stringstream buffer;
  torch::save(p32, buffer);
  Parametrization p64(so(), {8, 8}, ParametrizationOptions().retraction(Retraction::Exp), torch::kFloat64);
  torch::load(p64, buffer);
  const torch::Tensor W = p64->forward();
  EXPECT_EQ(W.scalar_type(), torch::kFloat64);
  EXPECT_LT(max_abs(torch::matmul(W.t(), W) - torch::eye(8, torch::kFloat64)), 1e-13);
  EXPECT_LT(max_abs(W - p32->forward().to(torch::kFloat64)), 1e-5);
}
