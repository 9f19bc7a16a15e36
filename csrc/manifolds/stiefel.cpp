#include "mantra/manifolds/stiefel.h"

#include <c10/util/Exception.h>

#include <sstream>

#include "manifolds/linalg.h"
#include "mantra/ops.h"

namespace mantra::manifolds {

using linalg::is_wide;
using linalg::skew;
using linalg::sym;
using linalg::tall;  // methods work on tall frames; a wide argument through its transpose

Stiefel::Stiefel(StiefelOptions options) : options_(options) {
  if (options_.retraction == Retraction::Default) options_.retraction = Retraction::Exp;
  const auto r = options_.retraction;
  TORCH_CHECK_VALUE(r == Retraction::Exp || r == Retraction::Cayley || r == Retraction::QR || r == Retraction::Polar,
                    "Stiefel: argument 'retraction' must be exp, cayley, qr or polar, got ", to_string(r));
}

std::vector<Retraction> Stiefel::retractions() const {
  std::vector<Retraction> all = {options_.retraction};
  for (Retraction r : {Retraction::Exp, Retraction::Cayley, Retraction::QR, Retraction::Polar}) {
    if (r != options_.retraction) all.push_back(r);
  }
  return all;
}

at::Tensor Stiefel::proj_tangent(const at::Tensor& X, const at::Tensor& G) const {
  check_same_shape(X, "X", G, "G", name() + ".proj_tangent");
  const bool wide = is_wide(X);
  const at::Tensor Xt = tall(X, wide), Gt = tall(G, wide);
  return tall(Gt - at::matmul(Xt, sym(at::matmul(Xt.mT(), Gt))), wide);
}

at::Tensor Stiefel::retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const {
  const bool wide = is_wide(X);
  const at::Tensor Xt = tall(X, wide), Vt = tall(V, wide);
  const int64_t n = Xt.size(-2), k = Xt.size(-1);
  const bool square = n == k;
  at::Tensor Y;
  switch (method) {
    case Retraction::Exp: {
      // Only the skew part of XᵀV enters, so the result is orthogonal even for a V that is
      // tangent only up to rounding.
      const at::Tensor A = skew(at::matmul(Xt.mT(), Vt));
      if (square) {
        Y = at::matmul(Xt, mantra::expm(A));  // V = XA on O(n)
      } else {
        // Geodesic of the embedded metric (Edelman, Arias & Smith 1998, eq. 2.45):
        // Y = [X, V] exp([[A, −S], [I, A]]) [I; 0] exp(−A), with S = VᵀV. O(nk²) + O(k³).
        const at::Tensor S = at::matmul(Vt.mT(), Vt);
        const at::Tensor I = linalg::eye_like(A);
        const at::Tensor block = at::cat({at::cat({A, -S}, -1), at::cat({I, A}, -1)}, -2);
        const at::Tensor M = mantra::expm(block).narrow(-1, 0, k);  // (2k, k)
        Y = at::matmul(at::matmul(at::cat({Xt, Vt}, -1), M), mantra::expm(-A));
      }
      break;
    }
    case Retraction::Cayley: {
      const at::Tensor XtV = at::matmul(Xt.mT(), Vt);
      if (square) {
        // Y = X (I − Ω/2)⁻¹ (I + Ω/2), Ω = skew(XᵀV).
        const at::Tensor half = skew(XtV) * 0.5;
        const at::Tensor I = linalg::eye_like(half);
        Y = at::matmul(Xt, at::linalg_solve(I - half, I + half));
      } else {
        // Cayley transform of W = ĜXᵀ − XĜᵀ (Ĝ = V − X XᵀV/2) in its rank-2k form
        // (Wen & Yin 2013): Y = X + U (I − ZᵀU/2)⁻¹ ZᵀX with U = [Ĝ, X], Z = [X, −Ĝ].
        const at::Tensor Gh = Vt - 0.5 * at::matmul(Xt, XtV);
        const at::Tensor U = at::cat({Gh, Xt}, -1);
        const at::Tensor Z = at::cat({Xt, -Gh}, -1);
        const at::Tensor ZtU = at::matmul(Z.mT(), U);
        const at::Tensor I = linalg::eye_like(ZtU);
        Y = Xt + at::matmul(U, at::linalg_solve(I - 0.5 * ZtU, at::matmul(Z.mT(), Xt)));
      }
      break;
    }
    case Retraction::QR:
      Y = linalg::qr_positive(Xt + Vt);
      break;
    case Retraction::Polar: {
      // (X + V)((X + V)ᵀ(X + V))^{-1/2}: the closest frame to X + V.
      const at::Tensor M = Xt + Vt;
      Y = at::matmul(M, linalg::sym_funm(at::matmul(M.mT(), M), linalg::SymFunction::InvSqrt));
      break;
    }
    default:
      TORCH_CHECK(false, "Stiefel: unsupported retraction ", to_string(method));
  }
  // SO(n) is connected: exp and cayley stay in it; qr and polar of X + V stay in it too for
  // the small steps they are used with (det changes sign only through singular X + V).
  return tall(Y, wide);
}

at::Tensor Stiefel::project(const at::Tensor& X) const {
  const bool wide = is_wide(X);
  const at::Tensor Xt = tall(X, wide);
  auto [U, S, Vh] = at::linalg_svd(Xt, /*full_matrices=*/false);
  if (options_.special) {
    // The closest rotation: flip the singular vector of the smallest singular value if needed.
    const at::Tensor det = at::linalg_det(at::matmul(U, Vh));
    at::Tensor flip = at::ones_like(S);
    flip.select(-1, S.size(-1) - 1).copy_(at::where(det < 0, -at::ones_like(det), at::ones_like(det)));
    U = U * flip.unsqueeze(-2);
  }
  return tall(at::matmul(U, Vh), wide);
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
  if (options_.special) {
    // Flip one column where det = −1: the result is Haar on SO(n).
    const at::Tensor det = at::linalg_det(Q);
    at::Tensor sign = at::ones({Q.size(-1)}, Q.options()).expand(Q.sizes()).clone();
    sign.select(-1, 0).copy_(at::where(det < 0, -at::ones_like(det), at::ones_like(det)).unsqueeze(-1).expand(
        sign.select(-1, 0).sizes()));
    Q = Q * sign;
  }
  return tall(Q, wide);
}

at::Tensor Stiefel::origin(at::IntArrayRef shape, const at::TensorOptions& options) const {
  check_shape(shape, "shape");
  const int64_t n = shape[shape.size() - 2], k = shape[shape.size() - 1];
  return at::eye(n, k, options).expand(shape).clone();
}

std::string Stiefel::check_point(const at::Tensor& X, double atol) const {
  if (!X.defined()) return "the tensor is undefined";
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
    const double det = at::linalg_det(Xt).min().item<double>();
    if (det < 0) {
      s << "its determinant is " << det << " (SO(n) needs +1)";
      return s.str();
    }
  }
  return "";
}

}  // namespace mantra::manifolds
