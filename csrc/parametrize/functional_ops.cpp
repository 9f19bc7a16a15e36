// The constraint maps a forward needs, as dispatcher operators (torch.ops.mantra.*), so that
// torch.compile(fullgraph=True) and torch.export trace through a constrained model. Each is
// CompositeImplicitAutograd over the functional.h function of the same name: tracing
// decomposes it into ATen (and mantra::expm) operations, and autograd differentiates those.
// Manifolds travel as spec() strings (an op cannot take a C++ object).
#include <ATen/ATen.h>
#include <torch/library.h>

#include "mantra/manifolds/manifold.h"
#include "mantra/parametrize/functional.h"

namespace mantra::parametrize {
namespace {

namespace fn = functional;

at::Tensor trivialize_op(const at::Tensor& base, const at::Tensor& v, c10::string_view manifold,
                         c10::string_view retraction, double scale) {
  const auto m = manifolds::manifold_from_spec(std::string(manifold), "manifold");
  return fn::trivialize(*m, base, v, manifolds::retraction_from_string(std::string(retraction), "retraction"), scale);
}

at::Tensor spectrum_op(const at::Tensor& s, c10::string_view f, double lam, double eps) {
  return fn::spectrum(s, spectrum_map_from_string(std::string(f)), lam, eps);
}

at::Tensor spectrum_of_op(const at::Tensor& fs, c10::string_view f, double lam) {
  return fn::spectrum_of(fs, spectrum_map_from_string(std::string(f)), lam);
}

at::Tensor spectral_compose_op(const at::Tensor& U, const at::Tensor& sigma, const std::optional<at::Tensor>& V) {
  return fn::spectral_compose(U, sigma, V.has_value() ? *V : at::Tensor());
}

at::Tensor linear_map_op(const at::Tensor& v, bool skew, c10::string_view triangle) {
  return fn::linear_map(v, skew, std::string(triangle));
}

}  // namespace
}  // namespace mantra::parametrize

TORCH_LIBRARY_FRAGMENT(mantra, m) {
  m.def("trivialize(Tensor base, Tensor v, str manifold, str retraction=\"default\", float scale=1.0) -> Tensor");
  m.def("spectrum(Tensor s, str f, float lam=0.1, float eps=1e-05) -> Tensor");
  m.def("spectrum_of(Tensor fs, str f, float lam=0.1) -> Tensor");
  m.def("spectral_compose(Tensor U, Tensor sigma, Tensor? V=None) -> Tensor");
  m.def("householder(Tensor v, bool special, bool wide) -> Tensor");
  m.def("cholesky_map(Tensor v) -> Tensor");
  m.def("linear_map(Tensor v, bool skew, str triangle=\"lower\") -> Tensor");
  m.def("frame_from_chart(Tensor base, Tensor Q, int k, bool wide, float scale=1.0) -> Tensor");
}

TORCH_LIBRARY_IMPL(mantra, CompositeImplicitAutograd, m) {
  namespace pz = mantra::parametrize;
  m.impl("trivialize", &pz::trivialize_op);
  m.impl("spectrum", &pz::spectrum_op);
  m.impl("spectrum_of", &pz::spectrum_of_op);
  m.impl("spectral_compose", &pz::spectral_compose_op);
  m.impl("householder", &pz::functional::householder);
  m.impl("cholesky_map", &pz::functional::cholesky);
  m.impl("linear_map", &pz::linear_map_op);
  m.impl("frame_from_chart", &pz::functional::frame_from_chart);
}
