// The options every param group of RiemannianSGD and RiemannianAdam carries: the learning rate,
// the weight decay and the geometry (manifold, retraction, stabilization period). One base for
// both optimizers' options; each setter returns the derived options (builder chains unchanged).
#pragma once

#include <torch/optim/optimizer.h>

#include <mantra/detail/crtp_arg.h>
#include <mantra/manifolds/euclidean.h>
#include <mantra/manifolds/manifold.h>

#include <memory>
#include <string>

namespace mantra::optim {

template <typename Derived>
struct RiemannianGroupOptions : public torch::optim::OptimizerCloneableOptions<Derived> {
  RiemannianGroupOptions(double lr) : lr_(lr) {}
  MANTRA_CRTP_ARG(double, lr);
  MANTRA_CRTP_ARG(double, weight_decay) = 0;
  // The manifold of every parameter of the group (Euclidean: plain tensors).
  MANTRA_CRTP_ARG(manifolds::ManifoldPtr, manifold) = std::make_shared<manifolds::Euclidean>();
  MANTRA_CRTP_ARG(manifolds::Retraction, retraction) = manifolds::Retraction::Default;
  // Every this many steps, project parameters back onto the manifold and moments onto the
  // tangent space, against rounding drift (0: never).
  MANTRA_CRTP_ARG(int64_t, stabilize) = 100;

 public:
  double get_lr() const override { return lr(); }
  void set_lr(const double lr) override { this->lr(lr); }
  // Set when loaded from an archive: the manifold's name at save time (checked on load).
  std::string saved_manifold_name;
};

}  // namespace mantra::optim
