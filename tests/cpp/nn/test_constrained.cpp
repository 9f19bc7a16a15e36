// mantra::nn::Constrained<M>: torch::nn modules with attached constraints, trained with a
// plain torch::optim::Adam and no ParametrizationScope, give the outputs and gradients of a
// computation from scratch (φ(v) = R_base(P_base(v)) from the same v and base, then torch's
// functional op); the scope is only a cache; a stale bare module is an error naming the
// parameter, never a silent wrong value. In float64, to 1e-12 (and float32 for Linear).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mantra/mantra.h>
#include <mantra/nn/constrained.h>

#include "../test_util.h"

#include <sstream>

using namespace mantra;
namespace pz = mantra::parametrize;
using mantra::manifolds::Stiefel;
using mantra::test::expect_error;

namespace {

constexpr double kTol = 1e-12;

double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

std::shared_ptr<pz::ParametrizationImpl> as_parametrization(const pz::Constraint& c) {
  auto p = std::dynamic_pointer_cast<pz::ParametrizationImpl>(c.ptr());
  TORCH_CHECK(p != nullptr, "expected a Parametrization");
  return p;
}

// φ from scratch: a fresh leaf copy of v, the base, and the manifold's own maps.
struct Scratch {
  torch::Tensor v, W;
};
Scratch from_scratch(const pz::ParametrizationImpl& p) {
  Scratch s;
  s.v = p.v.detach().clone().requires_grad_(true);
  const torch::Tensor base = p.base.detach().clone();
  s.W = p.manifold().retract(base, p.manifold().proj_tangent(base, s.v), p.options().retraction());
  return s;
}

torch::Tensor leaf_copy(const torch::Tensor& t) { return t.detach().clone().requires_grad_(true); }

// Moves v off zero, so φ is not just the base and the steps change the weight visibly.
void perturb(pz::ParametrizationImpl& p, double scale) {
  torch::NoGradGuard ng;
  p.v.add_(torch::randn_like(p.v) * scale);
}

}  // namespace

TEST(Constrained, LinearTwoStepsOfPlainAdamMatchRecomputingFromScratch) {
  // float64 to 1e-12; float32 (the same kernels on both sides) to 1e-5.
  for (torch::Dtype dtype : {torch::kFloat64, torch::kFloat32}) {
    const double tol = dtype == torch::kFloat64 ? kTol : 1e-5;
    torch::manual_seed(0);
    nn::Constrained<torch::nn::Linear> c(torch::nn::LinearOptions(6, 6));
    c->to(dtype);
    auto p = as_parametrization(pz::orthogonal(*c->module, "weight"));
    perturb(*p, 0.3);
    torch::optim::Adam adam(c->parameters(), torch::optim::AdamOptions(0.05));
    torch::Tensor previous;
    for (int step = 0; step < 2; ++step) {
      torch::Tensor x = torch::randn({5, 6}, dtype), C = torch::randn({5, 6}, dtype);
      Scratch s = from_scratch(*p);
      torch::Tensor b = leaf_copy(c->module->bias);
      torch::Tensor y_ref = torch::nn::functional::linear(x, s.W, b);
      (y_ref * C).sum().backward();

      adam.zero_grad();
      torch::Tensor y = c(x);
      (y * C).sum().backward();
      EXPECT_EQ(y.scalar_type(), dtype);
      EXPECT_LT(max_abs(y - y_ref), tol) << "step " << step << " " << dtype;
      EXPECT_LT(max_abs(p->v.grad() - s.v.grad()), tol) << "step " << step << " " << dtype;
      EXPECT_LT(max_abs(c->module->bias.grad() - b.grad()), tol) << "step " << step << " " << dtype;
      // The module's own tensor is the current point (orthogonal to 1e-12 in float64).
      EXPECT_EQ(p->manifold().check_point(c->module->weight.detach(), dtype == torch::kFloat64 ? 1e-12 : 1e-5), "");
      if (step == 1) {
        // The step moved the weight: a stale value would have failed the comparisons above.
        EXPECT_GT(max_abs(c->module->weight.detach() - previous), 1e-3);
      }
      previous = c->module->weight.detach().clone();
      adam.step();
    }
  }
}

