// Properties every manifold and retraction must have, checked on each (manifold, retraction,
// shape) case in float64 (and on-manifold checks in float32): random/origin points lie on the
// manifold, tangent projection is idempotent, retractions are first order and land on the
// manifold, transported vectors are tangent, ⟨rgrad, ξ⟩ is the directional derivative, and
// gradients through the retraction match finite differences. The checks are stated in each
// manifold's own metric (inner, egrad_to_rgrad), so they hold as written for non-Euclidean
// metrics too (SPD, Lorentz, Poincaré): proj_tangent must be orthogonal in that metric, and
// ⟨rgrad, ξ⟩_X must equal the directional derivative, which defines the Riemannian gradient.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mantra/mantra.h>

#include "../test_util.h"

#include <functional>
#include <limits>
#include <memory>
#include <string>

using namespace mantra::manifolds;

namespace {

struct Case {
  std::string label;
  std::function<std::shared_ptr<Manifold>()> make;
  Retraction retraction;
  std::vector<int64_t> shape;
};

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  auto add = [&](const std::string& label, std::function<std::shared_ptr<Manifold>()> make,
                 std::vector<Retraction> rs, std::vector<std::vector<int64_t>> shapes) {
    for (Retraction r : rs)
      for (const auto& s : shapes) {
        std::string name = label + "_" + to_string(r);
        for (auto d : s) name += "_" + std::to_string(d);
        cases.push_back({name, make, r, s});
      }
  };
  const std::vector<Retraction> stiefel_rs = {Retraction::Exp, Retraction::Cayley, Retraction::QR, Retraction::Polar};
  add("Stiefel", [] { return std::make_shared<Stiefel>(); }, stiefel_rs,
      {{7, 3}, {3, 7}, {5, 5}, {2, 3, 6, 2}, {1, 1}, {200, 4}});
  add("SO", [] { return std::make_shared<Stiefel>(StiefelOptions().set_special(true)); },
      {Retraction::Exp, Retraction::Cayley}, {{4, 4}, {3, 6, 6}});
  add("Sphere", [] { return std::make_shared<Sphere>(); }, {Retraction::Exp, Retraction::Projection},
      {{5}, {3, 4, 9}, {1}});
  add("Oblique", [] { return std::make_shared<Oblique>(); }, {Retraction::Exp, Retraction::Projection},
      {{6, 3}, {2, 3, 8}});
  add("Euclidean", [] { return std::make_shared<Euclidean>(); }, {Retraction::Exp}, {{4, 3}});
  add("Grassmannian", [] { return std::make_shared<Grassmannian>(); },
      {Retraction::Exp, Retraction::QR, Retraction::Polar}, {{7, 3}, {3, 7}, {2, 3, 6, 2}, {200, 4}, {5, 1}});
  add("FixedRank2", [] { return std::make_shared<FixedRank>(2); }, {Retraction::Projection},
      {{7, 4}, {4, 7}, {2, 3, 5, 4}, {2, 2}});
  add("FixedRank1", [] { return std::make_shared<FixedRank>(1); }, {Retraction::Projection}, {{6, 5}, {1, 4}});
  add("FixedRank3", [] { return std::make_shared<FixedRank>(3, 60, 5); }, {Retraction::Projection}, {{60, 5}});
  add("PSD2", [] { return std::make_shared<PSD>(2); }, {Retraction::Projection}, {{5, 5}, {2, 6, 6}});
  add("PSD4", [] { return std::make_shared<PSD>(4); }, {Retraction::Projection}, {{4, 4}});
  add("GLPlus3", [] { return std::make_shared<GLPlus>(3); }, {Retraction::Projection, Retraction::Exp},
      {{3, 3}, {2, 4, 3, 3}});
  add("SL3", [] { return std::make_shared<SL>(3); }, {Retraction::Projection, Retraction::Exp},
      {{3, 3}, {2, 4, 3, 3}});
  add("SL1", [] { return std::make_shared<SL>(1); }, {Retraction::Projection, Retraction::Exp}, {{2, 1, 1}});
  add("SPD", [] { return std::make_shared<SPD>(); }, {Retraction::Exp}, {{4, 4}, {2, 3, 3, 3}, {1, 1}});
  add("Lorentz", [] { return std::make_shared<Lorentz>(); }, {Retraction::Exp, Retraction::Projection},
      {{5}, {3, 4, 3}, {2}});
  add("PoincareBall", [] { return std::make_shared<PoincareBall>(); }, {Retraction::Exp, Retraction::Projection},
      {{5}, {3, 4, 2}, {1}});
  add("GLPlus1", [] { return std::make_shared<GLPlus>(1); }, {Retraction::Projection, Retraction::Exp}, {{5, 1, 1}});
  return cases;
}

class ManifoldProperties : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    torch::manual_seed(11);
    M = GetParam().make();
    r = GetParam().retraction;
    shape = GetParam().shape;
    X = M->random(shape, torch::kFloat64);
  }
  torch::Tensor tangent(double scale = 1.0) const {
    torch::Tensor V = M->proj_tangent(X, torch::randn(shape, torch::kFloat64));
    const double n = V.norm().item<double>();
    return n > 0 ? V * (scale / n) : V;
  }
  std::shared_ptr<Manifold> M;
  Retraction r;
  std::vector<int64_t> shape;
  torch::Tensor X;
};

double max_abs(const torch::Tensor& t) { return t.numel() ? t.abs().max().item<double>() : 0.0; }

}  // namespace

TEST_P(ManifoldProperties, RandomAndOriginAreOnTheManifold) {
  EXPECT_EQ(M->check_point(X, 1e-12), "");
  EXPECT_EQ(M->check_point(M->origin(shape, torch::kFloat64), 0.0), "");
  torch::Tensor X32 = M->random(shape, torch::kFloat32);
  EXPECT_EQ(X32.scalar_type(), torch::kFloat32);
  EXPECT_EQ(M->check_point(X32, 1e-5), "");
  EXPECT_EQ(M->project(X).sizes(), X.sizes());
  EXPECT_LT(max_abs(M->project(X) - X), 1e-12);  // projection fixes points of the manifold
}

TEST_P(ManifoldProperties, TangentProjectionIsIdempotent) {
  torch::Tensor G = torch::randn(shape, torch::kFloat64);
  torch::Tensor V = M->proj_tangent(X, G);
  EXPECT_LT(max_abs(M->proj_tangent(X, V) - V), 1e-13);
  // Orthogonal projection: G − P(G) is orthogonal to every tangent vector.
  torch::Tensor W = tangent();
  EXPECT_LT(max_abs(M->inner(X, G - V, W)), 1e-12);
}

