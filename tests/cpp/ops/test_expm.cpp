// mantra::expm and mantra::expm_backward from C++: accuracy against a long double reference,
// every Taylor degree and many squarings, mixed-norm batches, gradients, and bad input.
#include <ATen/core/dispatch/Dispatcher.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mantra/mantra.h>

#include "../test_util.h"

#include <cmath>
#include <string>
#include <vector>

namespace {

using LD = long double;
using Mat = std::vector<LD>;  // row-major n x n

Mat matmul(const Mat& a, const Mat& b, int64_t n) {
  Mat c(n * n, 0.0L);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < n; ++k) {
      const LD aik = a[i * n + k];
      for (int64_t j = 0; j < n; ++j) c[i * n + j] += aik * b[k * n + j];
    }
  return c;
}

// exp(A) in long double: scale to norm <= 1/8, 30 Taylor terms, square back.
torch::Tensor reference_expm(const torch::Tensor& A) {
  const int64_t n = A.size(0);
  torch::Tensor Ad = A.to(torch::kFloat64).contiguous();
  Mat a(Ad.data_ptr<double>(), Ad.data_ptr<double>() + n * n);
  LD norm = 0;
  for (int64_t j = 0; j < n; ++j) {
    LD col = 0;
    for (int64_t i = 0; i < n; ++i) col += std::fabs(a[i * n + j]);
    norm = std::max(norm, col);
  }
  int s = 0;
  while (norm > 0.125L) {
    norm /= 2;
    ++s;
  }
  for (LD& v : a) v = std::ldexp(v, -s);
  Mat result(n * n, 0.0L), term(n * n, 0.0L);
  for (int64_t i = 0; i < n; ++i) result[i * n + i] = term[i * n + i] = 1.0L;
  for (int k = 1; k <= 30; ++k) {
    term = matmul(term, a, n);
    for (LD& v : term) v /= k;
    for (int64_t i = 0; i < n * n; ++i) result[i] += term[i];
  }
  for (int i = 0; i < s; ++i) result = matmul(result, result, n);
  std::vector<double> out(result.begin(), result.end());
  return torch::tensor(out, torch::kFloat64).view({n, n});
}

double rel_error(const torch::Tensor& x, const torch::Tensor& ref) {
  return ((x.to(torch::kFloat64) - ref).norm() / ref.norm()).item<double>();
}

// A random matrix with the given 1-norm; skew-symmetric (exp well conditioned) if asked.
torch::Tensor random_matrix(int64_t n, double norm1, bool skew, torch::Dtype dtype = torch::kFloat64) {
  torch::Tensor G = torch::randn({n, n}, torch::kFloat64);
  if (skew) G = G - G.t();
  const double current = G.abs().sum(0).max().item<double>();
  if (current > 0) G = G * (norm1 / current);
  return G.to(dtype);
}

// 1-norm bounds of each Taylor degree (1, 2, 4, 8, 12, 18) in float64; a matrix slightly
// below each bound uses that degree, the rest scale and square.
const std::vector<double> kNormsEachDegree = {1e-17, 2e-8, 3e-4, 4.5e-2, 0.29, 1.05};
const std::vector<double> kNormsSquaring = {2.5, 17.0, 130.0, 1000.0, 9000.0};

constexpr double kU64 = 1.1102230246251565e-16;  // unit roundoff, float64
constexpr double kU32 = 5.9604644775390625e-08;  // unit roundoff, float32

}  // namespace

TEST(Expm, MatchesLongDoubleReferenceAtEveryDegree) {
  torch::manual_seed(1);
  for (int64_t n : {1, 4, 17, 40}) {
    for (double norm : kNormsEachDegree) {
      for (bool skew : {false, true}) {
        if (skew && n == 1) continue;
        torch::Tensor A = random_matrix(n, norm, skew);
        const double err = rel_error(mantra::expm(A), reference_expm(A));
        // Backward error below u at these norms: forward error a small multiple of n·u.
        EXPECT_LT(err, 4 * n * kU64) << "n=" << n << " norm=" << norm << " skew=" << skew;
      }
    }
  }
}

TEST(Expm, MatchesLongDoubleReferenceWithManySquarings) {
  torch::manual_seed(2);
  for (int64_t n : {3, 17, 40}) {
    for (double norm : kNormsSquaring) {
      // exp of a skew matrix is orthogonal, so its condition number is moderate.
      torch::Tensor A = random_matrix(n, norm, /*skew=*/true);
      const double err = rel_error(mantra::expm(A), reference_expm(A));
      const double s = std::ceil(std::log2(norm / 1.09));
      EXPECT_LT(err, 4 * n * (s + 1) * norm * kU64) << "n=" << n << " norm=" << norm;
      EXPECT_LT(err, 1e-10) << "n=" << n << " norm=" << norm;
    }
  }
}

