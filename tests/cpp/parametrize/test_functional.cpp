// The maps of mantra::parametrize::functional that have their own fast paths: the square
// Cayley chart (one LU and one solve with the base as right-hand side), and the skipped
// tangent projection of the square exp/cayley charts, against the formulas they replace.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mantra/mantra.h>

#include <vector>

using namespace mantra;
using namespace mantra::manifolds;
namespace fn = mantra::parametrize::functional;

namespace {
double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }
torch::Tensor skew(const torch::Tensor& A) { return (A - A.mT()) / 2; }
torch::Tensor eye_like(const torch::Tensor& A) { return torch::eye(A.size(-1), A.options()).expand(A.sizes()); }

// The chart as it was computed before: V = P_X(u), Ω = skew(XᵀV), X·(I − Ω/2)⁻¹(I + Ω/2).
torch::Tensor cayley_chart_formula(const torch::Tensor& X, const torch::Tensor& u) {
  const torch::Tensor XtU = torch::matmul(X.mT(), u);
  const torch::Tensor V = u - torch::matmul(X, (XtU + XtU.mT()) / 2);
  const torch::Tensor half = skew(torch::matmul(X.mT(), V)) / 2;
  const torch::Tensor I = eye_like(half);
  return torch::matmul(X, torch::linalg_solve(I - half, I + half));
}
torch::Tensor exp_chart_formula(const torch::Tensor& X, const torch::Tensor& u) {
  const torch::Tensor XtU = torch::matmul(X.mT(), u);
  const torch::Tensor V = u - torch::matmul(X, (XtU + XtU.mT()) / 2);
  return torch::matmul(X, torch::linalg_matrix_exp(skew(torch::matmul(X.mT(), V))));
}

struct Case {
  std::vector<int64_t> shape;
  double scale;  // of u
};
const std::vector<Case> kCases = {{{5, 5}, 1.0}, {{64, 64}, 0.3}, {{3, 8, 8}, 2.0}, {{2, 1, 1}, 1.0}};
}  // namespace

TEST(FunctionalCayley, SquareRetractionEqualsTheSolveFormula) {
  for (bool special : {false, true}) {
    Stiefel M(StiefelOptions().set_special(special));
    for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
      const double tol = dtype == torch::kFloat64 ? 1e-12 : 1e-5;
      for (const Case& c : kCases) {
        torch::manual_seed(3);
        const torch::Tensor X = M.random(c.shape, torch::dtype(torch::kFloat64));
        const torch::Tensor V = M.proj_tangent(X, torch::randn(c.shape, torch::kFloat64) * c.scale);
        const torch::Tensor Omega = skew(torch::matmul(X.mT(), V)) / 2;
        const torch::Tensor I = eye_like(Omega);
        const torch::Tensor want = torch::matmul(X, torch::linalg_solve(I - Omega, I + Omega));
        const torch::Tensor got = M.retract_from_point(X.to(dtype), V.to(dtype), Retraction::Cayley);
        EXPECT_LT(max_abs(got.to(torch::kFloat64) - want), tol) << dtype << " n = " << c.shape.back();
      }
    }
  }
}

TEST(FunctionalCayley, ChartEqualsTheFormulaAndStaysOnTheManifold) {
  Stiefel M(StiefelOptions().set_special(true));
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    const double tol = dtype == torch::kFloat64 ? 1e-12 : 1e-5;
    for (const Case& c : kCases) {
      torch::manual_seed(4);
      const torch::Tensor X = M.random(c.shape, torch::dtype(dtype));
      const torch::Tensor u = torch::randn(c.shape, torch::dtype(dtype)) * c.scale;  // not tangent
      const torch::Tensor Xd = X.to(torch::kFloat64), ud = u.to(torch::kFloat64);
      for (Retraction r : {Retraction::Cayley, Retraction::Exp}) {
        const torch::Tensor got = fn::trivialize(M, X, u, r, 1.0);
        const torch::Tensor want = r == Retraction::Cayley ? cayley_chart_formula(Xd, ud) : exp_chart_formula(Xd, ud);
        EXPECT_EQ(got.scalar_type(), dtype);
        EXPECT_LT(max_abs(got.to(torch::kFloat64) - want), tol) << to_string(r) << " " << dtype;
        const torch::Tensor G = torch::matmul(got.mT(), got).to(torch::kFloat64);
        EXPECT_LT(max_abs(G - eye_like(G)), tol) << to_string(r) << " " << dtype;
        EXPECT_EQ(M.check_point(got, 10 * tol), "") << to_string(r);
      }
    }
  }
}

