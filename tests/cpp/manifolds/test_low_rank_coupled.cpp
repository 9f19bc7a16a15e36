// Low rank coupled with oblique / sphere / stacked Stiefel (issue 13): the protocol properties
// on H_r × St(n, r) for each manifold × retraction in float64 (on-manifold in float32 too),
// float32 feasibility of X = H Vᵀ after 10,000 steps, known optima of the lifted problem
// (closest point, rank-1 sphere = top singular pair, noiseless synchronization), the O((m+n)r²)
// memory of the maps, and the errors for bad arguments.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mantra/mantra.h>
#include <mantra/manifolds/low_rank_coupled.h>
#include <mantra/optim/riemannian_adam.h>
#include <mantra/optim/riemannian_sgd.h>

#include "../test_util.h"

#include <functional>
#include <memory>
#include <string>

using namespace mantra::manifolds;

namespace {

struct LCase {
  std::string label;
  std::function<std::shared_ptr<LowRankCoupled>()> make;
  Retraction retraction;
  std::vector<int64_t> batch;
};

std::vector<LCase> coupled_cases() {
  std::vector<LCase> cases;
  auto add = [&](const std::string& label, std::function<std::shared_ptr<LowRankCoupled>()> make) {
    for (Retraction r : {Retraction::Polar, Retraction::QR, Retraction::Exp}) {
      for (std::vector<int64_t> batch : {std::vector<int64_t>{}, std::vector<int64_t>{2, 3}}) {
        std::string name = label + "_" + to_string(r) + (batch.empty() ? "" : "_batched");
        cases.push_back({name, make, r, batch});
      }
    }
  };
  add("Oblique_8x6_r3", [] { return std::make_shared<LowRankOblique>(8, 6, 3); });
  add("Oblique_5x7_r1", [] { return std::make_shared<LowRankOblique>(5, 7, 1); });
  add("Oblique_4x4_r4", [] { return std::make_shared<LowRankOblique>(4, 4, 4); });  // V square
  add("Sphere_7x4_r2", [] { return std::make_shared<LowRankSphere>(7, 4, 2); });
  add("Sphere_3x9_r3", [] { return std::make_shared<LowRankSphere>(3, 9, 3); });
  add("StackedStiefel_6x5_r3_p2", [] { return std::make_shared<LowRankStackedStiefel>(6, 5, 3, 2); });
  add("StackedStiefel_6x4_r3_p3", [] { return std::make_shared<LowRankStackedStiefel>(6, 4, 3, 3); });  // square blocks
  return cases;
}

double max_abs(const torch::Tensor& t) { return t.numel() ? t.abs().max().item<double>() : 0.0; }

// The long loops of small ops run on one intra-op thread (many threads only contend there);
// the count is restored after the test.
struct OneThread {
  int before = at::get_num_threads();
  OneThread() { at::set_num_threads(1); }
  ~OneThread() { at::set_num_threads(before); }
};

std::vector<int64_t> point_shape(const LowRankCoupled& M, std::vector<int64_t> batch) {
  batch.push_back(M.m() + M.n());
  batch.push_back(M.rank());
  return batch;
}

class LowRankCoupledProperties : public ::testing::TestWithParam<LCase> {
 protected:
  void SetUp() override {
    torch::manual_seed(21);
    M = GetParam().make();
    r = GetParam().retraction;
    shape = point_shape(*M, GetParam().batch);
    X = M->random(shape, torch::kFloat64);
  }
  torch::Tensor tangent(double scale = 1.0) const {
    torch::Tensor V = M->proj_tangent(X, torch::randn(shape, torch::kFloat64));
    return V * (scale / V.norm().item<double>());
  }
  std::shared_ptr<LowRankCoupled> M;
  Retraction r;
  std::vector<int64_t> shape;
  torch::Tensor X;
};

}  // namespace

TEST_P(LowRankCoupledProperties, PointsAndTheirWeightsAreFeasible) {
  EXPECT_EQ(M->check_point(X, 1e-12), "");
  EXPECT_EQ(M->check_point(M->origin(shape, torch::kFloat64), 0.0), "");
  EXPECT_EQ(M->check_point(M->random(shape, torch::kFloat32), 1e-5), "");
  EXPECT_LT(max_abs(M->project(X) - X), 1e-12);  // projection fixes points
  // The weight H Vᵀ has rank ≤ r and satisfies h; factor() gives it back exactly.
  const torch::Tensor W = M->compose(X);
  EXPECT_EQ(W.size(-2), M->m());
  EXPECT_EQ(W.size(-1), M->n());
  EXPECT_EQ(M->check_matrix(W, 1e-12), "");
  EXPECT_LT(max_abs(M->compose(M->factor(W)) - W), 1e-12);
  EXPECT_EQ(M->check_point(M->factor(W), 1e-12), "");
  // Spec round trip.
  EXPECT_EQ(manifold_from_spec(M->spec())->spec(), M->spec());
}

