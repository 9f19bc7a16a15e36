// The manifold protocol: one abstract class, one file per manifold (see DESIGN.md).
// Points are tensors whose trailing `point_dims()` dimensions form one point; every method
// acts on any leading batch dimensions and is differentiable (built from ATen/mantra ops).
// Every public method validates its arguments in one shared helper (check_args): X and the
// other tensors are defined, of one real floating dtype and one device, of one shape, with at
// least point_dims() dimensions and a shape the manifold accepts (check_shape); the message
// names the method, the argument, the expected and the actual value. Finiteness is not
// checked (that would synchronize with the device): a non-finite entry gives NaN or Inf in the
// result of that point, never a finite value, and check_point rejects it.
#pragma once

#include <ATen/ATen.h>

#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace mantra::manifolds {

enum class Retraction {
  Default,     // the manifold's own default (the first of retractions())
  Exp,         // the exponential map (geodesics of the metric)
  Cayley,      // Cayley transform
  QR,          // Q factor of X + V with positive diag(R)
  Polar,       // polar factor of X + V
  Projection,  // X + V projected back onto the manifold
  NewtonSchulz,  // polar factor of X + V by a fixed Newton–Schulz schedule (matmuls only)
};

std::string to_string(Retraction r);
// "exp", "cayley", "qr", "polar", "projection", "newton_schulz" (and "default"); throws naming
// `arg` otherwise.
Retraction retraction_from_string(const std::string& name, const char* arg = "retraction");

class Manifold {
 public:
  virtual ~Manifold() = default;

  virtual std::string name() const = 0;
  // The manifold and its options as one canonical string, e.g. "Stiefel(retraction=exp)";
  // manifold_from_spec(spec()) rebuilds an equal manifold (the dispatcher ops and pickling
  // name manifolds this way).
  virtual std::string spec() const;
  // Number of trailing dimensions of one point (2 for matrices, 1 for vectors).
  virtual int64_t point_dims() const { return 2; }

  // Euclidean gradient G at X -> Riemannian gradient (tangent vector at X).
  virtual at::Tensor proj_tangent(const at::Tensor& X, const at::Tensor& G) const = 0;
  // Euclidean gradient -> Riemannian gradient; differs from proj_tangent for metrics that are
  // not the embedding's (e.g. affine-invariant SPD, hyperbolic).
  virtual at::Tensor egrad_to_rgrad(const at::Tensor& X, const at::Tensor& G) const { return proj_tangent(X, G); }

  // A retraction R_X(V). `method` must be one of retractions() (or Default).
  at::Tensor retract(const at::Tensor& X, const at::Tensor& V, Retraction method = Retraction::Default) const;
  // R_X(V) for X known to be a point to rounding (a parametrization's base, re-pulled at each
  // rebase): the same map without the pull-back toward the manifold that retract() adds for a
  // drifted X, where a manifold's pull-back costs extra work on the hot path (Stiefel's square
  // exp/cayley). Default: retract().
  at::Tensor retract_from_point(const at::Tensor& X, const at::Tensor& V, Retraction method = Retraction::Default) const;
  // Supported retractions; the first is the default.
  virtual std::vector<Retraction> retractions() const = 0;

  // The tangent vector at a base point B that a trivialization's unconstrained coordinates u
  // name (φ_B(u) = R_B(chart_vector(B, u))). Default: proj_tangent(B, u), an isometry where the
  // metric is the embedding's. A manifold with another metric maps u through an isometry from
  // the metric at its origin (SPD: B^{1/2} sym(u) B^{1/2}), so that a gradient step on u with
  // a rebase every step (dynamic trivialization, K = 1) is Riemannian gradient descent, and
  // an adaptive optimizer's steps have the same size relative to B at every base.
  virtual at::Tensor chart_vector(const at::Tensor& B, const at::Tensor& u) const { return proj_tangent(B, u); }

