#include "manifolds/linalg.h"

#include <mantra/ops.h>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace mantra::linalg {

at::Tensor sym(const at::Tensor& A) { return (A + A.mT()) * 0.5; }
at::Tensor skew(const at::Tensor& A) { return (A - A.mT()) * 0.5; }

at::Tensor eye_like(const at::Tensor& like) {
  return at::eye(like.size(-2), like.size(-1), like.options()).expand(like.sizes());
}

at::Tensor nonfinite_matrices(const at::Tensor& A) {
  return at::isfinite(A).logical_not().any(-1, true).any(-2, true);
}

at::Tensor fill_nan(const at::Tensor& T, const at::Tensor& mask) {
  return T.masked_fill(mask, std::numeric_limits<double>::quiet_NaN());
}

at::Tensor newton_schulz_step(const at::Tensor& Y) {
  const at::Tensor G = at::matmul(Y.mT(), Y);
  return at::matmul(Y, eye_like(G) * 1.5 - 0.5 * G);
}

namespace {

// Σ_{n≥1} (−1)^n n s^{n−1} / (2n + 1 + offset)!: the derivative of Σ (−1)^n s^n / (2n + 1 + offset)!
// (offset 0: sin(√s)/√s, offset 1: (1 − cos√s)/s), for small s where the closed forms cancel.
at::Tensor series_derivative(const at::Tensor& s, int offset) {
  at::Tensor acc = at::zeros_like(s);
  for (int n = 8; n >= 1; --n) {  // Horner; at s = 1/4 the first omitted term is < 1e-17
    double fact = 1;
    for (int i = 2; i <= 2 * n + 1 + offset; ++i) fact *= i;
    acc = acc * s + ((n % 2) ? -1.0 : 1.0) * n / fact;
  }
  return acc;
}

// ---- divided differences of cos√s and sin√s/√s (the skew expm route, the Grassmann geodesic) ----

// Pairs with |√λi − √λj| ≤ kClose use the cancellation-free forms.
constexpr double kClose = 0.5;

inline double sinc(double t) { return t == 0.0 ? 1.0 : std::sin(t) / t; }

// φ(t) = (sin t − t cos t)/t³ = 1/3 − t²/30 + t⁴/840 − … (series below 1, where the direct
// form cancels), so that sinc(t) − cos t = t²φ(t).
double phi(double t) {
  const double t2 = t * t;
  if (std::abs(t) < 1.0) {
    // Σ_{k≥1} (−1)^{k+1} 2k t^{2k−2} / (2k+1)!, 11 terms: the next is below 1e-19.
    double s = 0.0, p = 1.0, f = 6.0;
    for (int k = 1; k <= 11; ++k) {
      s += (k % 2 == 1 ? 2.0 : -2.0) * k * p / f;
      p *= t2;
      f *= (2.0 * k + 2) * (2.0 * k + 3);
    }
    return s;
  }
  return (std::sin(t) - t * std::cos(t)) / (t2 * t);
}

// f[a, b] and g[a, b] for a = x², b = y², |x − y| ≤ kClose, with m = (x+y)/2, h = (x−y)/2:
//   f[a, b] = (cos x − cos y)/(x² − y²) = −½ sinc(m) sinc(h);
//   g[a, b] = (sin x/x − sin y/y)/(x² − y²) = (h²φ(h) cos m − m²φ(m) cos h)/(2xy), where
//             y·sin x − x·sin y = 2m cos m sin h − 2h sin m cos h;
//   and for x, y ≤ 1 (where xy may vanish) the series g[a, b] = Σ_{k≥1} (−1)^k h_{k−1}(a, b)/(2k+1)!
//   with h_k the complete homogeneous polynomial (a^{k+1} − b^{k+1})/(a − b).
// Equal arguments give f'(a) = −sin x/(2x) and g'(a) = −φ(x)/2. Checked against 50-digit
// arithmetic to 2e-15 relative (of the scale max(|value|, 1/(1 + m²))).
void close_pair(double x, double y, double& F, double& G) {
  const double m = 0.5 * (x + y), h = 0.5 * (x - y);
  F = -0.5 * sinc(m) * sinc(h);
  if (std::max(x, y) <= 1.0) {
    const double a = x * x, b = y * y;
    double H = 1.0, bp = 1.0, f = 6.0, s = 0.0;
    for (int k = 1; k <= 12; ++k) {  // a, b ≤ 1: the 13th term is below 1e-23
      s += (k % 2 == 1 ? -H : H) / f;
      bp *= b;
      H = a * H + bp;
      f *= (2.0 * k + 2) * (2.0 * k + 3);
    }
    G = s;
  } else {
    // max(x, y) > 1 and |x − y| ≤ ½: xy ≥ ½, no cancellation in the denominator.
    G = (h * h * phi(h) * std::cos(m) - m * m * phi(m) * std::cos(h)) / (2.0 * x * y);
  }
}

template <typename T>
void divided_differences(const T* lam, T* F, T* G, int64_t B, int64_t n) {
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> x(n);
    std::vector<T> c(n), g(n);
    for (int64_t b = begin; b < end; ++b) {
      const T* l = lam + b * n;
      for (int64_t i = 0; i < n; ++i) {
        x[i] = std::sqrt(std::max(0.0, static_cast<double>(l[i])));
        c[i] = static_cast<T>(std::cos(x[i]));
        g[i] = static_cast<T>(sinc(x[i]));
      }
      const bool sorted = std::is_sorted(x.begin(), x.end());
      int64_t lo = 0, hi = 0;  // the close range [lo, hi) of row i when sorted
      for (int64_t i = 0; i < n; ++i) {
        T* Fi = F + (b * n + i) * n;
        T* Gi = G + (b * n + i) * n;
        // Far pairs (the difference quotient; close pairs are overwritten below).
        const T li = l[i], ci = c[i], gi = g[i];
        for (int64_t j = 0; j < n; ++j) {
          const T inv = T(1) / (li - l[j]);
          Fi[j] = (ci - c[j]) * inv;
          Gi[j] = (gi - g[j]) * inv;
        }
        int64_t j0 = 0, j1 = n;
        if (sorted) {
          while (x[lo] < x[i] - kClose) ++lo;
          hi = std::max(hi, i + 1);
          while (hi < n && x[hi] <= x[i] + kClose) ++hi;
          j0 = lo;
          j1 = hi;
        }
        for (int64_t j = j0; j < j1; ++j) {
          if (std::abs(x[i] - x[j]) > kClose) continue;
          double f, gg;
          close_pair(x[i], x[j], f, gg);
          Fi[j] = static_cast<T>(f);
          Gi[j] = static_cast<T>(gg);
        }
      }
    }
  });
}