TEST(FunctionalCayley, ChartGradientMatchesFiniteDifferences) {
  // d/dε L(φ(u + εD)) at ε = 0 with L = ⟨W, φ⟩, against central differences (float64).
  Stiefel M(StiefelOptions().set_special(true));
  torch::manual_seed(5);
  const int64_t n = 7;
  const torch::Tensor X = M.random({n, n}, torch::dtype(torch::kFloat64));
  const torch::Tensor W = torch::randn({n, n}, torch::kFloat64), D = torch::randn({n, n}, torch::kFloat64);
  for (Retraction r : {Retraction::Cayley, Retraction::Exp}) {
    torch::Tensor u = torch::randn({n, n}, torch::kFloat64).requires_grad_(true);
    (fn::trivialize(M, X, u, r, 1.0) * W).sum().backward();
    const double analytic = (u.grad() * D).sum().item<double>();
    torch::NoGradGuard ng;
    const double eps = 1e-6;
    const double fd = ((fn::trivialize(M, X, u + eps * D, r, 1.0) * W).sum().item<double>() -
                       (fn::trivialize(M, X, u - eps * D, r, 1.0) * W).sum().item<double>()) /
                      (2 * eps);
    EXPECT_NEAR(analytic, fd, 1e-7 * std::max(1.0, std::abs(fd))) << to_string(r);
  }
}

namespace {
// H_1 ⋯ H_k [I; 0] by LAPACK (torch's householder_product), the path householder took before.
torch::Tensor householder_formula(const torch::Tensor& v) {
  const torch::Tensor lower = v.tril(-1);
  return torch::linalg_householder_product(lower, 2.0 / (1.0 + lower.pow(2).sum(-2)));
}
}  // namespace

TEST(FunctionalHouseholder, CompactWYEqualsHouseholderProductWithAndWithoutGradient) {
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    const double tol = dtype == torch::kFloat64 ? 1e-12 : 1e-5;
    for (std::vector<int64_t> shape : std::vector<std::vector<int64_t>>{{1, 1}, {6, 6}, {9, 4}, {3, 7, 7}, {64, 64}, {80, 17}}) {
      torch::manual_seed(7);
      const torch::Tensor v = torch::randn(shape, torch::kFloat64);
      const torch::Tensor want = householder_formula(v);
      torch::Tensor leaf = v.to(dtype).requires_grad_(true);
      const torch::Tensor with_grad = fn::householder(leaf, /*special=*/false, /*wide=*/false);
      torch::Tensor without;
      {
        torch::NoGradGuard ng;
        without = fn::householder(leaf, false, false);
      }
      EXPECT_TRUE(with_grad.requires_grad());
      EXPECT_LT(max_abs(with_grad.to(torch::kFloat64) - want), tol) << dtype << " " << v.sizes();
      EXPECT_LT(max_abs(without.to(torch::kFloat64) - want), tol) << dtype << " " << v.sizes();
      const torch::Tensor G = torch::matmul(with_grad.mT(), with_grad).to(torch::kFloat64);
      EXPECT_LT(max_abs(G - eye_like(G)), tol) << dtype << " " << v.sizes();
    }
  }
}

TEST(FunctionalHouseholder, GradientEqualsTheGradientOfHouseholderProduct) {
  // Against autograd through torch's householder_product (its own backward), float64.
  for (std::vector<int64_t> shape : std::vector<std::vector<int64_t>>{{6, 6}, {9, 4}, {2, 5, 5}, {40, 40}}) {
    torch::manual_seed(8);
    const torch::Tensor v = torch::randn(shape, torch::kFloat64);
    const torch::Tensor W = torch::randn(householder_formula(v).sizes(), torch::kFloat64);
    torch::Tensor a = v.clone().requires_grad_(true), b = v.clone().requires_grad_(true);
    (fn::householder(a, false, false) * W).sum().backward();
    (householder_formula(b) * W).sum().backward();
    EXPECT_LT(max_abs(a.grad() - b.grad()), 1e-11 * std::max(1.0, max_abs(b.grad()))) << v.sizes();
  }
}
