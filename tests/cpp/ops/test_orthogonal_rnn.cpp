// mantra::orthogonal_rnn from C++: the fused CPU kernel against a step-by-step loop of ATen
// operations differentiated by autograd, finite differences, invariants and bad input.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mantra/mantra.h>

#include "../../../csrc/ops/orthogonal_rnn_algorithm.h"
#include "../test_util.h"

#include <cmath>
#include <limits>
#include <vector>

namespace {

struct Args {
  torch::Tensor u, h0, B, b;
};

// B orthogonal (Q of a QR), bias of both signs so that some units are cut to zero.
Args random_args(int64_t T, int64_t N, int64_t H, torch::Dtype dtype, uint64_t seed) {
  torch::manual_seed(seed);
  auto o = torch::TensorOptions().dtype(torch::kFloat64);
  Args a;
  a.u = torch::randn({T, N, H}, o).to(dtype);
  a.h0 = torch::randn({N, H}, o).to(dtype);
  a.B = std::get<0>(torch::linalg_qr(torch::randn({H, H}, o))).to(dtype);
  a.b = (torch::rand({H}, o) - 0.7).to(dtype);
  return a;
}

torch::Tensor modrelu_reference(const torch::Tensor& z, const torch::Tensor& b) {
  return torch::sign(z) * torch::relu(torch::abs(z) + b);
}

// The recurrence written step by step with differentiable ATen operations.
torch::Tensor reference_rnn(const Args& a) {
  std::vector<torch::Tensor> hs;
  torch::Tensor h = a.h0;
  for (int64_t t = 0; t < a.u.size(0); ++t) {
    h = modrelu_reference(a.u[t] + h.matmul(a.B.t()), a.b);
    hs.push_back(h);
  }
  return hs.empty() ? torch::empty_like(a.u) : torch::stack(hs);
}

std::vector<torch::Tensor> leaves(Args& a) {
  for (auto* t : {&a.u, &a.h0, &a.B, &a.b}) *t = t->detach().clone().requires_grad_(true);
  return {a.u, a.h0, a.B, a.b};
}

TEST(OrthogonalRNN, ForwardMatchesStepByStepLoop) {
  for (auto [T, N, H] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {7, 5, 6}, {30, 3, 17}, {4, 64, 40}}) {
    Args a = random_args(T, N, H, torch::kFloat64, 1);
    torch::Tensor got = mantra::orthogonal_rnn(a.u, a.h0, a.B, a.b);
    torch::Tensor want = reference_rnn(a);
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_LT((got - want).abs().max().item<double>(), 1e-12) << T << "x" << N << "x" << H;
    // The bias cut some units to zero: the test covers both branches of modReLU.
    if (got.numel() > 100) EXPECT_GT((got == 0).sum().item<int64_t>(), 0);
  }
}

TEST(OrthogonalRNN, GradientsMatchAutogradOfTheLoop) {
  Args a = random_args(12, 4, 9, torch::kFloat64, 2);
  Args r = a;
  auto xs = leaves(a);
  auto rs = leaves(r);
  torch::Tensor w = torch::randn({12, 4, 9}, torch::kFloat64);
  (mantra::orthogonal_rnn(a.u, a.h0, a.B, a.b) * w).sum().backward();
  (reference_rnn(r) * w).sum().backward();
  const char* names[] = {"input", "h0", "recurrent", "bias"};
  for (size_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(xs[i].grad().defined()) << names[i];
    EXPECT_LT((xs[i].grad() - rs[i].grad()).abs().max().item<double>(), 1e-11) << names[i];
  }
}

TEST(OrthogonalRNN, GradientsMatchFiniteDifferences) {
  Args a = random_args(6, 3, 5, torch::kFloat64, 3);
  auto xs = leaves(a);
  torch::Tensor w = torch::randn({6, 3, 5}, torch::kFloat64);
  auto loss = [&] { return (mantra::orthogonal_rnn(a.u, a.h0, a.B, a.b) * w).sum(); };
  loss().backward();
  const double eps = 1e-6;
  for (auto& x : xs) {
    torch::Tensor g = x.grad().clone();
    torch::Tensor d = torch::randn_like(x);
    double plus, minus;
    {
      torch::NoGradGuard no_grad;
      x.add_(d, eps);
      plus = loss().item<double>();
      x.add_(d, -2 * eps);
      minus = loss().item<double>();
      x.add_(d, eps);
    }
    const double fd = (plus - minus) / (2 * eps), ad = (g * d).sum().item<double>();
    // Central differences: O(eps²) truncation, ~1e-10/eps rounding; no kink within eps here.
    EXPECT_NEAR(ad, fd, 1e-6 * std::max(1.0, std::abs(fd)));
  }
}