TEST_P(ManifoldProperties, RetractionIsFirstOrderAndStaysOnTheManifold) {
  torch::Tensor V = tangent();
  EXPECT_LT(max_abs(M->retract(X, torch::zeros_like(V), r) - X), 1e-14);
  auto defect = [&](double t) { return (M->retract(X, t * V, r) - X - t * V).norm().item<double>(); };
  const double e3 = defect(1e-3), e4 = defect(1e-4);
  // R_X(tV) = X + tV + O(t²): shrinking t tenfold shrinks the defect about a hundredfold.
  if (e3 > 1e-13) {
    EXPECT_LT(e4 / e3, 0.02) << "defects " << e3 << " " << e4;
  }
  EXPECT_LT(e3, 1e-4);
  EXPECT_EQ(M->check_point(M->retract(X, 0.7 * V, r), 1e-12), "");
  EXPECT_EQ(M->check_point(M->retract(X.to(torch::kFloat32), 0.7 * V.to(torch::kFloat32), r), 1e-5), "");
}

TEST_P(ManifoldProperties, TransportedVectorsAreTangent) {
  torch::Tensor V = tangent(0.5), U = tangent(2.0);
  auto [Y, TU] = M->retract_transport(X, V, U, r);
  EXPECT_LT(max_abs(Y - M->retract(X, V, r)), 1e-14);
  EXPECT_LT(max_abs(M->proj_tangent(Y, TU) - TU), 1e-12);
  torch::Tensor T2 = M->transport(X, Y, U);
  EXPECT_LT(max_abs(M->proj_tangent(Y, T2) - T2), 1e-12);
  EXPECT_EQ(M->inner(X, U, U).sizes(),
            torch::IntArrayRef(shape).slice(0, shape.size() - M->point_dims()));
}

TEST_P(ManifoldProperties, MetricIsSymmetricAndPositiveOnTangentVectors) {
  torch::Tensor U = tangent(), V = tangent(0.5);
  EXPECT_LT(max_abs(M->inner(X, U, V) - M->inner(X, V, U)), 1e-12);
  EXPECT_LT(max_abs(M->inner(X, 2 * U + V, V) - 2 * M->inner(X, U, V) - M->inner(X, V, V)), 1e-10);
  if (U.norm().item<double>() > 0) {
    EXPECT_GT(M->inner(X, U, U).min().item<double>(), 0);  // each point's own tangent vector
  }
  // A point with a zero tangent vector: the norm is 0 and its square root has a finite value.
  EXPECT_LT(max_abs(M->norm(X, torch::zeros_like(X))), 1e-300);
}

TEST_P(ManifoldProperties, RiemannianGradientGivesTheDirectionalDerivative) {
  torch::Tensor C = torch::randn(shape, torch::kFloat64);
  auto f = [&](const torch::Tensor& Y) { return (C * Y).sum() + (Y * Y * Y).sum(); };
  torch::Tensor egrad = C + 3 * X * X;
  torch::Tensor rgrad = M->egrad_to_rgrad(X, egrad);
  torch::Tensor xi = tangent();
  const double h = 1e-5;
  const double fd = (f(M->retract(X, h * xi, r)) - f(M->retract(X, -h * xi, r))).item<double>() / (2 * h);
  const double ip = M->inner(X, rgrad, xi).sum().item<double>();
  EXPECT_NEAR(ip, fd, 1e-7 * std::max(1.0, std::abs(fd)));
}

TEST_P(ManifoldProperties, GradientThroughRetractionMatchesFiniteDifferences) {
  // Includes V = 0, the base point of a trivialization (repeated eigenvalues for polar).
  for (double scale : {0.0, 0.8}) {
    torch::Tensor V0 = tangent(scale);
    torch::Tensor C = torch::randn(shape, torch::kFloat64);
    torch::Tensor V = V0.clone().requires_grad_(true);
    (M->retract(X, V, r) * C).sum().backward();
    torch::Tensor D = torch::randn(shape, torch::kFloat64);
    const double h = 1e-6;
    const double fd = ((M->retract(X, V0 + h * D, r) - M->retract(X, V0 - h * D, r)) * C).sum().item<double>() / (2 * h);
    const double ad = (V.grad() * D).sum().item<double>();
    EXPECT_TRUE(std::isfinite(ad));
    EXPECT_NEAR(ad, fd, 1e-6 * std::max(1.0, std::abs(fd))) << "scale " << scale;
  }
}

INSTANTIATE_TEST_SUITE_P(All, ManifoldProperties, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.label; });

// ------------------------------------------------------------------ specific facts

TEST(Stiefel, SpecialOrthogonalKeepsDeterminantPlusOne) {
  Stiefel so(StiefelOptions().set_special(true));
  torch::manual_seed(3);
  torch::Tensor X = so.random({20, 5, 5}, torch::kFloat64);
  EXPECT_LT(max_abs(torch::linalg_det(X) - 1), 1e-12);
  // A reflection is the closest orthogonal matrix to itself but not a rotation: project()
  // returns the closest rotation, and check_point explains why the reflection is rejected.
  torch::Tensor R = torch::eye(5, torch::kFloat64);
  R[0][0] = -1;
  EXPECT_NE(so.check_point(R).find("determinant"), std::string::npos) << so.check_point(R);
  torch::Tensor P = so.project(R);
  EXPECT_EQ(so.check_point(P, 1e-12), "");
  EXPECT_NEAR(torch::linalg_det(P).item<double>(), 1.0, 1e-12);
  EXPECT_EQ(Stiefel().check_point(R, 1e-12), "");  // O(n) accepts it
}

TEST(Stiefel, ProjectIsTheClosestFrame) {
  torch::manual_seed(4);
  Stiefel st;
  torch::Tensor A = torch::randn({9, 4}, torch::kFloat64);
  torch::Tensor P = st.project(A);
  EXPECT_EQ(st.check_point(P, 1e-12), "");
  // Polar factor: PᵀA is symmetric positive definite.
  torch::Tensor S = torch::matmul(P.t(), A);
  EXPECT_LT(max_abs(S - S.t()), 1e-12);
  EXPECT_GT(torch::linalg_eigvalsh(S).min().item<double>(), 0);
}

