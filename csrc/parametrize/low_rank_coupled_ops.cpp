// The coupled low-rank maps a forward needs, as dispatcher operators (see functional_ops.cpp):
// CompositeImplicitAutograd over the functional.h functions, manifolds as spec() strings.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "mantra/manifolds/manifold.h"
#include "mantra/parametrize/functional.h"

namespace mantra::parametrize {
namespace {

at::Tensor compose_op(const at::Tensor& P, c10::string_view manifold) {
  return functional::low_rank_coupled_compose(*manifolds::manifold_from_spec(std::string(manifold), "manifold"), P);
}

at::Tensor linear_op(const at::Tensor& input, const at::Tensor& P, c10::string_view manifold,
                     const std::optional<at::Tensor>& scale, const std::optional<at::Tensor>& bias) {
  return functional::low_rank_coupled_linear(input, *manifolds::manifold_from_spec(std::string(manifold), "manifold"), P,
                                             scale.has_value() ? *scale : at::Tensor(),
                                             bias.has_value() ? *bias : at::Tensor());
}

}  // namespace
}  // namespace mantra::parametrize

TORCH_LIBRARY_FRAGMENT(mantra, m) {
  m.def("low_rank_coupled_compose(Tensor P, str manifold) -> Tensor");
  m.def("low_rank_coupled_linear(Tensor input, Tensor P, str manifold, Tensor? scale=None, Tensor? bias=None) -> Tensor");
}

TORCH_LIBRARY_IMPL(mantra, CompositeImplicitAutograd, m) {
  m.impl("low_rank_coupled_compose", &mantra::parametrize::compose_op);
  m.impl("low_rank_coupled_linear", &mantra::parametrize::linear_op);
}
