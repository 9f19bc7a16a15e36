// One training step (forward + backward + DTRIV-RMSprop/Adam step) of the C++ orthogonal RNN
// used by mantra_train_rnn, and of its parts (the orthogonal_rnn operator forward and
// backward) against their GEMM bounds, on CPU; median of repeated runs after warm-up. Prints a
// table; asserts nothing.
//   bench_rnn_step [--hidden H] [--steps T] [--batch N] [--features F] [--repeats R] [--threads P]
//                  [--clock wall|cpu]
// (defaults: the TIMIT setup of the papers: H 224, T 200, N 128, F 129 inputs and outputs).
// The bounds: the forward needs the T per-step GEMMs h_{t-1}·Bᵀ; the backward the T per-step
// GEMMs grad_t·B plus the weight gradient Σ_t grad_tᵀ h_{t-1} (one (H × TN)·(TN × H) GEMM), as
// many flops again. --clock cpu times the process's CPU time (all threads; steadier than wall
// time on a loaded machine).
#include <torch/torch.h>

#include <mantra/mantra.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace {
bool cpu_clock = false;
double now_ms() {
  if (cpu_clock) return 1e3 * static_cast<double>(std::clock()) / CLOCKS_PER_SEC;
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
double median_ms(int repeats, const std::function<void()>& f) {
  f();  // warm-up
  f();
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    const double s = now_ms();
    f();
    t.push_back(now_ms() - s);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}
}  // namespace

int main(int argc, char** argv) {
  int64_t H = 224, T = 200, N = 128, F = 129;
  int repeats = 7;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--clock") {
      cpu_clock = std::string(argv[i + 1]) == "cpu";
      continue;
    }
    const int64_t v = std::atoll(argv[i + 1]);
    if (flag == "--hidden") H = v;
    else if (flag == "--steps") T = v;
    else if (flag == "--batch") N = v;
    else if (flag == "--features") F = v;
    else if (flag == "--repeats") repeats = static_cast<int>(v);
    else if (flag == "--threads") torch::set_num_threads(static_cast<int>(v));
    else {
      std::fprintf(stderr, "unknown flag %s (--hidden --steps --batch --features --repeats --threads --clock)\n",
                   flag.c_str());
      return 2;
    }
  }
  torch::manual_seed(0);
  mantra::nn::OrthogonalRNN rnn(mantra::nn::OrthogonalRNNOptions(F, H).output_size(F));
  auto rms = std::make_shared<torch::optim::RMSprop>(rnn->constrained_parameters(), torch::optim::RMSpropOptions(1e-4));
  torch::optim::Adam adam(rnn->unconstrained_parameters(), torch::optim::AdamOptions(1e-3));
  mantra::optim::DynamicTrivialization dtriv(rms, *rnn, 100);
  torch::Tensor x = torch::randn({T, N, F}), y = torch::randn({T, N, F});
  const double step = median_ms(repeats, [&] {
    dtriv.zero_grad();
    adam.zero_grad();
    (rnn->forward(x) - y).pow(2).mean().backward();
    dtriv.step();
    adam.step();
  });
  torch::Tensor u = torch::randn({T, N, H}), h0 = torch::zeros({N, H}), b = torch::zeros({H});
  torch::Tensor B = rnn->recurrent_matrix().detach();
  torch::Tensor hidden;
  const double fwd = median_ms(repeats, [&] { hidden = mantra::orthogonal_rnn(u, h0, B, b); });
  torch::Tensor g = torch::randn_like(hidden);
  const double bwd = median_ms(repeats, [&] { mantra::orthogonal_rnn_backward(g, hidden, h0, B, b); });
  // The GEMMs alone, on random states (the forward multiplies by Bᵀ, the backward by B).
  torch::Tensor h = torch::randn({N, H});
  const double gemm_fwd = median_ms(repeats, [&] {
    for (int64_t t = 0; t < T; ++t) torch::mm(h, B.t());
  });
  const double gemm_bwd_step = median_ms(repeats, [&] {
    for (int64_t t = 0; t < T; ++t) torch::mm(h, B);
  });
  const double gemm_weight = median_ms(repeats, [&] { torch::mm(g.reshape({-1, H}).t(), hidden.reshape({-1, H})); });
  std::printf("C++ orthogonal RNN, CPU float32, %d threads, hidden %lld, %lld steps, batch %lld, %lld features; "
              "median of %d (ms, %s clock)\n",
              torch::get_num_threads(), (long long)H, (long long)T, (long long)N, (long long)F, repeats,
              cpu_clock ? "cpu" : "wall");
  std::printf("%-52s %10.2f\n", "train step (fwd+bwd+DTRIV-RMSprop/Adam)", step);
  std::printf("%-52s %10.2f\n", "orthogonal_rnn forward", fwd);
  std::printf("%-52s %10.2f\n", "orthogonal_rnn backward", bwd);
  std::printf("%-52s %10.2f\n", "T x (N x H)·(H x H)ᵀ GEMM alone (forward bound)", gemm_fwd);
  std::printf("%-52s %10.2f\n", "T x (N x H)·(H x H) GEMM alone", gemm_bwd_step);
  std::printf("%-52s %10.2f\n", "(H x TN)·(TN x H) weight-gradient GEMM", gemm_weight);
  std::printf("%-52s %10.2f\n", "forward / its GEMMs", fwd / gemm_fwd);
  std::printf("%-52s %10.2f\n", "backward / per-step GEMMs", bwd / gemm_bwd_step);
  std::printf("%-52s %10.2f\n", "backward / (per-step + weight-gradient GEMMs)", bwd / (gemm_bwd_step + gemm_weight));
  return 0;
}
