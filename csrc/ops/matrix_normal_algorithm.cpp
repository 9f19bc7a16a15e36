#include "ops/matrix_normal_algorithm.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace mantra::detail {
namespace {

void check_floating(const at::Tensor& t, const char* op, const char* arg) {
  TORCH_CHECK_VALUE(t.defined(), op, ": argument '", arg, "' is an undefined tensor");
  const auto s = t.scalar_type();
  TORCH_CHECK_VALUE(s == at::kFloat || s == at::kDouble || s == at::kHalf || s == at::kBFloat16, op, ": argument '",
                    arg, "' must be float32 or float64 (float16/bfloat16 are computed in float32), got ", s);
}
void check_like(const at::Tensor& t, const char* arg, const at::Tensor& ref, const char* ref_arg, const char* op) {
  check_floating(t, op, arg);
  TORCH_CHECK_VALUE(t.scalar_type() == ref.scalar_type(), op, ": argument '", arg, "' must have the dtype of '",
                    ref_arg, "' (", ref.scalar_type(), "), got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.device() == ref.device(), op, ": argument '", arg, "' must be on the device of '", ref_arg,
                    "' (", ref.device(), "), got ", t.device());
}
void check_shape(const at::Tensor& t, const char* arg, std::initializer_list<int64_t> expected, const char* what,
                 const char* op) {
  TORCH_CHECK_VALUE(t.sizes().equals(expected), op, ": argument '", arg, "' must have shape ",
                    at::IntArrayRef(expected), " (", what, "), got ", t.sizes());
}
void check_factors(const at::Tensor& M, const at::Tensor& A, const at::Tensor& B, const char* op) {
  check_floating(M, op, "M");
  TORCH_CHECK_VALUE(M.dim() == 2, op, ": argument 'M' must be a matrix (n, m) (in x out), got shape ", M.sizes());
  check_like(A, "A", M, "M", op);
  check_like(B, "B", M, "M", op);
  TORCH_CHECK_VALUE(A.dim() == 2 && A.size(0) == A.size(1), op,
                    ": argument 'A' must be a square lower-triangular factor (n, n), got shape ", A.sizes());
  TORCH_CHECK_VALUE(B.dim() == 2 && B.size(0) == B.size(1), op,
                    ": argument 'B' must be a square lower-triangular factor (m, m), got shape ", B.sizes());
  TORCH_CHECK_VALUE(A.size(0) == M.size(0), op, ": argument 'A' must be (n, n) with n = M.size(0) = ", M.size(0),
                    ", got shape ", A.sizes());
  TORCH_CHECK_VALUE(B.size(0) == M.size(1), op, ": argument 'B' must be (m, m) with m = M.size(1) = ", M.size(1),
                    ", got shape ", B.sizes());
}

bool is_reduced(const at::Tensor& t) {
  return t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16;
}
at::Tensor up(const at::Tensor& t) { return is_reduced(t) ? t.to(at::kFloat) : t; }

// The triangular products recurse on halves of the factor: at each level one full GEMM of a
// quarter of the dense work (large, so efficient), two recursive calls, and dense GEMMs on
// tril'ed diagonal leaves of kLeaf rows, so the whole costs about half of the dense product and
// never reads an upper triangle (no tril copy of the whole factor either).
// A factor is also a leaf when the product is small: a level saves k²·cols/2 multiply-adds
// (about 5 µs at 2^18) and costs three more ATen calls and views (a few µs), so below 2^18 one
// tril copy and one GEMM are cheaper (e.g. the 100×100 factor of a 100→10 layer).
constexpr int64_t kLeaf = 64;
constexpr int64_t kMinRecursiveWork = int64_t{1} << 18;
// With more threads fewer, larger GEMM calls pay: interleaved timings at 2 threads (256…1024,
// and the layer sizes 784×300 and 300×100) had leaves below 2^24 3–20 % faster than below 2^18,
// while at 1 thread 2^18 was the fastest (by 5–30 %). (Why a call costs more with threads was
// not profiled.) The results differ only by the summation order of the products.
constexpr int64_t kMinRecursiveWorkThreaded = int64_t{1} << 24;
bool is_leaf(int64_t k, int64_t cols) {
  const int64_t min_work = at::get_num_threads() > 1 ? kMinRecursiveWorkThreaded : kMinRecursiveWork;
  return k <= kLeaf || k * k * cols < min_work;
}
int64_t half_of(int64_t k) { return (k / 2 + 31) / 32 * 32; }

// out = a·b, or out += a·b.
void gemm_into(at::Tensor out, const at::Tensor& a, const at::Tensor& b, bool accumulate) {  // out: a view
  if (accumulate) {
    out.addmm_(a, b);
  } else {
    at::mm_out(out, a, b);
  }
}

// out (=|+=) tril(L)·X
void tril_mm_into(at::Tensor out, const at::Tensor& L, const at::Tensor& X, bool acc) {
  const int64_t k = L.size(0);
  if (is_leaf(k, X.size(1))) return gemm_into(out, L.tril(), X, acc);
  const int64_t h = half_of(k);
  tril_mm_into(out.narrow(0, 0, h), L.narrow(0, 0, h).narrow(1, 0, h), X.narrow(0, 0, h), acc);
  tril_mm_into(out.narrow(0, h, k - h), L.narrow(0, h, k - h).narrow(1, h, k - h), X.narrow(0, h, k - h), acc);
  out.narrow(0, h, k - h).addmm_(L.narrow(0, h, k - h).narrow(1, 0, h), X.narrow(0, 0, h));
}

// out (=|+=) X·tril(L)
void mm_tril_into(at::Tensor out, const at::Tensor& X, const at::Tensor& L, bool acc) {
  const int64_t k = L.size(0);
  if (is_leaf(k, X.size(0))) return gemm_into(out, X, L.tril(), acc);
  const int64_t h = half_of(k);
  mm_tril_into(out.narrow(1, 0, h), X.narrow(1, 0, h), L.narrow(0, 0, h).narrow(1, 0, h), acc);
  mm_tril_into(out.narrow(1, h, k - h), X.narrow(1, h, k - h), L.narrow(0, h, k - h).narrow(1, h, k - h), acc);
  out.narrow(1, 0, h).addmm_(X.narrow(1, h, k - h), L.narrow(0, h, k - h).narrow(1, 0, h));
}

// out (=|+=) X·tril(L)ᵀ
void mm_tril_t_into(at::Tensor out, const at::Tensor& X, const at::Tensor& L, bool acc) {
  const int64_t k = L.size(0);
  if (is_leaf(k, X.size(0))) return gemm_into(out, X, L.tril().t(), acc);
  const int64_t h = half_of(k);
  mm_tril_t_into(out.narrow(1, 0, h), X.narrow(1, 0, h), L.narrow(0, 0, h).narrow(1, 0, h), acc);
  mm_tril_t_into(out.narrow(1, h, k - h), X.narrow(1, h, k - h), L.narrow(0, h, k - h).narrow(1, h, k - h), acc);
  out.narrow(1, h, k - h).addmm_(X.narrow(1, 0, h), L.narrow(0, h, k - h).narrow(1, 0, h).t());
}

// out (=|+=) tril(L)ᵀ·X
void tril_t_mm_into(at::Tensor out, const at::Tensor& L, const at::Tensor& X, bool acc) {
  const int64_t k = L.size(0);
  if (is_leaf(k, X.size(1))) return gemm_into(out, L.tril().t(), X, acc);
  const int64_t h = half_of(k);
  tril_t_mm_into(out.narrow(0, 0, h), L.narrow(0, 0, h).narrow(1, 0, h), X.narrow(0, 0, h), acc);
  tril_t_mm_into(out.narrow(0, h, k - h), L.narrow(0, h, k - h).narrow(1, h, k - h), X.narrow(0, h, k - h), acc);
  out.narrow(0, 0, h).addmm_(L.narrow(0, h, k - h).narrow(1, 0, h).t(), X.narrow(0, h, k - h));
}

// out (square, zero above its diagonal on entry) ← tril(Xᵀ·Y) for "tn" (X, Y: rows × k), or
// tril(X·Yᵀ) for "nt" (X, Y: k × cols) when `nt`; only the blocks on and below the diagonal are
// computed.
void tril_of_mm_into(at::Tensor out, const at::Tensor& X, const at::Tensor& Y, bool nt) {
  const int64_t k = nt ? X.size(0) : X.size(1);
  auto part = [&](const at::Tensor& T, int64_t start, int64_t len) {
    return nt ? T.narrow(0, start, len) : T.narrow(1, start, len);
  };
  auto op = [&](const at::Tensor& T) { return nt ? T : T.t(); };  // the left factor
  auto opr = [&](const at::Tensor& T) { return nt ? T.t() : T; };  // the right factor
  if (is_leaf(k, nt ? X.size(1) : X.size(0))) {
    gemm_into(out, op(X), opr(Y), false);
    out.tril_();
    return;
  }
  const int64_t h = half_of(k);
  tril_of_mm_into(out.narrow(0, 0, h).narrow(1, 0, h), part(X, 0, h), part(Y, 0, h), nt);
  tril_of_mm_into(out.narrow(0, h, k - h).narrow(1, h, k - h), part(X, h, k - h), part(Y, h, k - h), nt);
  gemm_into(out.narrow(0, h, k - h).narrow(1, 0, h), op(part(X, h, k - h)), opr(part(Y, 0, h)), false);
}

}  // namespace

