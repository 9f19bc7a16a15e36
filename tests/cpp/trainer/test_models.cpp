// The trainer's models (examples/rnn/models.h): the orthogonal RNN and the LSTM / tanh-RNN
// baselines behind one interface.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models.h"

#include <string>

namespace ex = mantra::examples;

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