TEST(Expm, Float32IsAsAccurateAsTorch) {
  // In float32 the error grows with the norm (the squarings amplify rounding); the bar is the
  // accuracy torch::linalg_matrix_exp reaches on the same input, measured against float64.
  torch::manual_seed(3);
  const std::vector<double> norms = {1e-8, 5e-4, 5e-2, 0.5, 1.4, 2.9, 20.0, 300.0};
  for (int64_t n : {2, 16, 64}) {
    for (double norm : norms) {
      torch::Tensor A = random_matrix(n, norm, /*skew=*/true);
      torch::Tensor ref = mantra::expm(A);
      torch::Tensor E32 = mantra::expm(A.to(torch::kFloat32));
      ASSERT_EQ(E32.scalar_type(), torch::kFloat32);
      torch::Tensor T32 = torch::linalg_matrix_exp(A.to(torch::kFloat32));
      EXPECT_LT(rel_error(E32, ref), 3 * rel_error(T32, ref) + 16 * kU32) << "n=" << n << " norm=" << norm;
      // exp of a skew-symmetric matrix is orthogonal.
      auto orth = [n](const torch::Tensor& E) {
        return (torch::matmul(E.t(), E) - torch::eye(n)).abs().max().item<double>();
      };
      EXPECT_LT(orth(E32), 3 * orth(T32) + 16 * kU32) << "n=" << n << " norm=" << norm;
      if (norm <= 3.0) EXPECT_LT(orth(E32), 4e-6) << "n=" << n << " norm=" << norm;  // no squaring
    }
  }
}

TEST(Expm, MixedNormBatchEqualsEachMatrixAlone) {
  torch::manual_seed(4);
  const int64_t n = 12;
  std::vector<double> norms = {300.0, 1e-9, 0.2, 2.5, 3e-4, 0.0, 40.0, 1.0, 0.04, 300.0, 1e-6};
  std::vector<torch::Tensor> mats;
  for (double v : norms) mats.push_back(random_matrix(n, v, /*skew=*/false) * 0.5);
  torch::Tensor batch = torch::stack(mats).view({1, static_cast<int64_t>(norms.size()), n, n});
  torch::Tensor E = mantra::expm(batch);
  ASSERT_EQ(E.sizes(), batch.sizes());
  for (size_t i = 0; i < norms.size(); ++i) {
    torch::Tensor alone = mantra::expm(mats[i]);
    EXPECT_LT(rel_error(E[0][i], alone), 1e-14) << "matrix " << i;
    EXPECT_LT(rel_error(E[0][i], reference_expm(mats[i])), 1e-11) << "matrix " << i;
  }
}

TEST(Expm, EdgeShapes) {
  // n = 1: the scalar exponential.
  torch::Tensor a = torch::tensor({-3.0, 0.0, 0.5, 7.0}, torch::kFloat64).view({4, 1, 1});
  torch::Tensor e = mantra::expm(a);
  // exp(7) takes 3 squarings, each doubling the relative error at most.
  EXPECT_LT((e - a.exp()).abs().div(a.exp()).max().item<double>(), 16 * kU64);
  // Empty batch and 0 x 0 matrices.
  EXPECT_EQ(mantra::expm(torch::zeros({0, 3, 3})).sizes(), torch::IntArrayRef({0, 3, 3}));
  EXPECT_EQ(mantra::expm(torch::zeros({2, 0, 0})).sizes(), torch::IntArrayRef({2, 0, 0}));
  // exp(0) = I exactly.
  EXPECT_TRUE(torch::equal(mantra::expm(torch::zeros({3, 3})), torch::eye(3)));
  // Non-contiguous input.
  torch::Tensor A = random_matrix(9, 3.0, false);
  EXPECT_LT(rel_error(mantra::expm(A.t()), reference_expm(A.t().contiguous())), 1e-13);
}

TEST(Expm, HalfPrecisionIsComputedInFloat32) {
  torch::manual_seed(5);
  torch::Tensor A = random_matrix(8, 2.0, true);
  for (auto dtype : {torch::kHalf, torch::kBFloat16}) {
    torch::Tensor Ah = A.to(dtype);
    torch::Tensor E = mantra::expm(Ah);
    EXPECT_EQ(E.scalar_type(), dtype);
    torch::Tensor expected = mantra::expm(Ah.to(torch::kFloat32)).to(dtype);
    EXPECT_TRUE(torch::equal(E, expected));
  }
}