void check_matrix_normal_sample_arguments(const at::Tensor& M, const at::Tensor& A, const at::Tensor& B,
                                          const at::Tensor& E, const char* op) {
  check_factors(M, A, B, op);
  check_like(E, "E", M, "M", op);
  check_shape(E, "E", {M.size(0), M.size(1)}, "the shape of M", op);
}

void check_matrix_normal_linear_arguments(const at::Tensor& X, const at::Tensor& M, const at::Tensor& A,
                                          const at::Tensor& B, const at::Tensor& E,
                                          const std::optional<at::Tensor>& bias, const char* op) {
  check_factors(M, A, B, op);
  check_like(X, "X", M, "M", op);
  TORCH_CHECK_VALUE(X.dim() == 2 && X.size(1) == M.size(0), op,
                    ": argument 'X' must be (N, n) with n = M.size(0) = ", M.size(0), ", got shape ", X.sizes());
  check_like(E, "E", M, "M", op);
  check_shape(E, "E", {X.size(0), M.size(1)}, "(N, m): N = X.size(0), m = M.size(1)", op);
  if (bias.has_value() && bias->defined()) {
    check_like(*bias, "bias", M, "M", op);
    check_shape(*bias, "bias", {M.size(1)}, "(m,) with m = M.size(1)", op);
  }
}