TEST(Stiefel, TallFramesNeverFormNxN) {
  // A 30000 x 8 frame: every retraction works in O(nk²) memory (an n×n matrix would be 7 GB).
  torch::manual_seed(5);
  Stiefel st;
  torch::Tensor X = st.random({30000, 8}, torch::kFloat64);
  torch::Tensor V = st.proj_tangent(X, torch::randn({30000, 8}, torch::kFloat64)) * 0.1;
  for (Retraction r : {Retraction::Exp, Retraction::Cayley, Retraction::QR, Retraction::Polar}) {
    EXPECT_EQ(st.check_point(st.retract(X, V, r), 1e-12), "") << to_string(r);
  }
}

TEST(Sphere, ParallelTransportIsAnIsometry) {
  torch::manual_seed(6);
  Sphere sp;
  torch::Tensor x = sp.random({10, 7}, torch::kFloat64);
  torch::Tensor v = sp.proj_tangent(x, torch::randn({10, 7}, torch::kFloat64));
  torch::Tensor u = sp.proj_tangent(x, torch::randn({10, 7}, torch::kFloat64));
  torch::Tensor w = sp.proj_tangent(x, torch::randn({10, 7}, torch::kFloat64));
  auto [y, tu] = sp.retract_transport(x, v, u, Retraction::Exp);
  auto [y2, tw] = sp.retract_transport(x, v, w, Retraction::Exp);
  EXPECT_LT(max_abs(sp.inner(y, tu, tw) - sp.inner(x, u, w)), 1e-12);
  // Transporting the direction itself gives the geodesic's velocity at the end.
  auto [y3, tv] = sp.retract_transport(x, v, v, Retraction::Exp);
  const double h = 1e-6;
  torch::Tensor velocity = (sp.retract(x, (1 + h) * v) - sp.retract(x, (1 - h) * v)) / (2 * h);
  EXPECT_LT(max_abs(tv - velocity), 1e-8);
}

TEST(Grassmannian, ExpKeepsOrthonormalityAndTurnsByTheSingularValues) {
  torch::manual_seed(7);
  Grassmannian gr;
  torch::Tensor X = gr.random({4, 12, 3}, torch::kFloat64);
  torch::Tensor V = gr.proj_tangent(X, torch::randn({4, 12, 3}, torch::kFloat64));
  V = V / torch::linalg_matrix_norm(V, 2).unsqueeze(-1).unsqueeze(-1) * 1.2;  // ‖V‖₂ = 1.2 < π/2
  torch::Tensor Y = gr.retract(X, V, Retraction::Exp);
  EXPECT_EQ(gr.check_point(Y, 1e-12), "");
  // Along a geodesic the principal angles between span X and span Y are the singular values
  // of V: cos θ = svdvals(XᵀY).
  torch::Tensor cos_theta = torch::linalg_svdvals(torch::matmul(X.mT(), Y));
  torch::Tensor sigma = torch::linalg_svdvals(V);
  EXPECT_LT(max_abs(cos_theta - torch::cos(sigma).flip(-1)), 1e-12);  // both sorted descending
  // Large steps (beyond the injectivity radius) stay orthonormal too.
  EXPECT_EQ(gr.check_point(gr.retract(X, 10 * V, Retraction::Exp), 1e-12), "");
  // exp matches the thin-SVD formula X W cos Σ Wᵀ + U sin Σ Wᵀ.
  auto svd = torch::linalg_svd(V, false);
  torch::Tensor U = std::get<0>(svd), S = std::get<1>(svd), Wt = std::get<2>(svd);
  torch::Tensor ref = torch::matmul(torch::matmul(X, Wt.mT()) * torch::cos(S).unsqueeze(-2), Wt) +
                      torch::matmul(U * torch::sin(S).unsqueeze(-2), Wt);
  EXPECT_LT(max_abs(Y - ref), 1e-12);
}

TEST(Grassmannian, ExpGradientMatchesExpmAtNearlyRepeatedSingularValues) {
  // With S = VᵀV, the geodesic X cos√S + V sinc√S is [X V] times the first block column of
  // expm([[0, −S], [I, 0]]), whose square is −S ⊕ −S. mantra::expm's backward (the adjoint of
  // scaling and squaring) is then an independent reference for the divided differences of
  // cos√s and sinc√s where singular values of V coincide, nearly coincide or vanish. The
  // cancellation-free differences stay within 4e-15 of it at every gap; the generic rule (f'
  // below an eps^{1/3} gap) was 8.7e-14 and 1.8e-14 off at gaps 4e-6 and 1e-5. The retraction
  // ends with the polar factor, whose derivative at a frame is dY − Y sym(YᵀdY).
  torch::manual_seed(22);
  Grassmannian gr;
  const int64_t n = 9, k = 4;
  auto f64 = torch::kFloat64;
  torch::Tensor X = gr.random({n, k}, f64);
  torch::Tensor U = std::get<0>(torch::linalg_qr(torch::matmul(torch::eye(n, f64) - torch::matmul(X, X.t()),
                                                               torch::randn({n, k}, f64))));
  torch::Tensor W = Stiefel().random({k, k}, f64);
  torch::Tensor C = torch::randn({n, k}, f64);
  for (double delta : {0.0, 1e-12, 1e-9, 1e-6, 4e-6, 1e-5, 1e-3, 0.3}) {
    torch::Tensor sigma = torch::tensor({0.8, 0.8 + delta, 1.9, 0.0}, f64);
    torch::Tensor V0 = torch::matmul(U * sigma, W.t());
    torch::Tensor V = V0.clone().requires_grad_(true), V2 = V0.clone().requires_grad_(true);
    torch::Tensor Y = gr.retract(X, V, Retraction::Exp);
    (Y * C).sum().backward();
    torch::Tensor Vh = V2 - torch::matmul(X, torch::matmul(X.t(), V2));
    torch::Tensor S = torch::matmul(Vh.t(), Vh);
    torch::Tensor Z = torch::cat({torch::cat({torch::zeros({k, k}, f64), -S}, 1),
                                  torch::cat({torch::eye(k, f64), torch::zeros({k, k}, f64)}, 1)}, 0);
    torch::Tensor E = mantra::expm(Z);
    torch::Tensor Yref = torch::matmul(X, E.narrow(0, 0, k).narrow(1, 0, k)) + torch::matmul(Vh, E.narrow(0, k, k).narrow(1, 0, k));
    torch::Tensor Y0 = Yref.detach();
    torch::Tensor YtC = torch::matmul(Y0.t(), C);
    ((C - torch::matmul(Y0, (YtC + YtC.t()) / 2)) * Yref).sum().backward();
    EXPECT_LT(max_abs(Y - Yref), 1e-14) << "delta " << delta;
    EXPECT_LT(max_abs(V.grad() - V2.grad()), 1e-14) << "delta " << delta;
  }
}