TEST_P(LowRankCoupledProperties, TangentProjectionIsIdempotentAndOrthogonal) {
  torch::Tensor G = torch::randn(shape, torch::kFloat64);
  torch::Tensor V = M->proj_tangent(X, G);
  EXPECT_LT(max_abs(M->proj_tangent(X, V) - V), 1e-13);
  EXPECT_LT(max_abs(M->inner(X, G - V, tangent())), 1e-12);
}

TEST_P(LowRankCoupledProperties, RetractionIsFirstOrderAndStaysOnTheManifold) {
  torch::Tensor V = tangent();
  EXPECT_LT(max_abs(M->retract(X, torch::zeros_like(V), r) - X), 1e-13);
  auto defect = [&](double t) { return (M->retract(X, t * V, r) - X - t * V).norm().item<double>(); };
  const double e3 = defect(1e-3), e4 = defect(1e-4);
  EXPECT_LT(e4 / e3, 0.02) << "defects " << e3 << " " << e4;  // O(t²)
  EXPECT_LT(e3, 1e-4);
  EXPECT_EQ(M->check_point(M->retract(X, 0.7 * V, r), 1e-12), "");
  EXPECT_EQ(M->check_point(M->retract_from_point(X, 0.7 * V, r), 1e-12), "");
  EXPECT_EQ(M->check_point(M->retract(X.to(torch::kFloat32), 0.7 * V.to(torch::kFloat32), r), 1e-5), "");
}

TEST_P(LowRankCoupledProperties, TransportedVectorsAreTangent) {
  torch::Tensor V = tangent(0.5), U = tangent(2.0);
  auto [Y, TU] = M->retract_transport(X, V, U, r);
  EXPECT_LT(max_abs(Y - M->retract(X, V, r)), 1e-14);
  EXPECT_LT(max_abs(M->proj_tangent(Y, TU) - TU), 1e-12);
  EXPECT_GT(TU.norm().item<double>(), 0.5);  // not the zero vector
  torch::Tensor T2 = M->transport(X, Y, U);
  EXPECT_LT(max_abs(M->proj_tangent(Y, T2) - T2), 1e-12);
}

TEST_P(LowRankCoupledProperties, RiemannianGradientGivesTheDirectionalDerivativeOfTheWeightsLoss) {
  // f(H Vᵀ) for a loss of the m×n weight; its Euclidean gradient in P by autograd.
  const std::vector<int64_t> wshape = M->compose(X).sizes().vec();
  torch::Tensor C = torch::randn(wshape, torch::kFloat64);
  auto f = [&](const torch::Tensor& P) {
    const torch::Tensor W = M->compose(P);
    return (C * W).sum() + (W * W * W).sum();
  };
  torch::Tensor Xg = X.clone().requires_grad_(true);
  f(Xg).backward();
  torch::Tensor rgrad = M->egrad_to_rgrad(X, Xg.grad());
  torch::Tensor xi = tangent();
  const double h = 1e-5;
  const double fd = (f(M->retract(X, h * xi, r)) - f(M->retract(X, -h * xi, r))).item<double>() / (2 * h);
  const double ip = M->inner(X, rgrad, xi).sum().item<double>();
  EXPECT_NEAR(ip, fd, 1e-7 * std::max(1.0, std::abs(fd)));
}

TEST_P(LowRankCoupledProperties, GradientThroughTheTrivializationMatchesFiniteDifferences) {
  // φ(v) = R_X(P_X(v)), as the Parametrization computes it, including v = 0.
  for (double scale : {0.0, 0.8}) {
    torch::Tensor v0 = scale * torch::randn(shape, torch::kFloat64);
    auto phi = [&](const torch::Tensor& v) { return M->retract_from_point(X, M->proj_tangent(X, v), r); };
    torch::Tensor C = torch::randn(shape, torch::kFloat64);
    torch::Tensor v = v0.clone().requires_grad_(true);
    (phi(v) * C).sum().backward();
    torch::Tensor D = torch::randn(shape, torch::kFloat64);
    const double h = 1e-6;
    const double fd = ((phi(v0 + h * D) - phi(v0 - h * D)) * C).sum().item<double>() / (2 * h);
    EXPECT_NEAR((v.grad() * D).sum().item<double>(), fd, 1e-6 * std::max(1.0, std::abs(fd))) << "scale " << scale;
  }
}

