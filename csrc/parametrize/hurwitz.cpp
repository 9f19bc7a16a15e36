// α-stable (Hurwitz) matrices X = P (S − Q/2) − αI (functional.h), and the op
// torch.ops.mantra.hurwitz_compose (CompositeImplicitAutograd, as functional_ops.cpp's).
#include <ATen/ATen.h>
#include <torch/library.h>

#include <cmath>
#include <sstream>

#include "mantra/parametrize/functional.h"

namespace mantra::parametrize::functional {

namespace {

void check_square_factor(const at::Tensor& t, const char* name, const at::Tensor& P) {
  TORCH_CHECK_VALUE(t.dim() >= 2 && t.size(-1) == t.size(-2), "hurwitz_compose: argument '", name,
                    "' must be square (..., n, n), got shape ", t.sizes());
  TORCH_CHECK_VALUE(t.sizes() == P.sizes(), "hurwitz_compose: arguments 'P' and '", name,
                    "' must have the same shape, got ", P.sizes(), " and ", t.sizes());
  TORCH_CHECK_VALUE(t.scalar_type() == P.scalar_type(), "hurwitz_compose: arguments 'P' and '", name,
                    "' must have the same dtype, got ", P.scalar_type(), " and ", t.scalar_type());
}

}  // namespace

at::Tensor hurwitz_compose(const at::Tensor& P, const at::Tensor& Q, const at::Tensor& S, double alpha) {
  check_square_factor(P, "P", P);
  check_square_factor(Q, "Q", P);
  check_square_factor(S, "S", P);
  TORCH_CHECK_VALUE(std::isfinite(alpha), "hurwitz_compose: argument 'alpha' must be finite, got ", alpha);
  // float16/bfloat16 factors are composed in float32 (as the other maps are) and cast back.
  const bool half = P.scalar_type() == at::kHalf || P.scalar_type() == at::kBFloat16;
  auto up = [&](const at::Tensor& t) { return half ? t.to(at::kFloat) : t; };
  at::Tensor X = at::matmul(up(P), up(S) - 0.5 * up(Q));
  if (alpha != 0) X = X - alpha * at::eye(P.size(-1), X.options());
  return half ? X.to(P.scalar_type()) : X;
}

at::Tensor spectral_abscissa(const at::Tensor& X) {
  return at::real(at::linalg_eigvals(X.detach().to(at::kDouble))).amax(-1);
}

std::string hurwitz_check(const at::Tensor& X, at::IntArrayRef shape, double alpha) {
  std::ostringstream why;
  if (X.sizes() != shape) {
    why << "it must have shape " << shape << ", got " << X.sizes();
    return why.str();
  }
  if (!at::isFloatingType(X.scalar_type())) {
    why << "it must be a real floating-point tensor, got " << X.scalar_type();
    return why.str();
  }
  if (!at::isfinite(X).all().item<bool>()) return "it contains NaN or Inf";
  if (X.numel() == 0) return "";
  const double abscissa = spectral_abscissa(X).max().item<double>();
  if (!(abscissa < -alpha)) {
    why << "it is not α-stable: the largest real part of its eigenvalues is " << abscissa
        << ", not below −alpha = " << -alpha;
    return why.str();
  }
  return "";
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> hurwitz_factors(const at::Tensor& X, double alpha, const char* fn) {
  const std::string why = hurwitz_check(X, X.sizes(), alpha);
  TORCH_CHECK_VALUE(why.empty(), fn, ": argument 'X' ", why);
  const auto dtype = X.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor Xd = X.detach().to(at::kDouble);
  const int64_t n = X.size(-1);
  const at::Tensor I = at::eye(n, Xd.options());
  const at::Tensor B = Xd + alpha * I;
  // Newton's iteration for the matrix sign of [[Bᵀ, I], [0, −B]] (Roberts): its diagonal
  // blocks tend to −I and I, its corner G to 2Y with BᵀY + YB = −I. Determinant scaling
  // c = |det M|^(−1/n) (Byers) makes the first steps fast on badly scaled B.
  at::Tensor M = B.mT().contiguous(), G = I.expand_as(B).contiguous();
  double change = INFINITY;
  for (int iteration = 0; iteration < 100 && change > 1e-13; ++iteration) {
    const at::Tensor Minv = at::linalg_inv(M);
    const at::Tensor c = at::exp(-std::get<1>(at::linalg_slogdet(M)) / static_cast<double>(n)).unsqueeze(-1).unsqueeze(-1);
    const at::Tensor next = 0.5 * (c * M + Minv / c);
    G = 0.5 * (c * G + at::matmul(at::matmul(Minv, G), Minv.mT()) / c);
    change = ((next - M).abs().amax({-2, -1}) / next.abs().amax({-2, -1})).max().item<double>();
    M = next;
  }
  const double defect = (M + I).abs().max().item<double>();
  TORCH_CHECK_VALUE(defect <= 1e-8, fn, ": the Lyapunov solve for the factors of 'X' did not converge (|sign + I| = ",
                    defect, "): X is too close to the boundary Re λ = −alpha");
  const at::Tensor Y = 0.25 * (G + G.mT());  // G / 2, symmetrized
  const auto [L, info] = at::linalg_cholesky_ex(Y);
  TORCH_CHECK_VALUE(info.max().item<int64_t>() == 0, fn, ": the Lyapunov solution for 'X' is not positive definite in ",
                    "float64: X is too close to the boundary Re λ = −alpha");
  const at::Tensor P = at::cholesky_inverse(L);
  const at::Tensor YB = at::matmul(Y, B);
  const at::Tensor S = 0.5 * (YB - YB.mT());
  const at::Tensor Q = I.expand_as(B).contiguous();
  const at::Tensor Psym = 0.5 * (P + P.mT());
  // The factors must give X back: far from the boundary to rounding; refused otherwise.
  const at::Tensor back = hurwitz_compose(Psym, Q, S, alpha);
  const double error = ((back - Xd).abs().max() / (1.0 + Xd.abs().max())).item<double>();
  TORCH_CHECK_VALUE(error <= 1e-9, fn, ": the factors of 'X' reproduce it only to a relative error ", error,
                    " (X is too close to the boundary Re λ = −alpha)");
  return {Psym.to(dtype), Q.to(dtype), S.to(dtype)};
}

}  // namespace mantra::parametrize::functional

TORCH_LIBRARY_FRAGMENT(mantra, m) {
  m.def("hurwitz_compose(Tensor P, Tensor Q, Tensor S, float alpha=0.0) -> Tensor");
}

TORCH_LIBRARY_IMPL(mantra, CompositeImplicitAutograd, m) {
  m.impl("hurwitz_compose", &mantra::parametrize::functional::hurwitz_compose);
}
