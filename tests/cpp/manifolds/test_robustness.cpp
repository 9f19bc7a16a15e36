// Robustness of every manifold × retraction (issue 17): retractions are contractive toward the
// manifold (a point ε off comes back at most O(ε) off and closer than it was), long steps stay
// finite and on the manifold, SO(n) sign tests do not underflow, SPD steps stay positive
// definite, non-finite input is never masked, and every method validates its arguments.
//
// Bounds asserted (u = unit roundoff: 6e-8 float32, 1.1e-16 float64):
//  - contractive: off(R_X(V)) <= max(off(X) / 2, 100 u) for X 1e-6 and 1e-3 off, V = 0, a small
//    tangent V and a small non-tangent V (off() measures the distance from the manifold, below);
//  - long steps, ‖V‖ in {1, 1e2, 1e4, 1e6}: finite and check_point(Y, atol) passes with atol
//    1e-5 (float32) and 1e-9 (float64); the one exception is the square Stiefel/SO exp and cayley
//    in float32 at ‖V‖ = 1e6, within 5e-2 (expm's squarings lose about u·‖V‖ = 0.06 there, and
//    one Newton–Schulz step squares that).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mantra/mantra.h>
#include <mantra/optim/riemannian_sgd.h>

#include "../test_util.h"

#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <string>

using namespace mantra::manifolds;
using mantra::test::expect_error;

namespace {

enum class Kind { Frame, Sphere, FixedRank, PSD, Lorentz, UnitDet, Open };

struct RCase {
  std::string label;
  std::function<std::shared_ptr<Manifold>()> make;
  Kind kind;
  std::vector<int64_t> shape;
  int64_t rank = 0;
};

std::vector<RCase> robustness_cases() {
  return {
      {"Stiefel_tall", [] { return std::make_shared<Stiefel>(); }, Kind::Frame, {20, 5}},
      {"Stiefel_wide", [] { return std::make_shared<Stiefel>(); }, Kind::Frame, {3, 8}},
      {"Stiefel_square", [] { return std::make_shared<Stiefel>(); }, Kind::Frame, {5, 5}},
      {"SO", [] { return std::make_shared<Stiefel>(StiefelOptions().set_special(true)); }, Kind::Frame, {2, 4, 4}},
      {"Grassmannian", [] { return std::make_shared<Grassmannian>(); }, Kind::Frame, {2, 9, 3}},
      {"Sphere", [] { return std::make_shared<Sphere>(); }, Kind::Sphere, {3, 6}},
      {"Oblique", [] { return std::make_shared<Oblique>(); }, Kind::Sphere, {5, 3}},
      {"FixedRank", [] { return std::make_shared<FixedRank>(2); }, Kind::FixedRank, {7, 5}, 2},
      {"FixedRankPSD", [] { return std::make_shared<FixedRankPSD>(2); }, Kind::PSD, {2, 5, 5}, 2},
      {"GLPlus", [] { return std::make_shared<GLPlus>(3); }, Kind::Open, {2, 3, 3}},
      {"SL", [] { return std::make_shared<SL>(3); }, Kind::UnitDet, {2, 3, 3}},
      {"SPD", [] { return std::make_shared<SPD>(); }, Kind::Open, {2, 4, 4}},
      {"Lorentz", [] { return std::make_shared<Lorentz>(); }, Kind::Lorentz, {3, 4}},
      {"PoincareBall", [] { return std::make_shared<PoincareBall>(); }, Kind::Open, {3, 3}},
      {"Euclidean", [] { return std::make_shared<Euclidean>(); }, Kind::Open, {3, 2}},
  };
}

double unit_roundoff(torch::ScalarType t) { return t == torch::kDouble ? 1.1e-16 : 6e-8; }

torch::Tensor as_tall(const torch::Tensor& X) { return X.size(-2) < X.size(-1) ? X.mT() : X; }

// Distance of Y from the manifold, computed in float64 (max over the batch).
double off(const RCase& c, const torch::Tensor& Y) {
  const torch::Tensor X = Y.to(torch::kDouble);
  switch (c.kind) {
    case Kind::Frame: {
      const torch::Tensor T = as_tall(X);
      const torch::Tensor G = torch::matmul(T.mT(), T);
      return (G - torch::eye(G.size(-1), G.options())).abs().max().item<double>();
    }
    case Kind::Sphere: {
      const int64_t axis = c.label == "Oblique" ? -2 : -1;
      return (X.norm(2, axis) - 1).abs().max().item<double>();
    }
    case Kind::FixedRank: {
      const torch::Tensor s = torch::linalg_svdvals(X);
      return (s.select(-1, c.rank) / s.select(-1, 0)).max().item<double>();
    }
    case Kind::PSD: {
      // The (r+1)-th largest |eigenvalue| and the asymmetry, relative to the largest.
      const torch::Tensor asym = (X - X.mT()).abs().amax({-2, -1});
      const torch::Tensor lam = std::get<0>(torch::sort(torch::linalg_eigvalsh(X).abs(), -1, true));
      return torch::maximum(lam.select(-1, c.rank), asym).div(lam.select(-1, 0)).max().item<double>();
    }
    case Kind::Lorentz: {
      const torch::Tensor x0 = X.select(-1, 0);
      const torch::Tensor q = (X * X).sum(-1) - 2 * x0 * x0 + 1;
      return (q.abs() / (x0 * x0).clamp_min(1)).max().item<double>();
    }
    case Kind::UnitDet:  // |log det| / n: the relative error of det^{1/n}
      return std::get<1>(torch::linalg_slogdet(X)).abs().max().item<double>() / X.size(-1);
    case Kind::Open:
      return 0;
  }
  return 0;
}

// X moved eps off the manifold along a normal direction (relative size eps).
torch::Tensor push_off(const RCase& c, const Manifold& M, const torch::Tensor& X, double eps) {
  const torch::Tensor G = torch::randn(X.sizes(), X.options());
  torch::Tensor N = G - M.proj_tangent(X, G);
  N = N / N.abs().amax().clamp_min(1e-30);
  if (c.kind == Kind::Sphere) return X * (1 + eps);
  if (c.kind == Kind::Lorentz) {
    torch::Tensor Y = X.clone();
    Y.select(-1, 0).mul_(1 + eps);
    return Y;
  }
  if (c.kind == Kind::PSD || c.kind == Kind::FixedRank) return X + eps * X.abs().amax() * N;
  return X + eps * N;
}

double atol_for(torch::ScalarType t) { return t == torch::kDouble ? 1e-9 : 1e-5; }

}  // namespace

