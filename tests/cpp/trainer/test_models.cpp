// The trainer's models (examples/rnn/models.h): the orthogonal RNN and the LSTM / tanh-RNN
// baselines behind one interface.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models.h"

#include <cmath>
#include <string>

namespace ex = mantra::examples;

// |a − b| <= atol + rtol·|b| elementwise (shapes equal), with the largest difference on failure.
#define EXPECT_ALLCLOSE(a, b, rtol, atol)                                                           \
  do {                                                                                              \
    const torch::Tensor a_ = (a), b_ = (b);                                                         \
    ASSERT_EQ(a_.sizes(), b_.sizes());                                                              \
    EXPECT_TRUE(torch::allclose(a_, b_, (rtol), (atol))) << "max |a - b| = " << (a_ - b_).abs().max().item<double>(); \
  } while (0)

namespace {
void expect_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected an error mentioning: " << needle;
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}
}  // namespace

TEST(Baselines, SameInterfaceAndShapes) {
  torch::manual_seed(5);
  std::vector<std::shared_ptr<ex::RecurrentNetImpl>> models = {
      ex::OrthogonalRNNNet(mantra::nn::OrthogonalRNNOptions(4, 8).output_size(2)).ptr(),
      ex::LSTMBaseline(ex::RecurrentBaselineOptions(4, 8).output_size(2)).ptr(),
      ex::RNNBaseline(ex::RecurrentBaselineOptions(4, 8).output_size(2)).ptr()};
  torch::Tensor x = torch::randn({6, 3, 4});
  for (auto& m : models) {
    EXPECT_EQ(m->forward(x).sizes(), (std::vector<int64_t>{6, 3, 2}));
    expect_error([&] { m->forward(torch::randn({6, 3, 5})); }, "'x'");
    ASSERT_TRUE(m->readout());
    EXPECT_EQ(m->readout()->weight.sizes(), (std::vector<int64_t>{2, 8}));
  }
  EXPECT_TRUE(models[1]->constrained_parameters().empty());
  EXPECT_EQ(models[1]->unconstrained_parameters().size(), models[1]->parameters().size());
  // The LSTM baseline is torch's LSTM: same output as calling it directly.
  auto lstm = std::dynamic_pointer_cast<ex::LSTMBaselineImpl>(models[1]);
  EXPECT_TRUE(torch::equal(lstm->forward(x), lstm->output_layer->forward(std::get<0>(lstm->lstm->forward(x)))));
}

TEST(Baselines, ParameterGroupsAndDegreesOfFreedom) {
  ex::OrthogonalRNNNet rnn(mantra::nn::OrthogonalRNNOptions(129, 224).output_size(129));
  const auto c = rnn->constrained_parameters();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].sizes(), (std::vector<int64_t>{224, 224}));
  EXPECT_EQ(rnn->unconstrained_parameters().size() + 1, rnn->parameters().size());
  // The paper's count for TIMIT at n = 224: 129n + n(n−1)/2 + n + 129n + 129 = 83121.
  EXPECT_EQ(rnn->degrees_of_freedom(), 83121);
  ex::LSTMBaseline lstm(ex::RecurrentBaselineOptions(129, 84).output_size(129));
  // 4·84·(129 + 84 + 2) + 84·129 + 129 (torch's LSTM has two bias vectors).
  EXPECT_EQ(lstm->degrees_of_freedom(), 4 * 84 * (129 + 84 + 2) + 84 * 129 + 129);
  ex::RNNBaseline tanh_rnn(ex::RecurrentBaselineOptions(129, 84).output_size(129));
  EXPECT_EQ(tanh_rnn->degrees_of_freedom(), 84 * (129 + 84 + 2) + 84 * 129 + 129);
}

TEST(Baselines, BadOptionsNameTheArgument) {
  expect_error([] { ex::LSTMBaseline(ex::RecurrentBaselineOptions(0, 8)); }, "'input_size'");
  expect_error([] { ex::RNNBaseline(ex::RecurrentBaselineOptions(3, 8).output_size(-1)); }, "'output_size'");
}

