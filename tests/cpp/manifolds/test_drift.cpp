// Drift at realistic learning rates (issue 17): every manifold × its default retraction, in
// float32, 100,000 noisy gradient steps, with and without the optimizer's stabilize (a
// re-projection every 100 steps); every iterate's check_point within atol = 1e-5 at the end
// and at every 10,000 steps. Then RiemannianSGD on a Brockett problem at lr 0.1 and 0.2 ends on
// the manifold with stabilize = 100 (the default) and 0.
//
// The two variants run as one batch of two points (row 0 re-projected, row 1 not), so each
// case costs one retraction per step; sizes are small. The cost is op overhead (20–350 µs a
// step on one core, Stiefel's exp the dearest): about 1–3 minutes for the 1.1M steps.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mantra/mantra.h>
#include <mantra/optim/riemannian_sgd.h>

#include <functional>
#include <memory>
#include <string>

using namespace mantra::manifolds;

namespace {

struct DCase {
  std::string label;
  std::function<std::shared_ptr<Manifold>()> make;
  std::vector<int64_t> point;  // one point's shape
  double lr;
};

std::vector<DCase> drift_cases() {
  return {
      {"Stiefel", [] { return std::make_shared<Stiefel>(); }, {6, 3}, 0.05},
      {"SO", [] { return std::make_shared<Stiefel>(StiefelOptions().set_special(true)); }, {3, 3}, 0.05},
      {"Grassmannian", [] { return std::make_shared<Grassmannian>(); }, {5, 2}, 0.05},
      {"Sphere", [] { return std::make_shared<Sphere>(); }, {4}, 0.05},
      {"Oblique", [] { return std::make_shared<Oblique>(); }, {4, 3}, 0.05},
      {"FixedRank", [] { return std::make_shared<FixedRank>(2); }, {4, 3}, 0.02},
      {"FixedRankPSD", [] { return std::make_shared<FixedRankPSD>(2); }, {4, 4}, 0.02},
      {"GLPlus", [] { return std::make_shared<GLPlus>(3); }, {3, 3}, 0.02},
      {"SL", [] { return std::make_shared<SL>(3); }, {3, 3}, 0.02},
      {"SPD", [] { return std::make_shared<SPD>(); }, {3, 3}, 0.02},
      {"Lorentz", [] { return std::make_shared<Lorentz>(); }, {3}, 0.02},
      {"PoincareBall", [] { return std::make_shared<PoincareBall>(); }, {3}, 0.02},
  };
}

}  // namespace

TEST(Drift, Float32StaysWithin1e5After100kStepsWithAndWithoutStabilize) {
  constexpr int kSteps = 100000, kStabilize = 100, kCheckEvery = 10000, kNoise = 16;
  for (const DCase& c : drift_cases()) {
    const auto M = c.make();
    torch::manual_seed(12);
    std::vector<int64_t> shape = {2};
    shape.insert(shape.end(), c.point.begin(), c.point.end());
    const torch::Tensor start = M->random(c.point, torch::kFloat32);
    torch::Tensor X = start.unsqueeze(0).repeat_interleave(2, 0).contiguous();
    const torch::Tensor T = M->random(c.point, torch::kFloat32).unsqueeze(0).expand(shape);
    std::vector<torch::Tensor> noise;
    for (int i = 0; i < kNoise; ++i) noise.push_back(torch::randn(shape, torch::kFloat32));
    c10::InferenceMode inference;  // no autograd bookkeeping: the loop is op overhead
    for (int step = 1; step <= kSteps; ++step) {
      // A pull toward T plus gradient noise of the same size: the iterate keeps moving.
      const torch::Tensor G = (X - T) + noise[step % kNoise];
      X = M->retract(X, -c.lr * M->egrad_to_rgrad(X, G));
      if (step % kStabilize == 0) X.select(0, 0).copy_(M->project(X.select(0, 0)));
      if (step % kCheckEvery == 0) {
        for (int b = 0; b < 2; ++b) {
          ASSERT_EQ(M->check_point(X.select(0, b), 1e-5), "")
              << c.label << (b ? " without" : " with") << " stabilize, step " << step;
        }
      }
    }
  }
}

TEST(Drift, RiemannianSGDOnBrockettEndsOnTheManifold) {
  // f(X) = tr(XᵀAXN) on St(20, 5), A symmetric with spectrum in [0, 1], N = diag(5, …, 1):
  // its minimizers are the eigenvectors of the smallest eigenvalues of A.
  for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
    for (double lr : {0.1, 0.2}) {
      for (int64_t stabilize : {100, 0}) {
        torch::manual_seed(13);
        auto st = std::make_shared<Stiefel>();
        const torch::Tensor Q = st->random({20, 20}, dtype);
        const torch::Tensor A = torch::matmul(Q * torch::linspace(0, 1, 20, dtype), Q.mT());
        const torch::Tensor N = torch::diag(torch::arange(5, 0, -1, dtype)) / 5;
        torch::Tensor X = st->random({20, 5}, dtype).requires_grad_(true);
        mantra::optim::RiemannianSGD opt({X}, mantra::optim::RiemannianSGDOptions(lr).manifold(st).stabilize(stabilize));
        torch::Tensor loss;
        for (int step = 0; step < 3000; ++step) {
          opt.zero_grad();
          loss = torch::trace(torch::matmul(torch::matmul(torch::matmul(X.mT(), A), X), N));
          loss.backward();
          opt.step();
        }
        const double atol = dtype == torch::kDouble ? 1e-12 : 1e-5;
        EXPECT_EQ(st->check_point(X.detach(), atol), "") << torch::toString(dtype) << " lr " << lr << " stabilize "
                                                        << stabilize;
        // It converged: the minimum is Σ_i N_ii λ_i over the 5 smallest eigenvalues.
        const torch::Tensor lam = torch::linspace(0, 1, 20, dtype).narrow(0, 0, 5);
        const double best = (lam * torch::arange(5, 0, -1, dtype) / 5).sum().item<double>();
        EXPECT_NEAR(loss.item<double>(), best, 1e-3) << torch::toString(dtype) << " lr " << lr;
      }
    }
  }
}
