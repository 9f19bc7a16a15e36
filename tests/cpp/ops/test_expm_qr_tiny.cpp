// The tiny-matrix CPU paths (csrc/ops/cpu/tiny_*.cpp, n <= 32) against the general batched
// path they replace (the ATen/BLAS functions *_generic of csrc/ops/expm_algorithm.h and
// qr_retraction_algorithm.h), at every size they serve, float32 and float64, including inputs at
// the branch thresholds (expm's Taylor-degree norms, CholeskyQR2's loss test).
//
// Tolerances are ulp-scale times the condition number of the problem: the two paths differ only
// in the order of the sums inside each product (and the tiny path's Cholesky), so they differ by
// about κ·u. Per matrix, ‖tiny − general‖_F ≤ c·n·u·max(1, ‖A‖₁)·‖general‖_F for expm (the
// relative condition number of exp at A is at least ‖A‖, equal to it for normal A) with c = 8
// forward, and 16·(n + 1)·u·max(1, ‖A‖₁) backward (twice the products, and the scheme's own
// rounding dominates at n = 1); c·n·u·κ(X) for the QR factors (CholeskyQR2's forward error
// scales with κ(X)) with c = 8, and for the QR gradient relative to ‖grad‖_F·‖R⁻¹‖ (the formula
// cancels G against QQᵀG, in both paths alike).
#include <ATen/core/dispatch/Dispatcher.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mantra/mantra.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

namespace mantra::detail {
// The general paths (csrc/ops/expm_algorithm.h, qr_retraction_algorithm.h).
at::Tensor expm_forward_generic(const at::Tensor& A);
at::Tensor expm_backward_generic(const at::Tensor& grad, const at::Tensor& A);
std::tuple<at::Tensor, at::Tensor> qr_retraction_factors(const at::Tensor& X);
std::tuple<at::Tensor, at::Tensor> qr_retraction_factors_generic(const at::Tensor& X, int64_t* householder_count);
at::Tensor qr_retraction_backward_generic(const at::Tensor& grad, const at::Tensor& Q, const at::Tensor& R);
// The CPU kernel's BLAS path for n > 32 (the same one-pass rule as the tiny path).
std::tuple<at::Tensor, at::Tensor> qr_retraction_factors_cpu_general(const at::Tensor& X, int64_t* householder_count,
                                                                     int64_t* one_pass_count);
at::Tensor qr_retraction_backward_cpu_general(const at::Tensor& grad, const at::Tensor& Q, const at::Tensor& R);
}  // namespace mantra::detail

namespace {

constexpr double kU64 = 1.1102230246251565e-16;
constexpr double kU32 = 5.9604644775390625e-08;

double unit_roundoff(torch::Dtype dtype) { return dtype == torch::kFloat64 ? kU64 : kU32; }

// The CPU kernels' counters (kernel_calls.h): the tests check that the tiny paths ran.
int64_t kernel_calls(const char* name) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mantra::_kernel_calls", "")
                       .typed<int64_t(c10::string_view)>();
  return op.call(name);
}

// Every size the tiny paths serve with their own kernel (1 … 8, 16, 32) and two of the
// runtime-size loop (12, 20).
const std::vector<int64_t> kSizes = {1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 32};

// Theta bounds of the Taylor degrees (expm_algorithm.cpp), float64 and float32: a matrix of
// 1-norm theta·(1 ± 1e-6) sits on either side of a degree switch; the largest also on the
// first squaring.
const std::vector<double> kThetaDouble = {2.220446049250313e-16, 2.580956802971767e-08, 3.397168839976962e-04,
                                          4.991228871115323e-02, 2.996158913811580e-01, 1.090863719290036e+00};
const std::vector<double> kThetaFloat = {1.192092800768788e-07, 5.978858893805233e-04, 5.116619363445086e-02,
                                         5.800524627688768e-01, 1.461661507209034e+00, 3.010066362817634e+00};

