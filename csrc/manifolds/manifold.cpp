#include "mantra/manifolds/manifold.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
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
    case Retraction::NewtonSchulz: return "newton_schulz";
  }
  return "?";
}

Retraction retraction_from_string(const std::string& name, const char* arg) {
  for (Retraction r : {Retraction::Default, Retraction::Exp, Retraction::Cayley, Retraction::QR,
                       Retraction::Polar, Retraction::Projection, Retraction::NewtonSchulz}) {
    if (to_string(r) == name) return r;
  }
  if (name == "expm") return Retraction::Exp;
  TORCH_CHECK_VALUE(false, "argument '", arg, "' must be one of exp, cayley, qr, polar, projection, newton_schulz, default; "
                    "got '",
                    name, "'");
}

Retraction Manifold::resolve_retraction(Retraction method, const char* fn) const {
  const auto supported = retractions();
  if (method == Retraction::Default) method = supported.front();
  if (std::find(supported.begin(), supported.end(), method) == supported.end()) {
    std::ostringstream names;
    for (size_t i = 0; i < supported.size(); ++i) names << (i ? ", " : "") << to_string(supported[i]);
    TORCH_CHECK_VALUE(false, name(), ".", fn, ": argument 'method' must be one of ", names.str(), "; got ",
                      to_string(method));
  }
  return method;
}

void Manifold::rethrow_naming_nonfinite(const char* method, std::initializer_list<Arg> args) const {
  // The caller's names instead of the inner routine's argument (expm's 'A', eigh's "failed to
  // converge"); the check runs only on this error path.
  for (const Arg& a : args)
    TORCH_CHECK_VALUE(!a.tensor.defined() || a.tensor.is_meta() || at::isfinite(a.tensor).all().item<bool>(), name(),
                      ".", method, ": argument '", a.name, "' contains NaN or Inf");
  throw;
}

at::Tensor Manifold::retract(const at::Tensor& X, const at::Tensor& V, Retraction method) const {
  method = resolve_retraction(method, "retract");
  check_args("retract", X, {{V, "V"}});
  try {
    return retract_with(X, V, method);
  } catch (const c10::Error&) {
    rethrow_naming_nonfinite("retract", {{X, "X"}, {V, "V"}});
  }
}

at::Tensor Manifold::retract_from_point(const at::Tensor& X, const at::Tensor& V, Retraction method) const {
  method = resolve_retraction(method, "retract");
  check_args("retract", X, {{V, "V"}});
  try {
    return retract_from_point_with(X, V, method);
  } catch (const c10::Error&) {
    rethrow_naming_nonfinite("retract", {{X, "X"}, {V, "V"}});
  }
}

at::Tensor Manifold::transport(const at::Tensor& X, const at::Tensor& Y, const at::Tensor& V) const {
  check_args("transport", X, {{V, "V"}, {Y, "Y"}});
  return proj_tangent(Y, V);
}

std::pair<at::Tensor, at::Tensor> Manifold::retract_transport(const at::Tensor& X, const at::Tensor& V,
                                                              const at::Tensor& U, Retraction method) const {
  check_args("retract_transport", X, {{U, "U"}});
  at::Tensor Y = retract(X, V, method);
  if (method == Retraction::Default) method = retractions().front();
  if (method == Retraction::Exp) {
    // The final projection only removes rounding (the transported vector is tangent at Y).
    if (at::Tensor P = exp_parallel_transport(X, V, U); P.defined()) return {Y, proj_tangent(Y, P)};
  }
  return {Y, transport(X, Y, U)};
}

at::Tensor Manifold::inner(const at::Tensor& X, const at::Tensor& U, const at::Tensor& V) const {
  check_args("inner", X, {{U, "U"}, {V, "V"}});
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

namespace {
const char* dtype_name(at::ScalarType t) { return c10::toString(t); }
}  // namespace

void check_same_shape(const at::Tensor& X, const char* xname, const at::Tensor& V, const char* vname,
                      const std::string& op) {
  TORCH_CHECK_VALUE(X.defined(), op, ": argument '", xname, "' must be a defined tensor, got an undefined one");
  TORCH_CHECK_VALUE(V.defined(), op, ": argument '", vname, "' must be a defined tensor, got an undefined one");
  TORCH_CHECK_VALUE(X.sizes() == V.sizes(), op, ": argument '", vname, "' must have the shape of '", xname, "' ",
                    X.sizes(), ", got ", V.sizes());
  TORCH_CHECK_VALUE(V.scalar_type() == X.scalar_type(), op, ": argument '", vname, "' must have the dtype of '", xname,
                    "' (", dtype_name(X.scalar_type()), "), got ", dtype_name(V.scalar_type()));
  TORCH_CHECK_VALUE(V.device() == X.device(), op, ": argument '", vname, "' must be on the device of '", xname, "' (",
                    X.device(), "), got ", V.device());
}

void Manifold::check_args(const char* method, const at::Tensor& X, std::initializer_list<Arg> others) const {
  const std::string op = name() + "." + method;
  TORCH_CHECK_VALUE(X.defined(), op, ": argument 'X' must be a defined tensor, got an undefined one");
  const at::ScalarType t = X.scalar_type();
  TORCH_CHECK_VALUE(t == at::kFloat || t == at::kDouble ||
                        (accepts_reduced_precision() && (t == at::kHalf || t == at::kBFloat16)),
                    op, ": argument 'X' must be a real floating tensor (float32 or float64",
                    accepts_reduced_precision() ? ", float16, bfloat16" : "", "), got ", dtype_name(t));
  TORCH_CHECK_VALUE(X.dim() >= point_dims(), op, ": argument 'X' must have at least ", point_dims(),
                    " dimensions (one point), got shape ", X.sizes());
  for (const Arg& a : others) check_same_shape(X, "X", a.tensor, a.name, op);
  try {
    check_shape(X.sizes(), "X");
  } catch (const c10::ValueError& e) {
    // check_shape names the manifold ("SO: argument 'X' …"); name the method too.
    std::string why = e.what_without_backtrace();
    const std::string prefix = name() + ": ";
    if (why.rfind(prefix, 0) == 0) why = why.substr(prefix.size());
    TORCH_CHECK_VALUE(false, op, ": ", why);
  }
}

std::string Manifold::check_point_common(const at::Tensor& X, double atol) const {
  TORCH_CHECK_VALUE(std::isfinite(atol) && atol >= 0, name(), ".check_point: argument 'atol' must be finite and >= 0, got ",
                    atol);
  if (!X.defined()) return "the tensor is undefined";
  std::ostringstream s;
  if (!at::isFloatingType(X.scalar_type())) {
    s << "its dtype is " << dtype_name(X.scalar_type()) << " (points are real floating tensors)";
    return s.str();
  }
  if (X.dim() < point_dims()) {
    s << "it must have at least " << point_dims() << " dimensions (one point), got shape " << X.sizes();
    return s.str();
  }
  if (X.is_meta()) return "it is a meta tensor (it has no values to check)";
  if (X.numel() && !at::isfinite(X).all().item<bool>()) return "it contains NaN or Inf";
  return "";
}

}  // namespace mantra::manifolds