INSTANTIATE_TEST_SUITE_P(All, LowRankCoupledProperties, ::testing::ValuesIn(coupled_cases()),
                         [](const ::testing::TestParamInfo<LCase>& info) { return info.param.label; });

// ------------------------------------------------------------------ float32 feasibility

TEST(LowRankCoupled, Float32WeightsStayFeasibleAfter10000Steps) {
  OneThread one_thread;
  // 10,000 random tangent steps of length 0.1 on each manifold (default retraction, no
  // re-projection), float32: the weight X = H Vᵀ keeps ‖diag(XXᵀ) − 1‖∞ ≤ 1e-5 (oblique),
  // |‖X‖_F − 1| ≤ 1e-5 (sphere), max |X_j X_jᵀ − I| ≤ 1e-5 (blocks), and rank ≤ r.
  const int64_t m = 12, n = 9, r = 4;
  std::vector<std::shared_ptr<LowRankCoupled>> all = {std::make_shared<LowRankOblique>(m, n, r),
                                                      std::make_shared<LowRankSphere>(m, n, r),
                                                      std::make_shared<LowRankStackedStiefel>(m, n, r, 3)};
  for (const auto& M : all) {
    torch::manual_seed(13);
    torch::Tensor P = M->random({m + n, r}, torch::kFloat32);
    std::vector<torch::Tensor> noise;
    for (int i = 0; i < 16; ++i) noise.push_back(torch::randn({m + n, r}, torch::kFloat32));
    torch::NoGradGuard no_grad;
    for (int step = 0; step < 10000; ++step) {
      torch::Tensor D = M->proj_tangent(P, noise[step % 16]);
      P = M->retract(P, D * (0.1 / D.norm().item<float>()));
    }
    ASSERT_EQ(P.scalar_type(), torch::kFloat32);
    const torch::Tensor X = M->compose(P).to(torch::kFloat64);
    const torch::Tensor G = torch::matmul(X, X.mT());
    if (M->name() == "LowRankOblique") {
      EXPECT_LE(max_abs(G.diagonal() - 1), 1e-5) << M->name();
    } else if (M->name() == "LowRankSphere") {
      EXPECT_LE(std::abs(X.norm().item<double>() - 1), 1e-5) << M->name();
    } else {
      for (int64_t j = 0; j < m / 3; ++j) {
        const torch::Tensor B = G.narrow(0, 3 * j, 3).narrow(1, 3 * j, 3);
        EXPECT_LE(max_abs(B - torch::eye(3, torch::kFloat64)), 1e-5) << M->name() << " block " << j;
      }
    }
    const torch::Tensor sv = torch::linalg_svdvals(X);
    EXPECT_LE((sv[r] / sv[0]).item<double>(), 1e-5) << M->name() << ": rank above " << r;
    EXPECT_EQ(M->check_point(P, 1e-5), "") << M->name();
    EXPECT_EQ(M->check_matrix(M->compose(P), 1e-5), "") << M->name();
  }
}

// ------------------------------------------------------------------ known optima

namespace {
// Riemannian SGD (mantra::optim) on P for a loss of the weight H Vᵀ; returns the final P.
torch::Tensor minimize(const std::shared_ptr<LowRankCoupled>& M, torch::Tensor P0,
                       const std::function<torch::Tensor(const torch::Tensor&)>& loss, double lr, int steps,
                       bool adam = false) {
  torch::Tensor P = P0.clone().requires_grad_(true);
  std::unique_ptr<torch::optim::Optimizer> opt;
  if (adam) {
    opt = std::make_unique<mantra::optim::RiemannianAdam>(std::vector<torch::Tensor>{P},
                                                           mantra::optim::RiemannianAdamOptions(lr).manifold(M));
  } else {
    opt = std::make_unique<mantra::optim::RiemannianSGD>(std::vector<torch::Tensor>{P},
                                                          mantra::optim::RiemannianSGDOptions(lr).manifold(M));
  }
  for (int i = 0; i < steps; ++i) {
    opt->zero_grad();
    loss(M->compose(P)).backward();
    opt->step();
  }
  return P.detach();
}
}  // namespace