// A batch of n×n matrices whose 1-norms sit at each threshold (both sides), plus norms that need
// 1 … 12 squarings (general matrices up to 130·theta₁₈, past which exp overflows float32),
// general and skew-symmetric; and the 1-norm of each.
std::tuple<torch::Tensor, std::vector<double>> threshold_batch(int64_t n, torch::Dtype dtype) {
  const auto& theta = dtype == torch::kFloat64 ? kThetaDouble : kThetaFloat;
  std::vector<double> norms;
  for (double t : theta) {
    norms.push_back(t * (1 - 1e-6));
    norms.push_back(t * (1 + 1e-6));
  }
  for (double f : {2.5, 17.0, 130.0, 1000.0, 4000.0}) norms.push_back(theta.back() * f);
  std::vector<torch::Tensor> mats;
  std::vector<double> out_norms;
  for (double norm : norms) {
    for (bool skew : {false, true}) {
      if (skew && n == 1) continue;
      if (!skew && norm > 130.5 * theta.back()) continue;
      torch::Tensor G = torch::randn({n, n}, torch::kFloat64);
      if (skew && n > 1) G = G - G.t();
      G = G * (norm / G.abs().sum(0).max().item<double>());
      mats.push_back(G.to(dtype));
      out_norms.push_back(norm);
    }
  }
  return {torch::stack(mats), out_norms};
}

// Per matrix: ‖x − ref‖_F / ‖ref‖_F (0 where both are 0). Where ref overflowed, x must have
// overflowed at the same entries (the error is then 0).
std::vector<double> rel_errors(const torch::Tensor& x, const torch::Tensor& ref) {
  std::vector<double> out;
  for (int64_t i = 0; i < ref.size(0); ++i) {
    const torch::Tensor xi = x[i].to(torch::kFloat64), ri = ref[i].to(torch::kFloat64);
    if (!ri.isfinite().all().item<bool>()) {
      EXPECT_TRUE(torch::equal(xi.isfinite(), ri.isfinite())) << "matrix " << i << " overflowed differently";
      out.push_back(0.0);
      continue;
    }
    const double d = (xi - ri).norm().item<double>(), r = ri.norm().item<double>();
    out.push_back(r > 0 ? d / r : d);
  }
  return out;
}

TEST(ExpmTiny, ForwardEqualsTheGeneralPathAtEverySizeAndThreshold) {
  torch::manual_seed(3);
  for (torch::Dtype dtype : {torch::kFloat64, torch::kFloat32}) {
    const double u = unit_roundoff(dtype);
    for (int64_t n : kSizes) {
      auto [A, norms] = threshold_batch(n, dtype);
      const int64_t before = kernel_calls("tiny_expm.CPU");
      const torch::Tensor tiny = mantra::expm(A);  // CPU, n <= 32: the tiny path
      EXPECT_EQ(kernel_calls("tiny_expm.CPU"), before + 1) << "n=" << n;
      const torch::Tensor general = mantra::detail::expm_forward_generic(A);
      const auto err = rel_errors(tiny, general);
      for (size_t i = 0; i < err.size(); ++i)
        EXPECT_LE(err[i], 8 * n * u * std::max(1.0, norms[i])) << "n=" << n << " dtype=" << dtype << " norm " << norms[i];
    }
  }
}

TEST(ExpmTiny, BackwardEqualsTheGeneralPathAtEverySizeAndThreshold) {
  torch::manual_seed(4);
  for (torch::Dtype dtype : {torch::kFloat64, torch::kFloat32}) {
    const double u = unit_roundoff(dtype);
    for (int64_t n : kSizes) {
      auto [A, norms] = threshold_batch(n, dtype);
      const torch::Tensor G = torch::randn(A.sizes(), torch::TensorOptions().dtype(dtype));
      const torch::Tensor general = mantra::detail::expm_backward_generic(G, A);
      // The public backward op, and autograd (the traced forward + its backward).
      const int64_t before = kernel_calls("tiny_expm.CPU");
      const torch::Tensor tiny = mantra::expm_backward(G, A);
      const torch::Tensor leaf = A.clone().requires_grad_(true);
      const torch::Tensor via_autograd = torch::autograd::grad({mantra::expm(leaf)}, {leaf}, {G})[0];
      EXPECT_EQ(kernel_calls("tiny_expm.CPU"), before + 3) << "n=" << n;  // backward, traced, traced backward
      const auto err = rel_errors(tiny, general);
      const auto err_ad = rel_errors(via_autograd, general);
      for (size_t i = 0; i < err.size(); ++i) {
        const double tol = 16 * (n + 1) * u * std::max(1.0, norms[i]);
        EXPECT_LE(err[i], tol) << "n=" << n << " dtype=" << dtype << " norm " << norms[i];
        EXPECT_LE(err_ad[i], tol) << "n=" << n << " dtype=" << dtype << " norm " << norms[i];
      }
    }
  }
}

