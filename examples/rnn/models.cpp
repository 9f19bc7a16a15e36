#include "models.h"

#include <c10/util/Exception.h>
#include <torch/nn/init.h>
#include <torch/nn/utils/clip_grad.h>

#include <mantra/ops.h>

#include <cmath>

#include <unordered_set>

namespace mantra::examples {
using mantra::nn::check_recurrent_sizes;
using mantra::nn::check_sequence_input;

std::vector<torch::Tensor> RecurrentNetImpl::unconstrained_parameters() {
  std::unordered_set<const void*> constrained;
  for (const auto& p : constrained_parameters()) constrained.insert(p.unsafeGetTensorImpl());
  std::vector<torch::Tensor> out;
  for (const auto& p : parameters())
    if (!constrained.count(p.unsafeGetTensorImpl())) out.push_back(p);
  return out;
}

int64_t RecurrentNetImpl::degrees_of_freedom() {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

OrthogonalRNNNetImpl::OrthogonalRNNNetImpl(const nn::OrthogonalRNNOptions& options)
    : rnn(register_module("rnn", nn::OrthogonalRNN(options))) {}

torch::Tensor OrthogonalRNNNetImpl::forward(const torch::Tensor& x) { return rnn->forward(x); }

LSTMBaselineImpl::LSTMBaselineImpl(const RecurrentBaselineOptions& options_) : options(options_) {
  check_recurrent_sizes(options.input_size(), options.hidden_size(), options.output_size(), "LSTMBaseline");
  lstm = register_module("lstm", torch::nn::LSTM(torch::nn::LSTMOptions(options.input_size(), options.hidden_size())));
  if (options.output_size() > 0) {
    output_layer = register_module("output_layer", torch::nn::Linear(options.hidden_size(), options.output_size()));
  }
}

void LSTMBaselineImpl::reset_parameters() {
  lstm->reset_parameters();
  if (output_layer) output_layer->reset_parameters();
}

void LSTMBaselineImpl::set_forget_bias(double value) {
  torch::NoGradGuard no_grad;
  const int64_t H = options.hidden_size();
  for (const auto& p : lstm->named_parameters()) {
    if (p.key().rfind("bias_ih", 0) == 0) p.value().narrow(0, H, H).fill_(value);
    if (p.key().rfind("bias_hh", 0) == 0) p.value().narrow(0, H, H).zero_();
  }
}

torch::Tensor LSTMBaselineImpl::forward(const torch::Tensor& x) {
  check_sequence_input(x, options.input_size(), "LSTMBaseline");
  torch::Tensor h = std::get<0>(lstm->forward(x));
  return output_layer ? output_layer->forward(h) : h;
}

RNNBaselineImpl::RNNBaselineImpl(const RecurrentBaselineOptions& options_) : options(options_) {
  check_recurrent_sizes(options.input_size(), options.hidden_size(), options.output_size(), "RNNBaseline");
  rnn = register_module(
      "rnn", torch::nn::RNN(torch::nn::RNNOptions(options.input_size(), options.hidden_size()).nonlinearity(torch::kTanh)));
  if (options.output_size() > 0) {
    output_layer = register_module("output_layer", torch::nn::Linear(options.hidden_size(), options.output_size()));
  }
}

void RNNBaselineImpl::reset_parameters() {
  rnn->reset_parameters();
  if (output_layer) output_layer->reset_parameters();
}

torch::Tensor RNNBaselineImpl::forward(const torch::Tensor& x) {
  check_sequence_input(x, options.input_size(), "RNNBaseline");
  torch::Tensor h = std::get<0>(rnn->forward(x));
  return output_layer ? output_layer->forward(h) : h;
}

CayleyRNNNetImpl::CayleyRNNNetImpl(const CayleyRNNOptions& options_) : options(options_) {
  check_recurrent_sizes(options.input_size(), options.hidden_size(), options.output_size(), "CayleyRNNNet");
  const int64_t H = options.hidden_size();
  input_kernel = register_module("input_kernel",
                                 torch::nn::Linear(torch::nn::LinearOptions(options.input_size(), H).bias(false)));
  recurrent_skew = register_parameter("recurrent_skew", torch::zeros({H, H}));
  modrelu = register_module("modrelu", nn::ModReLU(H));
  if (options.output_size() > 0)
    output_layer = register_module("output_layer", torch::nn::Linear(H, options.output_size()));
  reset_parameters();
}

void CayleyRNNNetImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_normal_(input_kernel->weight, 0.0, torch::kFanIn, torch::kReLU);  // as OrthogonalRNN
  const int64_t H = options.hidden_size(), blocks = H / 2;
  const torch::Tensor s = torch::empty({blocks}, torch::kFloat64).uniform_(0.0, M_PI / 2);
  const torch::Tensor d = -torch::tan(s / 2);  // expRNN: -sqrt((1 - cos s) / (1 + cos s))
  torch::Tensor p = torch::zeros({H, H}, torch::kFloat64);
  for (int64_t i = 0; i < blocks; ++i) p[2 * i][2 * i + 1] = d[i];
  recurrent_skew.copy_(p);
  modrelu->reset_parameters();
  if (output_layer) output_layer->reset_parameters();
}

torch::Tensor CayleyRNNNetImpl::skew() const {
  const torch::Tensor u = recurrent_skew.triu(1);
  return u - u.transpose(0, 1);
}

torch::Tensor CayleyRNNNetImpl::recurrent_matrix() const {
  const torch::Tensor A = skew();
  const torch::Tensor I = torch::eye(A.size(0), A.options());
  return torch::linalg_solve(I + A, I - A);
}

torch::Tensor CayleyRNNNetImpl::forward(const torch::Tensor& x) {
  check_sequence_input(x, options.input_size(), "CayleyRNNNet");
  const torch::Tensor u = input_kernel->forward(x);
  const torch::Tensor h0 = torch::zeros({x.size(1), options.hidden_size()}, u.options());
  const torch::Tensor h = mantra::orthogonal_rnn(u, h0, recurrent_matrix(), modrelu->bias);
  return output_layer ? output_layer->forward(h) : h;
}

int64_t CayleyRNNNetImpl::degrees_of_freedom() {
  int64_t n = 0;
  for (const auto& p : unconstrained_parameters()) n += p.numel();
  const int64_t H = options.hidden_size();
  return n + H * (H - 1) / 2;
}

TrainingRecipe lstm_recipe(const std::string& name, double adam_lr) {
  TrainingRecipe r;
  if (name == "adam") {
    r.lr = adam_lr;
    return r;
  }
  TORCH_CHECK_VALUE(name == "urnn", "option --lstm-recipe must be adam or urnn, got '", name, "'");
  r.optimizer = "rmsprop";
  r.lr = 1e-3;
  r.clip_value = 1.0;
  r.forget_bias = 1.0;
  return r;
}

int64_t last_counted_improvement(const std::vector<double>& valid_losses, double min_delta) {
  int64_t at = 0;
  double ref = INFINITY;
  for (size_t i = 0; i < valid_losses.size(); ++i) {
    if (at == 0 || valid_losses[i] < ref * (1 - min_delta)) {
      ref = valid_losses[i];
      at = static_cast<int64_t>(i) + 1;
    }
  }
  return at;
}

void clip_gradients(const std::vector<torch::Tensor>& params, double clip_norm, double clip_value) {
  if (clip_norm > 0) torch::nn::utils::clip_grad_norm_(params, clip_norm);
  if (clip_value > 0) torch::nn::utils::clip_grad_value_(params, clip_value);
}

}  // namespace mantra::examples