constexpr double kSeriesBelow = 0.25;

at::Tensor eval_f(const at::Tensor& lambda, SymFunction f, const at::Tensor& floor) {
  switch (f) {
    case SymFunction::Sqrt: return lambda.sqrt();
    case SymFunction::InvSqrt: return lambda.rsqrt();
    case SymFunction::Log: return lambda.log();
    case SymFunction::Exp: return lambda.exp();
    case SymFunction::CosSqrt: return lambda.clamp_min(0).sqrt().cos();
    case SymFunction::SincSqrt: return at::sinc(lambda.clamp_min(0).sqrt() / M_PI);
    case SymFunction::VersSqrt: {
      const at::Tensor half = at::sinc(lambda.clamp_min(0).sqrt() / (2 * M_PI));  // 1 − cos t = 2 sin²(t/2)
      return 0.5 * half * half;
    }
    case SymFunction::ClampMin: return at::maximum(lambda, floor);
    case SymFunction::SqrtFloor: return at::maximum(lambda, floor).sqrt();
    case SymFunction::InvSqrtFloor: return at::maximum(lambda, floor).rsqrt();
    case SymFunction::ExpClamp: return at::minimum(at::maximum(lambda, -floor), floor).exp();
    case SymFunction::ExpClampHalf: return (at::minimum(at::maximum(lambda, -floor), floor) * 0.5).exp();
  }
  return lambda;
}