TEST(ExpmTiny, HalfTypesLeadingDimsAndNonContiguousInput) {
  torch::manual_seed(5);
  const torch::Tensor A = torch::randn({3, 2, 4, 4}, torch::kFloat64);
  const torch::Tensor general = mantra::detail::expm_forward_generic(A);
  EXPECT_TRUE(torch::allclose(mantra::expm(A), general, 1e-14, 1e-14));
  const torch::Tensor At = A.transpose(-1, -2);  // not contiguous
  EXPECT_TRUE(torch::allclose(mantra::expm(At), mantra::detail::expm_forward_generic(At.contiguous()), 1e-14, 1e-14));
  // bfloat16 is computed in float32 by both paths and rounded once: within one bfloat16 ulp.
  const torch::Tensor H = A.to(torch::kBFloat16);
  const torch::Tensor Eh = mantra::expm(H);
  EXPECT_EQ(Eh.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::allclose(Eh.to(torch::kFloat32), mantra::detail::expm_forward_generic(H).to(torch::kFloat32),
                              1.0 / 128, 1e-6));
}

// X + V at a frame X with V tangent of norm `step` (condition number about 1 + step).
torch::Tensor retraction_points(int64_t batch, int64_t n, int64_t k, double step, torch::Dtype dtype) {
  const torch::Tensor X = std::get<0>(torch::linalg_qr(torch::randn({batch, n, k}, torch::kFloat64)));
  const torch::Tensor G = torch::randn({batch, n, k}, torch::kFloat64);
  torch::Tensor V = G - torch::matmul(X, (torch::matmul(X.mT(), G) + torch::matmul(G.mT(), X)) / 2);
  V = step * V / V.flatten(1).norm(2, 1).clamp_min(1e-300).view({-1, 1, 1});  // 1×1: V = 0
  return (X + V).to(dtype);
}

// U diag(s) Vᵀ with singular values from 1 down to 1/cond.
torch::Tensor with_condition(int64_t batch, int64_t n, int64_t k, double cond, torch::Dtype dtype) {
  const torch::Tensor U = std::get<0>(torch::linalg_qr(torch::randn({batch, n, k}, torch::kFloat64)));
  const torch::Tensor V = std::get<0>(torch::linalg_qr(torch::randn({batch, k, k}, torch::kFloat64)));
  const torch::Tensor s = torch::logspace(0, -std::log10(cond), k, 10.0, torch::kFloat64);
  return torch::matmul(U * s, V.mT()).to(dtype);
}

const std::vector<std::pair<int64_t, int64_t>> kQrShapes = {
    {1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}, {6, 6}, {7, 7}, {8, 8}, {16, 16}, {32, 32},  // own kernels
    {12, 12}, {5, 3}, {32, 7}, {20, 1}};                                                 // runtime size

// Matrices that took the Householder branch in the CPU kernels so far.
int64_t householder_calls() { return kernel_calls("qr_retraction.householder"); }

double orthogonality(const torch::Tensor& Q) {
  const torch::Tensor Qd = Q.to(torch::kFloat64);
  const torch::Tensor I = torch::eye(Q.size(-1), torch::kFloat64);
  return (torch::matmul(Qd.mT(), Qd) - I).abs().max().item<double>();
}

