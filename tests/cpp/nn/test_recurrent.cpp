// mantra::nn::OrthogonalRNN and ModReLU. (The trainer's LSTM / tanh-RNN baselines: tests/cpp/trainer.)
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mantra/mantra.h>

#include "../test_util.h"

#include <cmath>
#include <limits>
#include <sstream>

using namespace mantra;

namespace {
double orthogonality_error(const torch::Tensor& B) {
  return (B.t().matmul(B) - torch::eye(B.size(0), B.options())).abs().max().item<double>();
}
}  // namespace

TEST(ModReLU, IsSignTimesThresholdedModulus) {
  nn::ModReLU m(3);
  m->to(torch::kFloat64);
  {
    torch::NoGradGuard ng;
    m->bias.copy_(torch::tensor({-0.5, 0.0, 0.25}, torch::kFloat64));
  }
  torch::Tensor z = torch::tensor({{1.0, -2.0, -0.1}, {-0.3, 0.0, 0.0}}, torch::kFloat64);
  torch::Tensor want = torch::tensor({{0.5, -2.0, -0.35}, {0.0, 0.0, 0.0}}, torch::kFloat64);
  EXPECT_LT((m->forward(z) - want).abs().max().item<double>(), 1e-15);
  mantra::test::expect_error([&] { m->forward(torch::zeros({2, 4}, torch::kFloat64)); }, "'z'");
  // The module is the mantra::modrelu operator, which is torch's formula, NaN and Inf included.
  const double nan = std::nan(""), inf = std::numeric_limits<double>::infinity();
  torch::Tensor zz = torch::tensor({{1.0, nan, -inf}}, torch::kFloat64);
  {
    torch::NoGradGuard ng;
    m->bias.copy_(torch::tensor({nan, 0.5, -1.0}, torch::kFloat64));
  }
  torch::Tensor formula = torch::sign(zz) * torch::relu(torch::abs(zz) + m->bias);
  EXPECT_TRUE(torch::allclose(m->forward(zz), formula, 0, 0, /*equal_nan=*/true));
  EXPECT_TRUE(m->forward(zz).isnan().slice(1, 0, 2).all().item<bool>());
}

TEST(ModReLU, GradientsAreThoseOfTheFormula) {
  torch::manual_seed(11);
  nn::ModReLU m(7);
  m->to(torch::kFloat64);
  torch::Tensor z = torch::randn({5, 7}, torch::kFloat64).requires_grad_(true);
  torch::Tensor zr = z.detach().clone().requires_grad_(true);
  torch::Tensor br = m->bias.detach().clone().requires_grad_(true);
  torch::Tensor w = torch::randn({5, 7}, torch::kFloat64);
  (m->forward(z) * w).sum().backward();
  ((torch::sign(zr) * torch::relu(torch::abs(zr) + br)) * w).sum().backward();
  EXPECT_LT((z.grad() - zr.grad()).abs().max().item<double>(), 1e-15);
  EXPECT_LT((m->bias.grad() - br.grad()).abs().max().item<double>(), 1e-14);
}

TEST(OrthogonalRNN, ForwardIsTheRecurrenceOfItsModules) {
  torch::manual_seed(0);
  nn::OrthogonalRNN rnn(nn::OrthogonalRNNOptions(5, 12).output_size(3));
  rnn->to(torch::kFloat64);
  torch::Tensor x = torch::randn({9, 4, 5}, torch::kFloat64);
  torch::Tensor B = rnn->recurrent_matrix().detach();
  torch::Tensor h = torch::zeros({4, 12}, torch::kFloat64);
  std::vector<torch::Tensor> ys;
  for (int64_t t = 0; t < 9; ++t) {
    h = rnn->modrelu->forward(rnn->input_kernel->forward(x[t]) + h.matmul(B.t()));
    ys.push_back(rnn->output_layer->forward(h));
  }
  EXPECT_LT((rnn->forward(x) - torch::stack(ys)).abs().max().item<double>(), 1e-12);
}

TEST(OrthogonalRNN, RecurrentMatrixIsInSOnForEveryTrivializationAndInit) {
  for (const char* triv : {"expm", "cayley", "qr", "polar", "householder"}) {
    for (const char* init : {"henaff", "cayley", "uniform", "origin"}) {
      if (std::string(triv) == "householder" && std::string(init) == "origin") {
        // The identity is not a product of this map's reflections: a clear error naming init.
        mantra::test::expect_error([] { nn::OrthogonalRNN(nn::OrthogonalRNNOptions(3, 10).triv("householder").init("origin")); },
                                   "argument 'init' cannot be 'origin'");
        continue;
      }
      torch::manual_seed(1);
      nn::OrthogonalRNN rnn(nn::OrthogonalRNNOptions(3, 10).triv(triv).init(init));
      rnn->to(torch::kFloat64);
      torch::Tensor B = rnn->recurrent_matrix().detach();
      EXPECT_LT(orthogonality_error(B), 1e-12) << triv << " " << init;
      EXPECT_NEAR(torch::linalg_det(B).item<double>(), 1.0, 1e-12) << triv << " " << init;
    }
  }
}

TEST(OrthogonalRNN, ChartAtIdentityIsExpRNNsStaticTrivialization) {
  torch::manual_seed(2);
  nn::OrthogonalRNN rnn(nn::OrthogonalRNNOptions(3, 8).init("cayley").chart_at_identity(true));
  rnn->to(torch::kFloat64);
  auto p = std::dynamic_pointer_cast<parametrize::ParametrizationImpl>(rnn->recurrent.ptr());
  ASSERT_TRUE(p);
  EXPECT_TRUE(torch::equal(p->base, torch::eye(8, torch::kFloat64)));
  EXPECT_LT((p->v + p->v.t()).abs().max().item<double>(), 1e-15);  // v = A is skew
  EXPECT_GT(p->v.abs().max().item<double>(), 0.0);
  EXPECT_LT((rnn->recurrent_matrix() - mantra::expm(p->v)).abs().max().item<double>(), 1e-13);  // B = exp(A)
  mantra::test::expect_error(
      [] { nn::OrthogonalRNN(nn::OrthogonalRNNOptions(3, 8).triv("cayley").chart_at_identity(true)); },
      "chart_at_identity");
}