at::Tensor eval_df(const at::Tensor& lambda, SymFunction f, const at::Tensor& floor) {
  switch (f) {
    case SymFunction::Sqrt: return 0.5 * lambda.rsqrt();
    case SymFunction::InvSqrt: return -0.5 * lambda.rsqrt() / lambda;
    case SymFunction::Log: return lambda.reciprocal();
    case SymFunction::Exp: return lambda.exp();
    case SymFunction::CosSqrt: return -0.5 * at::sinc(lambda.clamp_min(0).sqrt() / M_PI);
    case SymFunction::SincSqrt:
    case SymFunction::VersSqrt: {
      const at::Tensor s = lambda.clamp_min(0);
      const at::Tensor t = s.sqrt();
      const at::Tensor sinc = at::sinc(t / M_PI);
      const at::Tensor big = s.clamp_min(kSeriesBelow);  // keeps the unused branch finite
      // d/ds sin(t)/t = (cos t − sinc t)/(2s); d/ds (1 − cos t)/s = (sinc t − 2 vers)/(2s).
      const at::Tensor closed = f == SymFunction::SincSqrt
                                    ? (t.cos() - sinc) / (2 * big)
                                    : (sinc - 2 * eval_f(lambda, f, floor)) / (2 * big);
      return at::where(s < kSeriesBelow, series_derivative(s, f == SymFunction::SincSqrt ? 0 : 1), closed);
    }
    case SymFunction::ClampMin: return (lambda > floor).to(lambda.scalar_type());
    case SymFunction::SqrtFloor:
    case SymFunction::InvSqrtFloor: {
      const at::Tensor l = at::maximum(lambda, floor);
      const at::Tensor d = f == SymFunction::SqrtFloor ? 0.5 * l.rsqrt() : -0.5 * l.rsqrt() / l;
      return at::where(lambda > floor, d, at::zeros_like(d));
    }
    case SymFunction::ExpClamp:
    case SymFunction::ExpClampHalf: {
      const at::Tensor e = eval_f(lambda, f, floor) * (f == SymFunction::ExpClampHalf ? 0.5 : 1.0);
      return at::where(lambda.abs() < floor, e, at::zeros_like(e));
    }
  }
  return lambda;
}

}  // namespace

std::pair<at::Tensor, at::Tensor> cos_sinc_sqrt(const at::Tensor& lambda) {
  return {eval_f(lambda, SymFunction::CosSqrt, {}), eval_f(lambda, SymFunction::SincSqrt, {})};
}

std::pair<at::Tensor, at::Tensor> cos_sinc_sqrt_divided_differences(const at::Tensor& lambda) {
  TORCH_INTERNAL_ASSERT(lambda.is_cpu() && lambda.dim() >= 1, "cos_sinc_sqrt_divided_differences: (..., n) CPU");
  const int64_t n = lambda.size(-1);
  const at::Tensor l = lambda.reshape({-1, n}).contiguous();
  const int64_t B = l.size(0);
  at::Tensor F = at::empty({B, n, n}, l.options()), G = at::empty({B, n, n}, l.options());
  AT_DISPATCH_FLOATING_TYPES(l.scalar_type(), "mantra::linalg::cos_sinc_sqrt_divided_differences", [&] {
    divided_differences(l.const_data_ptr<scalar_t>(), F.mutable_data_ptr<scalar_t>(),
                        G.mutable_data_ptr<scalar_t>(), B, n);
  });
  std::vector<int64_t> shape = lambda.sizes().vec();
  shape.push_back(n);
  return {F.view(shape), G.view(shape)};
}

std::tuple<at::Tensor, at::Tensor> eigh(const at::Tensor& S) {
  auto [lambda, Q] = at::linalg_eigh(S);
  if (S.scalar_type() == at::kDouble || S.numel() == 0) return {lambda, Q};
  if (at::isfinite(lambda).all().logical_and(at::isfinite(Q).all()).item<bool>()) return {lambda, Q};
  if (!at::isfinite(S).all().item<bool>()) return {lambda, Q};  // NaN in, NaN out
  auto [lambda64, Q64] = at::linalg_eigh(S.to(at::kDouble));
  return {lambda64.to(lambda.scalar_type()), Q64.to(Q.scalar_type())};
}

