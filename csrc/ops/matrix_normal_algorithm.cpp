#include "ops/matrix_normal_algorithm.h"

#include <algorithm>

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

// Block edge of the triangular products: enough blocks that the wasted diagonal blocks are
// ~1/16 of the work, and blocks large enough for an efficient GEMM.
int64_t block_of(int64_t n) {
  const int64_t b = (n + 15) / 16;
  return std::max<int64_t>(64, (b + 31) / 32 * 32);
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

void check_no_nan(const at::Tensor& t, const char* op, const char* arg) {
  TORCH_CHECK_VALUE(!t.isnan().any().item<bool>(), op, ": argument '", arg, "' contains NaN");
}

void check_positive_diagonal(const at::Tensor& L, const char* op, const char* arg) {
  if (L.size(0) == 0) return;
  const double lo = L.diagonal().min().item<double>();
  TORCH_CHECK_VALUE(lo > 0, op, ": argument '", arg,
                    "' is a Cholesky factor and must have a positive diagonal, got a diagonal entry ", lo);
}

// Block row [r0, r1) of tril(L)·X reads the columns [0, r1) of tril(L).
at::Tensor tril_mm(const at::Tensor& L, const at::Tensor& X) {
  const int64_t n = L.size(0), bs = block_of(n);
  const at::Tensor Lt = L.tril();
  at::Tensor out = at::empty({n, X.size(1)}, X.options());
  for (int64_t r0 = 0; r0 < n; r0 += bs) {
    const int64_t len = std::min(bs, n - r0), r1 = r0 + len;
    at::Tensor o = out.narrow(0, r0, len);
    at::mm_out(o, Lt.narrow(0, r0, len).narrow(1, 0, r1), X.narrow(0, 0, r1));
  }
  return out;
}

// Block column [c0, c1) of X·tril(L) reads the rows [c0, n) of tril(L).
at::Tensor mm_tril(const at::Tensor& X, const at::Tensor& L) {
  const int64_t n = L.size(0), bs = block_of(n);
  const at::Tensor Lt = L.tril();
  at::Tensor out = at::empty({X.size(0), n}, X.options());
  for (int64_t c0 = 0; c0 < n; c0 += bs) {
    const int64_t len = std::min(bs, n - c0);
    at::Tensor o = out.narrow(1, c0, len);
    at::mm_out(o, X.narrow(1, c0, n - c0), Lt.narrow(0, c0, n - c0).narrow(1, c0, len));
  }
  return out;
}

// Block column [c0, c1) of X·tril(L)ᵀ reads the rows [c0, c1), columns [0, c1) of tril(L).
at::Tensor mm_tril_t(const at::Tensor& X, const at::Tensor& L, const std::optional<at::Tensor>& base) {
  const int64_t n = L.size(0), bs = block_of(n);
  const at::Tensor Lt = L.tril();
  at::Tensor out = base.has_value() ? base->clone(at::MemoryFormat::Contiguous)
                                    : at::empty({X.size(0), n}, X.options());
  for (int64_t c0 = 0; c0 < n; c0 += bs) {
    const int64_t len = std::min(bs, n - c0), c1 = c0 + len;
    at::Tensor o = out.narrow(1, c0, len);
    const at::Tensor lhs = X.narrow(1, 0, c1), rhs = Lt.narrow(0, c0, len).narrow(1, 0, c1).t();
    if (base.has_value()) {
      o.addmm_(lhs, rhs);
    } else {
      at::mm_out(o, lhs, rhs);
    }
  }
  return out;
}

// Block row [r0, r1) of tril(L)ᵀ·X reads the rows [r0, n) of tril(L), i.e. its columns [r0, r1).
at::Tensor tril_t_mm(const at::Tensor& L, const at::Tensor& X) {
  const int64_t n = L.size(0), bs = block_of(n);
  const at::Tensor Lt = L.tril();
  at::Tensor out = at::empty({n, X.size(1)}, X.options());
  for (int64_t r0 = 0; r0 < n; r0 += bs) {
    const int64_t len = std::min(bs, n - r0);
    at::Tensor o = out.narrow(0, r0, len);
    at::mm_out(o, Lt.narrow(0, r0, n - r0).narrow(1, r0, len).t(), X.narrow(0, r0, n - r0));
  }
  return out;
}

// Block row [r0, r1) of tril(X·Yᵀ) needs the columns [0, r1) only.
at::Tensor tril_of_mm_nt(const at::Tensor& X, const at::Tensor& Y) {
  const int64_t n = X.size(0), bs = block_of(n);
  at::Tensor out = at::zeros({n, n}, X.options());
  for (int64_t r0 = 0; r0 < n; r0 += bs) {
    const int64_t len = std::min(bs, n - r0), r1 = r0 + len;
    at::Tensor o = out.narrow(0, r0, len).narrow(1, 0, r1);
    at::mm_out(o, X.narrow(0, r0, len), Y.narrow(0, 0, r1).t());
  }
  return out.tril_();
}

at::Tensor tril_of_mm_tn(const at::Tensor& X, const at::Tensor& Y) {
  const int64_t n = X.size(1), bs = block_of(n);
  at::Tensor out = at::zeros({n, n}, X.options());
  for (int64_t r0 = 0; r0 < n; r0 += bs) {
    const int64_t len = std::min(bs, n - r0), r1 = r0 + len;
    at::Tensor o = out.narrow(0, r0, len).narrow(1, 0, r1);
    at::mm_out(o, X.narrow(1, r0, len).t(), Y.narrow(1, 0, r1));
  }
  return out.tril_();
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
    const at::Tensor& grad, const at::Tensor& A, const at::Tensor& B, const at::Tensor& E, const at::Tensor& T) {
  const at::Tensor G = up(grad), Ac = up(A), Bc = up(B), Ec = up(E), Tc = up(T);
  const at::Tensor H = mm_tril(G, Bc);              // G·B̄
  at::Tensor gA = tril_of_mm_nt(H, Ec);             // tril(G·B̄·Eᵀ)
  at::Tensor gB = tril_of_mm_tn(G, Tc);             // tril(Gᵀ·Ā·E)
  at::Tensor gE = tril_t_mm(Ac, H);                 // Āᵀ·G·B̄
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
                                      const at::Tensor& P, const at::Tensor& s, const at::Tensor& F,
                                      const MatrixNormalElementwise& ew) {
  const at::Tensor G = up(grad).contiguous(), Xc = up(X), Mc = up(M), Ac = up(A), Bc = up(B), Ec = up(E);
  auto [dF, dP] = ew.scale_backward(G, up(F).contiguous(), up(P).contiguous(), up(s).contiguous());
  at::Tensor gM = at::mm(Xc.t(), G);                       // Xᵀ·G
  at::Tensor gX = mm_tril_t(dP, Ac, at::mm(G, Mc.t()));    // G·Mᵀ + dP·Āᵀ
  at::Tensor gA = tril_of_mm_tn(Xc, dP);                   // tril(Xᵀ·dP)
  at::Tensor gB = tril_of_mm_tn(dF, Ec);                   // tril(dFᵀ·E)
  at::Tensor gE = mm_tril(dF, Bc);                         // dF·B̄
  at::Tensor gb = G.sum(0);
  const auto t = M.scalar_type();
  return {gX.to(t), gM.to(t), gA.to(t), gB.to(t), gE.to(t), gb.to(t)};
}

}  // namespace mantra::detail