namespace {
// The value checks run on every call, so on CPU float32/float64 they are raw passes over the
// data (no temporaries, no reductions through the dispatcher): at a 100→10 layer the six
// reductions with a host read each took about half as long as the products (17 µs against 40).
bool raw_checkable(const at::Tensor& t) {
  return t.is_cpu() && (t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble);
}

// NaN tested on the bit pattern (|bits| above the infinity's) with integer compares: the float
// compare p[i] != p[i] took about a cycle per element, 11 % of a 100→10 sample call in a
// profile, against 4 % for this loop.
template <typename T>
bool has_nan(const T* p, int64_t count) {
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  constexpr Bits kAbs = ~Bits(0) >> 1;
  constexpr Bits kInf = sizeof(T) == 4 ? Bits(0x7f800000u) : Bits(0x7ff0000000000000ull);
  std::atomic<bool> found{false};
  at::parallel_for(0, count, int64_t{1} << 16, [&](int64_t b, int64_t e) {
    Bits bad = 0;
    for (int64_t i = b; i < e; ++i) {
      Bits bits;
      std::memcpy(&bits, p + i, sizeof bits);
      bad |= static_cast<Bits>((bits & kAbs) > kInf);
    }
    if (bad) found = true;
  });
  return found;
}
}  // namespace