// The ATen reference (what non-CPU devices run until their kernels land) equals the CPU kernel.
TEST(OrthogonalRNN, GenericReferenceMatchesCpuKernel) {
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    Args a = random_args(20, 6, 11, dtype, 11);
    torch::Tensor h = mantra::orthogonal_rnn(a.u, a.h0, a.B, a.b);
    torch::Tensor g = torch::randn_like(h);
    const double tol = dtype == torch::kFloat64 ? 1e-12 : 1e-4;
    EXPECT_LT((mantra::detail::orthogonal_rnn_generic(a.u, a.h0, a.B, a.b) - h).abs().max().item<double>(), tol);
    auto want = mantra::orthogonal_rnn_backward(g, h, a.h0, a.B, a.b);
    auto got = mantra::detail::orthogonal_rnn_backward_generic(g, h, a.h0, a.B, a.b);
    EXPECT_LT((std::get<0>(got) - std::get<0>(want)).abs().max().item<double>(), tol);
    EXPECT_LT((std::get<1>(got) - std::get<1>(want)).abs().max().item<double>(), tol);
    EXPECT_LT((std::get<2>(got) - std::get<2>(want)).abs().max().item<double>(), tol * 10);
    EXPECT_LT((std::get<3>(got) - std::get<3>(want)).abs().max().item<double>(), tol * 10);
  }
}

TEST(OrthogonalRNN, Float32AgreesWithFloat64) {
  Args a = random_args(50, 8, 32, torch::kFloat64, 4);
  torch::Tensor d = mantra::orthogonal_rnn(a.u, a.h0, a.B, a.b);
  torch::Tensor f = mantra::orthogonal_rnn(a.u.to(torch::kFloat32), a.h0.to(torch::kFloat32), a.B.to(torch::kFloat32),
                                           a.b.to(torch::kFloat32));
  EXPECT_EQ(f.scalar_type(), torch::kFloat32);
  // B orthogonal keeps the state O(1): errors grow ~linearly in T from float32's 6e-8.
  EXPECT_LT((f.to(torch::kFloat64) - d).abs().max().item<double>(), 1e-4);
}

TEST(OrthogonalRNN, HalfAndBFloat16AreComputedInFloat32) {
  Args a = random_args(10, 4, 16, torch::kFloat32, 5);
  for (auto dtype : {torch::kHalf, torch::kBFloat16}) {
    Args l{a.u.to(dtype), a.h0.to(dtype), a.B.to(dtype), a.b.to(dtype)};
    torch::Tensor got = mantra::orthogonal_rnn(l.u, l.h0, l.B, l.b);
    EXPECT_EQ(got.scalar_type(), dtype);
    Args f{l.u.to(torch::kFloat32), l.h0.to(torch::kFloat32), l.B.to(torch::kFloat32), l.b.to(torch::kFloat32)};
    torch::Tensor want = mantra::orthogonal_rnn(f.u, f.h0, f.B, f.b).to(dtype).to(torch::kFloat32);
    // Same float32 computation, one final rounding: equal to the rounded float32 result.
    EXPECT_EQ((got.to(torch::kFloat32) - want).abs().max().item<float>(), 0.0f);
  }
}

TEST(OrthogonalRNN, OrthogonalRecurrenceKeepsTheNormOverLongSequences) {
  // With bias 0 modReLU is the identity, so with zero input h_t = h0·(Bᵀ)^t: the norm is kept.
  const int64_t T = 2000, N = 3, H = 24;
  Args a = random_args(T, N, H, torch::kFloat64, 6);
  a.u.zero_();
  a.b.zero_();
  torch::Tensor h = mantra::orthogonal_rnn(a.u, a.h0, a.B, a.b);
  torch::Tensor norms = h.norm(2, {2});
  torch::Tensor want = a.h0.norm(2, {1});
  EXPECT_LT((norms - want.unsqueeze(0)).abs().max().item<double>(), 1e-11);
}

