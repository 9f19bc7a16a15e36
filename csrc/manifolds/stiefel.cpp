#include "mantra/manifolds/stiefel.h"

#include <c10/util/Exception.h>

#include <sstream>

#include "manifolds/linalg.h"
#include "mantra/ops.h"
#include "ops/qr_retraction_algorithm.h"

namespace mantra::manifolds {

using linalg::is_wide;
using linalg::skew;
using linalg::sym;
using linalg::tall;  // methods work on tall frames; a wide argument through its transpose

Stiefel::Stiefel(StiefelOptions options) : options_(options) {
  if (options_.retraction == Retraction::Default) options_.retraction = Retraction::Exp;
  const auto r = options_.retraction;
  TORCH_CHECK_VALUE(r == Retraction::Exp || r == Retraction::Cayley || r == Retraction::QR || r == Retraction::Polar ||
                        r == Retraction::NewtonSchulz,
                    "Stiefel: argument 'retraction' must be exp, cayley, qr, polar or newton_schulz, got ", to_string(r));
}

std::vector<Retraction> Stiefel::retractions() const {
  std::vector<Retraction> all = {options_.retraction};
  for (Retraction r : {Retraction::Exp, Retraction::Cayley, Retraction::QR, Retraction::Polar, Retraction::NewtonSchulz}) {
    if (r != options_.retraction) all.push_back(r);
  }
  return all;
}

at::Tensor Stiefel::proj_tangent(const at::Tensor& X, const at::Tensor& G) const {
  check_args("proj_tangent", X, {{G, "G"}});
  const bool wide = is_wide(X);
  const at::Tensor Xt = tall(X, wide), Gt = tall(G, wide);
  return tall(Gt - at::matmul(Xt, sym(at::matmul(Xt.mT(), Gt))), wide);
}

namespace {
// exp and cayley keep XᵀX, so a frame X that has drifted by E = XᵀX − I comes out off by E
// (and rounding grows with ‖V‖: about u·‖V‖ from expm's squarings). Tall frames are then
// replaced by their polar factor (O(nk²) + the k×k eigh of YᵀY, well conditioned here): on
// the manifold to rounding, for every step. Square ones by a Newton–Schulz step (two n×n
// matmuls, no n×n eigh on the hot path of the orthogonal constraint): the error E becomes
// about (3/4)E². Both have the tangent
// projection as derivative at a frame, so the retraction keeps its first-order terms.
// Where X needs no gradient (a parametrization's base, an optimizer's update) the square
// correction is added as a constant: its derivative at a frame vanishes on the tangent space,
// where the step's derivative with respect to V lies (YᵀẎ is skew), so the gradient stays
// exact to the drift and the backward costs nothing extra.
at::Tensor back_to_frame(const at::Tensor& Y, bool square, bool x_needs_grad) {
  if (!square) return linalg::polar_factor_near_frame(Y);
  if (x_needs_grad) return linalg::newton_schulz_step(Y);
  at::Tensor correction;
  {
    at::NoGradGuard no_grad;
    const at::Tensor Yd = Y.detach();
    const at::Tensor G = at::matmul(Yd.mT(), Yd);
    correction = at::matmul(Yd, linalg::eye_like(G) - G) * 0.5;  // newton_schulz_step(Y) − Y
  }
  return Y + correction;
}

constexpr int kNewtonSchulzQuintic = 14;
constexpr int kNewtonSchulzCubic = 6;

// The polar factor M (MᵀM)^{-1/2} of a tall M by a fixed Newton–Schulz schedule, matmuls only:
//   Y₀ = M / c with c² = ‖MᵀM‖₁ (largest column sum: >= σ_max(M)², and 1 at a frame), then
//   Y ← Y·p(YᵀY) with
//   kNewtonSchulzQuintic steps of Muon's quintic x ↦ 3.4445x − 4.7750x³ + 2.0315x⁵ (Jordan et
//   al. 2024): a small singular value grows ×3.44 a step, all end in [0.68, 1.21];
//   kNewtonSchulzCubic steps of the classic cubic x ↦ (3x − x³)/2: quadratic convergence to 1.
// The scalar map takes every x ∈ [10⁻⁷, 1] to 1 within 2.3e-16 (checked on a grid; it holds
// to 3·10⁻⁸), so Y is the exact polar factor to rounding whenever c/σ_min(M) <= 10⁷, i.e.
// ‖MᵀM‖₁ <= 10¹⁴·σ_min(M)²; at a frame X with a tangent step V (σ_min(X + V) >= 1) that is
// ‖I + VᵀV‖₁ <= 10¹⁴ (every step of norm up to 10⁶ in the robustness tests). Most of the
// quintic steps only matter for long steps (a small singular value needs log₃.₄₄(c) of them);
// the count is fixed so that nothing is read on the host. 54 products of an n×k by a k×k
// matrix (or the Gram of two n×k), O(nk²) each. At V = 0 the map is X to rounding and
// its derivative the tangent projection (the Gram matrix moves at second order only).
at::Tensor polar_newton_schulz(const at::Tensor& M) {
  const at::Tensor S = at::matmul(M.mT(), M);
  at::Tensor Y = M / S.abs().sum(-2, /*keepdim=*/true).amax(-1, /*keepdim=*/true).sqrt();
  for (int i = 0; i < kNewtonSchulzQuintic; ++i) {
    const at::Tensor A = at::matmul(Y.mT(), Y);
    Y = 3.4445 * Y + at::matmul(Y, -4.7750 * A + 2.0315 * at::matmul(A, A));
  }
  for (int i = 0; i < kNewtonSchulzCubic; ++i) {
    Y = 1.5 * Y - 0.5 * at::matmul(Y, at::matmul(Y.mT(), Y));
  }
  return Y;
}

}  // namespace

at::Tensor Stiefel::retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const {
  return retract_impl(X, V, method, /*pull_back=*/true);
}

at::Tensor Stiefel::retract_from_point_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const {
  return retract_impl(X, V, method, /*pull_back=*/false);
}

at::Tensor Stiefel::retract_impl(const at::Tensor& X, const at::Tensor& V, Retraction method, bool pull_back) const {
  const bool wide = is_wide(X);
  const at::Tensor Xt = tall(X, wide), Vv = tall(V, wide);
  const int64_t n = Xt.size(-2), k = Xt.size(-1);
  const bool square = n == k;
  const at::Tensor XtV = at::matmul(Xt.mT(), Vv);
  // The retractions act on the tangent part of V (the square exp and cayley use skew(XᵀV),
  // which is that part already). X + V_t has singular values >= 1 at a point X, so qr and
  // polar are defined for every V, also one with X + V rank deficient.
  const at::Tensor Vt = square && (method == Retraction::Exp || method == Retraction::Cayley)
                            ? Vv
                            : Vv - at::matmul(Xt, sym(XtV));
  at::Tensor Y;
  switch (method) {
    case Retraction::Exp: {
      const at::Tensor A = skew(XtV);
      if (square) {
        Y = at::matmul(Xt, mantra::expm(A));  // V = XA on O(n)
      } else {
        // Geodesic of the embedded metric (Edelman, Arias & Smith 1998, eq. 2.45):
        // Y = [X, V] exp([[A, −S], [I, A]]) [I; 0] exp(−A), with S = VᵀV. O(nk²) + O(k³).
        // Written in the basis [X, V/c], c = max(1, ‖V‖): the block becomes
        // [[A, −S/c], [cI, A]], of norm O(‖V‖) instead of O(‖V‖²), so its exponential stays
        // finite and accurate for long steps.
        const at::Tensor S = at::matmul(Vt.mT(), Vt);
        const at::Tensor c =
            S.diagonal(0, -2, -1).sum(-1, true).unsqueeze(-1).detach().sqrt().clamp_min(1.0);
        const at::Tensor I = linalg::eye_like(A);
        const at::Tensor block = at::cat({at::cat({A, -S / c}, -1), at::cat({I * c, A}, -1)}, -2);
        const at::Tensor M = mantra::expm(block).narrow(-1, 0, k);  // (2k, k)
        Y = at::matmul(at::matmul(at::cat({Xt, Vt / c}, -1), M), mantra::expm(-A));
      }
      if (pull_back || !square) Y = back_to_frame(Y, square, X.requires_grad());
      break;
    }
    case Retraction::Cayley: {
      if (square) {
        // Y = X (I − Ω/2)⁻¹ (I + Ω/2), Ω = skew(XᵀV). The two factors commute and
        // (I − Ω/2)⁻¹ (I + Ω/2) = 2 (I − Ω/2)⁻¹ − I, so Y = 2 X (I − Ω/2)⁻¹ − X: one LU and one
        // solve with X as right-hand side, no product by X afterwards. linalg_solve's backward
        // reuses that LU (one more solve, one product), so the chart's backward is cheap too.
        const at::Tensor half = skew(XtV) * 0.5;
        const at::Tensor M = linalg::eye_like(half) - half;
        Y = 2 * at::linalg_solve(M, Xt, /*left=*/false) - Xt;
      } else {
        // Cayley transform of W = ĜXᵀ − XĜᵀ (Ĝ = V − X XᵀV/2) in its rank-2k form
        // (Wen & Yin 2013): Y = X + U (I − ZᵀU/2)⁻¹ ZᵀX with U = [Ĝ, X], Z = [X, −Ĝ].
        const at::Tensor Gh = Vt - 0.5 * at::matmul(Xt, at::matmul(Xt.mT(), Vt));
        const at::Tensor U = at::cat({Gh, Xt}, -1);
        const at::Tensor Z = at::cat({Xt, -Gh}, -1);
        const at::Tensor ZtU = at::matmul(Z.mT(), U);
        const at::Tensor I = linalg::eye_like(ZtU);
        Y = Xt + at::matmul(U, at::linalg_solve(I - 0.5 * ZtU, at::matmul(Z.mT(), Xt)));
      }
      if (pull_back || !square) Y = back_to_frame(Y, square, X.requires_grad());
      break;
    }
    case Retraction::QR:
      // The mantra::qr_retraction operator: CholeskyQR2 here, where (X + V)ᵀ(X + V) = I + VᵀV.
      Y = mantra::qr_retraction(Xt + Vt);
      break;
    case Retraction::Polar: {
      // (X + V)((X + V)ᵀ(X + V))^{-1/2}: the closest frame to X + V.
      Y = linalg::polar_factor(Xt + Vt);
      break;
    }
    case Retraction::NewtonSchulz:
      // The same polar factor by matmuls only (see polar_newton_schulz for its accuracy).
      Y = polar_newton_schulz(Xt + Vt);
      break;
    default:
      TORCH_CHECK(false, "Stiefel: unsupported retraction ", to_string(method));
  }
  // SO(n) is connected: exp and cayley stay in it. qr and polar (also newton_schulz) of X + V leave it only where
  // det(X + V) < 0 (long steps); there the last column is negated, back into SO(n).
  if (options_.special && (method == Retraction::QR || method == Retraction::Polar || method == Retraction::NewtonSchulz)) {
    Y = to_rotation(Y);
  }
  return tall(Y, wide);
}

at::Tensor Stiefel::to_rotation(const at::Tensor& Q) {
  // The sign of slogdet, not det < 0: det of a large float32 orthogonal matrix underflows to ±0.
  const at::Tensor sign = std::get<0>(at::linalg_slogdet(Q.detach()));
  const at::Tensor flip = at::where(sign < 0, -at::ones_like(sign), at::ones_like(sign));
  at::Tensor cols = at::ones({Q.size(-1)}, Q.options()).expand(Q.sizes()).clone();
  cols.select(-1, Q.size(-1) - 1).copy_(flip.unsqueeze(-1).expand(cols.select(-1, Q.size(-1) - 1).sizes()));
  return Q * cols;
}

at::Tensor Stiefel::project(const at::Tensor& X) const {
  check_args("project", X);
  const bool wide = is_wide(X);
  const at::Tensor Xt = tall(X, wide);
  const at::Tensor bad = linalg::nonfinite_matrices(Xt);  // NaN out, not a finite frame
  auto [U, S, Vh] = at::linalg_svd(Xt.masked_fill(bad, 0), /*full_matrices=*/false);
  if (options_.special) {
    // The closest rotation: flip the singular vector of the smallest singular value if needed.
    // The sign of slogdet: det of a large float32 orthogonal matrix underflows to ±0.
    const at::Tensor det = std::get<0>(at::linalg_slogdet(at::matmul(U, Vh).detach()));
    at::Tensor flip = at::ones_like(S);
    flip.select(-1, S.size(-1) - 1).copy_(at::where(det < 0, -at::ones_like(det), at::ones_like(det)));
    U = U * flip.unsqueeze(-2);
  }
  return tall(linalg::fill_nan(at::matmul(U, Vh), bad), wide);
}

void Stiefel::check_shape(at::IntArrayRef shape, const char* arg) const {
  TORCH_CHECK_VALUE(shape.size() >= 2, name(), ": argument '", arg, "' must have at least 2 dimensions (..., n, k), got shape ",
                    shape);
  if (options_.special) {
    TORCH_CHECK_VALUE(shape[shape.size() - 1] == shape[shape.size() - 2], name(), ": argument '", arg,
                      "' must be square (..., n, n), got shape ", shape);
  }
}

at::Tensor Stiefel::random(at::IntArrayRef shape, const at::TensorOptions& options) const {
  check_shape(shape, "shape");
  std::vector<int64_t> s(shape.begin(), shape.end());
  const bool wide = s[s.size() - 2] < s[s.size() - 1];
  if (wide) std::swap(s[s.size() - 2], s[s.size() - 1]);
  // Q of the QR of a Gaussian, with diag(R) > 0, is Haar distributed.
  at::Tensor Q = linalg::qr_positive(at::randn(s, options));
  // Negate one column where det = −1: the result is Haar on SO(n).
  if (options_.special) Q = to_rotation(Q);
  return tall(Q, wide);
}

at::Tensor Stiefel::origin(at::IntArrayRef shape, const at::TensorOptions& options) const {
  check_shape(shape, "shape");
  const int64_t n = shape[shape.size() - 2], k = shape[shape.size() - 1];
  return at::eye(n, k, options).expand(shape).clone();
}

std::string Stiefel::check_point(const at::Tensor& X, double atol) const {
  if (std::string why = check_point_common(X, atol); !why.empty()) return why;
  std::ostringstream s;
  if (X.dim() < 2) {
    s << "it must have at least 2 dimensions (..., n, k), got shape " << X.sizes();
    return s.str();
  }
  if (options_.special && X.size(-1) != X.size(-2)) {
    s << "SO(n) needs square matrices, got shape " << X.sizes();
    return s.str();
  }
  if (X.numel() == 0) return "";
  if (!at::isfinite(X).all().item<bool>()) return "it contains NaN or Inf";
  const bool wide = is_wide(X);
  const at::Tensor Xt = tall(X, wide).to(at::kDouble);
  const double err = (at::matmul(Xt.mT(), Xt) - linalg::eye_like(at::matmul(Xt.mT(), Xt))).abs().max().item<double>();
  if (err > atol) {
    s << "its " << (wide ? "rows" : "columns") << " are not orthonormal: max |" << (wide ? "XXᵀ" : "XᵀX")
      << " − I| = " << err << " > atol = " << atol;
    return s.str();
  }
  if (options_.special) {
    const double det = std::get<0>(at::linalg_slogdet(Xt)).min().item<double>();
    if (det < 0) {
      s << "its determinant is negative (SO(n) needs +1)";
      return s.str();
    }
  }
  return "";
}

}  // namespace mantra::manifolds