// The published Cayley RNN: B = (I + A)⁻¹(I − A), A = triu(P, 1) − triu(P, 1)ᵀ, and expRNN's
// cayley_init_ (2×2 blocks A[2i, 2i+1] = −tan(s_i/2), s_i ~ U(0, π/2)): B starts as rotations
// by the angles s_i themselves. float32 model; tolerances 1e-5 (float32 rounding of 5×5 solves).
TEST(CayleyRNN, PublishedMapAndInit) {
  torch::manual_seed(11);
  ex::CayleyRNNNet net(ex::CayleyRNNOptions(3, 5).output_size(2));
  const torch::Tensor P = net->recurrent_skew.detach();
  // Init: only the superdiagonal entries (0,1), (2,3) are set, in [−1, 0] (tan(π/4) = 1).
  torch::Tensor mask = torch::zeros({5, 5});
  mask[0][1] = 1;
  mask[2][3] = 1;
  EXPECT_EQ((P * (1 - mask)).abs().max().item<float>(), 0.0f);
  for (auto [i, j] : {std::pair<int, int>{0, 1}, {2, 3}}) {
    const double d = P[i][j].item<double>();
    EXPECT_LE(d, 0.0);
    EXPECT_GE(d, -1.0);
  }
  // The map, against its closed form on each 2×2 block [[0, d], [−d, 0]]:
  // (I + A)⁻¹(I − A) = [[1 − d², −2d], [2d, 1 − d²]] / (1 + d²), and 1 on the odd last row.
  const torch::Tensor B = net->recurrent_matrix().detach();
  torch::Tensor want = torch::zeros({5, 5});
  for (int i : {0, 2}) {
    const double d = P[i][i + 1].item<double>(), n = 1 + d * d;
    want[i][i] = (1 - d * d) / n;
    want[i][i + 1] = -2 * d / n;
    want[i + 1][i] = 2 * d / n;
    want[i + 1][i + 1] = (1 - d * d) / n;
    // The block is [[cos s, sin s], [−sin s, cos s]] with s = −2 atan(d) ∈ [0, π/2]: a rotation
    // by the published init's angle s (eigenvalues e^{±is}).
    const double angle = std::atan2(B[i][i + 1].item<double>(), B[i][i].item<double>());
    EXPECT_NEAR(angle, -2 * std::atan(d), 1e-5);
    EXPECT_GE(angle, 0.0);
    EXPECT_LE(angle, M_PI / 2 + 1e-6);
  }
  want[4][4] = 1;
  EXPECT_ALLCLOSE(B, want, 1e-5, 1e-5);
  // A general skew A (after training moved P anywhere, lower triangle ignored): B is the
  // Cayley transform, orthogonal with det 1.
  {
    torch::NoGradGuard no_grad;
    net->recurrent_skew.copy_(torch::randn({5, 5}));
  }
  const torch::Tensor A = net->skew().detach().to(torch::kFloat64);
  EXPECT_ALLCLOSE(A, -A.t(), 0.0, 0.0);
  const torch::Tensor I = torch::eye(5, torch::kFloat64);
  const torch::Tensor B2 = net->recurrent_matrix().detach().to(torch::kFloat64);
  EXPECT_ALLCLOSE(B2, torch::linalg_inv(I + A).matmul(I - A), 1e-5, 1e-5);
  EXPECT_ALLCLOSE(B2.t().matmul(B2), I, 1e-5, 1e-5);
  // The forward is the modReLU recurrence with this B: h_t = modReLU(W_in x_t + B h_{t−1}).
  const torch::Tensor x = torch::randn({4, 2, 3});
  const torch::Tensor Bf = net->recurrent_matrix().detach();
  torch::Tensor h = torch::zeros({2, 5});
  std::vector<torch::Tensor> outs;
  for (int64_t t = 0; t < 4; ++t) {
    const torch::Tensor z = torch::matmul(x[t], net->input_kernel->weight.detach().t()) + torch::matmul(h, Bf.t());
    const torch::Tensor r = torch::relu(z.abs() + net->modrelu->bias.detach());
    h = torch::sign(z) * r;
    outs.push_back(net->output_layer->forward(h).detach());
  }
  EXPECT_ALLCLOSE(net->forward(x).detach(), torch::stack(outs), 1e-5, 1e-5);
  EXPECT_EQ(net->degrees_of_freedom(), 3 * 5 + 5 * 4 / 2 + 5 + 5 * 2 + 2);
  ASSERT_EQ(net->constrained_parameters().size(), 1u);
  EXPECT_EQ(net->unconstrained_parameters().size() + 1, net->parameters().size());
}