  // Vector transport of V (tangent at X) to Y. Default: projection onto the tangent space at Y.
  virtual at::Tensor transport(const at::Tensor& X, const at::Tensor& Y, const at::Tensor& V) const;
  // Y = R_X(V) and U transported to Y, fused where that is cheaper. Default: along the exp
  // retraction, exp_parallel_transport where a manifold has it; otherwise transport().
  virtual std::pair<at::Tensor, at::Tensor> retract_transport(const at::Tensor& X, const at::Tensor& V,
                                                              const at::Tensor& U,
                                                              Retraction method = Retraction::Default) const;

  // Parallel transport of U along t ↦ exp_X(tV) to t = 1, where it has a closed form;
  // undefined (the default) where it does not.
  virtual at::Tensor exp_parallel_transport(const at::Tensor& X, const at::Tensor& V, const at::Tensor& U) const {
    return at::Tensor();
  }

  // The metric: one scalar per point (shape: the batch dimensions).
  virtual at::Tensor inner(const at::Tensor& X, const at::Tensor& U, const at::Tensor& V) const;
  at::Tensor norm(const at::Tensor& X, const at::Tensor& U) const { return inner(X, U, U).clamp_min(0).sqrt(); }

  // Closest point on the manifold (re-projection against drift).
  virtual at::Tensor project(const at::Tensor& X) const = 0;
  // A random point of the given full shape (Haar / uniform where it exists).
  virtual at::Tensor random(at::IntArrayRef shape, const at::TensorOptions& options = {}) const = 0;
  // A deterministic point of the given full shape.
  virtual at::Tensor origin(at::IntArrayRef shape, const at::TensorOptions& options = {}) const = 0;
  // Why X is not a point of this manifold (within atol), or "" when it is: undefined,
  // non-floating (integer, bool, complex) and non-finite tensors are not points. Throws when
  // atol is NaN, infinite or negative.
  virtual std::string check_point(const at::Tensor& X, double atol = 1e-5) const = 0;
  // Throws (naming `arg`) when a tensor of this shape cannot hold points of this manifold.
  virtual void check_shape(at::IntArrayRef shape, const char* arg) const;

 protected:
  virtual at::Tensor retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const = 0;
  virtual at::Tensor retract_from_point_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const {
    return retract_with(X, V, method);
  }
  // The retraction a method names (Default: the first of retractions()); throws naming `fn`.
  Retraction resolve_retraction(Retraction method, const char* fn) const;
  // The shared argument check of the public methods (see the top of this file): `method` is
  // the method's name ("retract"), X the point, `others` the tensors that must match it.
  struct Arg {
    const at::Tensor& tensor;
    const char* name;
  };
  void check_args(const char* method, const at::Tensor& X, std::initializer_list<Arg> others = {}) const;
  // Called from a catch block around a method's inner routines (expm, eigh, ...): throws a
  // ValueError naming the first of `args` that holds NaN or Inf, else rethrows the error.
  [[noreturn]] void rethrow_naming_nonfinite(const char* method, std::initializer_list<Arg> args) const;
  // The part of check_point every manifold shares: the reason X is not a point because it is
  // undefined, not floating, of too few dimensions or not finite ("" otherwise). Throws for
  // an invalid atol.
  std::string check_point_common(const at::Tensor& X, double atol) const;
  // Whether float16/bfloat16 points are accepted (only where no LAPACK routine is used).
  virtual bool accepts_reduced_precision() const { return false; }
  // Sum over the point dimensions (keeps the batch dimensions).
  at::Tensor sum_point(const at::Tensor& T) const;
};

using ManifoldPtr = std::shared_ptr<const Manifold>;

// The manifold a spec() string names (one shared instance per distinct string); throws naming
// `arg` for an unknown name or option.
ManifoldPtr manifold_from_spec(const std::string& spec, const char* arg = "manifold");

// Same shape (and dtype and device) of V as X; the message names `op` and both arguments.
void check_same_shape(const at::Tensor& X, const char* xname, const at::Tensor& V, const char* vname,
                      const std::string& op);

}  // namespace mantra::manifolds