namespace {

// cos√s and sinc√s take the cancellation-free divided differences (CPU float32/float64); the
// generic rule below (f' for pairs within eps^{1/3}) loses about eps^{2/3} near equal pairs.
bool exact_cos_sinc(const at::Tensor& lambda) {
  return lambda.is_cpu() && (lambda.scalar_type() == at::kFloat || lambda.scalar_type() == at::kDouble);
}

class SymFunm : public torch::autograd::Function<SymFunm> {
 public:
  // fs: the SymFunction values; one output per function, all from one eigh.
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& S,
                                                std::vector<int64_t> fs, const at::Tensor& floor) {
    auto [lambda, Q] = eigh(S);
    const at::Tensor fl = floor.to(lambda.options()).unsqueeze(-1);
    ctx->saved_data["fs"] = fs;
    ctx->saved_data["floor"] = fl;
    ctx->save_for_backward({lambda, Q});
    torch::autograd::variable_list out;
    for (const int64_t f : fs) out.push_back(at::matmul(Q * eval_f(lambda, static_cast<SymFunction>(f), fl).unsqueeze(-2), Q.mT()));
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const std::vector<int64_t> fs = ctx->saved_data["fs"].toIntVector();
    const at::Tensor floor = ctx->saved_data["floor"].toTensor();
    auto saved = ctx->get_saved_variables();
    const at::Tensor& lambda = saved[0];
    const at::Tensor& Q = saved[1];
    const at::Tensor diff = lambda.unsqueeze(-1) - lambda.unsqueeze(-2);
    // Balance the two errors: a divided difference loses eps/|λi − λj| relative, the mean of
    // the derivatives (trapezoid) errs by O(|λi − λj|²); they meet near eps^{1/3}.
    const double tol = lambda.scalar_type() == at::kDouble ? 6e-6 : 5e-3;
    at::Tensor inner;  // Σ over the outputs of (Qᵀ sym(Gₖ) Q) ∘ Lₖ
    std::pair<at::Tensor, at::Tensor> cos_sinc_dd;  // computed once for CosSqrt and SincSqrt
    for (size_t k = 0; k < fs.size(); ++k) {
      if (!grads[k].defined()) continue;
      const auto f = static_cast<SymFunction>(fs[k]);
      if ((f == SymFunction::CosSqrt || f == SymFunction::SincSqrt) && exact_cos_sinc(lambda)) {
        if (!cos_sinc_dd.first.defined()) cos_sinc_dd = cos_sinc_sqrt_divided_differences(lambda);
        const at::Tensor& L = f == SymFunction::CosSqrt ? cos_sinc_dd.first : cos_sinc_dd.second;
        const at::Tensor term = at::matmul(at::matmul(Q.mT(), sym(grads[k])), Q) * L;
        inner = inner.defined() ? inner + term : term;
        continue;
      }
      const at::Tensor fl = eval_f(lambda, f, floor);
      const at::Tensor dfl = eval_df(lambda, f, floor);
      // Divided differences L_ij = (f(λi) − f(λj)) / (λi − λj), f' where λi ≈ λj. Sqrt,
      // InvSqrt, Log vary on the scale of λ itself (closeness is relative); the others on a
      // unit scale (closeness is absolute near 0, where f(λi) − f(λj) would round to 0).
      const bool relative = f == SymFunction::Sqrt || f == SymFunction::InvSqrt || f == SymFunction::Log ||
                            f == SymFunction::SqrtFloor || f == SymFunction::InvSqrtFloor;
      const at::Tensor scale = at::maximum(lambda.abs().unsqueeze(-1), lambda.abs().unsqueeze(-2))
                                   .clamp_min(relative ? std::numeric_limits<double>::min() : 1.0);
      const at::Tensor close = diff.abs() <= scale * tol;
      const at::Tensor L = at::where(close, 0.5 * (dfl.unsqueeze(-1) + dfl.unsqueeze(-2)),
                                     (fl.unsqueeze(-1) - fl.unsqueeze(-2)) / at::where(close, at::ones_like(diff), diff));
      const at::Tensor term = at::matmul(at::matmul(Q.mT(), sym(grads[k])), Q) * L;
      inner = inner.defined() ? inner + term : term;
    }
    if (!inner.defined()) return {at::Tensor(), at::Tensor(), at::Tensor()};
    return {at::matmul(at::matmul(Q, inner), Q.mT()), at::Tensor(), at::Tensor()};
  }
};