TEST(OrthogonalRNN, LongSequenceMatchesLoop) {
  Args a = random_args(1000, 4, 20, torch::kFloat64, 7);
  EXPECT_LT((mantra::orthogonal_rnn(a.u, a.h0, a.B, a.b) - reference_rnn(a)).abs().max().item<double>(), 1e-10);
}

TEST(OrthogonalRNN, EmptySequenceAndEmptyBatch) {
  Args a = random_args(0, 3, 4, torch::kFloat64, 8);
  auto xs = leaves(a);
  torch::Tensor h = mantra::orthogonal_rnn(a.u, a.h0, a.B, a.b);
  EXPECT_EQ(h.sizes(), (std::vector<int64_t>{0, 3, 4}));
  auto [gi, gh0, gB, gb] = mantra::orthogonal_rnn_backward(torch::zeros_like(h), h, a.h0, a.B, a.b);
  EXPECT_EQ(gh0.abs().sum().item<double>(), 0.0);
  EXPECT_EQ(gB.abs().sum().item<double>(), 0.0);
  Args e = random_args(5, 0, 4, torch::kFloat64, 8);
  EXPECT_EQ(mantra::orthogonal_rnn(e.u, e.h0, e.B, e.b).sizes(), (std::vector<int64_t>{5, 0, 4}));
}

TEST(OrthogonalRNN, NonContiguousInputs) {
  Args a = random_args(8, 5, 6, torch::kFloat64, 9);
  torch::Tensor want = mantra::orthogonal_rnn(a.u, a.h0, a.B, a.b);
  torch::Tensor u_nc = a.u.transpose(0, 1).contiguous().transpose(0, 1);  // strides (H, T·H, 1)
  torch::Tensor B_nc = a.B.t().contiguous().t();
  ASSERT_FALSE(u_nc.is_contiguous());
  torch::Tensor got = mantra::orthogonal_rnn(u_nc, a.h0, B_nc, a.b);
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-14);
}

TEST(OrthogonalRNN, BadInputNamesTheArgument) {
  Args a = random_args(3, 2, 4, torch::kFloat64, 10);
  using mantra::test::expect_error;
  expect_error([&] { mantra::orthogonal_rnn(a.u[0], a.h0, a.B, a.b); }, "'input'");
  expect_error([&] { mantra::orthogonal_rnn(a.u, a.h0.t(), a.B, a.b); }, "'h0'");
  expect_error([&] { mantra::orthogonal_rnn(a.u, a.h0, a.B.narrow(0, 0, 3), a.b); }, "'recurrent'");
  expect_error([&] { mantra::orthogonal_rnn(a.u, a.h0, a.B, a.b.narrow(0, 0, 2)); }, "'bias'");
  expect_error([&] { mantra::orthogonal_rnn(a.u, a.h0.to(torch::kFloat32), a.B, a.b); }, "dtype of 'input'");
  expect_error([&] { mantra::orthogonal_rnn(a.u.to(torch::kInt64), a.h0, a.B, a.b); }, "floating point");
  torch::Tensor h = mantra::orthogonal_rnn(a.u, a.h0, a.B, a.b);
  expect_error([&] { mantra::orthogonal_rnn_backward(h[0], h, a.h0, a.B, a.b); }, "'grad_hidden'");
}

}  // namespace

namespace {

// NaN in each argument (and Inf in the recurrent matrix), as in issue 17, item 1.
std::vector<std::pair<std::string, Args>> poisoned_args(torch::Dtype dtype) {
  std::vector<std::pair<std::string, Args>> out;
  for (const char* where : {"input", "h0", "recurrent", "bias", "inf recurrent"}) {
    Args a = random_args(5, 3, 6, dtype, 20);
    const std::string w = where;
    if (w == "input") a.u[0][0][0] = NAN;
    if (w == "h0") a.h0[1][2] = NAN;
    if (w == "recurrent") a.B[2][1] = NAN;
    if (w == "bias") a.b[3] = NAN;
    if (w == "inf recurrent") a.B[0][0] = INFINITY;
    out.push_back({w, a});
  }
  return out;
}

bool same_with_nan(const torch::Tensor& x, const torch::Tensor& y, double tol) {
  return x.sizes() == y.sizes() && torch::equal(x.isnan(), y.isnan()) &&
         torch::allclose(x, y, 0, tol, /*equal_nan=*/true);
}

}  // namespace

