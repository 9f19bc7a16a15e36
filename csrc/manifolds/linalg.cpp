#include "manifolds/linalg.h"

#include <torch/autograd.h>

namespace mantra::linalg {

at::Tensor sym(const at::Tensor& A) { return (A + A.mT()) * 0.5; }
at::Tensor skew(const at::Tensor& A) { return (A - A.mT()) * 0.5; }

at::Tensor eye_like(const at::Tensor& like) {
  return at::eye(like.size(-2), like.size(-1), like.options()).expand(like.sizes());
}

namespace {

at::Tensor eval_f(const at::Tensor& lambda, SymFunction f) {
  switch (f) {
    case SymFunction::Sqrt: return lambda.sqrt();
    case SymFunction::InvSqrt: return lambda.rsqrt();
    case SymFunction::Log: return lambda.log();
    case SymFunction::Exp: return lambda.exp();
  }
  return lambda;
}

at::Tensor eval_df(const at::Tensor& lambda, SymFunction f) {
  switch (f) {
    case SymFunction::Sqrt: return 0.5 * lambda.rsqrt();
    case SymFunction::InvSqrt: return -0.5 * lambda.rsqrt() / lambda;
    case SymFunction::Log: return lambda.reciprocal();
    case SymFunction::Exp: return lambda.exp();
  }
  return lambda;
}

class SymFunm : public torch::autograd::Function<SymFunm> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& S, int64_t f) {
    auto [lambda, Q] = at::linalg_eigh(S);
    ctx->saved_data["f"] = f;
    ctx->save_for_backward({lambda, Q});
    return at::matmul(Q * eval_f(lambda, static_cast<SymFunction>(f)).unsqueeze(-2), Q.mT());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto f = static_cast<SymFunction>(ctx->saved_data["f"].toInt());
    auto saved = ctx->get_saved_variables();
    const at::Tensor& lambda = saved[0];
    const at::Tensor& Q = saved[1];
    const at::Tensor fl = eval_f(lambda, f);
    const at::Tensor dfl = eval_df(lambda, f);
    // Divided differences L_ij = (f(λi) − f(λj)) / (λi − λj), f' where λi ≈ λj.
    const at::Tensor diff = lambda.unsqueeze(-1) - lambda.unsqueeze(-2);
    const at::Tensor scale = at::maximum(lambda.abs().unsqueeze(-1), lambda.abs().unsqueeze(-2)).clamp_min(1.0);
    const double tol = 1e3 * (lambda.scalar_type() == at::kDouble ? 2.2e-16 : 1.2e-7);
    const at::Tensor close = diff.abs() <= scale * tol;
    const at::Tensor L = at::where(close, 0.5 * (dfl.unsqueeze(-1) + dfl.unsqueeze(-2)),
                                   (fl.unsqueeze(-1) - fl.unsqueeze(-2)) / at::where(close, at::ones_like(diff), diff));
    const at::Tensor G = sym(grads[0]);
    const at::Tensor inner = at::matmul(at::matmul(Q.mT(), G), Q) * L;
    return {at::matmul(at::matmul(Q, inner), Q.mT()), at::Tensor()};
  }
};

}  // namespace

at::Tensor sym_funm(const at::Tensor& S, SymFunction f) {
  return SymFunm::apply(S, static_cast<int64_t>(f));
}

at::Tensor qr_positive(const at::Tensor& A) {
  auto [Q, R] = at::linalg_qr(A, "reduced");
  // sign(0) would zero a column; a zero diagonal entry only occurs for rank-deficient A.
  at::Tensor d = R.diagonal(0, -2, -1);
  at::Tensor sign = at::where(d < 0, -at::ones_like(d), at::ones_like(d));
  return Q * sign.unsqueeze(-2);
}

}  // namespace mantra::linalg
