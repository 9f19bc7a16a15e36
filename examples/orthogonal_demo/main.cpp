// Demo: learn a rotation with a torch::nn::Linear whose weight is constrained to SO(n)
// (mantra::parametrize::orthogonal, W = R_base(P_base(v)) by the exponential map), wrapped in
// mantra::nn::Constrained so that each forward recomputes W: a plain torch::optim::Adam, no
// scope, no refresh. Prints the loss and the orthogonality error ‖WᵀW − I‖ as training goes.
#include <torch/torch.h>

#include <mantra/mantra.h>
#include <mantra/nn/constrained.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  int64_t n = 64, steps = 400, batch = 256;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int64_t value = std::atoll(argv[i + 1]);
    if (flag == "--n") n = value;
    else if (flag == "--steps") steps = value;
    else if (flag == "--batch") batch = value;
    else {
      std::fprintf(stderr, "unknown flag %s (flags: --n N --steps N --batch N)\n", flag.c_str());
      return 2;
    }
  }
  torch::manual_seed(0);
  // Target: a random rotation; data y = Q x + small noise.
  torch::Tensor G = torch::randn({n, n}, torch::kFloat64);
  torch::Tensor target = mantra::expm((G - G.t()) * 0.5);
  mantra::nn::Constrained<torch::nn::Linear> model(torch::nn::LinearOptions(n, n).bias(false));
  model->to(torch::kFloat64);
  // Start at the identity: W = exp(skew(v)), the chart in which the target's logarithm is small.
  mantra::parametrize::orthogonal(*model->module, "weight", "expm")->sample("origin");
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(0.02));

  std::printf("mantra %s demo: fit a %lld x %lld rotation, Constrained<Linear> with orthogonal(expm), Adam lr 0.02\n",
              MANTRA_VERSION, static_cast<long long>(n), static_cast<long long>(n));
  std::printf("%6s %14s %16s\n", "step", "loss", "|W^T W - I|_F");
  const auto start = std::chrono::steady_clock::now();
  double loss_value = 0, orth_error = 0;
  for (int64_t step = 0; step <= steps; ++step) {
    torch::Tensor x = torch::randn({batch, n}, torch::kFloat64);
    torch::Tensor y = torch::matmul(x, target.t()) + 0.01 * torch::randn({batch, n}, torch::kFloat64);
    torch::Tensor loss = (model(x) - y).pow(2).sum(1).mean();
    opt.zero_grad();
    loss.backward();
    opt.step();
    loss_value = loss.item<double>();
    const torch::Tensor W = model->module->weight.detach();  // the value of this step's forward
    orth_error = (torch::matmul(W.t(), W) - torch::eye(n, torch::kFloat64)).norm().item<double>();
    if (step % 50 == 0) std::printf("%6lld %14.6e %16.3e\n", static_cast<long long>(step), loss_value, orth_error);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The global optimum is the target rotation; the loss then equals the noise, n * 1e-4.
  std::printf("done in %.1f s: final loss %.3e (noise floor %.3e), orthogonality error %.1e\n", seconds,
              loss_value, n * 1e-4, orth_error);
  return (orth_error < 1e-10 && loss_value < 2 * n * 1e-4) ? 0 : 1;
}