TEST(Constrained, FlattenedConvTwoStepsOfPlainAdamMatchRecomputingFromScratch) {
  torch::manual_seed(1);
  nn::Constrained<torch::nn::Conv2d> c(torch::nn::Conv2dOptions(2, 3, 3).padding(1));
  c->to(torch::kFloat64);
  // The kernel as one 3×18 matrix with orthonormal rows.
  auto p = pz::parametrize(*c->module, "weight", std::make_shared<Stiefel>(),
                           pz::ParametrizationOptions().retraction(manifolds::Retraction::Exp),
                           pz::ParametrizeOptions().flatten(true));
  EXPECT_EQ(p->shape(), (std::vector<int64_t>{3, 18}));
  perturb(*p, 0.3);
  torch::optim::Adam adam(c->parameters(), torch::optim::AdamOptions(0.05));
  torch::Tensor previous;
  for (int step = 0; step < 2; ++step) {
    torch::Tensor x = torch::randn({2, 2, 5, 5}, torch::kFloat64), C = torch::randn({2, 3, 5, 5}, torch::kFloat64);
    Scratch s = from_scratch(*p);
    torch::Tensor b = leaf_copy(c->module->bias);
    torch::Tensor y_ref = torch::nn::functional::conv2d(
        x, s.W.reshape({3, 2, 3, 3}), torch::nn::functional::Conv2dFuncOptions().bias(b).padding(1));
    (y_ref * C).sum().backward();

    adam.zero_grad();
    torch::Tensor y = c(x);
    (y * C).sum().backward();
    EXPECT_LT(max_abs(y - y_ref), kTol) << "step " << step;
    EXPECT_LT(max_abs(p->v.grad() - s.v.grad()), kTol) << "step " << step;
    EXPECT_LT(max_abs(c->module->bias.grad() - b.grad()), kTol) << "step " << step;
    EXPECT_EQ(p->manifold().check_point(c->module->weight.detach().reshape({3, 18}), 1e-12), "");
    if (step == 1) EXPECT_GT(max_abs(c->module->weight.detach() - previous), 1e-3);
    previous = c->module->weight.detach().clone();
    adam.step();
  }
}

TEST(Constrained, LstmRecurrentWeightTwoStepsOfPlainAdamMatchRecomputingFromScratch) {
  torch::manual_seed(2);
  nn::Constrained<torch::nn::LSTM> c(torch::nn::LSTMOptions(3, 4));
  // weight_hh_l0 is (4·hidden) × hidden = 16 × 4: orthonormal columns.
  auto p = as_parametrization(pz::orthogonal(*c->module, "weight_hh_l0"));
  // Converted after attaching: torch's LSTM rebuilds its weight list in to(), and
  // Constrained::to keeps the attached tensor in it.
  c->to(torch::kFloat64);
  EXPECT_EQ(p->v.scalar_type(), torch::kFloat64);
  EXPECT_FALSE(pz::constraint_of(*c->module, "weight_hh_l0").is_empty());
  EXPECT_EQ(c->module->named_parameters(false).keys(),
            (std::vector<std::string>{"weight_ih_l0", "bias_ih_l0", "bias_hh_l0"}));
  perturb(*p, 0.3);
  torch::optim::Adam adam(c->parameters(), torch::optim::AdamOptions(0.05));
  torch::Tensor previous;
  for (int step = 0; step < 2; ++step) {
    torch::Tensor x = torch::randn({7, 2, 3}, torch::kFloat64), C = torch::randn({7, 2, 4}, torch::kFloat64);
    auto named = c->module->named_parameters(/*recurse=*/false);
    Scratch s = from_scratch(*p);
    torch::Tensor w_ih = leaf_copy(named["weight_ih_l0"]), b_ih = leaf_copy(named["bias_ih_l0"]),
                  b_hh = leaf_copy(named["bias_hh_l0"]);
    torch::Tensor zeros = torch::zeros({1, 2, 4}, torch::kFloat64);
    torch::Tensor y_ref = std::get<0>(torch::lstm(x, {zeros, zeros}, {w_ih, s.W, b_ih, b_hh}, /*has_biases=*/true,
                                                  /*num_layers=*/1, /*dropout=*/0.0, /*train=*/true,
                                                  /*bidirectional=*/false, /*batch_first=*/false));
    (y_ref * C).sum().backward();

    adam.zero_grad();
    torch::Tensor y = std::get<0>(c(x));  // LSTM's forward has overloads and defaults: the generic forward
    (y * C).sum().backward();
    EXPECT_LT(max_abs(y - y_ref), kTol) << "step " << step;
    EXPECT_LT(max_abs(p->v.grad() - s.v.grad()), kTol) << "step " << step;
    EXPECT_LT(max_abs(named["weight_ih_l0"].grad() - w_ih.grad()), kTol) << "step " << step;
    EXPECT_LT(max_abs(named["bias_hh_l0"].grad() - b_hh.grad()), kTol) << "step " << step;
    if (step == 1) EXPECT_GT(max_abs(p->forward().detach() - previous), 1e-3);
    previous = p->forward().detach().clone();
    adam.step();
  }
}