void check_no_nan(const at::Tensor& t, const char* op, const char* arg) {
  if (t.numel() == 0) return;
  bool nan = false;
  if (raw_checkable(t) && t.is_contiguous()) {
    AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), "mantra::check_no_nan",
                               [&] { nan = has_nan(t.const_data_ptr<scalar_t>(), t.numel()); });
  } else {
    // One reduction: the sum is NaN when t holds a NaN (or both infinities, then look closer).
    nan = std::isnan(t.sum().item<double>()) && t.isnan().any().item<bool>();
  }
  TORCH_CHECK_VALUE(!nan, op, ": argument '", arg, "' contains NaN");
}

void check_positive_diagonal(const at::Tensor& L, const char* op, const char* arg) {
  if (L.size(0) == 0) return;
  double lo = 0;
  if (raw_checkable(L)) {
    AT_DISPATCH_FLOATING_TYPES(L.scalar_type(), "mantra::check_positive_diagonal", [&] {
      const scalar_t* p = L.const_data_ptr<scalar_t>();
      const int64_t step = L.stride(0) + L.stride(1);
      scalar_t m = p[0];
      for (int64_t i = 1; i < L.size(0) && !std::isnan(m); ++i) {
        const scalar_t d = p[i * step];
        m = std::isnan(d) || d < m ? d : m;  // NaN wins, as in torch's min
      }
      lo = static_cast<double>(m);
    });
  } else {
    lo = L.diagonal().min().item<double>();
  }
  TORCH_CHECK_VALUE(lo > 0, op, ": argument '", arg,
                    "' is a Cholesky factor and must have a positive diagonal, got a diagonal entry ", lo);
}

at::Tensor tril_mm(const at::Tensor& L, const at::Tensor& X) {
  at::Tensor out = at::empty({L.size(0), X.size(1)}, X.options());
  tril_mm_into(out, L, X, false);
  return out;
}

at::Tensor mm_tril(const at::Tensor& X, const at::Tensor& L) {
  at::Tensor out = at::empty({X.size(0), L.size(0)}, X.options());
  mm_tril_into(out, X, L, false);
  return out;
}

at::Tensor mm_tril_t(const at::Tensor& X, const at::Tensor& L, const std::optional<at::Tensor>& base) {
  if (base.has_value()) {
    at::Tensor out = base->clone(at::MemoryFormat::Contiguous);
    mm_tril_t_into(out, X, L, true);
    return out;
  }
  at::Tensor out = at::empty({X.size(0), L.size(0)}, X.options());
  mm_tril_t_into(out, X, L, false);
  return out;
}

at::Tensor tril_t_mm(const at::Tensor& L, const at::Tensor& X) {
  at::Tensor out = at::empty({L.size(0), X.size(1)}, X.options());
  tril_t_mm_into(out, L, X, false);
  return out;
}

at::Tensor tril_of_mm_nt(const at::Tensor& X, const at::Tensor& Y) {
  at::Tensor out = at::zeros({X.size(0), X.size(0)}, X.options());
  tril_of_mm_into(out, X, Y, true);
  return out;
}

at::Tensor tril_of_mm_tn(const at::Tensor& X, const at::Tensor& Y) {
  at::Tensor out = at::zeros({X.size(1), X.size(1)}, X.options());
  tril_of_mm_into(out, X, Y, false);
  return out;
}

namespace {
at::Tensor aten_scale_add(at::Tensor& out, const at::Tensor& P, const at::Tensor& F) {
  at::Tensor s = P.square().sum(1).sqrt();
  out.addcmul_(s.unsqueeze(1), F);
  return s;
}
std::tuple<at::Tensor, at::Tensor> aten_scale_backward(const at::Tensor& G, const at::Tensor& F, const at::Tensor& P,
                                                       const at::Tensor& s) {
  at::Tensor gs = (G * F).sum(1);
  at::Tensor r = at::where(s > 0, gs / s, at::zeros_like(s));
  return {G * s.unsqueeze(1), P * r.unsqueeze(1)};
}
}  // namespace

const MatrixNormalElementwise& aten_elementwise() {
  static const MatrixNormalElementwise ew{&aten_scale_add, &aten_scale_backward};
  return ew;
}