TEST(Robustness, EveryRetractionIsContractiveTowardTheManifold) {
  for (const RCase& c : robustness_cases()) {
    if (c.kind == Kind::Open) continue;  // open sets: no normal direction (see the SPD and ball tests)
    const auto M = c.make();
    for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
      torch::manual_seed(5);
      const torch::Tensor X = M->random(c.shape, dtype);
      for (double eps : {1e-6, 1e-3}) {
        const torch::Tensor Xe = push_off(c, *M, X, eps);
        const double before = off(c, Xe);
        ASSERT_GT(before, 0.5 * eps) << c.label;  // it really is off the manifold
        torch::Tensor T = M->proj_tangent(Xe, torch::randn(c.shape, dtype));
        T = 0.1 * T / T.norm();
        const torch::Tensor N = 0.1 * torch::randn(c.shape, dtype) / std::sqrt(static_cast<double>(X.numel()));
        for (Retraction r : M->retractions()) {
          int which = 0;
          for (const torch::Tensor& V : {torch::zeros_like(X), T, N}) {
            const torch::Tensor Y = M->retract(Xe, V, r);
            const double after = off(c, Y);
            EXPECT_LE(after, std::max(0.5 * before, 100 * unit_roundoff(dtype)))
                << c.label << " " << to_string(r) << " " << torch::toString(dtype) << " eps " << eps << " V#" << which
                << ": " << before << " -> " << after;
            ++which;
          }
        }
      }
    }
  }
}