TEST(Constrained, ModulesWithDefaultArgumentsTakeTheGenericForward) {
  // One forward without defaults: Constrained<M> has M's signature (fits a Sequential);
  // overloads or defaults (LSTM, LSTMCell): a template forward, so c(x) uses M's defaults.
  static_assert(!std::is_void_v<nn::detail::single_forward<torch::nn::LinearImpl>::type>);
  static_assert(std::is_void_v<nn::detail::single_forward<torch::nn::LSTMCellImpl>::type>);
  static_assert(std::is_void_v<nn::detail::single_forward<torch::nn::LSTMImpl>::type>);
  torch::manual_seed(10);
  nn::Constrained<torch::nn::LSTMCell> cell(torch::nn::LSTMCellOptions(3, 4));
  auto p = as_parametrization(pz::orthogonal(*cell->module, "weight_hh"));
  cell->to(torch::kFloat64);
  perturb(*p, 0.3);
  torch::Tensor x = torch::randn({2, 3}, torch::kFloat64);
  Scratch s = from_scratch(*p);
  auto named = cell->module->named_parameters(/*recurse=*/false);
  torch::Tensor zeros = torch::zeros({2, 4}, torch::kFloat64);
  auto ref = torch::lstm_cell(x, {zeros, zeros}, named["weight_ih"], s.W, named["bias_ih"], named["bias_hh"]);
  (std::get<0>(ref) + std::get<1>(ref)).sum().backward();
  auto out = cell(x);  // no hx: LSTMCell's default
  (std::get<0>(out) + std::get<1>(out)).sum().backward();
  EXPECT_LT(max_abs(std::get<0>(out) - std::get<0>(ref)), kTol);
  EXPECT_LT(max_abs(p->v.grad() - s.v.grad()), kTol);
}

TEST(Constrained, WrapsAnExistingModuleWithItsConstraints) {
  torch::manual_seed(9);
  torch::nn::Linear linear(torch::nn::LinearOptions(3, 3));
  linear->to(torch::kFloat64);
  auto p = as_parametrization(pz::orthogonal(*linear, "weight"));
  nn::Constrained<torch::nn::Linear> c(linear);  // shares the module
  EXPECT_EQ(c->module.ptr(), linear.ptr());
  perturb(*p, 0.3);  // after the last install: the bare module's value is now stale
  torch::Tensor x = torch::randn({2, 3}, torch::kFloat64);
  Scratch s = from_scratch(*p);
  EXPECT_LT(max_abs(c(x) - torch::nn::functional::linear(x, s.W, linear->bias)), kTol);
}

TEST(Constrained, SeveralForwardsShareOneBackward) {
  // An RNN cell or a shared layer: several calls, one backward, no scope. Unchanged
  // parameters keep the value's version, so the first call's graph stays valid.
  torch::manual_seed(3);
  nn::Constrained<torch::nn::Linear> c(torch::nn::LinearOptions(5, 5).bias(false));
  c->to(torch::kFloat64);
  auto p = as_parametrization(pz::orthogonal(*c->module, "weight", "cayley"));
  perturb(*p, 0.2);
  torch::Tensor h = torch::randn({3, 5}, torch::kFloat64);
  Scratch s = from_scratch(*p);
  torch::Tensor h_ref = h;
  for (int t = 0; t < 4; ++t) h_ref = torch::tanh(torch::matmul(h_ref, s.W.t()));
  h_ref.sum().backward();
  torch::Tensor out = h;
  for (int t = 0; t < 4; ++t) out = torch::tanh(c(out));
  out.sum().backward();
  EXPECT_LT(max_abs(out - h_ref), kTol);
  EXPECT_LT(max_abs(p->v.grad() - s.v.grad()), kTol);
}

TEST(Constrained, ScopeIsOnlyACache) {
  torch::manual_seed(4);
  nn::Constrained<torch::nn::Linear> c(torch::nn::LinearOptions(4, 4));
  c->to(torch::kFloat64);
  auto p = as_parametrization(pz::orthogonal(*c->module, "weight"));
  torch::Tensor x = torch::randn({2, 4}, torch::kFloat64);
  auto installed = [&] { return p->target()->installed.unsafeGetTensorImpl(); };
  c(x);
  auto first = installed();
  c(x);
  EXPECT_NE(installed(), first);  // no scope: recomputed by each forward
  torch::Tensor y_scope;
  {
    pz::ParametrizationScope scope;
    y_scope = c(x);
    auto cached = installed();
    torch::Tensor y2 = c(x);
    EXPECT_EQ(installed(), cached);  // computed once in the scope
    EXPECT_TRUE(torch::equal(y_scope, y2));
    (y_scope + y2).sum().backward();
  }
  torch::Tensor g_scope = p->v.grad().clone();
  p->v.mutable_grad() = torch::Tensor();
  (c(x) + c(x)).sum().backward();  // the same without a scope
  EXPECT_LT(max_abs(p->v.grad() - g_scope), kTol);
}