TEST(QrRetractionTiny, FactorsAndBackwardEqualTheGeneralPathAtEveryShape) {
  torch::manual_seed(6);
  for (torch::Dtype dtype : {torch::kFloat64, torch::kFloat32}) {
    const double u = unit_roundoff(dtype);
    for (auto [n, k] : kQrShapes) {
      const torch::Tensor X = retraction_points(64, n, k, 0.5, dtype);
      const int64_t before = kernel_calls("tiny_qr_retraction.CPU");
      auto [Q, R] = mantra::detail::qr_retraction_factors(X);  // CPU kernel: tiny path
      EXPECT_EQ(kernel_calls("tiny_qr_retraction.CPU"), before + 1) << n << "x" << k;
      int64_t householder = -1;
      auto [Qg, Rg] = mantra::detail::qr_retraction_factors_generic(X, &householder);
      EXPECT_EQ(householder, 0);
      // κ(X) <= 1.5 at these points: c·n·u with c = 8.
      const double tol = 8 * n * u;
      for (double e : rel_errors(Q, Qg)) EXPECT_LE(e, tol) << "Q n=" << n << " k=" << k << " " << dtype;
      for (double e : rel_errors(R, Rg)) EXPECT_LE(e, tol) << "R n=" << n << " k=" << k << " " << dtype;
      EXPECT_LE(orthogonality(Q), 4 * n * u) << n << "x" << k << " " << dtype;
      const torch::Tensor G = torch::randn(X.sizes(), torch::TensorOptions().dtype(dtype));
      const torch::Tensor gX = mantra::qr_retraction_backward(G, Q, R);
      EXPECT_EQ(kernel_calls("tiny_qr_retraction.CPU"), before + 2) << n << "x" << k;
      const torch::Tensor gXg = mantra::detail::qr_retraction_backward_generic(G, Q, R);
      const torch::Tensor scale = G.to(torch::kFloat64).flatten(1).norm(2, 1) *
                                  torch::linalg_matrix_norm(torch::linalg_inv(R.to(torch::kFloat64)), 2);
      const torch::Tensor gerr = (gX.to(torch::kFloat64) - gXg.to(torch::kFloat64)).flatten(1).norm(2, 1) / scale;
      EXPECT_LE(gerr.max().item<double>(), tol) << "grad n=" << n << " k=" << k << " " << dtype;
    }
  }
}

TEST(QrRetractionTiny, AtTheCholeskyQr2ThresholdBothPathsAreOrthonormalAndAgree) {
  // The loss ‖Q₁ᵀQ₁ − I‖_F grows as κ²u: it crosses 0.1 near κ = (0.1/u)^½ (1.3e3 in float32,
  // 3e7 in float64). Below, near and above it, each path's Q is orthonormal and the two agree to
  // their forward error c·n·u·κ (c = 8).
  torch::manual_seed(7);
  for (torch::Dtype dtype : {torch::kFloat64, torch::kFloat32}) {
    const double u = unit_roundoff(dtype);
    const double edge = std::sqrt(0.1 / u);
    for (int64_t n : {4, 8, 16, 32}) {
      for (double f : {0.1, 0.5, 1.0, 2.0, 10.0}) {
        const double cond = edge * f;
        const torch::Tensor X = with_condition(32, n, n, cond, dtype);
        const int64_t before = householder_calls();
        auto [Q, R] = mantra::detail::qr_retraction_factors(X);
        const int64_t tiny_householder = householder_calls() - before;
        int64_t householder = -1;
        auto [Qg, Rg] = mantra::detail::qr_retraction_factors_generic(X, &householder);
        // Far from the edge both paths choose alike; near it the loss is itself a rounding error,
        // different in the two paths, so a matrix may take either branch in either path.
        if (f <= 0.1) {
          EXPECT_EQ(householder, 0) << "n=" << n << " cond=" << cond;
          EXPECT_EQ(tiny_householder, 0) << "n=" << n << " cond=" << cond;
        }
        if (f >= 10.0) {
          EXPECT_GE(householder, 16) << "n=" << n << " cond=" << cond;
          EXPECT_GE(tiny_householder, 16) << "n=" << n << " cond=" << cond;
        }
        EXPECT_LE(orthogonality(Q), 8 * n * u) << "n=" << n << " cond=" << cond << " " << dtype;
        EXPECT_LE(orthogonality(Qg), 8 * n * u) << "n=" << n << " cond=" << cond << " " << dtype;
        for (double e : rel_errors(Q, Qg))
          EXPECT_LE(e, 8 * n * u * cond) << "n=" << n << " cond=" << cond << " " << dtype;
      }
    }
  }
}

