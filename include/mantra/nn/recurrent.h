// Recurrent networks on time-major sequences (T, N, input_size) → (T, N, output_size):
// the orthogonal RNN of expRNN / dynamic trivialization (Lezcano-Casado & Martínez-Rubio 2019,
// Lezcano-Casado 2019),
//     h_t = modReLU(W_in·x_t + B·h_{t-1}),   y_t = W_out·h_t + c,
// with B constrained to SO(n) by any orthogonal trivialization, and LSTM / tanh-RNN baselines
// with the same interface. The orthogonal recurrence runs as one operator per sequence
// (mantra::orthogonal_rnn), with B computed once per forward.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <mantra/parametrize/constraint.h>

#include <string>
#include <vector>

namespace mantra::nn {

// modReLU(z) = sign(z)·max(|z| + b, 0) with a learnable bias b per feature (expRNN's
// nonlinearity: it keeps the direction of z and thresholds its size).
struct ModReLUOptions {
  explicit ModReLUOptions(int64_t features) : features_(features) {}
  TORCH_ARG(int64_t, features);
};

class ModReLUImpl : public torch::nn::Cloneable<ModReLUImpl> {
 public:
  explicit ModReLUImpl(int64_t features) : ModReLUImpl(ModReLUOptions(features)) {}
  explicit ModReLUImpl(const ModReLUOptions& options);
  void reset() override;
  void reset_parameters();
  // z (..., features).
  torch::Tensor forward(const torch::Tensor& z);
  void pretty_print(std::ostream& stream) const override;

  ModReLUOptions options;
  torch::Tensor bias;  // initialized U(−0.01, 0.01) as in expRNN
};
TORCH_MODULE(ModReLU);

// What every recurrent model offers the trainers. (The models are not Cloneable: save and
// load them with torch::save/torch::load.)
class RecurrentNetImpl : public torch::nn::Module {
 public:
  // x (T, N, input_size) → outputs (T, N, output_size), or the hidden states (T, N, hidden)
  // when the model has no output layer.
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  // The parameters of the model's constraints (trained by the "orthogonal" optimizer of the
  // dynamic-trivialization recipe) and all others.
  std::vector<torch::Tensor> constrained_parameters();
  std::vector<torch::Tensor> unconstrained_parameters();
  // Trainable degrees of freedom: numel of the parameters, counting a constrained weight by
  // the dimension of its manifold (n(n−1)/2 for SO(n)), as papers count them.
  virtual int64_t degrees_of_freedom();
};

struct OrthogonalRNNOptions {
  OrthogonalRNNOptions(int64_t input_size, int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  TORCH_ARG(int64_t, input_size);
  TORCH_ARG(int64_t, hidden_size);
  // Size of the linear read-out y_t = W_out·h_t + c (0: forward returns the hidden states).
  TORCH_ARG(int64_t, output_size) = 0;
  // Trivialization of B: "expm" (B = base·exp(A)), "cayley", "qr", "polar", "householder".
  TORCH_ARG(std::string, triv) = "expm";
  // Initialization of B: "henaff" (rotation blocks with angles U(−π, π)), "cayley" (expRNN's
  // Cayley init), "torus" (as henaff), "uniform" (Haar), "origin" (B = I).
  TORCH_ARG(std::string, init) = "henaff";
  // expRNN's static trivialization at the identity: base = I and the log of the initial B in
  // v, so the optimizer trains A of B = exp(A) itself (needs triv "expm" and a rotation init).
  // Otherwise the base is the initial B and v starts at 0 (DTRIV-K: rebase every K steps).
  TORCH_ARG(bool, chart_at_identity) = false;
  // A bias in the input projection W_in·x_t (+ a) (expRNN has none: modReLU's bias acts as one).
  TORCH_ARG(bool, input_bias) = false;
};

class OrthogonalRNNImpl : public RecurrentNetImpl {
 public:
  OrthogonalRNNImpl(int64_t input_size, int64_t hidden_size)
      : OrthogonalRNNImpl(OrthogonalRNNOptions(input_size, hidden_size)) {}
  explicit OrthogonalRNNImpl(const OrthogonalRNNOptions& options);
  // Draws every parameter anew (the constructor calls it).
  void reset_parameters();
  torch::Tensor forward(const torch::Tensor& x) override;
  // The hidden states (T, N, hidden) from the initial state h0 (N, hidden) (zeros if undefined).
  torch::Tensor hidden_states(const torch::Tensor& x, const torch::Tensor& h0 = {});
  // The recurrent matrix B (computed once per ParametrizationScope).
  torch::Tensor recurrent_matrix();
  int64_t degrees_of_freedom() override;
  void pretty_print(std::ostream& stream) const override;

  OrthogonalRNNOptions options;
  torch::nn::Linear input_kernel{nullptr};   // W_in
  parametrize::Constraint recurrent{nullptr};  // B
  ModReLU modrelu{nullptr};
  torch::nn::Linear output_layer{nullptr};   // W_out, c (when output_size > 0)
};
TORCH_MODULE(OrthogonalRNN);

struct RecurrentBaselineOptions {
  RecurrentBaselineOptions(int64_t input_size, int64_t hidden_size)
      : input_size_(input_size), hidden_size_(hidden_size) {}
  TORCH_ARG(int64_t, input_size);
  TORCH_ARG(int64_t, hidden_size);
  TORCH_ARG(int64_t, output_size) = 0;
};

// One-layer LSTM (torch::nn::LSTM) with the same read-out and interface.
class LSTMBaselineImpl : public RecurrentNetImpl {
 public:
  explicit LSTMBaselineImpl(const RecurrentBaselineOptions& options);
  // Draws every parameter anew (the constructor calls it).
  void reset_parameters();
  torch::Tensor forward(const torch::Tensor& x) override;
  RecurrentBaselineOptions options;
  torch::nn::LSTM lstm{nullptr};
  torch::nn::Linear output_layer{nullptr};
};
TORCH_MODULE(LSTMBaseline);

// One-layer tanh RNN (torch::nn::RNN) with the same read-out and interface.
class RNNBaselineImpl : public RecurrentNetImpl {
 public:
  explicit RNNBaselineImpl(const RecurrentBaselineOptions& options);
  // Draws every parameter anew (the constructor calls it).
  void reset_parameters();
  torch::Tensor forward(const torch::Tensor& x) override;
  RecurrentBaselineOptions options;
  torch::nn::RNN rnn{nullptr};
  torch::nn::Linear output_layer{nullptr};
};
TORCH_MODULE(RNNBaseline);

}  // namespace mantra::nn