TEST(Constrained, WorksInsideSequentialAndSavesItsConstraints) {
  torch::manual_seed(5);
  auto make = [] {
    nn::Constrained<torch::nn::Linear> a(torch::nn::LinearOptions(5, 5)), b(torch::nn::LinearOptions(5, 3));
    pz::orthogonal(*a->module, "weight");
    pz::orthogonal(*b->module, "weight", "qr");
    torch::nn::Sequential net(a, torch::nn::Functional(torch::tanh), b);
    net->to(torch::kFloat64);
    return net;
  };
  auto net = make();
  for (auto& item : pz::parametrizations(*net)) perturb(*item.second, 0.3);
  auto keys = net[0]->named_parameters().keys();
  EXPECT_EQ(keys, (std::vector<std::string>{"module.bias", "module.parametrization_weight.v"}));
  EXPECT_EQ(net[0]->named_buffers().keys(), (std::vector<std::string>{"module.parametrization_weight.base"}));
  std::ostringstream printed;
  printed << *net[0];
  EXPECT_NE(printed.str().find("mantra::nn::Constrained"), std::string::npos) << printed.str();
  EXPECT_NE(printed.str().find("(module): torch::nn::Linear(in_features=5, out_features=5"), std::string::npos)
      << printed.str();

  torch::Tensor x = torch::randn({4, 5}, torch::kFloat64);
  torch::Tensor y = net->forward(x);
  std::stringstream buffer;
  torch::save(net, buffer);
  torch::manual_seed(99);
  auto loaded = make();
  EXPECT_GT(max_abs(loaded->forward(x) - y), 1e-3);  // a different model before loading
  torch::load(loaded, buffer);
  EXPECT_LT(max_abs(loaded->forward(x) - y), kTol);  // no refresh needed after loading
}

TEST(Constrained, StaleBareModuleIsAnErrorNamingTheParameter) {
  torch::manual_seed(6);
  torch::nn::Linear linear(torch::nn::LinearOptions(4, 4));
  linear->to(torch::kFloat64);
  pz::orthogonal(*linear, "weight");
  torch::optim::Adam adam(linear->parameters(), torch::optim::AdamOptions(0.1));
  torch::Tensor x = torch::randn({3, 4}, torch::kFloat64);
  linear->forward(x).sum().backward();  // the installed value is current: fine
  adam.step();                          // v changes; the bare module cannot know
  torch::Tensor y = linear->forward(x);
  expect_error([&] { y.sum().backward(); }, "the value of parameter 'weight' of torch::nn::LinearImpl is stale");
  expect_error([&] { linear->forward(x).sum().backward(); }, "mantra::nn::Constrained");
  // refresh() makes it current again.
  pz::refresh(*linear);
  adam.zero_grad();
  linear->forward(x).sum().backward();
  // A second backward through the same installed value (its graph freed) is also named.
  expect_error([&] { linear->forward(x).sum().backward(); },
               "the value of parameter 'weight' of torch::nn::LinearImpl was already backpropagated through");
  // A value installed under NoGradGuard gives no gradient: an error too, not a silent zero.
  {
    torch::NoGradGuard ng;
    pz::refresh(*linear);
  }
  expect_error([&] { linear->forward(x).sum().backward(); }, "'weight' of torch::nn::LinearImpl was installed without");
}

TEST(Constrained, AGraphThatSavedAnOldValueRaisesInsteadOfReadingTheNewOne) {
  torch::manual_seed(7);
  nn::Constrained<torch::nn::Conv2d> c(torch::nn::Conv2dOptions(2, 2, 3));
  c->to(torch::kFloat64);
  auto p = as_parametrization(pz::orthogonal(*c->module, "weight"));  // each 3×3 kernel in SO(3)
  torch::Tensor x = torch::randn({1, 2, 5, 5}, torch::kFloat64);
  torch::Tensor y_old = c(x);  // the conv saves the module's weight tensor itself
  perturb(*p, 0.5);
  torch::Tensor y_new = c(x);  // a new value is installed into the same tensor
  expect_error([&] { y_old.sum().backward(); }, "modified by an inplace operation");
  Scratch s = from_scratch(*p);
  torch::Tensor y_ref = torch::nn::functional::conv2d(x, s.W, torch::nn::functional::Conv2dFuncOptions().bias(
                                                                  c->module->bias.detach()));
  y_ref.sum().backward();
  y_new.sum().backward();
  EXPECT_LT(max_abs(y_new - y_ref), kTol);
  EXPECT_LT(max_abs(p->v.grad() - s.v.grad()), kTol);
}
