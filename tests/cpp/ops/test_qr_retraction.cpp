// mantra::qr_retraction from C++: agreement with torch's Householder QR (signs fixed), both
// branches, the backward against torch's autograd of linalg_qr, edge cases and errors.
#include <ATen/core/dispatch/Dispatcher.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mantra/mantra.h>

#include "../test_util.h"

namespace {

using mantra::test::expect_error;

int64_t householder_count() {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mantra::_kernel_calls", "")
                       .typed<int64_t(c10::string_view)>();
  return op.call("qr_retraction.householder");
}

// U diag(s) Vᵀ with singular values from 1 down to 1/cond (built in float64).
torch::Tensor with_condition(std::vector<int64_t> shape, double cond, torch::Dtype dtype, uint64_t seed) {
  torch::manual_seed(seed);
  const int64_t k = shape.back();
  auto o = torch::TensorOptions().dtype(torch::kFloat64);
  const torch::Tensor U = std::get<0>(torch::linalg_qr(torch::randn(shape, o)));
  std::vector<int64_t> vshape = shape;
  vshape[vshape.size() - 2] = k;
  const torch::Tensor V = std::get<0>(torch::linalg_qr(torch::randn(vshape, o)));
  const torch::Tensor s = torch::logspace(0, -std::log10(cond), k, 10.0, o);
  return torch::matmul(U * s, V.mT()).to(dtype);
}

torch::Tensor torch_qr_positive(const torch::Tensor& X) {
  auto [Q, R] = torch::linalg_qr(X);
  const torch::Tensor d = R.diagonal(0, -2, -1);
  return Q * torch::where(d < 0, -torch::ones_like(d), torch::ones_like(d)).unsqueeze(-2);
}

double orthogonality(const torch::Tensor& Q) {
  const torch::Tensor Qd = Q.to(torch::kFloat64);
  return (torch::matmul(Qd.mT(), Qd) - torch::eye(Q.size(-1), Qd.options())).abs().max().item<double>();
}

TEST(QrRetraction, MatchesTorchQrWithSignFix) {
  for (auto shape : std::vector<std::vector<int64_t>>{{7, 3}, {9, 9}, {300, 12}, {10, 6, 6}}) {
    for (auto [dtype, tol] : {std::pair{torch::kFloat64, 1e-12}, std::pair{torch::kFloat32, 1e-5}}) {
      const torch::Tensor X = with_condition(shape, 10.0, dtype, 1);
      const torch::Tensor Q = mantra::qr_retraction(X);
      ASSERT_EQ(Q.sizes(), X.sizes());
      EXPECT_EQ(Q.scalar_type(), dtype);
      EXPECT_LT((Q.to(torch::kFloat64) - torch_qr_positive(X.to(torch::kFloat64))).abs().max().item<double>(), tol)
          << X.sizes();
    }
  }
}

TEST(QrRetraction, BothBranchesOrthogonalUpToCondition1e6) {
  // float32: CholeskyQR2 at κ = 10, Householder at κ = 1e6; float64: CholeskyQR2 at 1e6.
  struct Case {
    torch::Dtype dtype;
    double cond;
    bool householder;
    double tol;
  };
  for (const Case c : {Case{torch::kFloat32, 10.0, false, 1e-5}, Case{torch::kFloat32, 1e6, true, 1e-5},
                       Case{torch::kFloat64, 1e6, false, 1e-13}, Case{torch::kFloat64, 1e10, true, 1e-13}}) {
    const torch::Tensor X = with_condition({4, 100, 10}, c.cond, c.dtype, 2);
    const int64_t before = householder_count();
    const torch::Tensor Q = mantra::qr_retraction(X);
    EXPECT_EQ(householder_count() - before, c.householder ? 4 : 0) << c.cond;
    EXPECT_LT(orthogonality(Q), c.tol) << c.cond;
    const torch::Tensor R = torch::matmul(Q.to(torch::kFloat64).mT(), X.to(torch::kFloat64));
    EXPECT_TRUE((R.diagonal(0, -2, -1) > 0).all().item<bool>());
  }
}

TEST(QrRetraction, BackwardMatchesTorchAutograd) {
  const torch::Tensor X = with_condition({3, 20, 5}, 5.0, torch::kFloat64, 3);
  const torch::Tensor G = torch::randn({3, 20, 5}, torch::kFloat64);
  torch::Tensor A = X.clone().requires_grad_(true), B = X.clone().requires_grad_(true);
  (mantra::qr_retraction(A) * G).sum().backward();
  (torch_qr_positive(B) * G).sum().backward();
  EXPECT_LT(((A.grad() - B.grad()).norm() / B.grad().norm()).item<double>(), 1e-12);
}

TEST(QrRetraction, EmptyAndSquareAndNonContiguous) {
  for (auto shape : std::vector<std::vector<int64_t>>{{0, 4, 2}, {3, 0}, {0, 0}}) {
    EXPECT_EQ(mantra::qr_retraction(torch::zeros(shape, torch::kFloat64)).sizes(), at::IntArrayRef(shape));
  }
  const torch::Tensor S = with_condition({8, 8}, 100.0, torch::kFloat64, 4);
  EXPECT_LT(orthogonality(mantra::qr_retraction(S)), 1e-14);
  const torch::Tensor T = with_condition({2, 30, 6}, 4.0, torch::kFloat64, 5).mT().contiguous().mT();
  ASSERT_FALSE(T.is_contiguous());
  EXPECT_LT((mantra::qr_retraction(T) - torch_qr_positive(T)).abs().max().item<double>(), 1e-12);
}

TEST(QrRetraction, RankDeficientTakesHouseholderAndStaysOrthonormal) {
  torch::Tensor X = with_condition({12, 4}, 3.0, torch::kFloat64, 6);
  X.select(1, 2).copy_(X.select(1, 0) - X.select(1, 1));
  const int64_t before = householder_count();
  const torch::Tensor Q = mantra::qr_retraction(X);
  EXPECT_EQ(householder_count() - before, 1);
  EXPECT_LT(orthogonality(Q), 1e-14);
  EXPECT_LT((torch::matmul(Q, torch::matmul(Q.mT(), X)) - X).abs().max().item<double>(), 1e-13);
}

TEST(QrRetraction, BadArgumentsNameThem) {
  expect_error([] { mantra::qr_retraction(torch::zeros({2, 5})); }, "argument 'X' must be tall or square");
  expect_error([] { mantra::qr_retraction(torch::zeros({4})); }, "argument 'X' must have at least 2 dimensions");
  expect_error([] { mantra::qr_retraction(torch::zeros({4, 2}, torch::kInt64)); }, "must be float32 or float64");
  const torch::Tensor Q = torch::zeros({5, 3}), R = torch::eye(3);
  expect_error([&] { mantra::qr_retraction_backward(torch::zeros({5, 2}), Q, R); },
               "argument 'grad' must have the shape of 'Q'");
  expect_error([&] { mantra::qr_retraction_backward(torch::zeros({5, 3}), Q, torch::eye(2)); },
               "argument 'R' must have shape [3, 3]");
}

TEST(QrRetraction, StiefelQrRetractionUsesIt) {
  const mantra::manifolds::Stiefel M;
  const torch::Tensor X = M.random({9, 4}, torch::kFloat64);
  const torch::Tensor V = M.proj_tangent(X, torch::randn({9, 4}, torch::kFloat64));
  const torch::Tensor Y = M.retract(X, V, mantra::manifolds::Retraction::QR);
  // (the retraction re-takes V's tangent part: equal to rounding)
  const int64_t before = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("mantra::_kernel_calls", "")
                             .typed<int64_t(c10::string_view)>()
                             .call("qr_retraction.CPU");
  EXPECT_LT((Y - mantra::qr_retraction(X + V)).abs().max().item<double>(), 1e-14);
  EXPECT_LT((Y - torch_qr_positive(X + V)).abs().max().item<double>(), 1e-13);
  M.retract(X, V, mantra::manifolds::Retraction::QR);
  EXPECT_EQ(c10::Dispatcher::singleton()
                .findSchemaOrThrow("mantra::_kernel_calls", "")
                .typed<int64_t(c10::string_view)>()
                .call("qr_retraction.CPU"),
            before + 2);
}

}  // namespace
