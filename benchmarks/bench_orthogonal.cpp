// Time of one forward+backward of the orthogonal map φ(v) = R_B(P_B(v)) on CPU for tall
// (embedding-like) and square weights, per retraction; median of repeated runs after warm-up.
// Prints a table; asserts nothing.
//   bench_orthogonal [--repeats N] [--threads T]
#include <torch/torch.h>

#include <mantra/mantra.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace mantra;

int main(int argc, char** argv) {
  int repeats = 7;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--repeats") repeats = std::atoi(argv[i + 1]);
    else if (flag == "--threads") torch::set_num_threads(std::atoi(argv[i + 1]));
    else {
      std::fprintf(stderr, "unknown flag %s (flags: --repeats N --threads T)\n", flag.c_str());
      return 2;
    }
  }
  std::printf("orthogonal map forward+backward on CPU, float32, %d threads, median of %d runs (ms)\n",
              torch::get_num_threads(), repeats);
  std::printf("%-12s %10s %10s %10s %10s\n", "shape", "exp", "cayley", "qr", "polar");
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{30000, 50}, {1024, 1024}, {4096, 256}, {256, 256}};
  for (auto [n, k] : shapes) {
    std::printf("%-12s", (std::to_string(n) + "x" + std::to_string(k)).c_str());
    for (auto r : {manifolds::Retraction::Exp, manifolds::Retraction::Cayley, manifolds::Retraction::QR,
                   manifolds::Retraction::Polar}) {
      torch::manual_seed(0);
      auto M = std::make_shared<manifolds::Stiefel>(manifolds::StiefelOptions().set_special(n == k));
      parametrize::Parametrization p(M, {n, k}, parametrize::ParametrizationOptions().retraction(r));
      {
        torch::NoGradGuard ng;
        p->v.normal_(0, 0.01);
      }
      torch::Tensor C = torch::randn({n, k});
      std::vector<double> times;
      for (int i = 0; i < repeats + 1; ++i) {
        const auto start = std::chrono::steady_clock::now();
        (p->forward() * C).sum().backward();
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        if (i > 0) times.push_back(ms);  // the first run is warm-up
        p->v.mutable_grad() = torch::Tensor();
      }
      std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
      std::printf(" %10.2f", times[times.size() / 2]);
      std::fflush(stdout);
    }
    std::printf("\n");
  }
  return 0;
}