TEST(OrthogonalRNN, NaNAndInfPropagateOnEveryPath) {
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    const double tol = dtype == torch::kFloat64 ? 1e-12 : 1e-4;
    for (auto& [where, a] : poisoned_args(dtype)) {
      torch::Tensor h = mantra::orthogonal_rnn(a.u, a.h0, a.B, a.b);
      EXPECT_TRUE(h.isnan().any().item<bool>()) << where;
      // The CPU kernel, the ATen reference (the CUDA path) and torch's own formula agree,
      // NaN for NaN.
      EXPECT_TRUE(same_with_nan(h, reference_rnn(a), tol)) << where;
      EXPECT_TRUE(same_with_nan(h, mantra::detail::orthogonal_rnn_generic(a.u, a.h0, a.B, a.b), tol)) << where;
      // Backward: both paths give the same gradients, NaN where the states are NaN.
      torch::Tensor g = torch::ones_like(h);
      auto want = mantra::orthogonal_rnn_backward(g, h, a.h0, a.B, a.b);
      auto got = mantra::detail::orthogonal_rnn_backward_generic(g, h, a.h0, a.B, a.b);
      EXPECT_TRUE(same_with_nan(std::get<0>(got), std::get<0>(want), tol)) << where;
      EXPECT_TRUE(same_with_nan(std::get<1>(got), std::get<1>(want), tol)) << where;
      EXPECT_TRUE(same_with_nan(std::get<2>(got), std::get<2>(want), 10 * tol)) << where;
      EXPECT_TRUE(same_with_nan(std::get<3>(got), std::get<3>(want), 10 * tol)) << where;
      EXPECT_TRUE(std::get<0>(want).index({h.isnan()}).isnan().all().item<bool>()) << where;
      EXPECT_TRUE(std::get<3>(want).isnan().any().item<bool>()) << where;
    }
  }
}

TEST(OrthogonalRNN, IssueExampleNaNInputIsNotZeroed) {
  torch::manual_seed(21);
  torch::Tensor u = torch::randn({3, 2, 4});
  u[0][0][0] = NAN;
  torch::Tensor h = mantra::orthogonal_rnn(u, torch::zeros({2, 4}), torch::eye(4), torch::zeros({4}));
  EXPECT_TRUE(h[0][0][0].isnan().item<bool>());
  EXPECT_TRUE(h.select(2, 0).select(1, 0).isnan().all().item<bool>());
  EXPECT_FALSE(h.select(1, 1).isnan().any().item<bool>());  // the other sequence is untouched
}

TEST(OrthogonalRNN, BackwardChecksNameHidden) {
  Args a = random_args(3, 2, 4, torch::kFloat64, 22);
  torch::Tensor h = mantra::orthogonal_rnn(a.u, a.h0, a.B, a.b);
  using mantra::test::expect_error;
  for (auto* f : {&mantra::orthogonal_rnn_backward, &mantra::detail::orthogonal_rnn_backward_generic}) {
    expect_error([&] { (*f)(h[0], h[0], a.h0, a.B, a.b); },
                 "mantra::orthogonal_rnn_backward: argument 'hidden' must have shape (T, N, H)");
    expect_error([&] { (*f)(h, h, a.h0, a.B.to(torch::kFloat32), a.b); }, "must have the dtype of 'hidden'");
    expect_error([&] { (*f)(h.to(torch::kFloat32), h, a.h0, a.B, a.b); },
                 "argument 'grad_hidden' must have the dtype of 'hidden' (Double), got Float");
  }
  expect_error([&] { mantra::detail::orthogonal_rnn_generic(a.u, a.h0, a.B, a.b.narrow(0, 0, 3)); },
               "mantra::orthogonal_rnn: argument 'bias' must have shape (H,) = (4,)");
}

