// The models mantra_train_rnn compares, behind one interface: mantra's orthogonal RNN (the
// library's mantra::nn::OrthogonalRNN) and two baselines, torch's one-layer LSTM and tanh RNN,
// with the same linear read-out. Only the trainer (and its tests) use them.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <mantra/nn/recurrent.h>

#include <cmath>
#include <string>
#include <vector>

namespace mantra::examples {

// What the trainer needs of a model. (Not Cloneable: save and load with torch::save/torch::load.)
class RecurrentNetImpl : public torch::nn::Module {
 public:
  // x (T, N, input_size) → outputs (T, N, output_size), or the hidden states (T, N, hidden)
  // when the model has no read-out.
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  // The read-out y = W_out·h + c (an empty holder when the model has none).
  virtual torch::nn::Linear readout() = 0;
  // The parameters of the model's constraints (trained by the "orthogonal" optimizer of the
  // dynamic-trivialization recipe; none for the baselines) and all others.
  virtual std::vector<torch::Tensor> constrained_parameters() { return {}; }
  std::vector<torch::Tensor> unconstrained_parameters();
  // Trainable degrees of freedom as papers count them (numel of the parameters, a constrained
  // weight counted by the dimension of its manifold).
  virtual int64_t degrees_of_freedom();
};

// mantra::nn::OrthogonalRNN (the submodule "rnn") behind the trainer's interface.
class OrthogonalRNNNetImpl : public RecurrentNetImpl {
 public:
  explicit OrthogonalRNNNetImpl(const nn::OrthogonalRNNOptions& options);
  torch::Tensor forward(const torch::Tensor& x) override;
  torch::nn::Linear readout() override { return rnn->output_layer; }
  std::vector<torch::Tensor> constrained_parameters() override { return rnn->constrained_parameters(); }
  int64_t degrees_of_freedom() override { return rnn->degrees_of_freedom(); }
  nn::OrthogonalRNN rnn{nullptr};
};
TORCH_MODULE(OrthogonalRNNNet);

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
  // The forget gate's bias b_f = value (torch's two bias vectors: b_ih's forget slice = value,
  // b_hh's = 0; torch orders the gates i, f, g, o).
  void set_forget_bias(double value);
  torch::Tensor forward(const torch::Tensor& x) override;
  torch::nn::Linear readout() override { return output_layer; }
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
  torch::nn::Linear readout() override { return output_layer; }
  RecurrentBaselineOptions options;
  torch::nn::RNN rnn{nullptr};
  torch::nn::Linear output_layer{nullptr};
};
TORCH_MODULE(RNNBaseline);

// The published scoRNN-style Cayley RNN (Helfrich et al. 2018; expRNN's "cayley" model):
// h_t = modReLU(W_in·x_t + B·h_{t-1}), B = (I + A)⁻¹(I − A) with A skew-symmetric, a static
// chart at the identity, A = triu(P, 1) − triu(P, 1)ᵀ trained directly (P the parameter
// "recurrent_skew"). Init: expRNN's cayley_init_, 2×2 blocks A[2i, 2i+1] = −tan(s_i/2),
// s_i ~ U(0, π/2), so B starts as rotations by the angles s_i (a last odd row/column zero).
// W_in, modReLU and the read-out as mantra::nn::OrthogonalRNN.
struct CayleyRNNOptions {
  CayleyRNNOptions(int64_t input_size, int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  TORCH_ARG(int64_t, input_size);
  TORCH_ARG(int64_t, hidden_size);
  TORCH_ARG(int64_t, output_size) = 0;
};

class CayleyRNNNetImpl : public RecurrentNetImpl {
 public:
  explicit CayleyRNNNetImpl(const CayleyRNNOptions& options);
  void reset_parameters();
  torch::Tensor forward(const torch::Tensor& x) override;
  torch::nn::Linear readout() override { return output_layer; }
  std::vector<torch::Tensor> constrained_parameters() override { return {recurrent_skew}; }
  int64_t degrees_of_freedom() override;
  torch::Tensor skew() const;              // A
  torch::Tensor recurrent_matrix() const;  // B = (I + A)⁻¹(I − A)
  CayleyRNNOptions options;
  torch::nn::Linear input_kernel{nullptr};
  torch::Tensor recurrent_skew;  // P
  nn::ModReLU modrelu{nullptr};
  torch::nn::Linear output_layer{nullptr};
};
TORCH_MODULE(CayleyRNNNet);

// How a model is trained beside its architecture. "adam" (mantra's default for every
// unconstrained parameter): Adam, no clipping, torch's LSTM init. "urnn" (the LSTM of the uRNN
// TIMIT pipeline): forget-gate bias 1, RMSprop lr 1e-3 (torch's RMSprop: alpha 0.99, eps 1e-8),
// elementwise gradient clipping at 1.
struct TrainingRecipe {
  std::string optimizer = "adam";
  double lr = 1e-3;
  double clip_value = 0;    // elementwise |g| <= clip_value (0: off)
  double forget_bias = NAN;  // LSTM forget-gate bias (NaN: torch's init)
};
TrainingRecipe lstm_recipe(const std::string& name, double adam_lr);

// Early stopping (--patience, --min-delta): the 1-based epoch of the last validation loss that
// counted as an improvement, 0 for no epochs. The first loss counts; a later one counts when it is
// below (1 - min_delta) x the last counted one (min_delta 0: every new best counts). A run stops
// once `patience` epochs have passed since it.
int64_t last_counted_improvement(const std::vector<double>& valid_losses, double min_delta);

// Gradient clipping: by global norm (clip_norm > 0), then elementwise (clip_value > 0).
void clip_gradients(const std::vector<torch::Tensor>& params, double clip_norm, double clip_value);

}  // namespace mantra::examples
