#include "mantra/parametrize/functional.h"

#include <torch/torch.h>

#include <cmath>
#include <sstream>
#include <typeinfo>

#include "manifolds/linalg.h"
#include "mantra/manifolds.h"
#include "mantra/manifolds/low_rank_coupled.h"
#include "mantra/ops.h"

namespace mantra::parametrize {

using manifolds::Retraction;

SpectrumMap spectrum_map_from_string(const std::string& f, const char* arg) {
  if (f == "identity") return SpectrumMap::Identity;
  if (f == "softplus") return SpectrumMap::Positive;
  if (f == "square") return SpectrumMap::Square;
  if (f == "tanh") return SpectrumMap::NearOne;
  if (f == "sin") return SpectrumMap::NearOneSin;
  if (f == "scaled_sigmoid") return SpectrumMap::NearOneSigmoid;
  TORCH_CHECK_VALUE(false, "argument '", arg, "' must be identity, softplus, square, tanh, sin or scaled_sigmoid, got '", f,
                    "'");
}

std::string to_string(SpectrumMap map) {
  switch (map) {
    case SpectrumMap::Identity: return "identity";
    case SpectrumMap::Positive: return "softplus";
    case SpectrumMap::Square: return "square";
    case SpectrumMap::NearOne: return "tanh";
    case SpectrumMap::NearOneSin: return "sin";
    case SpectrumMap::NearOneSigmoid: return "scaled_sigmoid";
  }
  return "?";
}

bool near_one(SpectrumMap map) {
  return map == SpectrumMap::NearOne || map == SpectrumMap::NearOneSin || map == SpectrumMap::NearOneSigmoid;
}

namespace functional {

namespace {

bool is_half(const at::Tensor& t) { return t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16; }
at::Tensor up(const at::Tensor& t) { return is_half(t) ? t.to(at::kFloat) : t; }
at::Tensor down(const at::Tensor& t, at::ScalarType dtype) { return t.scalar_type() == dtype ? t : t.to(dtype); }

std::string shape_mismatch(const at::Tensor& X, at::IntArrayRef shape) {
  std::ostringstream why;
  why << "it must have shape " << shape << ", got " << X.sizes();
  return why.str();
}

// The checks every matrix constraint starts with: shape, finiteness and (when asked)
// symmetry within atol. Returns the explanation, or "" (and X in float64 in *Xd).
std::string check_matrix(const at::Tensor& X, at::IntArrayRef shape, bool symmetric, double atol, at::Tensor* Xd) {
  if (X.sizes() != shape) return shape_mismatch(X, shape);
  if (!at::isfinite(X).all().item<bool>()) return "it contains NaN or Inf";
  *Xd = X.detach().to(at::kDouble);
  if (symmetric) {
    const double asym = (*Xd - Xd->mT()).abs().max().item<double>();
    if (asym > atol) {
      std::ostringstream why;
      why << "it is not symmetric: max |X − Xᵀ| = " << asym;
      return why.str();
    }
  }
  return "";
}

// Block-diagonal skew matrix with 2×2 blocks [[0, a], [−a, 0]] (last entry 0 for odd n).
at::Tensor block_skew(const at::Tensor& a, int64_t n) {
  at::Tensor A = at::zeros({n, n}, a.options());
  for (int64_t i = 0; i + 1 < n; i += 2) {
    A[i][i + 1] = a[i / 2];
    A[i + 1][i] = -a[i / 2];
  }
  return A;
}

bool rotation_init(const std::string& init) { return init == "torus" || init == "henaff" || init == "cayley"; }

// For the rotation inits: the block-diagonal skew logarithm of the sampled point (shape).
at::Tensor rotation_log(const manifolds::Manifold& manifold, at::IntArrayRef shape, const std::string& init,
                        const at::TensorOptions& options, const char* fn) {
  const int64_t n = shape.back();
  TORCH_CHECK_VALUE(is_stiefel(manifold) && shape.size() >= 2 && shape[shape.size() - 2] == n, fn, ": init '", init,
                    "' needs square matrices on SO(n)/O(n), got ", manifold.name(), " of shape ", shape);
  const at::IntArrayRef batch_dims = shape.slice(0, shape.size() - 2);
  const int64_t batch = batch_dims.empty() ? 1 : c10::multiply_integers(batch_dims);
  std::vector<at::Tensor> logs;
  for (int64_t b = 0; b < batch; ++b) {
    // Angles of the 2×2 rotation blocks.
    at::Tensor a;
    if (init == "cayley") {
      // expRNN's Cayley init: s ~ U(0, π/2), block entry −tan(s/2) = −sqrt((1−cos s)/(1+cos s)).
      a = -at::tan(at::rand({n / 2}, options.dtype(at::kDouble)) * (M_PI / 4));
    } else {
      a = (at::rand({n / 2}, options.dtype(at::kDouble)) * 2 - 1) * M_PI;
    }
    logs.push_back(block_skew(a, n));
  }
  return at::stack(logs).view(shape);
}

}  // namespace

// ---------------------------------------------------------------- manifold trivializations

at::Tensor trivialize(const manifolds::Manifold& manifold, const at::Tensor& base, const at::Tensor& v,
                      Retraction retraction, double scale) {
  const auto dtype = v.scalar_type();
  const at::Tensor b = up(base).to(up(v).scalar_type()), u = up(v);
  // The base is a point (checked on set and load, pulled back at each rebase).
  // Square Stiefel / SO(n) with exp or cayley reads only skew(bᵀV), and skew(bᵀ P_b(u)) =
  // skew(bᵀu) at a point b: u goes in as it is, which saves the two products of P_b.
  const Retraction r = retraction == Retraction::Default ? manifold.retractions().front() : retraction;
  const bool square_skew_chart = is_stiefel(manifold) && b.dim() >= 2 && b.size(-1) == b.size(-2) &&
                                 (r == Retraction::Exp || r == Retraction::Cayley);
  at::Tensor X = manifold.retract_from_point(b, square_skew_chart ? u : manifold.chart_vector(b, u), r);
  if (scale != 1.0) X = X * scale;
  return down(X, dtype);
}

at::Tensor rebased_base(const manifolds::Manifold& manifold, const at::Tensor& point, int64_t rebases,
                        int64_t reproject_every) {
  const at::Tensor p = up(point);
  if (reproject_every > 0 && rebases % reproject_every == 0) return down(manifold.project(p), point.scalar_type());
  // Every rebase pulls the new base back toward the manifold (a zero step of the contractive
  // retraction), so that trivialize may start from it as from a point.
  return down(manifold.retract(p, at::zeros_like(p)), point.scalar_type());
}

at::Tensor converted_base(const manifolds::Manifold& manifold, const at::Tensor& base, at::ScalarType before) {
  const bool widened = at::isFloatingType(base.scalar_type()) && c10::elementSize(base.scalar_type()) > c10::elementSize(before);
  return widened ? manifold.project(base) : base;
}

std::string point_check(const manifolds::Manifold& manifold, const at::Tensor& X, at::IntArrayRef shape, double atol,
                        double scale) {
  if (!X.defined()) return "it is undefined";
  if (X.sizes() != shape) return shape_mismatch(X, shape);
  const at::Tensor P = up(scale == 1.0 ? X.detach() : X.detach() / scale);
  return manifold.check_point(P, atol);
}

Retraction triv_retraction(const std::string& triv, const manifolds::Manifold& m, const char* fn) {
  const bool named = triv == "expm" || triv == "exp" || triv == "cayley" || triv == "qr" || triv == "polar" ||
                     triv == "newton_schulz";
  const Retraction r = named ? manifolds::retraction_from_string(triv, "triv") : Retraction::Default;
  const auto supported = m.retractions();
  if (named && std::find(supported.begin(), supported.end(), r) != supported.end()) return r;
  std::string names;
  for (Retraction s : supported) {
    names += (names.empty() ? "" : ", ") + (s == Retraction::Exp ? std::string("expm") : manifolds::to_string(s));
  }
  TORCH_CHECK_VALUE(false, fn, ": argument 'triv' must be one of ", names,
                    std::string(fn) == "orthogonal" ? ", householder or a callable" : "", "; got '", triv, "'");
}

bool is_stiefel(const manifolds::Manifold& manifold) { return typeid(manifold) == typeid(manifolds::Stiefel); }

at::Tensor sample_point(const manifolds::Manifold& manifold, at::IntArrayRef shape, const std::string& init,
                        const at::TensorOptions& options) {
  at::NoGradGuard no_grad;
  // Half precision: drawn in float32 (QR, SVD … have no half kernels) and rounded once.
  const auto dtype = c10::typeMetaToScalarType(options.dtype());
  const bool half = dtype == at::kHalf || dtype == at::kBFloat16;
  const at::TensorOptions o = half ? options.dtype(at::kFloat) : options;
  at::Tensor X;
  if (init == "uniform") {
    X = manifold.random(shape, o);
  } else if (init == "origin") {
    X = manifold.origin(shape, o);
  } else {
    TORCH_CHECK_VALUE(rotation_init(init), "sample: argument 'init' must be uniform, origin, torus, henaff or cayley; got '",
                      init, "'");
    X = mantra::expm(rotation_log(manifold, shape, init, o, "sample"));
  }
  return X.to(dtype);
}

std::pair<at::Tensor, at::Tensor> sample_in_chart(const manifolds::Manifold& manifold, at::IntArrayRef shape,
                                                  Retraction retraction, const std::string& init,
                                                  const at::TensorOptions& options) {
  TORCH_CHECK_VALUE(rotation_init(init), "sample_in_chart: argument 'init' must be torus, henaff or cayley; got '", init,
                    "'");
  const Retraction r = retraction == Retraction::Default ? manifold.retractions().front() : retraction;
  TORCH_CHECK_VALUE(r == Retraction::Exp, "sample_in_chart: needs the exponential retraction (triv 'expm'), got ",
                    manifolds::to_string(retraction));
  at::NoGradGuard no_grad;
  at::Tensor L = rotation_log(manifold, shape, init, options, "sample_in_chart").to(options.dtype());
  return {manifold.origin(shape, options), L};
}

// ---------------------------------------------------------------- callable trivializations

at::Tensor chart_skew(const at::Tensor& v) { return linear_map(v, /*skew=*/true, "lower"); }

at::Tensor frame_from_chart(const at::Tensor& base, const at::Tensor& Q, int64_t k, bool wide, double scale) {
  const auto dtype = Q.scalar_type();
  at::Tensor X = at::matmul(up(base).to(up(Q).scalar_type()), up(Q)).narrow(-1, 0, k);
  if (scale != 1.0) X = X * scale;
  return down(wide ? X.mT() : X, dtype);
}

at::Tensor complete_frame(const at::Tensor& T, int64_t n) {
  const int64_t k = T.size(-1);
  TORCH_CHECK_VALUE(T.size(-2) == n && k <= n, "complete_frame: argument 'T' must be (…, ", n, ", k ≤ ", n, "), got ",
                    T.sizes());
  if (k == n) return T;
  std::vector<int64_t> gshape = T.sizes().vec();
  gshape.back() = n - k;
  const at::Tensor Tu = up(T);
  at::Tensor G = at::randn(gshape, Tu.options());
  auto [Q, R] = at::linalg_qr(at::cat({Tu, G}, -1));
  // Column signs so that Q's first k columns are T itself (T orthonormal: R's top block is ±I).
  return down(Q * at::sign(R.diagonal(0, -2, -1)).unsqueeze(-2), T.scalar_type());
}

// ---------------------------------------------------------------- spectral

at::Tensor spectrum(const at::Tensor& x, SpectrumMap map, double lambda, double eps) {
  switch (map) {
    case SpectrumMap::Identity: return x;
    case SpectrumMap::Positive: return at::softplus(x) + eps;
    case SpectrumMap::Square: return x * x;
    case SpectrumMap::NearOne: return 1 + lambda * at::tanh(x);
    case SpectrumMap::NearOneSin: return 1 + lambda * at::sin(x);
    case SpectrumMap::NearOneSigmoid: return 1 + lambda * (2 * at::sigmoid(x) - 1);
  }
  return x;
}

at::Tensor spectrum_of(const at::Tensor& fs, SpectrumMap map, double lambda) {
  return near_one(map) ? 1 + lambda * fs : fs;
}

at::Tensor inverse_spectrum(const at::Tensor& sigma, SpectrumMap map, double lambda, double eps) {
  if (near_one(map) && lambda == 0) return at::zeros_like(sigma);  // σ = 1 for every s: s = 0
  switch (map) {
    case SpectrumMap::Identity: return sigma;
    // softplus⁻¹(y) = y + log(1 − e^{−y}), stable for large y.
    case SpectrumMap::Positive: {
      const at::Tensor y = (sigma - eps).clamp_min(1e-30);
      return y + at::log(-at::expm1(-y));
    }
    case SpectrumMap::Square: return sigma.clamp_min(0).sqrt();
    case SpectrumMap::NearOne: return at::atanh(((sigma - 1) / lambda).clamp(-1 + 1e-7, 1 - 1e-7));
    case SpectrumMap::NearOneSin: return at::asin(((sigma - 1) / lambda).clamp(-1, 1));
    // 2 sigmoid(s) − 1 = tanh(s/2).
    case SpectrumMap::NearOneSigmoid: return 2 * at::atanh(((sigma - 1) / lambda).clamp(-1 + 1e-7, 1 - 1e-7));
  }
  return sigma;
}

at::Tensor inverse_spectrum_of(const at::Tensor& sigma, SpectrumMap map, double lambda) {
  if (near_one(map) && lambda == 0) return at::zeros_like(sigma);  // f(s) is free when λ = 0
  return near_one(map) ? (sigma - 1) / lambda : sigma;
}

at::Tensor spectral_compose(const at::Tensor& U, const at::Tensor& sigma, const at::Tensor& V) {
  const auto dtype = U.scalar_type();
  const at::Tensor scaled = up(U) * up(sigma).unsqueeze(-2);
  return down(at::matmul(scaled, (V.defined() ? up(V) : up(U)).mT()), dtype);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> spectral_factors(const at::Tensor& X, int64_t r, bool symmetric) {
  const auto dtype = X.scalar_type();
  if (symmetric) {
    auto [lambda, Q] = linalg::eigh(up(X));
    return {down(Q.flip(-1).narrow(-1, 0, r), dtype), down(lambda.flip(-1).narrow(-1, 0, r), dtype), at::Tensor()};
  }
  auto [Us, S, Vh] = at::linalg_svd(up(X), /*full_matrices=*/false);
  return {down(Us.narrow(-1, 0, r), dtype), down(S.narrow(-1, 0, r), dtype), down(Vh.mT().narrow(-1, 0, r), dtype)};
}

std::string spectral_check(const at::Tensor& X, at::IntArrayRef shape, int64_t r, bool symmetric, SpectrumMap map,
                           double lambda, double atol) {
  at::Tensor Xd;
  std::string common = check_matrix(up(X), shape, symmetric, atol, &Xd);
  if (!common.empty()) return common;
  std::ostringstream why;
  at::Tensor sigma;  // descending
  if (symmetric) {
    sigma = at::linalg_eigvalsh(Xd).flip(-1);
    const double lowest = sigma.min().item<double>();
    if (lowest < -atol) {
      why << "it has a negative eigenvalue " << lowest;
      return why.str();
    }
  } else {
    sigma = at::linalg_svdvals(Xd);
  }
  const int64_t full = sigma.size(-1);
  const at::Tensor top = sigma.select(-1, 0).clamp_min(1.0);
  if (r < full) {
    const double excess = (sigma.select(-1, r) / top).max().item<double>();
    if (excess > atol) {
      why << "its rank exceeds " << r << ": singular value " << r + 1 << " is " << excess << " (relative)";
      return why.str();
    }
  }
  const at::Tensor kept = sigma.narrow(-1, 0, r);
  if (map == SpectrumMap::Positive && (kept.select(-1, r - 1) / top).min().item<double>() <= atol) {
    why << "its rank is below " << r;
    return why.str();
  }
  if (near_one(map)) {
    const double dev = (kept - 1).abs().max().item<double>();
    // sin reaches ±1: its closed interval [1 − λ, 1 + λ] is attainable.
    const bool closed = map == SpectrumMap::NearOneSin;
    if (closed ? dev > lambda + atol : dev >= lambda) {
      why << "a singular value differs from 1 by " << dev << (closed ? " > lambda = " : " >= lambda = ") << lambda;
      return why.str();
    }
  }
  return "";
}

at::Tensor spectral_initial_s(at::IntArrayRef s_shape, SpectrumMap map, double lambda, double eps,
                              const SpectrumFunction& custom, const at::TensorOptions& options) {
  const at::Tensor ones = at::ones(s_shape, options);
  if (!custom.f) return inverse_spectrum(ones, map, lambda, eps);
  // A user's f: its inverse at singular value 1 when given, else s = 0.
  if (custom.f_inv) return custom.f_inv(inverse_spectrum_of(ones, map, lambda)).to(options.dtype());
  return at::zeros(s_shape, options);
}

// ---------------------------------------------------------------- Householder

at::Tensor householder(const at::Tensor& v0, bool special, bool wide) {
  const auto dtype = v0.scalar_type();
  const at::Tensor v = up(v0);
  // LAPACK's convention: column i holds u_i below the diagonal, u_i(i) = 1 is implicit, and
  // H_i = I − τ_i u_i u_iᵀ with τ_i = 2/u_iᵀu_i (a reflection).
  // Compact WY in its UT form (Joffrain, Low, Quintana-Ortí, van de Geijn & Van Zee 2006):
  // H_1 ⋯ H_k = I − U S⁻¹ Uᵀ with S = striu(UᵀU) + diag(UᵀU)/2 (upper triangular, diagonal
  // >= 1/2), so H_1 ⋯ H_k [I; 0] = [I; 0] − U S⁻¹ U₁ᵀ with U₁ the top k×k block of U. One Gram
  // matrix, one triangular solve and one product: BLAS-3 and O(nk²), forward and backward
  // (autograd differentiates the three; torch's householder_product backward is a loop of
  // rank-1 updates, ~40× its forward at 512×512).
  // Without a gradient to record, LAPACK's orgqr (householder_product) computes the same map
  // with a cheaper forward (it exploits the triangular blocks); the tests hold both equal.
  const int64_t n = v.size(-2), k = v.size(-1);
  at::Tensor Q;
  if (!(at::GradMode::is_enabled() && v.requires_grad())) {
    const at::Tensor lower = v.tril(-1);
    Q = at::linalg_householder_product(lower, 2.0 / (1.0 + lower.pow(2).sum(-2)));
  } else {
    const at::Tensor E = at::eye(n, k, v.options());
    const at::Tensor U = v.tril(-1) + E;
    const at::Tensor G = at::matmul(U.mT(), U);
    const at::Tensor S = G.triu(1) + at::diag_embed(G.diagonal(0, -2, -1) * 0.5);
    const at::Tensor W = at::linalg_solve_triangular(S, U.narrow(-2, 0, k).mT(), /*upper=*/true);
    Q = E - at::matmul(U, W);
  }
  if (special && v.size(-1) % 2 == 1) {
    // k reflections have det (−1)^k: negate the last column for det = +1.
    at::Tensor sign = at::ones({v.size(-1)}, v.options());
    sign[v.size(-1) - 1] = -1;
    Q = Q * sign;
  }
  return down(wide ? Q.mT() : Q, dtype);
}

at::Tensor householder_vectors(const at::Tensor& X, bool special, bool wide) {
  const auto dtype = X.scalar_type();
  at::Tensor R = up(wide ? X.mT() : X).clone();
  const int64_t n = R.size(-2), k = R.size(-1);
  TORCH_CHECK_VALUE(n >= k, "householder_vectors: argument 'X' must be tall (or wide with wide = true), got shape ",
                    X.sizes());
  if (special && k % 2 == 1) R.select(-1, k - 1).neg_();
  at::Tensor U = at::zeros_like(R);
  // Reflect column i (below row i, unit norm) onto e_i: u = (a − e_1)/(a_1 − 1) has u_1 = 1.
  for (int64_t i = 0; i < k; ++i) {
    at::Tensor a = R.narrow(-2, i, n - i).select(-1, i);
    at::Tensor denom = a.select(-1, 0) - 1;
    TORCH_CHECK_VALUE(denom.abs().min().item<double>() > 1e-6, "Householder.set: argument 'X' has no Householder ",
                      "vectors (column ", i, " is already e_", i, ", which needs the identity instead of a ",
                      "reflection; X = I is such a point)");
    at::Tensor e = at::zeros_like(a);
    e.select(-1, 0).fill_(1);
    at::Tensor u = (a - e) / denom.unsqueeze(-1);
    U.narrow(-2, i + 1, n - i - 1).select(-1, i).copy_(u.narrow(-1, 1, n - i - 1));
    at::Tensor tau = 2.0 / (u * u).sum(-1);
    at::Tensor block = R.narrow(-2, i, n - i).narrow(-1, i, k - i);
    block.sub_(tau.unsqueeze(-1).unsqueeze(-1) * u.unsqueeze(-1) * at::matmul(u.unsqueeze(-2), block));
  }
  return down(U, dtype);
}

// ---------------------------------------------------------------- Cholesky

at::Tensor cholesky(const at::Tensor& v0) {
  const auto dtype = v0.scalar_type();
  const at::Tensor v = up(v0);
  const at::Tensor L = v.tril(-1) + at::diag_embed(v.diagonal(0, -2, -1).exp());
  return down(at::matmul(L, L.mT()), dtype);
}

at::Tensor cholesky_inverse(const at::Tensor& X) {
  const at::Tensor L = at::linalg_cholesky(linalg::sym(up(X)));
  return down(L.tril(-1) + at::diag_embed(L.diagonal(0, -2, -1).log()), X.scalar_type());
}

// Draws in float32 at least, so that a half-precision constraint draws what a float32 one does.
at::Tensor randn_at_least_float(at::IntArrayRef shape, const at::TensorOptions& options) {
  const auto dtype = c10::typeMetaToScalarType(options.dtype());
  if (dtype != at::kHalf && dtype != at::kBFloat16) return at::randn(shape, options);
  return at::randn(shape, options.dtype(at::kFloat)).to(dtype);
}

at::Tensor cholesky_sample(at::IntArrayRef shape, const at::TensorOptions& options) {
  return randn_at_least_float(shape, options) * Defaults::cholesky_init_std;
}

std::string positive_definite_check(const at::Tensor& X, at::IntArrayRef shape, double atol) {
  at::Tensor Xd;
  std::string common = check_matrix(up(X), shape, /*symmetric=*/true, atol, &Xd);
  if (!common.empty()) return common;
  const double lowest = at::linalg_eigvalsh(Xd).min().item<double>();
  if (!(lowest > 0)) {
    std::ostringstream why;
    why << "it is not positive definite: smallest eigenvalue " << lowest;
    return why.str();
  }
  return "";
}

// ---------------------------------------------------------------- symmetric / skew

at::Tensor linear_map(const at::Tensor& v, bool skew, const std::string& triangle) {
  TORCH_CHECK_VALUE(triangle == "both" || triangle == "lower" || triangle == "upper",
                    "linear_map: argument 'triangle' must be both, lower or upper, got '", triangle, "'");
  if (triangle == "both") return skew ? linalg::skew(v) : linalg::sym(v);
  const at::Tensor strict = triangle == "lower" ? v.tril(-1) : v.triu(1);
  if (skew) return strict - strict.mT();
  return strict + strict.mT() + at::diag_embed(v.diagonal(0, -2, -1));
}

std::string linear_map_check(const at::Tensor& X, at::IntArrayRef shape, bool skew, double atol) {
  if (X.sizes() != shape) return shape_mismatch(X, shape);
  if (!at::isfinite(X).all().item<bool>()) return "it contains NaN or Inf";
  const at::Tensor Xu = up(X);
  const double defect = (skew ? Xu + Xu.mT() : Xu - Xu.mT()).abs().max().item<double>();
  if (!(defect <= atol)) {
    std::ostringstream why;
    why << "it is not " << (skew ? "skew-symmetric: max |X + Xᵀ| = " : "symmetric: max |X − Xᵀ| = ") << defect;
    return why.str();
  }
  return "";
}

at::Tensor linear_map_sample(at::IntArrayRef shape, const at::TensorOptions& options) {
  return randn_at_least_float(shape, options) / std::sqrt(static_cast<double>(shape.back()));
}

// ---------------------------------------------------------------- low rank coupled

const manifolds::LowRankCoupled& as_low_rank_coupled(const manifolds::Manifold& manifold, const char* fn) {
  const auto* c = dynamic_cast<const manifolds::LowRankCoupled*>(&manifold);
  TORCH_CHECK_VALUE(c != nullptr, fn, ": argument 'manifold' must be LowRankOblique, LowRankSphere or ",
                    "LowRankStackedStiefel, got ", manifold.spec());
  return *c;
}

at::Tensor low_rank_coupled_compose(const manifolds::Manifold& manifold, const at::Tensor& P) {
  return down(as_low_rank_coupled(manifold, "low_rank_coupled_compose").compose(up(P)), P.scalar_type());
}

at::Tensor low_rank_coupled_linear(const at::Tensor& input, const manifolds::Manifold& manifold, const at::Tensor& P,
                                   const at::Tensor& scale, const at::Tensor& bias) {
  const auto& M = as_low_rank_coupled(manifold, "low_rank_coupled_linear");
  TORCH_CHECK_VALUE(P.dim() == 2, "low_rank_coupled_linear: argument 'P' must be one point (m+n, rank), got shape ",
                    P.sizes());
  TORCH_CHECK_VALUE(input.dim() >= 1 && input.size(-1) == M.n(), "low_rank_coupled_linear: argument 'input' must have ",
                    M.n(), " features in its last dimension, got shape ", input.sizes());
  auto [H, V] = M.split(P);
  const at::Tensor Hg = scale.defined() ? H * scale : H;  // diag(g) H
  return at::linear(at::matmul(input, V), Hg, bias.defined() ? c10::optional<at::Tensor>(bias) : c10::nullopt);
}

at::Tensor low_rank_coupled_base(const manifolds::Manifold& manifold, const at::Tensor& X) {
  const auto& M = as_low_rank_coupled(manifold, "low_rank_coupled_base");
  const at::Tensor Xu = up(X.detach());
  return down(M.project(M.factor(Xu)), X.scalar_type());
}

std::string low_rank_coupled_check(const manifolds::Manifold& manifold, const at::Tensor& X, at::IntArrayRef shape,
                                   double atol) {
  const auto& M = as_low_rank_coupled(manifold, "low_rank_coupled_check");
  if (!X.defined()) return "it is undefined";
  if (X.sizes() != shape) return shape_mismatch(X, shape);
  return M.check_matrix(up(X.detach()), atol);
}

}  // namespace functional
}  // namespace mantra::parametrize
