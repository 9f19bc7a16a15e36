#include "mantra/manifolds/grassmannian.h"

#include <c10/util/Exception.h>

#include "manifolds/linalg.h"

namespace mantra::manifolds {

using linalg::is_wide;
using linalg::SymFunction;
using linalg::tall;

namespace {
Retraction checked(Retraction r) {
  if (r == Retraction::Default) r = Retraction::Exp;
  TORCH_CHECK_VALUE(r == Retraction::Exp || r == Retraction::QR || r == Retraction::Polar,
                    "Grassmannian: argument 'retraction' must be exp, qr or polar, got ", to_string(r));
  return r;
}

// Tall X, any G: G − X XᵀG. O(nk²).
at::Tensor horizontal(const at::Tensor& X, const at::Tensor& G) { return G - at::matmul(X, at::matmul(X.mT(), G)); }
}  // namespace

Grassmannian::Grassmannian(GrassmannianOptions options)
    : Stiefel(StiefelOptions().set_retraction(checked(options.retraction))) {}

std::vector<Retraction> Grassmannian::retractions() const {
  std::vector<Retraction> all = {options().retraction};
  for (Retraction r : {Retraction::Exp, Retraction::QR, Retraction::Polar}) {
    if (r != options().retraction) all.push_back(r);
  }
  return all;
}

at::Tensor Grassmannian::proj_tangent(const at::Tensor& X, const at::Tensor& G) const {
  check_args("proj_tangent", X, {{G, "G"}});
  const bool wide = is_wide(X);
  return tall(horizontal(tall(X, wide), tall(G, wide)), wide);
}

at::Tensor Grassmannian::retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const {
  const bool wide = is_wide(X);
  const at::Tensor Xt = tall(X, wide);
  const at::Tensor Vh = horizontal(Xt, tall(V, wide));
  if (method != Retraction::Exp) return tall(Stiefel::retract_with(Xt, Vh, method), wide);  // qr, polar of X + V
  // With S = VᵀV = W Σ² Wᵀ: X W cos Σ Wᵀ + U sin Σ Wᵀ = X cos(√S) + V sinc(√S). YᵀY = I for
  // horizontal V, since cos² + S sinc² = I. The polar factor (a k×k eigh) puts a frame X that
  // has drifted off back on the manifold, and removes the rounding of long steps.
  const at::Tensor S = linalg::sym(at::matmul(Vh.mT(), Vh));
  const auto f = linalg::sym_funms(S, {SymFunction::CosSqrt, SymFunction::SincSqrt});
  const at::Tensor Y = at::matmul(Xt, f[0]) + at::matmul(Vh, f[1]);
  return tall(linalg::polar_factor_near_frame(Y), wide);
}

at::Tensor Grassmannian::parallel_transport(const at::Tensor& X, const at::Tensor& V, const at::Tensor& U) const {
  check_args("parallel_transport", X, {{V, "V"}, {U, "U"}});
  const bool wide = is_wide(X);
  const at::Tensor Xt = tall(X, wide);
  const at::Tensor Vh = horizontal(Xt, tall(V, wide));
  const at::Tensor Uh = horizontal(Xt, tall(U, wide));
  // Edelman et al. (2.68), τU = U − (X W sin Σ + U_V (I − cos Σ)) U_Vᵀ U with V = U_V Σ Wᵀ,
  // rewritten without the SVD: τU = U − X sinc(√S) VᵀU − V vers(√S) VᵀU, vers(t) = (1 − cos t)/t².
  const at::Tensor S = linalg::sym(at::matmul(Vh.mT(), Vh));
  const at::Tensor VtU = at::matmul(Vh.mT(), Uh);
  const auto f = linalg::sym_funms(S, {SymFunction::SincSqrt, SymFunction::VersSqrt});
  const at::Tensor T = Uh - at::matmul(Xt, at::matmul(f[0], VtU)) - at::matmul(Vh, at::matmul(f[1], VtU));
  return tall(T, wide);
}

}  // namespace mantra::manifolds