TEST(Robustness, RepeatedZeroStepsDoNotDrift) {
  // The issue's case: X ← R_X(−P_X(X)/2) on a 20×5 frame drifted to ‖XᵀX − I‖ ≈ 1 in 60 steps.
  Stiefel st;
  const RCase c = robustness_cases()[0];
  for (Retraction r : st.retractions()) {
    torch::manual_seed(1);
    torch::Tensor X = st.random({20, 5}, torch::kFloat64) + 1e-6 * torch::randn({20, 5}, torch::kFloat64);
    for (int i = 0; i < 60; ++i) X = st.retract(X, -0.5 * st.proj_tangent(X, X), r);
    EXPECT_LT(off(c, X), 1e-14) << to_string(r);
  }
}

TEST(Robustness, LongStepsStayFiniteAndOnTheManifold) {
  for (const RCase& c : robustness_cases()) {
    const auto M = c.make();
    for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
      torch::manual_seed(6);
      const torch::Tensor X = M->random(c.shape, dtype);
      torch::Tensor T = M->proj_tangent(X, torch::randn(c.shape, dtype));
      T = T / T.norm();
      for (Retraction r : M->retractions()) {
        for (double size : {1.0, 1e2, 1e4, 1e6}) {
          const torch::Tensor Y = M->retract(X, size * T, r);
          ASSERT_TRUE(torch::isfinite(Y).all().item<bool>())
              << c.label << " " << to_string(r) << " " << torch::toString(dtype) << " |V| " << size;
          const bool square_frame = c.kind == Kind::Frame && c.shape.back() == c.shape[c.shape.size() - 2] &&
                                    c.label != "Grassmannian";
          const bool lossy = dtype == torch::kFloat32 && size >= 1e6 && square_frame &&
                             (r == Retraction::Exp || r == Retraction::Cayley);
          const double atol = lossy ? 5e-2 : atol_for(dtype);
          EXPECT_EQ(M->check_point(Y, atol), "")
              << c.label << " " << to_string(r) << " " << torch::toString(dtype) << " |V| " << size;
        }
      }
    }
  }
}

TEST(Robustness, SpecialOrthogonalSignsHoldAtN1024InFloat32) {
  // det of a 1024×1024 float32 rotation underflows to ±0; the sign comes from slogdet.
  Stiefel so(StiefelOptions().set_special(true));
  torch::manual_seed(7);
  for (int draw = 0; draw < 3; ++draw) {
    const torch::Tensor Q = so.random({1024, 1024}, torch::kFloat32);
    EXPECT_EQ(std::get<0>(torch::linalg_slogdet(Q.to(torch::kDouble))).item<double>(), 1.0) << "draw " << draw;
    EXPECT_EQ(so.check_point(Q, 1e-4), "") << "draw " << draw;
  }
  torch::Tensor R = so.random({1024, 1024}, torch::kFloat32);
  R.select(-1, 0).neg_();  // a reflection: det = −1
  EXPECT_NE(so.check_point(R, 1e-4).find("determinant is negative"), std::string::npos);
  const torch::Tensor P = so.project(R);
  EXPECT_EQ(std::get<0>(torch::linalg_slogdet(P.to(torch::kDouble))).item<double>(), 1.0);
  EXPECT_EQ(so.check_point(P, 1e-4), "");
  // qr and polar of a long step stay in SO(n) (X + V may have det < 0).
  const torch::Tensor X = so.random({6, 6}, torch::kFloat64);
  for (Retraction r : {Retraction::QR, Retraction::Polar}) {
    for (int i = 0; i < 20; ++i) {
      const torch::Tensor V = so.proj_tangent(X, 10 * torch::randn({6, 6}, torch::kFloat64));
      EXPECT_EQ(so.check_point(so.retract(X, V, r), 1e-10), "") << to_string(r);
    }
  }
}