TEST(LowRankCoupled, ClosestPointOfAMatrixInLowRankObliqueIsItself) {
  OneThread one_thread;
  torch::manual_seed(31);
  const int64_t m = 20, n = 15, r = 3;
  auto M = std::make_shared<LowRankOblique>(m, n, r);
  const torch::Tensor A = M->compose(M->random({m + n, r}, torch::kFloat64));
  ASSERT_EQ(M->check_matrix(A, 1e-12), "");
  // The direct answer: factor(A) is a point whose weight is A (distance 0).
  EXPECT_LT(max_abs(M->compose(M->factor(A)) - A), 1e-12);
  // And Riemannian gradient descent on ½‖H Vᵀ − A‖² from a random point reaches it.
  auto loss = [&](const torch::Tensor& X) { return 0.5 * (X - A).pow(2).sum(); };
  const torch::Tensor P = minimize(M, M->random({m + n, r}, torch::kFloat64), loss, 0.1, 400);
  EXPECT_LT((M->compose(P) - A).norm().item<double>(), 1e-10);
  EXPECT_EQ(M->check_point(P, 1e-12), "");
}

TEST(LowRankCoupled, RankOneSphereMaximizerOfTheBilinearQuotientIsTheTopSingularPair) {
  OneThread one_thread;
  // max ⟨A, X⟩ over rank-1 X with ‖X‖_F = 1, i.e. max hᵀAv/(‖h‖‖v‖): σ_1 at X = u_1 v_1ᵀ.
  torch::manual_seed(32);
  const int64_t m = 9, n = 7;
  auto M = std::make_shared<LowRankSphere>(m, n, 1);
  const torch::Tensor A = torch::randn({m, n}, torch::kFloat64);
  auto [U, S, Vh] = torch::linalg_svd(A, false);
  auto loss = [&](const torch::Tensor& X) { return -(A * X).sum(); };
  const torch::Tensor P = minimize(M, M->random({m + n, 1}, torch::kFloat64), loss, 0.2, 2000);
  const torch::Tensor X = M->compose(P);
  EXPECT_NEAR((A * X).sum().item<double>(), S[0].item<double>(), 1e-10);
  const torch::Tensor top = torch::outer(U.select(1, 0), Vh.select(0, 0));
  EXPECT_LT(max_abs(X - top), 1e-6);  // the singular vectors' signs cancel in u vᵀ
}

TEST(LowRankCoupled, NoiselessSynchronizationIsRecoveredUpToAGlobalRotation) {
  OneThread one_thread;
  // k orthogonal p×p R_j; C = (R_i R_jᵀ)_ij. max ⟨C, X Xᵀ⟩ over X = (X_1; …; X_k) with X_j of
  // orthonormal rows and rank ≤ r (r = p + 1, n = r + 1: a Burer–Monteiro lift). The maximum
  // k²p is reached exactly when X_i X_jᵀ = R_i R_jᵀ, i.e. X_j = R_j W for one W.
  torch::manual_seed(33);
  const int64_t k = 6, p = 2, r = 3, n = 4, m = k * p;
  auto M = std::make_shared<LowRankStackedStiefel>(m, n, r, p);
  Stiefel st;
  const torch::Tensor R = st.random({k, p, p}, torch::kFloat64).reshape({m, p});
  const torch::Tensor C = torch::matmul(R, R.mT());
  auto loss = [&](const torch::Tensor& X) { return -(C * torch::matmul(X, X.mT())).sum() / (k * k); };
  const torch::Tensor P = minimize(M, M->random({m + n, r}, torch::kFloat64), loss, 0.5, 600);
  const torch::Tensor X = M->compose(P);
  const torch::Tensor XXt = torch::matmul(X, X.mT());
  EXPECT_NEAR((C * XXt).sum().item<double>(), double(k * k * p), 1e-9);
  EXPECT_LT(max_abs(XXt - C), 1e-8);
  // Up to a global rotation: W = R_1ᵀ X_1 has orthonormal rows and X_j = R_j W for every j.
  const torch::Tensor W = torch::matmul(R.narrow(0, 0, p).mT(), X.narrow(0, 0, p));
  EXPECT_LT(max_abs(torch::matmul(R.view({k, p, p}), W).reshape({m, n}) - X), 1e-8);
}