TEST(QrRetractionTiny, EqualsTheCpuBlasPathUnderTheSameOnePassRule) {
  // The tiny path and the BLAS path serve different n but share the one-pass rule
  // (qr_retraction_rule.h): on the tiny shapes both take one pass at retraction points of step
  // 0.5 (δ <= 0.6) and agree to c·n·u·κ(X), c = 8 (κ <= 1.5); at step 3 (κ <= 3.2) a matrix near
  // δ = 0.6 may take one pass in one path and two in the other, which stays within the bound.
  torch::manual_seed(9);
  for (torch::Dtype dtype : {torch::kFloat64, torch::kFloat32}) {
    const double u = unit_roundoff(dtype);
    for (auto [n, k] : kQrShapes) {
      for (double step : {0.5, 3.0}) {
        const torch::Tensor X = retraction_points(64, n, k, step, dtype);
        const int64_t before = kernel_calls("qr_retraction.one_pass");
        auto [Q, R] = mantra::detail::qr_retraction_factors(X);  // CPU kernel: tiny path
        const int64_t tiny_one_pass = kernel_calls("qr_retraction.one_pass") - before;
        int64_t householder = -1, one_pass = -1;
        auto [Qb, Rb] = mantra::detail::qr_retraction_factors_cpu_general(X, &householder, &one_pass);
        EXPECT_EQ(householder, 0);
        if (step <= 0.5) {
          EXPECT_EQ(tiny_one_pass, 64) << n << "x" << k << " " << dtype;
          EXPECT_EQ(one_pass, 64) << n << "x" << k << " " << dtype;
        }
        const double tol = 8 * n * u * (1 + step);
        for (double e : rel_errors(Q, Qb)) EXPECT_LE(e, tol) << "Q n=" << n << " k=" << k << " step=" << step;
        for (double e : rel_errors(R, Rb)) EXPECT_LE(e, tol) << "R n=" << n << " k=" << k << " step=" << step;
        EXPECT_LE(orthogonality(Qb), 4 * n * u * (1 + step)) << n << "x" << k << " " << dtype;
        const torch::Tensor G = torch::randn(X.sizes(), torch::TensorOptions().dtype(dtype));
        const torch::Tensor gX = mantra::qr_retraction_backward(G, Q, R);
        const torch::Tensor gXb = mantra::detail::qr_retraction_backward_cpu_general(G, Q, R);
        const torch::Tensor scale = G.to(torch::kFloat64).flatten(1).norm(2, 1) *
                                    torch::linalg_matrix_norm(torch::linalg_inv(R.to(torch::kFloat64)), 2);
        const torch::Tensor gerr = (gX.to(torch::kFloat64) - gXb.to(torch::kFloat64)).flatten(1).norm(2, 1) / scale;
        EXPECT_LE(gerr.max().item<double>(), tol) << "grad n=" << n << " k=" << k << " " << dtype;
      }
    }
  }
}

TEST(QrRetractionTiny, RankDeficientAndNonFiniteMatricesTakeTheHouseholderBranch) {
  torch::manual_seed(8);
  torch::Tensor X = retraction_points(5, 4, 4, 0.5, torch::kFloat64);
  X[1].select(1, 2).copy_(X[1].select(1, 0));  // rank 3
  X[3][0][0] = std::nan("");
  auto [Q, R] = mantra::detail::qr_retraction_factors(X);
  int64_t householder = -1;
  auto [Qg, Rg] = mantra::detail::qr_retraction_factors_generic(X, &householder);
  EXPECT_EQ(householder, 2);
  // Rank deficient: orthonormal; the rest equal to the general path.
  EXPECT_LE(orthogonality(Q[1]), 1e-14);
  EXPECT_TRUE(torch::allclose(Q[1], Qg[1], 0, 0));  // the same Householder call
  EXPECT_TRUE(Q[3].isnan().any().item<bool>());
  for (int64_t i : {0, 2, 4}) EXPECT_TRUE(torch::allclose(Q[i], Qg[i], 0, 1e-14)) << i;
}


// Equal bits, NaN where the other is NaN.
bool same_bits(const torch::Tensor& a, const torch::Tensor& b) {
  return a.sizes() == b.sizes() && ((a == b) | (a.isnan() & b.isnan())).all().item<bool>();
}