TEST(Grassmannian, ParallelTransportIsAnIsometryAlongTheGeodesic) {
  torch::manual_seed(8);
  Grassmannian gr;
  for (std::vector<int64_t> shape : {std::vector<int64_t>{3, 9, 4}, std::vector<int64_t>{2, 4, 9}}) {
    torch::Tensor X = gr.random(shape, torch::kFloat64);
    auto tangent = [&] { return gr.proj_tangent(X, torch::randn(shape, torch::kFloat64)); };
    torch::Tensor v = 0.7 * tangent(), u = tangent(), w = tangent();
    auto [y, tu] = gr.retract_transport(X, v, u, Retraction::Exp);
    auto [y2, tw] = gr.retract_transport(X, v, w, Retraction::Exp);
    EXPECT_LT(max_abs(gr.inner(y, tu, tw) - gr.inner(X, u, w)), 1e-12);
    auto [y3, tv] = gr.retract_transport(X, v, v, Retraction::Exp);
    const double h = 1e-6;
    torch::Tensor velocity = (gr.retract(X, (1 + h) * v) - gr.retract(X, (1 - h) * v)) / (2 * h);
    EXPECT_LT(max_abs(tv - velocity), 1e-8);
  }
}

TEST(Grassmannian, RetractionsDependOnlyOnTheSubspace) {
  // Rotating the frame (X → XQ, V → VQ) rotates the result of every retraction: the same subspace.
  torch::manual_seed(9);
  Grassmannian gr;
  torch::Tensor X = gr.random({8, 3}, torch::kFloat64);
  torch::Tensor V = 0.5 * gr.proj_tangent(X, torch::randn({8, 3}, torch::kFloat64));
  torch::Tensor Q = Stiefel().random({3, 3}, torch::kFloat64);
  for (Retraction r : {Retraction::Exp, Retraction::QR, Retraction::Polar}) {
    torch::Tensor Y = gr.retract(X, V, r), YQ = gr.retract(torch::matmul(X, Q), torch::matmul(V, Q), r);
    EXPECT_LT(max_abs(torch::matmul(Y, Y.t()) - torch::matmul(YQ, YQ.t())), 1e-12) << to_string(r);
  }
  EXPECT_NE(Grassmannian().check_point(torch::ones({4, 2})).find("not orthonormal"), std::string::npos);
}

TEST(PSD, PointsAreSymmetricPositiveSemidefiniteOfRankR) {
  torch::manual_seed(21);
  PSD psd(2);
  torch::Tensor X = psd.random({3, 6, 6}, torch::kFloat64);
  EXPECT_LT((X - X.mT()).abs().max().item<double>(), 1e-14);
  torch::Tensor ev = torch::linalg_eigvalsh(X);
  EXPECT_GT(ev.narrow(-1, 4, 2).min().item<double>(), 0.5);      // two positive eigenvalues
  EXPECT_LT(ev.narrow(-1, 0, 4).abs().max().item<double>(), 1e-12);  // the rest zero
  // project keeps the top r eigenvalues, floored at 0: −I + diag(3, 2) → diag(2, 1) on those.
  torch::Tensor A = torch::diag(torch::tensor({2.0, 1.0, -1.0, -1.0}, torch::kFloat64));
  EXPECT_LT((psd.project(A) - torch::diag(torch::tensor({2.0, 1.0, 0.0, 0.0}, torch::kFloat64))).abs().max().item<double>(),
            1e-14);
  EXPECT_NE(psd.check_point(-psd.random({4, 4}, torch::kFloat64)).find("negative eigenvalue"), std::string::npos);
  EXPECT_NE(psd.check_point(torch::randn({4, 4}, torch::kFloat64)).find("rank"), std::string::npos);
  try {
    psd.random({4, 5});
    ADD_FAILURE();
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("argument 'shape' must be square"), std::string::npos) << e.what();
  }
}

TEST(FixedRank, ProjectIsTheTruncatedSVD) {
  torch::manual_seed(10);
  FixedRank fr(3);
  for (std::vector<int64_t> shape : {std::vector<int64_t>{4, 9, 6}, std::vector<int64_t>{2, 5, 11}}) {
    torch::Tensor A = torch::randn(shape, torch::kFloat64);
    auto svd = torch::linalg_svd(A, false);
    torch::Tensor U = std::get<0>(svd).narrow(-1, 0, 3), S = std::get<1>(svd).narrow(-1, 0, 3),
                  Vh = std::get<2>(svd).narrow(-2, 0, 3);
    torch::Tensor P = fr.project(A);
    EXPECT_LT(max_abs(P - torch::matmul(U * S.unsqueeze(-2), Vh)), 1e-12);
    EXPECT_EQ(fr.check_point(P, 1e-12), "");
    // Eckart–Young: the error is the norm of the discarded singular values.
    torch::Tensor rest = std::get<1>(svd).narrow(-1, 3, std::get<1>(svd).size(-1) - 3);
    EXPECT_LT(max_abs(torch::linalg_matrix_norm(A - P) - rest.norm(2, -1)), 1e-12);
  }
}

TEST(FixedRank, VelocitiesOfRankRCurvesAreTangent) {
  // X(t) = U(t) S(t) V(t)ᵀ stays of rank r: its velocity is fixed by proj_tangent, and a
  // vector with (I − P_U) G (I − P_V) = G is annihilated.
  torch::manual_seed(11);
  FixedRank fr(2);
  torch::Tensor U0 = torch::randn({8, 2}, torch::kFloat64), V0 = torch::randn({5, 2}, torch::kFloat64);
  torch::Tensor dU = torch::randn({8, 2}, torch::kFloat64), dV = torch::randn({5, 2}, torch::kFloat64);
  auto curve = [&](double t) { return torch::matmul(U0 + t * dU, (V0 + t * dV).t()); };
  torch::Tensor X = curve(0);
  torch::Tensor Xdot = torch::matmul(dU, V0.t()) + torch::matmul(U0, dV.t());
  EXPECT_LT(max_abs(fr.proj_tangent(X, Xdot) - Xdot), 1e-12);
  EXPECT_EQ(fr.check_point(curve(0.3), 1e-12), "");
  auto svd = torch::linalg_svd(X, true);
  torch::Tensor Uperp = std::get<0>(svd).narrow(-1, 2, 6), Vperp = std::get<2>(svd).narrow(-2, 2, 3).t();
  torch::Tensor N = torch::matmul(torch::matmul(Uperp, torch::randn({6, 3}, torch::kFloat64)), Vperp.t());
  EXPECT_LT(max_abs(fr.proj_tangent(X, N)), 1e-12);
  // Rank checks in both directions.
  EXPECT_NE(fr.check_point(torch::randn({8, 5}, torch::kFloat64)).find("exceeds 2"), std::string::npos);
  EXPECT_NE(FixedRank(3).check_point(X).find("below 3"), std::string::npos);
}