TEST(ModReLUOp, CpuKernelIsTheFormulaAndBackwardMatchesAutograd) {
  torch::manual_seed(23);
  torch::Tensor z = torch::randn({4, 3, 5}, torch::kFloat64);
  torch::Tensor b = torch::rand({5}, torch::kFloat64) - 0.5;
  EXPECT_TRUE(torch::equal(mantra::modrelu(z, b), modrelu_reference(z, b)));
  torch::Tensor h = mantra::modrelu(z, b), g = torch::randn_like(h);
  auto [gz, gb] = mantra::modrelu_backward(g, h);
  torch::Tensor zr = z.clone().requires_grad_(true), br = b.clone().requires_grad_(true);
  (modrelu_reference(zr, br) * g).sum().backward();
  EXPECT_LT((gz - zr.grad()).abs().max().item<double>(), 1e-15);
  EXPECT_LT((gb - br.grad()).abs().max().item<double>(), 1e-13);
  mantra::test::expect_error([&] { mantra::modrelu(z, b.narrow(0, 0, 4)); },
                             "mantra::modrelu: arguments 'z' and 'bias' disagree on the number of features");
  mantra::test::expect_error([&] { mantra::modrelu_backward(g.narrow(0, 0, 2), h); },
                             "mantra::modrelu_backward: argument 'grad' must have the shape of 'result'");
}

namespace {
// The scalar modReLU functions against the formulas they replace (written with float compares),
// on every pair of special values: ±0, ±denormal, ±1, ±huge, ±∞, NaN of both signs.
template <typename T>
void expect_scalar_functions_are_the_formulas() {
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  const T den = std::numeric_limits<T>::denorm_min(), big = std::numeric_limits<T>::max();
  std::vector<T> xs;
  for (T x : {T(0), den, T(0.25), T(1), T(3), big, inf, nan}) xs.insert(xs.end(), {x, -x});
  auto same = [](T a, T b) {
    return (std::isnan(a) && std::isnan(b)) || (a == b && std::signbit(a) == std::signbit(b));
  };
  for (T z : xs) {
    for (T b : xs) {
      const T r = std::fabs(z) + b;
      const T relu = r == r ? (r > T(0) ? r : T(0)) : r;
      const T want = std::copysign(relu, z) * (z != T(0) ? T(1) : T(0));
      EXPECT_TRUE(same(mantra::detail::modrelu(z, b), want)) << "modrelu(" << z << ", " << b << ")";
    }
    const T dz = z != z ? z : (z != T(0) ? T(1) : T(0));
    const T db = z != z ? z : (z > T(0) ? T(1) : (z < T(0) ? T(-1) : T(0)));
    EXPECT_TRUE(same(mantra::detail::modrelu_dz(z), dz)) << "modrelu_dz(" << z << ")";
    EXPECT_TRUE(same(mantra::detail::modrelu_db(z), db)) << "modrelu_db(" << z << ")";
  }
}
}  // namespace

TEST(ModReLUOp, BranchFreeScalarFunctionsEqualTheFormulasOnSpecialValues) {
  expect_scalar_functions_are_the_formulas<float>();
  expect_scalar_functions_are_the_formulas<double>();
}

TEST(OrthogonalRNN, FusedBiasGradientMatchesTheLoopAtTrainingSize) {
  // The per-step fused dL/db (chunk sums in float32, then double) against the float64 loop.
  Args a = random_args(40, 128, 224, torch::kFloat64, 24);
  Args f{a.u.to(torch::kFloat32), a.h0.to(torch::kFloat32), a.B.to(torch::kFloat32), a.b.to(torch::kFloat32)};
  torch::Tensor h = mantra::orthogonal_rnn(a.u, a.h0, a.B, a.b);
  torch::Tensor g = torch::randn_like(h);
  auto want = mantra::detail::orthogonal_rnn_backward_generic(g, h, a.h0, a.B, a.b);
  auto got64 = mantra::orthogonal_rnn_backward(g, h, a.h0, a.B, a.b);
  auto got32 = mantra::orthogonal_rnn_backward(g.to(torch::kFloat32), h.to(torch::kFloat32), f.h0, f.B, f.b);
  const torch::Tensor gb = std::get<3>(want);
  EXPECT_LT((std::get<3>(got64) - gb).abs().max().item<double>(), 1e-10 * gb.abs().max().item<double>());
  EXPECT_LT((std::get<3>(got32).to(torch::kFloat64) - gb).abs().max().item<double>(),
            1e-4 * gb.abs().max().item<double>());
}
