#include "mantra/manifolds/manifold.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <numeric>
#include <sstream>

namespace mantra::manifolds {

std::string to_string(Retraction r) {
  switch (r) {
    case Retraction::Default: return "default";
    case Retraction::Exp: return "exp";
    case Retraction::Cayley: return "cayley";
    case Retraction::QR: return "qr";
    case Retraction::Polar: return "polar";
    case Retraction::Projection: return "projection";
  }
  return "?";
}

Retraction retraction_from_string(const std::string& name, const char* arg) {
  for (Retraction r : {Retraction::Default, Retraction::Exp, Retraction::Cayley, Retraction::QR,
                       Retraction::Polar, Retraction::Projection}) {
    if (to_string(r) == name) return r;
  }
  if (name == "expm") return Retraction::Exp;
  TORCH_CHECK_VALUE(false, "argument '", arg, "' must be one of exp, cayley, qr, polar, projection, default; got '",
                    name, "'");
}

at::Tensor Manifold::retract(const at::Tensor& X, const at::Tensor& V, Retraction method) const {
  const auto supported = retractions();
  if (method == Retraction::Default) method = supported.front();
  if (std::find(supported.begin(), supported.end(), method) == supported.end()) {
    std::ostringstream names;
    for (size_t i = 0; i < supported.size(); ++i) names << (i ? ", " : "") << to_string(supported[i]);
    TORCH_CHECK_VALUE(false, name(), ".retract: argument 'method' must be one of ", names.str(), "; got ",
                      to_string(method));
  }
  check_same_shape(X, "X", V, "V", name() + ".retract");
  return retract_with(X, V, method);
}

at::Tensor Manifold::transport(const at::Tensor& X, const at::Tensor& Y, const at::Tensor& V) const {
  check_same_shape(X, "X", V, "V", name() + ".transport");
  check_same_shape(X, "X", Y, "Y", name() + ".transport");
  return proj_tangent(Y, V);
}

std::pair<at::Tensor, at::Tensor> Manifold::retract_transport(const at::Tensor& X, const at::Tensor& V,
                                                              const at::Tensor& U, Retraction method) const {
  check_same_shape(X, "X", U, "U", name() + ".retract_transport");
  at::Tensor Y = retract(X, V, method);
  if (method == Retraction::Default) method = retractions().front();
  if (method == Retraction::Exp) {
    // The final projection only removes rounding (the transported vector is tangent at Y).
    if (at::Tensor P = exp_parallel_transport(X, V, U); P.defined()) return {Y, proj_tangent(Y, P)};
  }
  return {Y, transport(X, Y, U)};
}

at::Tensor Manifold::inner(const at::Tensor& X, const at::Tensor& U, const at::Tensor& V) const {
  check_same_shape(X, "X", U, "U", name() + ".inner");
  check_same_shape(X, "X", V, "V", name() + ".inner");
  return sum_point(U * V);
}

at::Tensor Manifold::sum_point(const at::Tensor& T) const {
  if (point_dims() == 0) return T;  // every entry is a point (an empty dim list would sum all)
  std::vector<int64_t> dims(point_dims());
  std::iota(dims.begin(), dims.end(), T.dim() - point_dims());
  return T.sum(dims);
}

void Manifold::check_shape(at::IntArrayRef shape, const char* arg) const {
  TORCH_CHECK_VALUE(static_cast<int64_t>(shape.size()) >= point_dims(), name(), ": argument '", arg, "' must have at least ",
                    point_dims(), " dimensions, got shape ", shape);
}

void check_same_shape(const at::Tensor& X, const char* xname, const at::Tensor& V, const char* vname,
                      const std::string& op) {
  TORCH_CHECK_VALUE(X.defined() && V.defined(), op, ": arguments '", xname, "' and '", vname, "' must be defined");
  TORCH_CHECK_VALUE(X.sizes() == V.sizes(), op, ": argument '", vname, "' must have the shape of '", xname, "' ",
                    X.sizes(), ", got ", V.sizes());
}

}  // namespace mantra::manifolds
