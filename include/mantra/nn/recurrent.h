// Recurrent networks on time-major sequences (T, N, input_size) → (T, N, output_size):
// the orthogonal RNN of expRNN / dynamic trivialization (Lezcano-Casado & Martínez-Rubio 2019,
// Lezcano-Casado 2019),
//     h_t = modReLU(W_in·x_t + B·h_{t-1}),   y_t = W_out·h_t + c,
// with B constrained to SO(n) by any orthogonal trivialization. The orthogonal recurrence runs
// as one operator per sequence (mantra::orthogonal_rnn), with B computed once per forward;
// modReLU is the mantra::modrelu operator.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <mantra/parametrize/constraint.h>

#include <string>
#include <vector>

namespace mantra::nn {

// modReLU(z) = sign(z)·max(|z| + b, 0) with a learnable bias b per feature (expRNN's
// nonlinearity: it keeps the sign of z and thresholds its size). Its forward is the
// mantra::modrelu operator.
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

// (Not Cloneable: save and load it with torch::save/torch::load.)
class OrthogonalRNNImpl : public torch::nn::Module {
 public:
  OrthogonalRNNImpl(int64_t input_size, int64_t hidden_size)
      : OrthogonalRNNImpl(OrthogonalRNNOptions(input_size, hidden_size)) {}
  explicit OrthogonalRNNImpl(const OrthogonalRNNOptions& options);
  // Draws every parameter anew (the constructor calls it).
  void reset_parameters();
  // x (T, N, input_size) → outputs (T, N, output_size), or the hidden states (T, N, hidden)
  // when output_size is 0.
  torch::Tensor forward(const torch::Tensor& x);
  // The hidden states (T, N, hidden) from the initial state h0 (N, hidden) (zeros if undefined).
  torch::Tensor hidden_states(const torch::Tensor& x, const torch::Tensor& h0 = {});
  // The recurrent matrix B (computed once per ParametrizationScope).
  torch::Tensor recurrent_matrix();
  // The parameters of the recurrent constraint (trained by the "orthogonal" optimizer of the
  // dynamic-trivialization recipe) and all others.
  std::vector<torch::Tensor> constrained_parameters();
  std::vector<torch::Tensor> unconstrained_parameters();
  // Trainable degrees of freedom as papers count them: numel of the unconstrained parameters
  // plus n(n−1)/2 for B ∈ SO(n).
  int64_t degrees_of_freedom();
  void pretty_print(std::ostream& stream) const override;

  OrthogonalRNNOptions options;
  torch::nn::Linear input_kernel{nullptr};   // W_in
  parametrize::Constraint recurrent{nullptr};  // B
  ModReLU modrelu{nullptr};
  torch::nn::Linear output_layer{nullptr};   // W_out, c (when output_size > 0)
};
TORCH_MODULE(OrthogonalRNN);

// The argument checks of recurrent layers (shared with the training program's baselines).
void check_recurrent_sizes(int64_t input_size, int64_t hidden_size, int64_t output_size, const char* who);
void check_sequence_input(const torch::Tensor& x, int64_t input_size, const char* who);

}  // namespace mantra::nn