TEST(ExpmBackward, MatchesCentralFiniteDifferences) {
  torch::manual_seed(6);
  for (int64_t n : {1, 5, 20}) {
    for (double norm : {1e-3, 0.04, 0.25, 1.0, 6.0, 50.0}) {
      torch::Tensor A = random_matrix(n, norm, false);
      torch::Tensor V = torch::randn({n, n}, torch::kFloat64);
      torch::Tensor G = torch::randn({n, n}, torch::kFloat64);
      const double h = 1e-6 * std::max(1.0, norm);
      // d/dt <G, exp(A + tV)> at t = 0, by central differences (error O(h²)).
      const double fd = ((mantra::expm(A + h * V) - mantra::expm(A - h * V)) * G).sum().item<double>() / (2 * h);
      const double ad = (mantra::expm_backward(G, A) * V).sum().item<double>();
      EXPECT_NEAR(ad, fd, 1e-6 * std::max(1.0, std::abs(fd))) << "n=" << n << " norm=" << norm;
    }
  }
}

TEST(ExpmBackward, AutogradFromCppUsesTheSameGradient) {
  torch::manual_seed(7);
  // A batch mixing degrees and squarings exercises the saved-intermediates path.
  torch::Tensor A = torch::stack({random_matrix(10, 0.01, false), random_matrix(10, 30.0, false),
                                  random_matrix(10, 0.8, false)})
                        .requires_grad_(true);
  torch::Tensor G = torch::randn({3, 10, 10}, torch::kFloat64);
  (mantra::expm(A) * G).sum().backward();
  torch::Tensor expected = mantra::expm_backward(G, A.detach());
  EXPECT_LT(rel_error(A.grad(), expected), 1e-14);
  // float32 gradients follow the float64 ones.
  torch::Tensor A32 = A.detach().to(torch::kFloat32).requires_grad_(true);
  (mantra::expm(A32) * G.to(torch::kFloat32)).sum().backward();
  EXPECT_LT(rel_error(A32.grad(), expected), 1e-4);
}

TEST(ExpmBackward, DoubleBackwardMatchesTorchsMatrixExp) {
  torch::manual_seed(4);
  torch::Tensor A = (0.7 * torch::randn({4, 4}, torch::kFloat64)).requires_grad_(true);
  torch::Tensor G = torch::randn({4, 4}, torch::kFloat64), H = torch::randn({4, 4}, torch::kFloat64);
  auto second = [&](const std::function<torch::Tensor(const torch::Tensor&)>& f) {
    torch::Tensor g = torch::autograd::grad({(f(A) * G).sum()}, {A}, {}, true, /*create_graph=*/true)[0];
    return torch::autograd::grad({(g * H).sum()}, {A})[0];
  };
  torch::Tensor ours = second([](const torch::Tensor& X) { return mantra::expm(X); });
  torch::Tensor ref = second([](const torch::Tensor& X) { return torch::linalg_matrix_exp(X); });
  EXPECT_LT((ours - ref).abs().max().item<double>(), 1e-10 * std::max(1.0, ref.abs().max().item<double>()));
}


TEST(Expm, BadInputsNameTheArgument) {
  mantra::test::expect_error([] { mantra::expm(torch::zeros({3})); }, "argument 'A' must have at least 2 dimensions");
  mantra::test::expect_error([] { mantra::expm(torch::zeros({2, 3})); }, "argument 'A' must be square");
  mantra::test::expect_error([] { mantra::expm(torch::zeros({3, 3}, torch::kLong)); }, "argument 'A' must be float32 or float64");
  mantra::test::expect_error([] { mantra::expm(torch::zeros({3, 3}, torch::kComplexFloat)); }, "got ComplexFloat");
  torch::Tensor nan = torch::zeros({2, 3, 3});
  nan[1][0][2] = std::nan("");
  mantra::test::expect_error([&] { mantra::expm(nan); }, "argument 'A' contains NaN or Inf (matrix 1");
  torch::Tensor inf = torch::zeros({3, 3});
  inf[0][0] = INFINITY;
  mantra::test::expect_error([&] { mantra::expm(inf); }, "argument 'A' contains NaN or Inf");
  mantra::test::expect_error([] { mantra::expm_backward(torch::zeros({2, 2}), torch::zeros({3, 3})); },
                      "argument 'grad' must have the shape of 'A'");
}

TEST(ExpmBackward, DtypeMismatchNamesBothArguments) {
  mantra::test::expect_error(
      [] { mantra::expm_backward(torch::zeros({3, 3}), torch::zeros({3, 3}, torch::kFloat64)); },
      "mantra::expm_backward: argument 'grad' must have the dtype of 'A' (Double), got Float");
}