TEST(Robustness, SPDStepsTowardTheBoundaryStayPositiveDefinite) {
  // The rebase pattern of DynamicTrivialization(K = 1) on ‖Wx‖²: base ← R_base(−lr·sym(∇)),
  // which drives the eigenvalue along x to 0. It used to reach −1e-17 and then NaN (eigh).
  SPD spd;
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    for (double lr : {1e-2, 1e-1}) {
      torch::manual_seed(8);
      torch::Tensor X = spd.random({4, 4}, dtype);
      torch::Tensor x = torch::randn({4, 1}, dtype);
      x = x / x.norm();  // unit x: SGD on ‖Xx‖² is stable for lr < 1
      for (int step = 0; step < 1500; ++step) {
        const torch::Tensor G = 2 * torch::matmul(torch::matmul(X, x), x.mT());  // ∇‖Xx‖²
        // SGD in the chart (the Euclidean gradient is the chart's gradient at v = 0).
        const torch::Tensor V = -lr * G;
        X = spd.retract(X, spd.proj_tangent(X, V));
        ASSERT_EQ(spd.check_point(X), "") << torch::toString(dtype) << " lr " << lr << " step " << step;
      }
      // It got close to the boundary: ‖Xx‖ fell by orders of magnitude.
      EXPECT_LT(torch::matmul(X, x).norm().item<double>(), 1e-3 * x.norm().item<double>());
    }
    // Adam-like steps of a fixed size per entry (lr·sign ∇) do not vanish near the boundary,
    // so their length in the affine-invariant metric grows like 1/λ_min: still finite and
    // positive definite (expm's exponent is capped).
    torch::manual_seed(8);
    torch::Tensor X = spd.random({4, 4}, dtype);
    const torch::Tensor x = torch::randn({4, 1}, dtype);
    for (int step = 0; step < 1500; ++step) {
      const torch::Tensor G = 2 * torch::matmul(torch::matmul(X, x), x.mT());
      X = spd.retract(X, spd.proj_tangent(X, -1e-2 * torch::sign(G)));
      ASSERT_EQ(spd.check_point(X), "") << torch::toString(dtype) << " sign steps, step " << step;
    }
  }
  // An indefinite matrix (a point drifted off) comes back positive definite, and project agrees.
  torch::Tensor B = torch::diag(torch::tensor({1.0, 0.5, -1e-17}, torch::kFloat64));
  EXPECT_EQ(spd.check_point(spd.retract(B, torch::zeros_like(B))), "");
  EXPECT_EQ(spd.check_point(spd.project(B)), "");
  EXPECT_EQ(spd.check_point(spd.project(B.to(torch::kFloat32))), "");
}

TEST(Robustness, FixedRankPSDLongStepsStayPositiveSemidefiniteOfRankR) {
  FixedRankPSD psd(2);
  const RCase c = robustness_cases()[8];
  torch::manual_seed(9);
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    int failures = 0;
    for (int i = 0; i < 50; ++i) {
      const torch::Tensor X = psd.random({5, 5}, dtype);
      torch::Tensor V = psd.proj_tangent(X, torch::randn({5, 5}, dtype));
      V = V * (20 + 30 * i) * X.norm() / V.norm();  // ‖V‖/‖X‖ from 20 to 1500
      const torch::Tensor Y = psd.retract(X, V);
      failures += !psd.check_point(Y, atol_for(dtype) * 10).empty();
      EXPECT_LT(off(c, Y), 100 * unit_roundoff(dtype)) << i;
    }
    EXPECT_EQ(failures, 0) << torch::toString(dtype);
  }
  EXPECT_EQ(PSD(2).name(), "PSD");  // the alias and the saved name
}