// (P, Pinv) = (V_r V_rᵀ, V_r Σ_r⁻² V_rᵀ) of a tall A, as functions of the Gram matrix G = AᵀA.
class GramTop : public torch::autograd::Function<GramTop> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& A,
                                                int64_t r) {
    // The SVD of A is more accurate than eigh(AᵀA), which squares the condition number.
    auto [U, S, Vh] = at::linalg_svd(A, /*full_matrices=*/false);
    const at::Tensor Q = Vh.mT();
    const at::Tensor lambda = S * S;
    const at::Tensor Qr = Q.narrow(-1, 0, r);
    const at::Tensor inv = lambda.narrow(-1, 0, r).reciprocal();
    ctx->saved_data["r"] = r;
    ctx->save_for_backward({A, lambda, Q});
    return {at::matmul(Qr, Qr.mT()), at::matmul(Qr * inv.unsqueeze(-2), Qr.mT())};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const int64_t r = ctx->saved_data["r"].toInt();
    auto saved = ctx->get_saved_variables();
    const at::Tensor &A = saved[0], &lambda = saved[1], &Q = saved[2];
    const int64_t k = lambda.size(-1);
    // Daleckii–Krein: dF = Q (L ∘ Qᵀ dG Q) Qᵀ with L_ij the divided differences of f, where
    // f is 1 (P) or 1/λ (Pinv) on the top r eigenvalues and 0 on the rest. Pairs inside the
    // rest group give 0 (f is constant there), so coinciding zero eigenvalues are harmless.
    const at::Tensor top = (at::arange(k, lambda.options().dtype(at::kLong)) < r);
    const at::Tensor ti = top.unsqueeze(-1), tj = top.unsqueeze(-2);
    const at::Tensor li = lambda.unsqueeze(-1), lj = lambda.unsqueeze(-2);
    const at::Tensor mixed = ti.logical_xor(tj);
    // Mixed pairs: (f(λ_top) − 0) / (λ_top − λ_rest), written with (i top) or (j top).
    const at::Tensor gap = at::where(ti, li - lj, lj - li);
    const at::Tensor safe_gap = at::where(mixed, gap, at::ones_like(gap));
    const at::Tensor ftop_inv = at::where(ti, li, lj).reciprocal();
    at::Tensor inner = at::zeros_like(li * lj);
    if (grads[0].defined()) {
      const at::Tensor L = at::where(mixed, 1.0 / safe_gap, at::zeros_like(gap));
      inner = inner + at::matmul(at::matmul(Q.mT(), sym(grads[0])), Q) * L;
    }
    if (grads[1].defined()) {
      const at::Tensor both = ti.logical_and(tj);
      const at::Tensor L = at::where(mixed, at::where(mixed, ftop_inv, at::zeros_like(gap)) / safe_gap,
                                     at::where(both, -1.0 / (li * lj), at::zeros_like(gap)));
      inner = inner + at::matmul(at::matmul(Q.mT(), sym(grads[1])), Q) * L;
    }
    // dG = dAᵀA + AᵀdA, so the gradient for A is 2 A B with B the (symmetric) one for G.
    const at::Tensor B = at::matmul(at::matmul(Q, inner), Q.mT());
    return {2 * at::matmul(A, B), at::Tensor()};
  }
};