TEST(GLPlus, RetractionNeverLeavesPositiveDeterminant) {
  torch::manual_seed(12);
  GLPlus gl(3);
  torch::Tensor X = gl.random({64, 3, 3}, torch::kFloat64);
  EXPECT_GT(torch::linalg_det(X).min().item<double>(), 0);
  // X + V = −X has det < 0 for odd n: the step falls back to X expm(X⁻¹V) = e^{−2} X.
  torch::Tensor Y = gl.retract(X, -2 * X);
  EXPECT_LT(max_abs(Y - std::exp(-2.0) * X), 1e-12);
  // Large random steps: many X + V leave GL+, no result does.
  torch::Tensor V = 3 * torch::randn({64, 3, 3}, torch::kFloat64);
  torch::Tensor naive = torch::linalg_det(X + V);
  EXPECT_GT((naive <= 0).sum().item<int64_t>(), 5);
  for (Retraction r : {Retraction::Projection, Retraction::Exp}) {
    torch::Tensor Z = gl.retract(X, V, r);
    EXPECT_GT(torch::linalg_det(Z).min().item<double>(), 0) << to_string(r);
    EXPECT_EQ(gl.check_point(Z), "") << to_string(r);
  }
  // Where X + V stays in GL+ the step is exactly X + V.
  torch::Tensor keep = naive > 0;
  EXPECT_EQ(max_abs((gl.retract(X, V) - (X + V)).index({keep})), 0.0);
}

TEST(SL, EveryRetractionLandsOnUnitDeterminantAndProjectionFixesIt) {
  torch::manual_seed(8);
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    const double tol = dtype == torch::kDouble ? 1e-12 : 2e-5;
    SL sl(6);
    const torch::Tensor X = sl.random({4, 6, 6}, dtype);
    // Non-tangent and long steps too: the retraction divides by det^{1/n}.
    for (double scale : {0.01, 1.0, 30.0})
      for (Retraction r : {Retraction::Projection, Retraction::Exp}) {
        const torch::Tensor Y = sl.retract(X, scale * torch::randn({4, 6, 6}, dtype), r);
        ASSERT_TRUE(torch::isfinite(Y).all().item<bool>());
        EXPECT_LT(max_abs(torch::linalg_det(Y.to(torch::kDouble)) - 1), 50 * tol) << scale << " " << to_string(r);
      }
    // project(): det −2 (a reflected, scaled point) becomes det 1; points of SL stay put.
    torch::Tensor B = torch::diag(torch::tensor({-2.0, 1.0, 1.0, 1.0, 1.0, 1.0}, dtype));
    const torch::Tensor P = sl.project(B);
    EXPECT_NEAR(torch::linalg_det(P.to(torch::kDouble)).item<double>(), 1.0, tol);
    EXPECT_EQ(sl.check_point(P, 10 * tol), "");
    EXPECT_NE(sl.check_point(2 * X.select(0, 0)).find("determinant is not 1"), std::string::npos);
    EXPECT_NE(sl.check_point(B).find("negative"), std::string::npos);
  }
  EXPECT_EQ(SL(4).spec(), "SL(n=4)");
  EXPECT_EQ(manifold_from_spec("SL(n=4)")->name(), "SL");
  mantra::test::expect_error([] { SL(0); }, "argument 'n'");
  mantra::test::expect_error([] { SL(3).random({3, 4}); }, "argument 'shape' must have shape (..., 3, 3)");
}

TEST(GLPlus, ProjectFixesTheSignAndLiftsSmallSingularValues) {
  GLPlus gl(3, 1e-3);
  torch::Tensor R = torch::diag(torch::tensor({-0.5, 2.0, 3.0}, torch::kFloat64));
  EXPECT_NE(gl.check_point(R).find("negative"), std::string::npos) << gl.check_point(R);
  torch::Tensor P = gl.project(R);
  EXPECT_EQ(gl.check_point(P), "");
  // The smallest singular direction is reflected to the floor: diag(1e-3, 2, 3).
  EXPECT_LT(max_abs(P - torch::diag(torch::tensor({1e-3, 2.0, 3.0}, torch::kFloat64))), 1e-14);
  torch::Tensor singular = torch::diag(torch::tensor({0.0, 2.0, 3.0}, torch::kFloat64));
  EXPECT_NE(gl.check_point(singular).find("singular"), std::string::npos);
  EXPECT_EQ(gl.check_point(gl.project(singular)), "");
  EXPECT_NEAR(torch::linalg_svdvals(gl.project(singular)).min().item<double>(), 1e-3, 1e-15);
}

namespace {
// f(S) for symmetric S through eigh: an independent reference for the SPD tests.
torch::Tensor spectral(const torch::Tensor& S, const std::function<torch::Tensor(torch::Tensor)>& f) {
  auto [lambda, Q] = torch::linalg_eigh(S);
  return torch::matmul(Q * f(lambda).unsqueeze(-2), Q.mT());
}
}  // namespace

TEST(SPD, GeodesicMidpointIsTheGeometricMean) {
  torch::manual_seed(13);
  SPD spd;
  torch::Tensor A = spd.random({5, 4, 4}, torch::kFloat64), B = spd.random({5, 4, 4}, torch::kFloat64);
  torch::Tensor V = spd.log(A, B);
  EXPECT_LT(max_abs(spd.retract(A, V) - B), 1e-11);  // exp_A(log_A B) = B
  torch::Tensor mid = spd.retract(A, 0.5 * V);
  // A#B = A^{1/2}(A^{-1/2} B A^{-1/2})^{1/2}A^{1/2}, and it solves the Riccati equation M A⁻¹ M = B.
  torch::Tensor Ah = spectral(A, [](torch::Tensor l) { return l.sqrt(); });
  torch::Tensor Aih = spectral(A, [](torch::Tensor l) { return l.rsqrt(); });
  torch::Tensor inner = torch::matmul(torch::matmul(Aih, B), Aih);
  torch::Tensor mean = torch::matmul(torch::matmul(Ah, spectral((inner + inner.mT()) / 2,
                                                                [](torch::Tensor l) { return l.sqrt(); })), Ah);
  EXPECT_LT(max_abs(mid - mean), 1e-11);
  EXPECT_LT(max_abs(torch::matmul(torch::matmul(mid, torch::linalg_inv(A)), mid) - B), 1e-10);
  // The midpoint halves the distance, and the distance is the norm of the logarithm.
  EXPECT_LT(max_abs(spd.distance(A, mid) - 0.5 * spd.distance(A, B)), 1e-11);
  EXPECT_LT(max_abs(spd.distance(A, B) - spd.norm(A, V)), 1e-11);
  EXPECT_LT(max_abs(spd.distance(A, B) - spd.distance(B, A)), 1e-11);
}