TEST(LowRankCoupled, RiemannianAdamAlsoFindsTheClosestPoint) {
  OneThread one_thread;
  torch::manual_seed(34);
  const int64_t m = 12, n = 10, r = 2;
  auto M = std::make_shared<LowRankOblique>(m, n, r);
  const torch::Tensor A = M->compose(M->random({m + n, r}, torch::kFloat64));
  auto loss = [&](const torch::Tensor& X) { return 0.5 * (X - A).pow(2).sum(); };
  const torch::Tensor P = minimize(M, M->random({m + n, r}, torch::kFloat64), loss, 0.02, 3000, /*adam=*/true);
  EXPECT_LT((M->compose(P) - A).norm().item<double>(), 1e-4);
}

// ------------------------------------------------------------------ cost and errors

TEST(LowRankCoupled, RetractionAndTransportNeverFormMxNOrNxN) {
  // m = 200,000, n = 100,000, r = 4: an m×n matrix would be 160 GB, an n×n one 80 GB; the
  // points and every map are (m+n)×r (9.6 MB).
  torch::manual_seed(35);
  const int64_t m = 200000, n = 100000, r = 4;
  for (std::shared_ptr<LowRankCoupled> M : {std::shared_ptr<LowRankCoupled>(std::make_shared<LowRankOblique>(m, n, r)),
                                            std::shared_ptr<LowRankCoupled>(std::make_shared<LowRankStackedStiefel>(m, n, r, 2))}) {
    torch::Tensor X = M->random({m + n, r}, torch::kFloat64);
    torch::Tensor V = M->proj_tangent(X, torch::randn({m + n, r}, torch::kFloat64)) * 1e-3;
    for (Retraction method : {Retraction::Polar, Retraction::QR, Retraction::Exp}) {
      auto [Y, TV] = M->retract_transport(X, V, V, method);
      EXPECT_EQ(M->check_point(Y, 1e-10), "") << M->name() << " " << to_string(method);
      EXPECT_LT(max_abs(M->proj_tangent(Y, TV) - TV), 1e-12);
    }
  }
}

TEST(LowRankCoupled, BadArgumentsGiveErrorsNamingTheArgument) {
  using mantra::test::expect_error;
  expect_error([] { LowRankOblique(6, 5, 0); }, "argument 'rank' must be in [1, min(m, n) = 5]");
  expect_error([] { LowRankOblique(6, 5, 6); }, "argument 'rank'");
  expect_error([] { LowRankSphere(3, 8, 4); }, "min(m, n) = 3");
  expect_error([] { LowRankOblique(0, 5, 1); }, "arguments 'm' and 'n'");
  expect_error([] { LowRankStackedStiefel(7, 5, 3, 2); }, "argument 'p'");  // 7 rows do not split into blocks of 2
  expect_error([] { LowRankStackedStiefel(8, 5, 2, 4); }, "not satisfiable");  // 4 orthonormal rows at rank 2
  expect_error([] { LowRankOblique(6, 5, 2, Retraction::Cayley); }, "argument 'retraction'");
  LowRankOblique M(6, 5, 2);
  expect_error([&] { M.random({10, 2}); }, "argument 'shape' must have shape (..., m+n, rank) = (..., 11, 2)");
  expect_error([&] { M.retract(torch::zeros({11, 3}), torch::zeros({11, 3})); }, "LowRankOblique.retract: argument 'X'");
  expect_error([&] { M.factor(torch::zeros({5, 6})); }, "LowRankOblique.factor: argument 'X'");
  expect_error([] { manifold_from_spec("LowRankStackedStiefel(m=6,n=5,rank=1,p=2)"); }, "argument 'p'");
  // check_point / check_matrix explain.
  torch::Tensor P = M.random({11, 2}, torch::kFloat64);
  P[0][0] = 3.0;
  EXPECT_NE(M.check_point(P).find("factor H"), std::string::npos) << M.check_point(P);
  EXPECT_NE(M.check_matrix(torch::randn({6, 5}, torch::kFloat64)).find("rank exceeds 2"), std::string::npos);
  torch::Tensor low = 2 * M.compose(M.random({11, 2}, torch::kFloat64));
  EXPECT_NE(M.check_matrix(low).find("rows of unit norm"), std::string::npos) << M.check_matrix(low);
}