// The init's angles are U(0, π/2): over 400 blocks their mean is π/4 (std of the mean
// (π/2)/sqrt(12·400) = 0.023; allow 4 sigma) and they fill the interval.
TEST(CayleyRNN, InitAnglesUniformToHalfPi) {
  torch::manual_seed(2);
  ex::CayleyRNNNet net(ex::CayleyRNNOptions(2, 800));
  const torch::Tensor d = net->recurrent_skew.detach().diagonal(1).index({torch::indexing::Slice(0, 800, 2)});
  const torch::Tensor s = -2 * torch::atan(d.to(torch::kFloat64));
  EXPECT_NEAR(s.mean().item<double>(), M_PI / 4, 0.09);
  EXPECT_GE(s.min().item<double>(), 0.0);
  EXPECT_LE(s.max().item<double>(), M_PI / 2 + 1e-6);
  EXPECT_LT(s.min().item<double>(), 0.05);
  EXPECT_GT(s.max().item<double>(), M_PI / 2 - 0.05);
}

// --lstm-recipe urnn: forget-gate bias 1 (b_ih + b_hh on the forget slice, gates i, f, g, o),
// RMSprop lr 1e-3, elementwise clipping at 1; adam: Adam at the given lr, no clipping.
TEST(Recipes, UrnnSetsForgetBiasOneAndClips) {
  const ex::TrainingRecipe urnn = ex::lstm_recipe("urnn", 5e-3);
  EXPECT_EQ(urnn.optimizer, "rmsprop");
  EXPECT_DOUBLE_EQ(urnn.lr, 1e-3);
  EXPECT_DOUBLE_EQ(urnn.clip_value, 1.0);
  EXPECT_DOUBLE_EQ(urnn.forget_bias, 1.0);
  const ex::TrainingRecipe adam = ex::lstm_recipe("adam", 5e-3);
  EXPECT_EQ(adam.optimizer, "adam");
  EXPECT_DOUBLE_EQ(adam.lr, 5e-3);
  EXPECT_DOUBLE_EQ(adam.clip_value, 0.0);
  EXPECT_TRUE(std::isnan(adam.forget_bias));
  expect_error([] { ex::lstm_recipe("sgd", 1e-3); }, "--lstm-recipe");

  torch::manual_seed(4);
  ex::LSTMBaseline lstm(ex::RecurrentBaselineOptions(3, 6).output_size(2));
  const torch::Tensor ih_before = lstm->lstm->named_parameters()["bias_ih_l0"].detach().clone();
  lstm->set_forget_bias(urnn.forget_bias);
  const torch::Tensor ih = lstm->lstm->named_parameters()["bias_ih_l0"].detach();
  const torch::Tensor hh = lstm->lstm->named_parameters()["bias_hh_l0"].detach();
  using torch::indexing::Slice;
  EXPECT_TRUE(torch::equal((ih + hh).index({Slice(6, 12)}), torch::ones({6})));
  EXPECT_TRUE(torch::equal(ih.index({Slice(0, 6)}), ih_before.index({Slice(0, 6)})));  // other gates untouched
  EXPECT_TRUE(torch::equal(ih.index({Slice(12, 24)}), ih_before.index({Slice(12, 24)})));

  // Elementwise clipping at 1: every gradient entry in [−1, 1], the small ones unchanged.
  torch::Tensor w = torch::zeros({4}, torch::requires_grad());
  w.mutable_grad() = torch::tensor({-30.0f, 0.5f, 2.0f, -0.25f});
  ex::clip_gradients({w}, 0.0, urnn.clip_value);
  EXPECT_TRUE(torch::equal(w.grad(), torch::tensor({-1.0f, 0.5f, 1.0f, -0.25f})));
  // --clip (norm) for any model, then the elementwise clip.
  w.mutable_grad() = torch::tensor({3.0f, 4.0f, 0.0f, 0.0f});
  ex::clip_gradients({w}, 1.0, 0.0);
  EXPECT_ALLCLOSE(w.grad(), torch::tensor({0.6f, 0.8f, 0.0f, 0.0f}), 1e-6, 1e-6);
}

// Early stopping: the epoch of the last counted improvement. min_delta 0: every new best
// counts; 0.01: a new best counts only below 99% of the last counted loss.
TEST(EarlyStopping, LastCountedImprovement) {
  EXPECT_EQ(ex::last_counted_improvement({}, 0.0), 0);
  EXPECT_EQ(ex::last_counted_improvement({5.0}, 0.5), 1);
  const std::vector<double> v = {100, 90, 89.5, 89.4, 95, 88.0, 87.9};
  EXPECT_EQ(ex::last_counted_improvement(v, 0.0), 7);
  // 1%: 100 -> 90 (counts), 89.5 / 89.4 not below 89.1, 88.0 is (epoch 6), 87.9 not below 87.12.
  EXPECT_EQ(ex::last_counted_improvement(v, 0.01), 6);
  // A tie with the best does not count.
  EXPECT_EQ(ex::last_counted_improvement({3, 2, 2, 2}, 0.0), 2);
}
