// Links against an installed mantra: checks exp of a rotation generator, and a
// Constrained<torch::nn::Linear> (a header template) through a plain optimizer step.
#include <torch/torch.h>

#include <mantra/mantra.h>
#include <mantra/nn/constrained.h>

#include <cmath>
#include <iostream>

int main() {
  // exp([[0, -t], [t, 0]]) is the rotation by t.
  const double t = 0.75;
  at::Tensor A = at::zeros({2, 2}, at::kDouble);
  A[0][1] = -t;
  A[1][0] = t;
  at::Tensor R = mantra::expm(A);
  at::Tensor expected = at::tensor({std::cos(t), -std::sin(t), std::sin(t), std::cos(t)}, at::kDouble).view({2, 2});
  const double err = (R - expected).abs().max().item<double>();
  std::cout << "mantra " << MANTRA_VERSION << ": expm(rotation generator) error " << err << "\n";
  std::cout << "expm(zeros(3, 3)) =\n" << mantra::expm(at::zeros({3, 3})) << "\n";
  if (err > 1e-14) {
    std::cerr << "error too large\n";
    return 1;
  }

  // An orthogonal Linear, one SGD step, then a forward: the output uses the new point.
  torch::manual_seed(0);
  mantra::nn::Constrained<torch::nn::Linear> linear(torch::nn::LinearOptions(4, 4).bias(false));
  linear->to(torch::kFloat64);
  mantra::parametrize::orthogonal(*linear->module, "weight");
  torch::optim::SGD sgd(linear->parameters(), torch::optim::SGDOptions(0.1));
  const at::Tensor x = torch::randn({3, 4}, torch::kFloat64);
  linear(x).pow(3).sum().backward();
  const at::Tensor before = linear->module->weight.detach().clone();
  sgd.step();
  const at::Tensor y = linear(x);
  const at::Tensor W = linear->module->weight.detach();
  const double moved = (W - before).abs().max().item<double>();
  const double orth = (W.t().mm(W) - torch::eye(4, torch::kFloat64)).abs().max().item<double>();
  const double out = (y - x.mm(W.t())).abs().max().item<double>();
  std::cout << "Constrained<Linear>: moved " << moved << ", |W^T W - I| " << orth << ", output error " << out << "\n";
  if (moved < 1e-3 || orth > 1e-12 || out > 1e-14) {
    std::cerr << "Constrained<Linear> check failed\n";
    return 1;
  }
  return 0;
}