TEST(SPD, MetricAndDistanceAreAffineInvariant) {
  torch::manual_seed(14);
  SPD spd;
  torch::Tensor X = spd.random({3, 5, 5}, torch::kFloat64), Y = spd.random({3, 5, 5}, torch::kFloat64);
  torch::Tensor U = spd.proj_tangent(X, torch::randn({3, 5, 5}, torch::kFloat64));
  torch::Tensor V = spd.proj_tangent(X, torch::randn({3, 5, 5}, torch::kFloat64));
  torch::Tensor G = torch::randn({3, 5, 5}, torch::kFloat64);
  auto act = [&](const torch::Tensor& M) { return torch::matmul(torch::matmul(G, M), G.mT()); };
  EXPECT_LT(max_abs(spd.inner(act(X), act(U), act(V)) - spd.inner(X, U, V)), 1e-9);
  EXPECT_LT(max_abs(spd.distance(act(X), act(Y)) - spd.distance(X, Y)), 1e-9);
  // The Riemannian gradient of log det is X (egrad X⁻¹, rgrad X X⁻¹ X).
  EXPECT_LT(max_abs(spd.egrad_to_rgrad(X, torch::linalg_inv(X)) - X), 1e-12);
  EXPECT_LT(max_abs(spd.distance(X, X)), 1e-12);
  torch::Tensor Xg = X.clone().requires_grad_(true);
  spd.distance(Xg, X).sum().backward();
  EXPECT_TRUE(torch::isfinite(Xg.grad()).all().item<bool>());
}

TEST(SPD, ParallelTransportIsAnIsometryAlongTheGeodesic) {
  torch::manual_seed(15);
  SPD spd;
  torch::Tensor X = spd.random({4, 4, 4}, torch::kFloat64);
  auto tangent = [&] { return spd.proj_tangent(X, torch::randn({4, 4, 4}, torch::kFloat64)); };
  torch::Tensor v = tangent(), u = tangent(), w = tangent();
  auto [y, tu] = spd.retract_transport(X, v, u);
  auto [y2, tw] = spd.retract_transport(X, v, w);
  // The step is long (‖X⁻¹v‖_F up to 14, κ(y) up to 5e4), and the transported products carry
  // rounding amplified by κ(y): measured 0.4·ε·κ(y) relative (ε = 2⁻⁵²), held to 4·ε·κ(y).
  const torch::Tensor inner = spd.inner(X, u, w);
  const torch::Tensor scaled = (spd.inner(y, tu, tw) - inner).abs() /
                               (std::numeric_limits<double>::epsilon() * torch::linalg_cond(y) * inner.abs());
  EXPECT_LT(scaled.max().item<double>(), 4.0);
  EXPECT_LT(max_abs(spd.transport(X, y, u) - tu), 1e-10);  // the general and the fused forms agree
  auto [y3, tv] = spd.retract_transport(X, v, v);
  const double h = 1e-6;
  torch::Tensor velocity = (spd.retract(X, (1 + h) * v) - spd.retract(X, (1 - h) * v)) / (2 * h);
  EXPECT_LT(max_abs(tv - velocity), 1e-7 * std::max(1.0, max_abs(velocity)));
}

TEST(SPD, ExpAtTheIdentityIsExpmWithItsGradientAtNearlyRepeatedEigenvalues) {
  // At X = I the geodesic is expm(V); mantra::expm has its own backward (a Fréchet derivative),
  // an independent reference for the eigh-based one, here where eigenvalues nearly coincide
  // and divided differences lose digits.
  torch::manual_seed(20);
  SPD spd;
  torch::Tensor Q = Stiefel().random({4, 4}, torch::kFloat64);
  torch::Tensor C = torch::randn({4, 4}, torch::kFloat64);
  for (double delta : {0.0, 1e-13, 1e-11, 1e-9, 1e-7, 1e-4}) {
    torch::Tensor V0 = torch::matmul(Q * torch::tensor({0.3, 0.3 + delta, 1.0, -2.0}, torch::kFloat64), Q.t());
    V0 = (V0 + V0.t()) / 2;
    torch::Tensor V = V0.clone().requires_grad_(true), W = V0.clone().requires_grad_(true);
    torch::Tensor I = torch::eye(4, torch::kFloat64);
    torch::Tensor R = spd.retract(I, V), E = mantra::expm(W);
    EXPECT_LT(max_abs(R - E), 1e-13) << delta;
    (R * C).sum().backward();
    (E * ((C + C.t()) / 2)).sum().backward();  // the retraction sees sym(V)
    EXPECT_LT(max_abs(V.grad() - W.grad()), 1e-10) << "delta " << delta;
  }
}

TEST(SPD, GradientsStayAccurateForSmallEigenvalues) {
  // Square roots of a matrix with eigenvalues 1e-6 and 3e-6 (close in absolute, far in
  // relative terms): the gradient of the exp retraction matches central differences.
  torch::manual_seed(21);
  SPD spd;
  torch::Tensor Q = Stiefel().random({3, 3}, torch::kFloat64);
  torch::Tensor X = torch::matmul(Q * torch::tensor({1e-6, 3e-6, 1.0}, torch::kFloat64), Q.t());
  X = (X + X.t()) / 2;
  torch::Tensor V0 = 1e-7 * spd.proj_tangent(X, torch::randn({3, 3}, torch::kFloat64));
  torch::Tensor C = torch::randn({3, 3}, torch::kFloat64), D = torch::randn({3, 3}, torch::kFloat64);
  torch::Tensor Xg = X.clone().requires_grad_(true);
  (spd.retract(Xg, V0) * C).sum().backward();
  const double h = 1e-11;
  const double fd = ((spd.retract(X + h * (D + D.t()), V0) - spd.retract(X - h * (D + D.t()), V0)) * C).sum().item<double>() / (2 * h);
  const double ad = (Xg.grad() * (D + D.t())).sum().item<double>();
  EXPECT_NEAR(ad, fd, 1e-4 * std::abs(fd));
}