TEST(ExpmBackward, InPlaceChangeOfTheInputBeforeBackwardRaises) {
  // As for torch's own operators (issue 17, item 3), at every norm (no squaring and squaring).
  for (double norm : {0.01, 0.5, 30.0}) {
    torch::manual_seed(12);
    torch::Tensor A = random_matrix(5, norm, false).requires_grad_(true);
    torch::Tensor B = A * 1;
    torch::Tensor E = mantra::expm(B);
    {
      torch::NoGradGuard no_grad;  // not a differentiable change: autograd must still notice it
      B.mul_(2);
    }
    mantra::test::expect_error([&] { E.sum().backward(); }, "modified by an inplace operation");
  }
}

namespace {
int64_t kernel_calls(const std::string& name) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mantra::_kernel_calls", "")
                       .typed<int64_t(c10::string_view)>();
  return op.call(name);
}
}  // namespace

TEST(ExpmBackward, AutogradRedispatchesToTheCpuKernels) {
  // Issue 10: under autograd both passes reach the kernels registered for the device.
  const std::vector<std::string> names = {"expm.CPU", "expm_backward.CPU", "_expm_traced.CPU",
                                          "_expm_traced_backward.CPU"};
  auto counts = [&] {
    std::vector<int64_t> c;
    for (const auto& n : names) c.push_back(kernel_calls(n));
    return c;
  };
  torch::manual_seed(13);
  torch::Tensor A = random_matrix(6, 3.0, false).requires_grad_(true);
  auto before = counts();
  mantra::expm(A).sum().backward();
  auto after = counts();
  EXPECT_EQ(after[0] - before[0], 0);
  EXPECT_EQ(after[1] - before[1], 0);
  EXPECT_EQ(after[2] - before[2], 1);
  EXPECT_EQ(after[3] - before[3], 1);
  // And the gradient is expm_backward's.
  EXPECT_LT(rel_error(A.grad(), mantra::expm_backward(torch::ones_like(A), A.detach())), 1e-14);
  {
    torch::NoGradGuard no_grad;
    before = counts();
    mantra::expm(A);
    after = counts();
  }
  EXPECT_EQ(after[0] - before[0], 1);
  EXPECT_EQ(after[2] - before[2], 0);
}

namespace {
// mantra::_expm_skew_route(mode): 1 forces the eigendecomposition route for exactly skew CPU
// input of the general path (n > 32), -1 switches it off, 0 is the rule; returns the old mode.
int64_t set_skew_route(int64_t mode) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mantra::_expm_skew_route", "")
                       .typed<int64_t(int64_t)>();
  return op.call(mode);
}
}  // namespace

TEST(ExpmSkewRoute, ForcedRouteMatchesLongDoubleAndTheSquaringGradient) {
  torch::manual_seed(21);
  for (int64_t n : {40, 41}) {
    const torch::Tensor A = random_matrix(n, 60.0, /*skew=*/true);
    ASSERT_TRUE(torch::equal(A, -A.t()));
    const torch::Tensor ref = reference_expm(A);
    const double lam_max = torch::linalg_eigvalsh(A.t().mm(A)).max().item<double>();
    const torch::Tensor G = torch::randn({n, n}, torch::kFloat64);  // a general cotangent
    for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
      const double u = dtype == torch::kFloat64 ? kU64 : kU32;
      const torch::Tensor Ad = A.to(dtype), Gd = G.to(dtype);
      const int64_t old = set_skew_route(1);
      const int64_t before = kernel_calls("expm_skew.CPU"), before_rev = kernel_calls("expm_skew_reverse.CPU");
      const torch::Tensor E = mantra::expm(Ad);
      torch::Tensor leaf = Ad.clone().requires_grad_(true);
      (mantra::expm(leaf) * Gd).sum().backward();
      EXPECT_EQ(kernel_calls("expm_skew.CPU") - before, 2);
      EXPECT_EQ(kernel_calls("expm_skew_reverse.CPU") - before_rev, 1);
      set_skew_route(-1);
      const torch::Tensor grad_sq = mantra::expm_backward(Gd, Ad);
      EXPECT_EQ(kernel_calls("expm_skew_reverse.CPU") - before_rev, 1);
      set_skew_route(old);
      // Error model of the route: about u·max(n, λ_max) (expm_skew.h).
      EXPECT_LT(rel_error(E, ref), 4 * u * std::max<double>(n, lam_max)) << n << " " << dtype;
      EXPECT_LT(rel_error(leaf.grad(), grad_sq.to(torch::kFloat64)), 8 * u * std::max<double>(n, lam_max))
          << n << " " << dtype;
    }
  }
}

TEST(ExpmSkewRoute, ModeArgumentIsChecked) {
  EXPECT_THROW(set_skew_route(5), c10::ValueError);
  EXPECT_EQ(set_skew_route(0), 0);
}