TEST(Robustness, HyperbolicLongStepsNearTheBoundaryStayFinite) {
  PoincareBall pb;
  Lorentz lo;
  for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
    // A point next to the boundary and a long step back across the ball: [-inf, nan, nan] before.
    const double edge = dtype == torch::kDouble ? 1 - 1e-10 : 1 - 1e-5;
    const torch::Tensor x = torch::tensor({edge, 0.0, 0.0}, dtype);
    for (Retraction r : pb.retractions()) {
      for (double size : {1.0, 1e3, 1e6}) {
        for (double sign : {-1.0, 1.0}) {
          const torch::Tensor y = pb.retract(x, torch::tensor({sign * size, 1e-3 * size, 0.0}, dtype), r);
          EXPECT_EQ(pb.check_point(y), "") << to_string(r) << " " << size << " " << torch::toString(dtype);
        }
      }
    }
    // RiemannianSGD at lr = 10 on a distance loss: every iterate finite and on the manifold.
    for (int model = 0; model < 2; ++model) {
      const Hyperbolic& H = model ? static_cast<const Hyperbolic&>(lo) : static_cast<const Hyperbolic&>(pb);
      torch::manual_seed(10);
      const std::vector<int64_t> shape = {4, model ? 4 : 3};
      torch::Tensor p = H.random(shape, dtype), target = H.random(shape, dtype);
      auto opts = mantra::optim::RiemannianSGDOptions(10.0).manifold(model ? ManifoldPtr(std::make_shared<Lorentz>())
                                                                            : ManifoldPtr(std::make_shared<PoincareBall>()));
      for (int step = 1; step <= 200; ++step) {
        torch::Tensor q = p.clone().requires_grad_(true);
        H.distance(q, target).pow(2).sum().backward();
        mantra::optim::riemannian_sgd_step(p, q.grad(), torch::Tensor(), step, opts);
        ASSERT_TRUE(torch::isfinite(p).all().item<bool>()) << H.name() << " step " << step << " " << torch::toString(dtype);
        ASSERT_EQ(H.check_point(p, dtype == torch::kDouble ? 1e-9 : 1e-4), "") << H.name() << " step " << step;
      }
    }
  }
}

TEST(Robustness, PolarOfARankDeficientSumIsAFrame) {
  // X + V = 0 for V = −X: the tangent part of V is 0, so polar (and qr) return X.
  for (const RCase& c : {robustness_cases()[0], robustness_cases()[2], robustness_cases()[4]}) {
    const auto M = c.make();
    const torch::Tensor X = M->random(c.shape, torch::kFloat64);
    for (Retraction r : {Retraction::Polar, Retraction::QR}) {
      const torch::Tensor Y = M->retract(X, -X, r);
      EXPECT_TRUE(torch::isfinite(Y).all().item<bool>()) << c.label << " " << to_string(r);
      EXPECT_LT((Y - X).abs().max().item<double>(), 1e-12) << c.label << " " << to_string(r);
      // A rank-deficient X + V with a tangent part: still a frame.
      torch::Tensor V = -X.clone();
      V.select(-1, 0).zero_();
      EXPECT_EQ(M->check_point(M->retract(X, V, r), 1e-10), "") << c.label << " " << to_string(r);
    }
  }
}

TEST(Robustness, NonFiniteInputIsNeverMasked) {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  for (const RCase& c : robustness_cases()) {
    const auto M = c.make();
    for (double bad : {inf, nan}) {
      torch::Tensor X = M->random(c.shape, torch::kFloat64).contiguous();
      X.view(-1)[0] = bad;
      const torch::Tensor P = M->project(X);
      // The point that holds the bad entry comes out non-finite (never a finite point), and
      // check_point rejects both.
      EXPECT_FALSE(torch::isfinite(P).all().item<bool>()) << c.label << " " << bad;
      EXPECT_NE(M->check_point(X), "") << c.label;
      EXPECT_NE(M->check_point(P), "") << c.label;
    }
  }
}

TEST(Robustness, DistancesOfPointsOffTheManifoldAreNaN) {
  SPD spd;
  PoincareBall pb;
  const torch::Tensor I = torch::eye(3, torch::kFloat64);
  torch::Tensor A = I.clone();
  A[0][1] = 0.5;  // not symmetric
  EXPECT_TRUE(std::isnan(spd.distance(I, A).item<double>()));
  EXPECT_TRUE(std::isnan(spd.distance(A, I).item<double>()));
  EXPECT_TRUE(std::isnan(spd.distance(I, -I).item<double>()));  // negative definite
  EXPECT_NEAR(spd.distance(I, 4 * I).item<double>(), std::sqrt(3.0) * std::log(4.0), 1e-12);
  const torch::Tensor o = torch::zeros({2}, torch::kFloat64), out = torch::tensor({3.0, 4.0}, torch::kFloat64);
  EXPECT_TRUE(std::isnan(pb.distance(o, out).item<double>()));
  EXPECT_TRUE(std::isnan(pb.distance(out, o).item<double>()));
  EXPECT_NEAR(pb.distance(o, torch::tensor({0.5, 0.0}, torch::kFloat64)).item<double>(), 2 * std::atanh(0.5), 1e-12);
}