TEST(SPD, ProjectLiftsEigenvaluesToTheFloor) {
  SPD spd(SPDOptions().set_min_eigenvalue(1e-3));
  torch::Tensor A = torch::tensor({{2.0, 1.0}, {0.0, -1.0}}, torch::kFloat64);  // sym: eigenvalues ±√1.25 + 0.5
  EXPECT_NE(spd.check_point(A).find("not symmetric"), std::string::npos);
  torch::Tensor P = spd.project(A);
  EXPECT_EQ(spd.check_point(P, 1e-12), "");
  torch::Tensor expected = spectral((A + A.t()) / 2, [](torch::Tensor l) { return l.clamp_min(1e-3); });
  EXPECT_LT(max_abs(P - expected), 1e-14);
  EXPECT_NEAR(torch::linalg_eigvalsh(P).min().item<double>(), 1e-3, 1e-14);
  EXPECT_NE(spd.check_point(-torch::eye(3, torch::kFloat64)).find("positive definite"), std::string::npos);
}

TEST(Hyperbolic, DistancesAgreeBetweenModelsThroughTheIsometry) {
  torch::manual_seed(16);
  Lorentz lo;
  PoincareBall pb;
  torch::Tensor x = lo.random({50, 4}, torch::kFloat64), y = lo.random({50, 4}, torch::kFloat64);
  torch::Tensor p = lorentz_to_poincare(x), q = lorentz_to_poincare(y);
  EXPECT_EQ(pb.check_point(p, 0), "");
  EXPECT_LT(max_abs(poincare_to_lorentz(p) - x), 1e-12);
  EXPECT_LT(max_abs(lo.distance(x, y) - pb.distance(p, q)), 1e-12);
  // arccosh(−⟨x, y⟩_L), the textbook form, agrees away from 0.
  EXPECT_LT(max_abs(lo.distance(x, y) - torch::acosh(-Lorentz::minkowski(x, y).squeeze(-1))), 1e-10);
  // Geodesics minimize: d(x, exp_x v) = ‖v‖_x in both models; exp commutes with the isometry.
  // Steps of length 0.5 to 3 (hyperboloid coordinates grow like e^d, and with them the rounding).
  torch::Tensor v = lo.proj_tangent(x, torch::randn({50, 4}, torch::kFloat64));
  v = v / lo.norm(x, v).unsqueeze(-1) * (0.5 + 2.5 * torch::rand({50, 1}, torch::kFloat64));
  torch::Tensor y2 = lo.retract(x, v, Retraction::Exp);
  EXPECT_LT(max_abs(lo.distance(x, y2) - lo.norm(x, v)), 1e-10);
  torch::Tensor u = 0.8 * torch::randn({50, 3}, torch::kFloat64);
  torch::Tensor q2 = pb.retract(p, u, Retraction::Exp);
  EXPECT_LT(max_abs(pb.distance(p, q2) - pb.norm(p, u)), 1e-10);
  // The differential of the isometry carries u to a Lorentz tangent vector with the same norm;
  // following it by exp gives the same point.
  const double h = 1e-6;
  torch::Tensor w = (poincare_to_lorentz(p + h * u) - poincare_to_lorentz(p - h * u)) / (2 * h);
  EXPECT_LT(max_abs(lo.norm(x, w) - pb.norm(p, u)), 1e-7);
  EXPECT_LT(max_abs(lorentz_to_poincare(lo.retract(x, w, Retraction::Exp)) - q2), 1e-7);
}

TEST(Hyperbolic, ParallelTransportIsAnIsometryAlongTheGeodesic) {
  torch::manual_seed(17);
  std::vector<std::pair<std::shared_ptr<Hyperbolic>, int64_t>> models = {{std::make_shared<Lorentz>(), 5},
                                                                         {std::make_shared<PoincareBall>(), 4}};
  for (auto& [M, d] : models) {
    torch::Tensor x = M->random({20, d}, torch::kFloat64);
    auto tangent = [&, &M = M, &d = d] { return M->proj_tangent(x, torch::randn({20, d}, torch::kFloat64)); };
    torch::Tensor v = 0.5 * tangent(), u = tangent(), w = tangent();
    auto [y, tu] = M->retract_transport(x, v, u, Retraction::Exp);
    auto [y2, tw] = M->retract_transport(x, v, w, Retraction::Exp);
    EXPECT_LT(max_abs(M->inner(y, tu, tw) - M->inner(x, u, w)), 1e-10) << M->name();
    auto [y3, tv] = M->retract_transport(x, v, v, Retraction::Exp);
    const double h = 1e-6;
    torch::Tensor velocity = (M->retract(x, (1 + h) * v) - M->retract(x, (1 - h) * v)) / (2 * h);
    EXPECT_LT(max_abs(tv - velocity), 1e-7 * std::max(1.0, max_abs(velocity))) << M->name();
  }
}

TEST(Hyperbolic, OneRiemannianGradientStepOnHalfTheSquaredDistanceReachesTheTarget) {
  // grad_x d(x, y)²/2 = −log_x(y), so x ← exp_x(−grad) lands on y: checks distance's gradient,
  // egrad_to_rgrad and exp of each model together.
  torch::manual_seed(18);
  std::vector<std::pair<std::shared_ptr<Hyperbolic>, int64_t>> models = {{std::make_shared<Lorentz>(), 4},
                                                                         {std::make_shared<PoincareBall>(), 3}};
  for (auto& [M, d] : models) {
    torch::Tensor x = M->random({10, d}, torch::kFloat64), y = M->random({10, d}, torch::kFloat64);
    torch::Tensor xg = x.clone().requires_grad_(true);
    (0.5 * M->distance(xg, y).pow(2)).sum().backward();
    torch::Tensor rgrad = M->egrad_to_rgrad(x, xg.grad());
    EXPECT_LT(max_abs(M->retract(x, -rgrad, Retraction::Exp) - y), 1e-9) << M->name();
    // At x = y the gradient of the distance is finite (zero).
    torch::Tensor yg = y.clone().requires_grad_(true);
    M->distance(yg, y).sum().backward();
    EXPECT_TRUE(torch::isfinite(yg.grad()).all().item<bool>()) << M->name();
    EXPECT_LT(max_abs(M->distance(y, y)), 1e-7) << M->name();
  }
}