TEST(QrRetractionTiny, EachMatrixOfAMixedBatchEqualsItselfAlone) {
  // The tiny kernels run 8 (float32) or 4 (float64) matrices together, and a group takes the
  // second CholeskyQR pass when one of its matrices needs it: a batch mixing one-pass, two-pass,
  // Householder and NaN matrices must give each matrix, forward and backward, the bits it gets
  // alone (a group of one).
  torch::manual_seed(10);
  for (torch::Dtype dtype : {torch::kFloat64, torch::kFloat32}) {
    const double edge = std::sqrt(0.1 / unit_roundoff(dtype));
    for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{8, 8}, {16, 16}, {5, 3}}) {
      std::vector<torch::Tensor> parts;
      for (int64_t i = 0; i < 11; ++i) {
        switch (i % 4) {
          case 0: parts.push_back(retraction_points(1, n, k, 0.5, dtype)); break;  // one pass
          case 1: parts.push_back(with_condition(1, n, k, 30.0, dtype)); break;    // two passes
          case 2: parts.push_back(with_condition(1, n, k, 1e3 * edge, dtype)); break;  // Householder
          default: {
            torch::Tensor x = retraction_points(1, n, k, 0.5, dtype);
            x[0][n - 1][0] = std::nan("");
            parts.push_back(x);
          }
        }
      }
      const torch::Tensor X = torch::cat(parts);
      const torch::Tensor G = torch::randn(X.sizes(), torch::TensorOptions().dtype(dtype));
      const int64_t householder0 = householder_calls(), one_pass0 = kernel_calls("qr_retraction.one_pass");
      auto [Q, R] = mantra::detail::qr_retraction_factors(X);
      const torch::Tensor gX = mantra::qr_retraction_backward(G, Q, R);
      const int64_t householder = householder_calls() - householder0;
      const int64_t one_pass = kernel_calls("qr_retraction.one_pass") - one_pass0;
      int64_t alone_householder = 0, alone_one_pass = 0;
      for (int64_t i = 0; i < X.size(0); ++i) {
        const int64_t h0 = householder_calls(), o0 = kernel_calls("qr_retraction.one_pass");
        auto [Qi, Ri] = mantra::detail::qr_retraction_factors(X.slice(0, i, i + 1));
        const int64_t h = householder_calls() - h0, o = kernel_calls("qr_retraction.one_pass") - o0;
        alone_householder += h;
        alone_one_pass += o;
        const char* expected = i % 4 == 0 ? "one pass" : (i % 4 == 1 ? "two passes" : "Householder");
        EXPECT_STREQ(h == 1 ? "Householder" : (o == 1 ? "one pass" : "two passes"), expected)
            << "matrix " << i << " " << n << "x" << k << " " << dtype;
        EXPECT_TRUE(same_bits(Q[i], Qi[0])) << "Q of matrix " << i << " " << n << "x" << k << " " << dtype;
        EXPECT_TRUE(same_bits(R[i], Ri[0])) << "R of matrix " << i << " " << n << "x" << k << " " << dtype;
        const torch::Tensor gi = mantra::qr_retraction_backward(G.slice(0, i, i + 1), Qi, Ri);
        EXPECT_TRUE(same_bits(gX[i], gi[0])) << "grad of matrix " << i << " " << n << "x" << k << " " << dtype;
      }
      EXPECT_EQ(householder, alone_householder);
      EXPECT_EQ(one_pass, alone_one_pass);
      EXPECT_EQ(one_pass, 3);  // matrices 0, 4, 8
      // Column-major matrices (read as they are, without a copy) give the same bits.
      const torch::Tensor Xt = X.mT().contiguous().mT();
      ASSERT_FALSE(Xt.is_contiguous());
      const int64_t ht0 = householder_calls();
      auto [Qt, Rt] = mantra::detail::qr_retraction_factors(Xt);
      EXPECT_EQ(householder_calls() - ht0, householder);
      EXPECT_TRUE(same_bits(Qt, Q)) << "column-major Q " << n << "x" << k << " " << dtype;
      EXPECT_TRUE(same_bits(Rt, R)) << "column-major R " << n << "x" << k << " " << dtype;
    }
  }
}

}  // namespace
