// Small dense linear algebra shared by the manifolds: the one place for these maps.
#pragma once

#include <ATen/ATen.h>

namespace mantra::linalg {

// Symmetric part (A + Aᵀ)/2 and skew part (A − Aᵀ)/2 of the last two dimensions.
at::Tensor sym(const at::Tensor& A);
at::Tensor skew(const at::Tensor& A);

// f(S) for symmetric S (..., k, k) through eigh, with a backward that stays finite when
// eigenvalues coincide (Daleckii–Krein divided differences, f' on the diagonal and for
// near-equal pairs). InvSqrt and Log need S positive definite.
enum class SymFunction { Sqrt, InvSqrt, Log, Exp };
at::Tensor sym_funm(const at::Tensor& S, SymFunction f);

// Q factor of the reduced QR of A (..., n, k), n >= k, with diag(R) > 0 (unique; the Stiefel
// QR retraction and Haar sampling rely on it).
at::Tensor qr_positive(const at::Tensor& A);

// Identity matrices shaped like the last two dims of `like` (n x k), broadcast over batch.
at::Tensor eye_like(const at::Tensor& like);

}  // namespace mantra::linalg