TEST(PoincareBall, StaysInsideTheBallInFloat32) {
  PoincareBall pb;
  torch::manual_seed(19);
  torch::Tensor x = pb.random({100, 3}, torch::kFloat32);
  torch::Tensor v = 50 * torch::randn({100, 3}, torch::kFloat32);
  for (Retraction r : {Retraction::Exp, Retraction::Projection}) {
    torch::Tensor y = pb.retract(x, v, r);
    EXPECT_EQ(pb.check_point(y), "") << to_string(r);
    // 1 − ‖y‖² computed in float32 stays near 2e-5, far from 0.
    EXPECT_GT((1 - (y * y).sum(-1)).min().item<double>(), 1.5e-5) << to_string(r);
    EXPECT_TRUE(torch::isfinite(pb.distance(x, y)).all().item<bool>());
    EXPECT_TRUE(torch::isfinite(pb.egrad_to_rgrad(y, torch::ones_like(y))).all().item<bool>());
  }
  torch::Tensor outside = torch::tensor({3.0f, 4.0f});
  EXPECT_NE(pb.check_point(outside).find("norm is 5"), std::string::npos) << pb.check_point(outside);
  EXPECT_NEAR(pb.project(outside).norm().item<double>(), 1 - 1e-5, 1e-7);
  EXPECT_NEAR(pb.project(outside.to(torch::kFloat64)).norm().item<double>(), 1 - 1e-10, 1e-15);
  // Lorentz: far points in float32 stay on the hyperboloid to relative precision.
  Lorentz lo;
  torch::Tensor z = lo.retract(lo.origin({4}, torch::kFloat32), torch::tensor({0.0f, 8.0f, 0.0f, 0.0f}));
  EXPECT_EQ(lo.check_point(z, 1e-5), "");
  EXPECT_NEAR(lo.distance(lo.origin({4}, torch::kFloat32), z).item<double>(), 8.0, 1e-3);
}

TEST(Manifolds, BadInputsNameTheArgument) {
  using mantra::test::expect_error;
  Stiefel st;
  Stiefel so(StiefelOptions().set_special(true));
  expect_error([&] { st.random({5}); }, "argument 'shape' must have at least 2 dimensions");
  expect_error([&] { so.random({5, 4}); }, "argument 'shape' must be square");
  expect_error([&] { st.retract(torch::zeros({5, 3}), torch::zeros({5, 2})); }, "argument 'V' must have the shape of 'X'");
  expect_error([&] { st.proj_tangent(torch::zeros({5, 3}), torch::zeros({3, 5})); }, "argument 'G' must have the shape");
  expect_error([&] { Sphere().retract(torch::ones({3}), torch::zeros({3}), Retraction::QR); },
               "argument 'method' must be one of exp, projection");
  expect_error([] { retraction_from_string("householderx"); }, "argument 'retraction' must be one of");
  expect_error([] { Stiefel(StiefelOptions().set_retraction(Retraction::Projection)); }, "argument 'retraction'");
  expect_error([] { Grassmannian(GrassmannianOptions().set_retraction(Retraction::Cayley)); }, "argument 'retraction'");
  expect_error([] { Grassmannian().retract(torch::eye(3), torch::zeros({3, 3}), Retraction::Cayley); },
               "argument 'method' must be one of exp, qr, polar");
  expect_error([] { FixedRank(0); }, "argument 'rank'");
  expect_error([] { FixedRank(4, 3, 5); }, "argument 'rank' must be at most min(n, k) = 3");
  expect_error([] { FixedRank(4).random({2, 3, 5}); }, "argument 'rank' (4) must be at most min(n, k) = 3");
  expect_error([] { FixedRank(4).proj_tangent(torch::ones({3, 5}), torch::ones({3, 5})); }, "argument 'rank'");
  expect_error([] { GLPlus(0); }, "argument 'n'");
  expect_error([] { Lorentz().random({3, 1}); }, "argument 'shape' must have a last dimension of size d + 1 >= 2");
  expect_error([] { Lorentz().distance(torch::ones({3}), torch::ones({4})); }, "argument 'Y' must have the shape");
  expect_error([] { PoincareBall().random({3, 0}); }, "argument 'shape' must have a last dimension of size d >= 1");
  expect_error([] { SPD().random({3, 4}); }, "argument 'shape' must be square (..., n, n), got shape [3, 4]");
  expect_error([] { SPD().proj_tangent(torch::ones({3, 4}), torch::ones({3, 4})); }, "argument 'X' must be square");
  expect_error([] { SPD(SPDOptions().set_min_eigenvalue(-1)); }, "argument 'min_eigenvalue'");
  EXPECT_NE(SPD().check_point(torch::ones({3, 4})).find("square"), std::string::npos);
  expect_error([] { GLPlus(3).random({3, 4}); }, "argument 'shape' must have shape (..., 3, 3)");
  expect_error([] { GLPlus(3).retract(torch::ones({2, 4}), torch::ones({2, 4})); }, "argument 'X' must have shape");
  EXPECT_NE(FixedRank(4).check_point(torch::ones({3, 5})).find("'rank'"), std::string::npos);
  torch::Tensor nan = torch::eye(3, torch::kFloat64);
  nan[1][1] = std::nan("");
  EXPECT_NE(st.check_point(nan).find("NaN"), std::string::npos);
  EXPECT_NE(FixedRank(2).check_point(nan).find("NaN"), std::string::npos);
  EXPECT_NE(GLPlus(3).check_point(nan).find("NaN"), std::string::npos);
  EXPECT_NE(SPD().check_point(nan).find("NaN"), std::string::npos);
  EXPECT_NE(Lorentz().check_point(nan).find("NaN"), std::string::npos);
  EXPECT_NE(PoincareBall().check_point(nan).find("NaN"), std::string::npos);
  EXPECT_NE(Lorentz().check_point(-Lorentz().origin({3})).find("x_0"), std::string::npos);
  EXPECT_NE(Lorentz().check_point(torch::ones({3})).find("differs from −1"), std::string::npos);
  EXPECT_NE(GLPlus(3).check_point(torch::ones({3, 4})).find("shape"), std::string::npos);
  EXPECT_NE(st.check_point(torch::ones({4, 2})).find("not orthonormal"), std::string::npos);
  EXPECT_NE(Sphere().check_point(torch::ones({4})).find("norm"), std::string::npos);
  EXPECT_NE(Oblique().check_point(torch::ones({4, 2})).find("column"), std::string::npos);
}