TEST(OrthogonalRNN, GradientOfTheLossMatchesFiniteDifferences) {
  torch::manual_seed(3);
  nn::OrthogonalRNN rnn(nn::OrthogonalRNNOptions(4, 6).output_size(2).init("henaff"));
  rnn->to(torch::kFloat64);
  auto p = std::dynamic_pointer_cast<parametrize::ParametrizationImpl>(rnn->recurrent.ptr());
  {
    torch::NoGradGuard ng;
    p->v.normal_(0, 0.3);  // away from the base, so the chart's derivative is not the identity
  }
  torch::Tensor x = torch::randn({7, 3, 4}, torch::kFloat64), y = torch::randn({7, 3, 2}, torch::kFloat64);
  auto loss = [&] { return (rnn->forward(x) - y).pow(2).mean(); };
  rnn->zero_grad();
  loss().backward();
  const double eps = 1e-6;
  for (auto& param : rnn->parameters()) {
    torch::Tensor g = param.grad().clone(), d = torch::randn_like(param);
    double plus, minus;
    {
      torch::NoGradGuard ng;
      param.add_(d, eps);
      plus = loss().item<double>();
      param.add_(d, -2 * eps);
      minus = loss().item<double>();
      param.add_(d, eps);
    }
    const double fd = (plus - minus) / (2 * eps);
    EXPECT_NEAR((g * d).sum().item<double>(), fd, 1e-7 * std::max(1.0, std::abs(fd)));
  }
}

TEST(OrthogonalRNN, DynamicTrivializationTrainsAndStaysOrthogonal) {
  // The dynamic-trivialization recipe: RMSprop on the recurrent constraint, Adam on the rest,
  // rebase every K = 10 steps; learn to output the input of the previous step.
  torch::manual_seed(4);
  nn::OrthogonalRNN rnn(nn::OrthogonalRNNOptions(3, 16).output_size(3));
  auto rms = std::make_shared<torch::optim::RMSprop>(rnn->constrained_parameters(), torch::optim::RMSpropOptions(1e-3));
  torch::optim::Adam adam(rnn->unconstrained_parameters(), torch::optim::AdamOptions(1e-2));
  optim::DynamicTrivialization dtriv(rms, *rnn, 10);
  torch::Tensor x = torch::randn({20, 16, 3});
  torch::Tensor y = torch::cat({torch::zeros({1, 16, 3}), x.narrow(0, 0, 19)});
  auto loss = [&] { return (rnn->forward(x) - y).pow(2).mean(); };
  const double first = loss().item<double>();
  for (int step = 0; step < 300; ++step) {
    dtriv.zero_grad();
    adam.zero_grad();
    torch::Tensor l = loss();
    l.backward();
    dtriv.step();
    adam.step();
  }
  const double last = loss().item<double>();
  EXPECT_LT(last, 0.2 * first) << first << " -> " << last;
  auto p = std::dynamic_pointer_cast<parametrize::ParametrizationImpl>(rnn->recurrent.ptr());
  EXPECT_EQ(p->rebase_count(), 30);
  EXPECT_LT(orthogonality_error(rnn->recurrent_matrix().detach()), 1e-5);  // float32
}

TEST(OrthogonalRNN, ParameterGroupsAndDegreesOfFreedom) {
  nn::OrthogonalRNN rnn(nn::OrthogonalRNNOptions(129, 224).output_size(129));
  const auto c = rnn->constrained_parameters();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].sizes(), (std::vector<int64_t>{224, 224}));
  EXPECT_EQ(rnn->unconstrained_parameters().size() + 1, rnn->parameters().size());
  // The paper's count for TIMIT at n = 224: 129n + n(n−1)/2 + n + 129n + 129 = 83121.
  EXPECT_EQ(rnn->degrees_of_freedom(), 83121);
}

TEST(OrthogonalRNN, SaveLoadRoundTrip) {
  torch::manual_seed(6);
  nn::OrthogonalRNN a(nn::OrthogonalRNNOptions(4, 8).output_size(2));
  nn::OrthogonalRNN b(nn::OrthogonalRNNOptions(4, 8).output_size(2));
  std::stringstream buffer;
  torch::save(a, buffer);
  torch::load(b, buffer);
  torch::Tensor x = torch::randn({5, 2, 4});
  EXPECT_TRUE(torch::equal(a->forward(x), b->forward(x)));
}

TEST(OrthogonalRNN, BadOptionsNameTheArgument) {
  using mantra::test::expect_error;
  expect_error([] { nn::OrthogonalRNN(nn::OrthogonalRNNOptions(0, 8)); }, "'input_size'");
  expect_error([] { nn::OrthogonalRNN(nn::OrthogonalRNNOptions(3, 8).init("zeros")); }, "'init'");
  expect_error([] { nn::OrthogonalRNN(nn::OrthogonalRNNOptions(3, 8).triv("svd")); }, "'triv'");
  nn::OrthogonalRNN rnn(nn::OrthogonalRNNOptions(3, 8));
  expect_error([&] { rnn->hidden_states(torch::randn({4, 2, 3}), torch::zeros({3, 8})); }, "'h0'");
}
