#include "models.h"

#include <c10/util/Exception.h>

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

}  // namespace mantra::examples
