// Time of one s_max(J) and one λ_max(G) estimate (mantra::diagnostics, matrix-free power
// iteration) against forming the dense Jacobian (batched VJPs + SVD) for a deep tanh network at a
// critical initialization. CPU; a table, no asserts.
//   bench_diagnostics [--depth 200] [--width 400] [--threads 1] [--fisher-samples 100]
//                     [--tolerance 1e-3] [--dtype float32|float64]
#include <torch/torch.h>

#include <mantra/diagnostics.h>

#include <chrono>
#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

namespace dg = mantra::diagnostics;

int main(int argc, char** argv) {
  int64_t depth = 200, width = 400, threads = 1, fisher_samples = 100;
  double tolerance = 1e-3;
  std::string dtype = "float32";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--depth") depth = std::stoll(v);
    else if (a == "--width") width = std::stoll(v);
    else if (a == "--threads") threads = std::stoll(v);
    else if (a == "--fisher-samples") fisher_samples = std::stoll(v);
    else if (a == "--tolerance") tolerance = std::stod(v);
    else if (a == "--dtype") dtype = v;
    else {
      std::cerr << "bench_diagnostics: unknown argument " << a << "\n";
      return 2;
    }
  }
  torch::set_num_threads(static_cast<int>(threads));
  torch::manual_seed(0);
  const auto opts = torch::TensorOptions().dtype(dtype == "float64" ? torch::kFloat64 : torch::kFloat32);
  const dg::CriticalPoint cp = dg::critical_point("tanh", 1.0 / 64);
  auto gen = at::detail::createCPUGenerator(0);
  std::vector<torch::Tensor> Ws, bs;
  for (int64_t l = 0; l < depth; ++l) {
    torch::Tensor W = torch::empty({width, width}, opts), b = torch::empty({width}, opts);
    dg::orthogonal_init_(W, cp.sigma_w, gen);
    dg::bias_init_(b, cp.sigma_b, gen);
    Ws.push_back(W.requires_grad_(true));
    bs.push_back(b.requires_grad_(true));
  }
  torch::Tensor readout = (torch::randn({10, width}, opts) / std::sqrt(static_cast<double>(width))).requires_grad_(true);
  dg::Function stack = [&](const torch::Tensor& x) {
    torch::Tensor h = x;
    for (int64_t l = 0; l < depth; ++l) h = torch::tanh(torch::linear(h, Ws[l], bs[l]));
    return h;
  };
  dg::Function model = [&](const torch::Tensor& x) { return torch::linear(stack(x), readout); };
  std::vector<torch::Tensor> params = Ws;
  params.insert(params.end(), bs.begin(), bs.end());
  params.push_back(readout);
  // Inputs at the fixed point: N(0, q*) pre-activations through one tanh.
  torch::Tensor x1 = torch::tanh(std::sqrt(cp.q_star) * torch::randn({1, width}, opts));
  torch::Tensor xf = torch::tanh(std::sqrt(cp.q_star) * torch::randn({fisher_samples, width}, opts));

  auto seconds = [](auto t0) { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  dg::JacobianSpectrumOptions jo;
  jo.tolerance = tolerance;
  jo.max_iterations = 2000;
  jo.chi_probes = 0;
  auto t0 = std::chrono::steady_clock::now();
  dg::JacobianSpectrum s = dg::jacobian_spectrum(stack, x1, jo);
  const double t_s = seconds(t0);

  t0 = std::chrono::steady_clock::now();
  torch::Tensor J = dg::jacobian(stack, x1);
  const double t_jac = seconds(t0);
  t0 = std::chrono::steady_clock::now();
  torch::Tensor sv = torch::linalg_svdvals(J[0]);
  const double t_svd = seconds(t0);

  dg::PowerIterationOptions fo;
  fo.tolerance = tolerance;
  fo.max_iterations = 2000;
  t0 = std::chrono::steady_clock::now();
  dg::FisherEigen e = dg::fisher_max_eigenvalue(model, params, "cross_entropy", xf, fo);
  const double t_l = seconds(t0);
  int64_t P = 0;
  for (auto& p : params) P += p.numel();

  std::cout << "bench_diagnostics: tanh network depth " << depth << " x width " << width << ", " << dtype
            << ", critical init q* = 1/64, CPU, " << threads << " thread(s), power-iteration residual " << tolerance
            << "\n\n"
            << "| estimate | what | iterations | time |\n| --- | --- | --- | --- |\n"
            << std::setprecision(4) << "| s_max(J), power iteration (1 input) | s_max = " << s.s_max[0].item<double>()
            << " | " << s.iterations << " | " << t_s << " s (" << 1000 * t_s / s.iterations << " ms/iteration) |\n"
            << "| dense J (" << width << " VJPs batched, 1024 rows per backward pass) + SVD | s_max = " << sv[0].item<double>()
            << " | " << (width + 1023) / 1024 << " pass(es) | "
            << t_jac + t_svd << " s (J " << t_jac << " s, SVD " << t_svd << " s) |\n"
            << "| lambda_max(G), Fisher power iteration (" << fisher_samples << " rows, cross-entropy, P = " << P
            << " parameters) | lambda_max = " << e.lambda_max << " | " << e.iterations << " | " << t_l << " s ("
            << 1000 * t_l / e.iterations << " ms/iteration) |\n"
            << "| dense G | P x P = " << P << "^2 entries (" << static_cast<double>(P) * P * opts.dtype().itemsize() / 1e12
            << " TB): not formed | | |\n";
  return 0;
}