TEST(Robustness, CheckPointRejectsComplexIntegerAndInvalidAtol) {
  for (const RCase& c : robustness_cases()) {
    const auto M = c.make();
    const torch::Tensor X = M->random(c.shape, torch::kFloat64);
    EXPECT_NE(M->check_point(X.to(torch::kComplexDouble)).find("dtype is ComplexDouble"), std::string::npos)
        << c.label << ": " << M->check_point(X.to(torch::kComplexDouble));
    EXPECT_NE(M->check_point(torch::ones(c.shape, torch::kLong)).find("dtype is Long"), std::string::npos) << c.label;
    for (double atol : {std::nan(""), -1.0, std::numeric_limits<double>::infinity()}) {
      expect_error([&] { M->check_point(X, atol); }, "check_point: argument 'atol' must be finite and >= 0");
    }
  }
}

TEST(Robustness, EveryMethodValidatesItsArguments) {
  Stiefel st;
  Stiefel so(StiefelOptions().set_special(true));
  const torch::Tensor X = st.random({5, 3}, torch::kFloat64);
  expect_error([&] { Sphere().retract(torch::ones({}), torch::zeros({})); },
               "Sphere.retract: argument 'X' must have at least 1 dimensions");
  expect_error([&] { so.retract(X, torch::zeros_like(X)); }, "SO.retract: argument 'X' must be square");
  expect_error([] { GLPlus(3, std::numeric_limits<double>::infinity()); },
               "GLPlus: argument 'min_singular_value' must be finite");
  expect_error([] { SPD(SPDOptions().set_min_eigenvalue(std::numeric_limits<double>::infinity())); },
               "SPD: argument 'min_eigenvalue' must be finite");
  // Another device: the meta device holds no data (this used to return uninitialized memory).
  const torch::Tensor meta = torch::zeros({5, 3}, torch::TensorOptions().dtype(torch::kFloat64).device(torch::kMeta));
  expect_error([&] { st.retract(X, meta); }, "Stiefel.retract: argument 'V' must be on the device of 'X' (cpu), got meta");
  expect_error([&] { st.proj_tangent(X, meta); }, "Stiefel.proj_tangent: argument 'G' must be on the device");
  expect_error([&] { st.retract(X, X.to(torch::kFloat32)); },
               "Stiefel.retract: argument 'V' must have the dtype of 'X' (Double), got Float");
  expect_error([&] { st.retract(X.to(torch::kLong), X.to(torch::kLong)); },
               "Stiefel.retract: argument 'X' must be a real floating tensor (float32 or float64), got Long");
  expect_error([&] { st.project(X.to(torch::kComplexDouble)); },
               "Stiefel.project: argument 'X' must be a real floating tensor");
  expect_error([&] { st.project(X.to(torch::kHalf)); }, "Stiefel.project: argument 'X' must be a real floating tensor");
  expect_error([&] { st.inner(X, X, torch::Tensor()); }, "Stiefel.inner: argument 'V' must be a defined tensor");
  expect_error([&] { st.transport(X, X, X.mT()); }, "Stiefel.transport: argument 'V' must have the shape of 'X'");
  expect_error([&] { SPD().distance(torch::eye(3), torch::eye(3, torch::kFloat64)); },
               "SPD.distance: argument 'Y' must have the dtype of 'X'");
  expect_error([&] { Lorentz().egrad_to_rgrad(torch::ones({3}), torch::ones({3}).to(torch::kMeta)); },
               "Lorentz.egrad_to_rgrad: argument 'G' must be on the device");
  expect_error([&] { FixedRank(2).retract(torch::ones({4}), torch::ones({4})); },
               "FixedRank.retract: argument 'X' must have at least 2 dimensions");
  // Euclidean accepts half precision (no LAPACK), still checks the rest.
  const torch::Tensor h = torch::ones({3}, torch::kHalf);
  EXPECT_TRUE(Euclidean().retract(h, h).equal(2 * h));
  expect_error([&] { Euclidean().retract(h, torch::ones({3})); }, "Euclidean.retract: argument 'V' must have the dtype");
}