// The polar factor U Wᵀ of M = U Σ Wᵀ (thin SVD). Through the SVD rather than (MᵀM)^{-1/2}:
// the Gram matrix squares the condition number, so float32 steps with ‖V‖ ≳ 1e3 lost
// orthonormality (and NaN for larger ones). Its backward is finite at repeated singular
// values (V = 0): with B = Uᵀ Ḡ W, M̄ = U (F ∘ (B − Bᵀ)) Wᵀ + (I − UUᵀ) Ḡ W Σ⁻¹ Wᵀ,
// F_ij = 1/(σ_i + σ_j).
class PolarFactor : public torch::autograd::Function<PolarFactor> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& M) {
    auto [U, S, Vh] = at::linalg_svd(M, /*full_matrices=*/false);
    ctx->save_for_backward({U, S, Vh});
    return at::matmul(U, Vh);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &U = saved[0], &S = saved[1], &Vh = saved[2];
    const at::Tensor& G = grads[0];
    const at::Tensor W = Vh.mT();
    const at::Tensor UtG = at::matmul(U.mT(), G);
    const at::Tensor B = at::matmul(UtG, W);
    const at::Tensor F = (S.unsqueeze(-1) + S.unsqueeze(-2)).reciprocal();
    const at::Tensor inner = at::matmul(at::matmul(U, F * (B - B.mT())), Vh);
    const at::Tensor perp = at::matmul(at::matmul(G - at::matmul(U, UtG), W / S.unsqueeze(-2)), Vh);
    return {inner + perp};
  }
};

}  // namespace

std::vector<at::Tensor> sym_funms(const at::Tensor& S, const std::vector<SymFunction>& fs, const at::Tensor& floor) {
  TORCH_CHECK_VALUE(!fs.empty(), "sym_funms: argument 'fs' must name at least one function");
  std::vector<int64_t> codes;
  for (const SymFunction f : fs) {
    TORCH_CHECK_VALUE((f != SymFunction::ClampMin && f != SymFunction::SqrtFloor && f != SymFunction::InvSqrtFloor &&
                       f != SymFunction::ExpClamp && f != SymFunction::ExpClampHalf) ||
                          floor.defined(),
                      "sym_funm: argument 'floor' is needed for ClampMin, SqrtFloor, InvSqrtFloor, ExpClamp and "
                      "ExpClampHalf");
    codes.push_back(static_cast<int64_t>(f));
  }
  // autograd::Function takes no undefined tensors; the placeholder is ignored unless a floor is used.
  return SymFunm::apply(S, codes, floor.defined() ? floor.detach() : at::zeros({}, S.options()));
}

at::Tensor sym_funm(const at::Tensor& S, SymFunction f, const at::Tensor& floor) {
  return sym_funms(S, {f}, floor)[0];
}

std::pair<at::Tensor, at::Tensor> gram_top(const at::Tensor& A, int64_t r) {
  TORCH_CHECK_VALUE(A.dim() >= 2 && A.size(-2) >= A.size(-1), "gram_top: argument 'A' must be tall (..., n, k), n >= k, got ",
                    A.sizes());
  TORCH_CHECK_VALUE(r >= 1 && r <= A.size(-1), "gram_top: argument 'r' must be in [1, ", A.size(-1), "], got ", r);
  const at::Tensor bad = nonfinite_matrices(A);
  auto out = GramTop::apply(A.masked_fill(bad, 0), r);
  return {fill_nan(out[0], bad), fill_nan(out[1], bad)};
}

at::Tensor truncate_rank(const at::Tensor& A, int64_t r) {
  const bool wide = is_wide(A);
  const at::Tensor At = tall(A, wide);
  return tall(at::matmul(At, gram_top(At, r).first), wide);
}

at::Tensor polar_factor(const at::Tensor& M) {
  const at::Tensor bad = nonfinite_matrices(M);  // LAPACK's SVD throws on NaN
  return fill_nan(PolarFactor::apply(M.masked_fill(bad, 0)), bad);
}

at::Tensor polar_factor_near_frame(const at::Tensor& M) {
  return at::matmul(M, sym_funm(sym(at::matmul(M.mT(), M)), SymFunction::InvSqrt));
}

at::Tensor qr_positive(const at::Tensor& A) { return mantra::qr_retraction(A); }

}  // namespace mantra::linalg