std::tuple<at::Tensor, at::Tensor> matrix_normal_sample_traced_generic(const at::Tensor& M, const at::Tensor& A,
                                                                       const at::Tensor& B, const at::Tensor& E) {
  const at::Tensor Mc = up(M), Ac = up(A), Bc = up(B), Ec = up(E);
  at::Tensor T = tril_mm(Ac, Ec);          // Ā·E, half a GEMM
  at::Tensor W = mm_tril_t(T, Bc, Mc);     // M + T·B̄ᵀ, half a GEMM, the sum fused into it
  return {W.to(M.scalar_type()), T.to(M.scalar_type())};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> matrix_normal_sample_backward_generic(
    const at::Tensor& grad, const at::Tensor& A, const at::Tensor& B, const at::Tensor& E, const at::Tensor& T,
    bool grad_E) {
  const at::Tensor G = up(grad), Ac = up(A), Bc = up(B), Ec = up(E), Tc = up(T);
  const at::Tensor H = mm_tril(G, Bc);              // G·B̄
  at::Tensor gA = tril_of_mm_nt(H, Ec);             // tril(G·B̄·Eᵀ)
  at::Tensor gB = tril_of_mm_tn(G, Tc);             // tril(Gᵀ·Ā·E)
  at::Tensor gE = grad_E ? tril_t_mm(Ac, H) : at::empty({0}, H.options());  // Āᵀ·G·B̄
  const auto t = A.scalar_type();
  return {gA.to(t), gB.to(t), gE.to(t)};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> matrix_normal_linear_traced_generic(
    const at::Tensor& X, const at::Tensor& M, const at::Tensor& A, const at::Tensor& B, const at::Tensor& E,
    const std::optional<at::Tensor>& bias, const MatrixNormalElementwise& ew) {
  const at::Tensor Xc = up(X), Mc = up(M), Ac = up(A), Bc = up(B), Ec = up(E);
  at::Tensor out = (bias.has_value() && bias->defined()) ? at::addmm(up(*bias), Xc, Mc) : at::mm(Xc, Mc);
  at::Tensor P = mm_tril(Xc, Ac);           // X·Ā (N, n)
  at::Tensor F = mm_tril_t(Ec, Bc, std::nullopt);  // E·B̄ᵀ (N, m)
  at::Tensor s = ew.scale_add(out, P, F);   // out += sqrt(rowsum(P²)) ⊙ F
  const auto t = M.scalar_type();
  return {out.to(t), P.to(t), s.to(t), F.to(t)};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
matrix_normal_linear_backward_generic(const at::Tensor& grad, const at::Tensor& X, const at::Tensor& M,
                                      const at::Tensor& A, const at::Tensor& B, const at::Tensor& E,
                                      const at::Tensor& P, const at::Tensor& s, const at::Tensor& F, bool grad_X,
                                      bool grad_E, const MatrixNormalElementwise& ew) {
  const at::Tensor G = up(grad).contiguous(), Xc = up(X), Mc = up(M), Ac = up(A), Bc = up(B), Ec = up(E);
  auto [dF, dP] = ew.scale_backward(G, up(F).contiguous(), up(P).contiguous(), up(s).contiguous());
  at::Tensor gM = at::mm(Xc.t(), G);                       // Xᵀ·G
  at::Tensor gX = at::empty({0}, G.options());
  if (grad_X) {
    gX = at::mm(G, Mc.t());              // G·Mᵀ
    mm_tril_t_into(gX, dP, Ac, true);    // + dP·Āᵀ, in place
  }
  at::Tensor gA = tril_of_mm_tn(Xc, dP);                   // tril(Xᵀ·dP)
  at::Tensor gB = tril_of_mm_tn(dF, Ec);                   // tril(dFᵀ·E)
  at::Tensor gE = grad_E ? mm_tril(dF, Bc) : at::empty({0}, G.options());  // dF·B̄
  at::Tensor gb = G.sum(0);
  const auto t = M.scalar_type();
  return {gX.to(t), gM.to(t), gA.to(t), gB.to(t), gE.to(t), gb.to(t)};
}

}  // namespace mantra::detail
