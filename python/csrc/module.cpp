// mantra._C: loading it loads libmantra, which registers the torch.ops.mantra operators, and
// binds the C++ core for the Python frontend (the math stays in C++; Python wraps it).
#include <pybind11/functional.h>
#include <torch/extension.h>

#include "mantra/mantra.h"

namespace py = pybind11;
using namespace mantra::manifolds;

namespace {

namespace pz = mantra::parametrize;
namespace fn = mantra::parametrize::functional;

ManifoldPtr manifold_or_euclidean(const std::shared_ptr<Manifold>& m) {
  return m ? ManifoldPtr(m) : std::make_shared<Euclidean>();
}

Retraction parse_retraction(const std::string& name) { return retraction_from_string(name, "method"); }

template <typename M>
using Class = py::class_<M, Manifold, std::shared_ptr<M>>;

void bind_testing(py::module& m);

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "mantra C++ core";
  m.attr("__version__") = MANTRA_VERSION;
  m.def("cuda_enabled", &mantra::cuda_enabled, "True when libmantra was built with its CUDA kernels");

  auto mm = m.def_submodule("manifolds", "Manifolds (the C++ classes of mantra::manifolds)");
  // dynamic_attr: the Python wrapper records each manifold's constructor arguments (pickling).
  py::class_<Manifold, std::shared_ptr<Manifold>>(mm, "Manifold",
                                                   "A manifold: the protocol of mantra::manifolds::Manifold",
                                                   py::dynamic_attr())
      .def_property_readonly("name", &Manifold::name)
      .def_property_readonly("spec", &Manifold::spec, "The manifold and its options as a string (from_spec reads it)")
      .def_property_readonly("point_dims", &Manifold::point_dims)
      .def_property_readonly("retractions",
                             [](const Manifold& self) {
                               std::vector<std::string> names;
                               for (Retraction r : self.retractions()) names.push_back(to_string(r));
                               return names;
                             })
      .def("proj_tangent", &Manifold::proj_tangent, py::arg("X"), py::arg("G"))
      .def("egrad_to_rgrad", &Manifold::egrad_to_rgrad, py::arg("X"), py::arg("G"))
      .def(
          "retract",
          [](const Manifold& self, const at::Tensor& X, const at::Tensor& V, const std::string& method) {
            return self.retract(X, V, parse_retraction(method));
          },
          py::arg("X"), py::arg("V"), py::arg("method") = "default")
      .def("transport", &Manifold::transport, py::arg("X"), py::arg("Y"), py::arg("V"))
      .def(
          "retract_transport",
          [](const Manifold& self, const at::Tensor& X, const at::Tensor& V, const at::Tensor& U,
             const std::string& method) { return self.retract_transport(X, V, U, parse_retraction(method)); },
          py::arg("X"), py::arg("V"), py::arg("U"), py::arg("method") = "default")
      .def("inner", &Manifold::inner, py::arg("X"), py::arg("U"), py::arg("V"))
      .def("norm", &Manifold::norm, py::arg("X"), py::arg("U"))
      .def("project", &Manifold::project, py::arg("X"))
      // dtype/device come from `like` (an empty tensor made by the Python wrapper).
      .def(
          "_random",
          [](const Manifold& self, std::vector<int64_t> shape, const at::Tensor& like) {
            return self.random(shape, like.options());
          },
          py::arg("shape"), py::arg("like"))
      .def(
          "_origin",
          [](const Manifold& self, std::vector<int64_t> shape, const at::Tensor& like) {
            return self.origin(shape, like.options());
          },
          py::arg("shape"), py::arg("like"))
      .def("check_point", &Manifold::check_point, py::arg("X"), py::arg("atol") = 1e-5)
      .def("__repr__", [](const Manifold& self) { return "mantra.manifolds." + self.name() + "()"; });

  Class<Euclidean>(mm, "Euclidean", "Euclidean space (each entry a point)").def(py::init<>());
  Class<Stiefel>(mm, "Stiefel", "Orthonormal frames St(n, k); special=True: SO(n)")
      .def(py::init([](bool special, const std::string& retraction) {
             return std::make_shared<Stiefel>(
                 StiefelOptions().set_special(special).set_retraction(retraction_from_string(retraction)));
           }),
           py::arg("special") = false, py::arg("retraction") = "exp");
  Class<Grassmannian>(mm, "Grassmannian", "Subspaces Gr(n, k) as orthonormal frames")
      .def(py::init([](const std::string& retraction) {
             return std::make_shared<Grassmannian>(GrassmannianOptions().set_retraction(retraction_from_string(retraction)));
           }),
           py::arg("retraction") = "exp");
  Class<Sphere>(mm, "Sphere", "Unit vectors (last dimension)")
      .def(py::init([](const std::string& retraction) { return std::make_shared<Sphere>(retraction_from_string(retraction)); }),
           py::arg("retraction") = "exp");
  Class<Oblique>(mm, "Oblique", "Matrices with unit-norm columns")
      .def(py::init([](const std::string& retraction) { return std::make_shared<Oblique>(retraction_from_string(retraction)); }),
           py::arg("retraction") = "exp");
  Class<FixedRank>(mm, "FixedRank", "Matrices of rank r").def(py::init<int64_t>(), py::arg("rank"));
  Class<PSD>(mm, "PSD", "Symmetric positive semidefinite matrices of rank r").def(py::init<int64_t>(), py::arg("rank"));
  Class<GLPlus>(mm, "GLPlus", "Invertible n×n matrices with det > 0")
      .def(py::init<int64_t, double>(), py::arg("n"), py::arg("min_singular_value") = 0.0);
  Class<SPD>(mm, "SPD", "Symmetric positive definite matrices, affine-invariant metric")
      .def(py::init([](double min_eigenvalue) { return std::make_shared<SPD>(SPDOptions().set_min_eigenvalue(min_eigenvalue)); }),
           py::arg("min_eigenvalue") = 0.0)
      .def("distance", &SPD::distance, py::arg("X"), py::arg("Y"))
      .def("log", &SPD::log, py::arg("X"), py::arg("Y"));
  py::class_<Hyperbolic, Manifold, std::shared_ptr<Hyperbolic>>(mm, "Hyperbolic", "Hyperbolic space")
      .def("distance", &Hyperbolic::distance, py::arg("X"), py::arg("Y"));
  py::class_<Lorentz, Hyperbolic, std::shared_ptr<Lorentz>>(mm, "Lorentz", "The hyperboloid model (last dimension)")
      .def(py::init<>());
  py::class_<PoincareBall, Hyperbolic, std::shared_ptr<PoincareBall>>(mm, "PoincareBall",
                                                                      "The Poincaré ball model (last dimension)")
      .def(py::init<>());

  mm.def(
      "from_spec",
      [](const std::string& spec) { return std::const_pointer_cast<Manifold>(manifold_from_spec(spec, "spec")); },
      "The manifold a spec string names (Manifold.spec)", py::arg("spec"));

  // ------------------------------------------------------------ functional constraint maps
  // The non-forward half of mantra::parametrize::functional (the forward maps are the
  // torch.ops.mantra dispatcher ops of csrc/parametrize/functional_ops.cpp).
  auto mf = m.def_submodule("functional", "mantra::parametrize::functional: the constraint maps and their policy");
  mf.def("defaults", []() {
    using D = pz::Defaults;
    py::dict d;
    d["triv"] = D::triv;
    d["init"] = D::init;
    d["atol"] = D::atol;
    d["reproject_every"] = D::reproject_every;
    d["lam"] = D::lam;
    d["almost_orthogonal_f"] = D::almost_orthogonal_f;
    d["positive_f"] = D::positive_f;
    d["eps"] = D::eps;
    d["positive_definite_triv"] = D::positive_definite_triv;
    d["lower"] = D::lower;
    d["radius"] = D::radius;
    d["hyperbolic_model"] = D::hyperbolic_model;
    return d;
  }, "The one table of constraint defaults (mantra::parametrize::Defaults)");
  auto spec_of = [](const std::string& spec) { return manifold_from_spec(spec, "manifold"); };
  mf.def(
      "point_check",
      [spec_of](const std::string& manifold, const at::Tensor& X, std::vector<int64_t> shape, double atol, double scale) {
        return fn::point_check(*spec_of(manifold), X, shape, atol, scale);
      },
      py::arg("manifold"), py::arg("X"), py::arg("shape"), py::arg("atol"), py::arg("scale") = 1.0);
  mf.def(
      "rebased_base",
      [spec_of](const std::string& manifold, const at::Tensor& point, int64_t rebases, int64_t reproject_every) {
        return fn::rebased_base(*spec_of(manifold), point, rebases, reproject_every);
      },
      py::arg("manifold"), py::arg("point"), py::arg("rebases"), py::arg("reproject_every"));
  mf.def(
      "converted_base",
      [spec_of](const std::string& manifold, const at::Tensor& base, const at::Tensor& before_like) {
        return fn::converted_base(*spec_of(manifold), base, before_like.scalar_type());
      },
      "The base after a dtype conversion from before_like's dtype (re-projected when widened)", py::arg("manifold"),
      py::arg("base"), py::arg("before_like"));
  mf.def(
      "triv_retraction",
      [spec_of](const std::string& triv, const std::string& manifold, const std::string& fn_name) {
        return to_string(fn::triv_retraction(triv, *spec_of(manifold), fn_name.c_str()));
      },
      "The retraction name a geotorch triv means on the manifold (ValueError naming fn otherwise)", py::arg("triv"),
      py::arg("manifold"), py::arg("fn"));
  mf.def("keep_on_attach", &fn::keep_on_attach, py::arg("why"));
  mf.def(
      "sample_point",
      [spec_of](const std::string& manifold, std::vector<int64_t> shape, const std::string& init, const at::Tensor& like) {
        return fn::sample_point(*spec_of(manifold), shape, init, like.options());
      },
      py::arg("manifold"), py::arg("shape"), py::arg("init"), py::arg("like"));
  mf.def(
      "sample_in_chart",
      [spec_of](const std::string& manifold, std::vector<int64_t> shape, const std::string& retraction,
                const std::string& init, const at::Tensor& like) {
        return fn::sample_in_chart(*spec_of(manifold), shape, parse_retraction(retraction), init, like.options());
      },
      "expRNN's static trivialization: (base = I, v = the block-skew log of a rotation init)", py::arg("manifold"),
      py::arg("shape"), py::arg("retraction"), py::arg("init"), py::arg("like"));
  mf.def("complete_frame", &fn::complete_frame, py::arg("T"), py::arg("n"));
  mf.def(
      "inverse_spectrum",
      [](const at::Tensor& sigma, const std::string& f, double lam, double eps) {
        return fn::inverse_spectrum(sigma, pz::spectrum_map_from_string(f), lam, eps);
      },
      py::arg("sigma"), py::arg("f"), py::arg("lam"), py::arg("eps"));
  mf.def(
      "inverse_spectrum_of",
      [](const at::Tensor& sigma, const std::string& f, double lam) {
        return fn::inverse_spectrum_of(sigma, pz::spectrum_map_from_string(f), lam);
      },
      py::arg("sigma"), py::arg("f"), py::arg("lam"));
  mf.def("spectral_factors", &fn::spectral_factors, py::arg("X"), py::arg("rank"), py::arg("symmetric"));
  mf.def(
      "spectral_check",
      [](const at::Tensor& X, std::vector<int64_t> shape, int64_t rank, bool symmetric, const std::string& f, double lam,
         double atol) { return fn::spectral_check(X, shape, rank, symmetric, pz::spectrum_map_from_string(f), lam, atol); },
      py::arg("X"), py::arg("shape"), py::arg("rank"), py::arg("symmetric"), py::arg("f"), py::arg("lam"),
      py::arg("atol"));
  mf.def(
      "spectral_initial_s",
      [](std::vector<int64_t> shape, const std::string& f, double lam, double eps, const at::Tensor& like, py::object f_fn,
         py::object f_inv) {
        pz::SpectrumFunction custom;
        if (!f_fn.is_none()) custom.f = f_fn.cast<pz::TensorFunction>();
        if (!f_inv.is_none()) custom.f_inv = f_inv.cast<pz::TensorFunction>();
        return fn::spectral_initial_s(shape, pz::spectrum_map_from_string(f), lam, eps, custom, like.options());
      },
      py::arg("shape"), py::arg("f"), py::arg("lam"), py::arg("eps"), py::arg("like"), py::arg("f_fn") = py::none(),
      py::arg("f_inv") = py::none());
  mf.def("householder_vectors", &fn::householder_vectors, py::arg("X"), py::arg("special"), py::arg("wide"));
  mf.def("cholesky_inverse", &fn::cholesky_inverse, py::arg("X"));
  mf.def(
      "cholesky_sample", [](std::vector<int64_t> shape, const at::Tensor& like) { return fn::cholesky_sample(shape, like.options()); },
      py::arg("shape"), py::arg("like"));
  mf.def(
      "positive_definite_check",
      [](const at::Tensor& X, std::vector<int64_t> shape, double atol) { return fn::positive_definite_check(X, shape, atol); },
      py::arg("X"), py::arg("shape"), py::arg("atol"));
  mf.def(
      "linear_map_check",
      [](const at::Tensor& X, std::vector<int64_t> shape, bool skew, double atol) {
        return fn::linear_map_check(X, shape, skew, atol);
      },
      py::arg("X"), py::arg("shape"), py::arg("skew"), py::arg("atol"));
  mf.def(
      "linear_map_sample", [](std::vector<int64_t> shape, const at::Tensor& like) { return fn::linear_map_sample(shape, like.options()); },
      py::arg("shape"), py::arg("like"));
  mf.def("orthogonality_penalty", &mantra::nn::orthogonality_penalty, py::arg("W"), py::arg("lam"));

  bind_testing(m);

  // ------------------------------------------------------------ optimizer steps
  namespace mo = mantra::optim;
  auto mopt = m.def_submodule("optim", "Per-parameter steps of mantra::optim (one algorithm for C++ and Python)");
  mopt.def(
      "riemannian_sgd_step",
      [](const at::Tensor& param, const at::Tensor& grad, std::optional<at::Tensor> momentum_buffer, int64_t step,
         double lr, double momentum, double dampening, double weight_decay, bool nesterov,
         std::shared_ptr<Manifold> manifold, const std::string& retraction, int64_t stabilize) {
        auto options = mo::RiemannianSGDOptions(lr)
                           .momentum(momentum)
                           .dampening(dampening)
                           .weight_decay(weight_decay)
                           .nesterov(nesterov)
                           .manifold(manifold_or_euclidean(manifold))
                           .retraction(retraction_from_string(retraction, "retraction"))
                           .stabilize(stabilize);
        return mo::riemannian_sgd_step(param, grad, momentum_buffer ? *momentum_buffer : at::Tensor(), step, options);
      },
      py::arg("param"), py::arg("grad"), py::arg("momentum_buffer"), py::arg("step"), py::kw_only(), py::arg("lr"),
      py::arg("momentum"), py::arg("dampening"), py::arg("weight_decay"), py::arg("nesterov"), py::arg("manifold"),
      py::arg("retraction"), py::arg("stabilize"));
  auto adam_options = [](double lr, std::tuple<double, double> betas, double eps, double weight_decay, bool amsgrad,
                         std::shared_ptr<Manifold> manifold, const std::string& retraction, int64_t stabilize) {
    return mo::RiemannianAdamOptions(lr)
        .betas(betas)
        .eps(eps)
        .weight_decay(weight_decay)
        .amsgrad(amsgrad)
        .manifold(manifold_or_euclidean(manifold))
        .retraction(retraction_from_string(retraction, "retraction"))
        .stabilize(stabilize);
  };
  mopt.def(
      "riemannian_adam_init",
      [adam_options](const at::Tensor& param, std::shared_ptr<Manifold> manifold, bool amsgrad) {
        auto b = mo::riemannian_adam_init(param, adam_options(1e-3, {0.9, 0.999}, 1e-8, 0, amsgrad, manifold, "default", 0));
        return std::make_tuple(b.exp_avg, b.exp_avg_sq, b.max_exp_avg_sq);
      },
      py::arg("param"), py::kw_only(), py::arg("manifold"), py::arg("amsgrad"));
  mopt.def(
      "riemannian_adam_step",
      [adam_options](const at::Tensor& param, const at::Tensor& grad, const at::Tensor& exp_avg,
                     const at::Tensor& exp_avg_sq, std::optional<at::Tensor> max_exp_avg_sq, int64_t step, double lr,
                     std::tuple<double, double> betas, double eps, double weight_decay, bool amsgrad,
                     std::shared_ptr<Manifold> manifold, const std::string& retraction, int64_t stabilize) {
        mo::riemannian_adam_step(param, grad, {exp_avg, exp_avg_sq, max_exp_avg_sq ? *max_exp_avg_sq : at::Tensor()},
                                 step, adam_options(lr, betas, eps, weight_decay, amsgrad, manifold, retraction, stabilize),
                                 mo::AdamArithmetic::TorchPython);
      },
      py::arg("param"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"), py::arg("max_exp_avg_sq"),
      py::arg("step"), py::kw_only(), py::arg("lr"), py::arg("betas"), py::arg("eps"), py::arg("weight_decay"),
      py::arg("amsgrad"), py::arg("manifold"), py::arg("retraction"), py::arg("stabilize"));
}

namespace {

// The C++ frontend's side of the cross-language test (tests/python/test_cross_language.py):
// builds the constraint `fn` exactly as a C++ user would, on a module whose parameter
// "weight" is randn(shape) drawn after manual_seed(seed); adds `deltas` (name → tensor) to the
// constraint's named parameters; returns the value, and the value after rebasing every
// Parametrization in it (the weight must not move). kwargs["init"]: sample(init) first.
std::pair<at::Tensor, at::Tensor> cpp_constraint(const std::string& fn_name, std::vector<int64_t> shape,
                                                 const at::Tensor& like, int64_t seed, const py::dict& kwargs,
                                                 const std::map<std::string, at::Tensor>& deltas) {
  auto get = [&](const char* key, auto fallback) {
    using T = decltype(fallback);
    return kwargs.contains(key) ? kwargs[key].cast<T>() : fallback;
  };
  auto callable = [](const std::string& name) -> pz::TensorFunction {
    if (name == "matrix_exp") return [](const at::Tensor& A) { return at::linalg_matrix_exp(A); };
    if (name == "tanh") return [](const at::Tensor& x) { return at::tanh(x); };
    if (name == "atanh") return [](const at::Tensor& x) { return at::atanh(x); };
    if (name == "softplus") return [](const at::Tensor& x) { return at::softplus(x); };
    if (name == "softplus_inverse") return [](const at::Tensor& y) { return y + at::log(-at::expm1(-y)); };
    TORCH_CHECK_VALUE(false, "cpp_constraint: unknown callable '", name, "'");
  };
  auto custom_f = [&]() {
    pz::SpectrumFunction f{callable(get("f_fn", std::string())), nullptr};
    if (kwargs.contains("f_inv")) f.f_inv = callable(get("f_inv", std::string()));
    return f;
  };
  torch::manual_seed(seed);
  torch::nn::Module module("Holder");
  module.register_parameter("weight", at::randn(shape, like.options()));
  const std::string triv = get("triv", std::string(pz::Defaults::triv));
  const int64_t rank = get("rank", int64_t(1));
  pz::Constraint c(nullptr);
  auto erase = [](auto holder) { return pz::Constraint(std::static_pointer_cast<pz::ConstraintImpl>(holder.ptr())); };
  if (fn_name == "orthogonal") {
    c = kwargs.contains("triv_fn") ? pz::orthogonal(module, "weight", callable(get("triv_fn", std::string())))
                                   : pz::orthogonal(module, "weight", triv);
  } else if (fn_name == "grassmannian") {
    c = erase(pz::grassmannian(module, "weight", triv));
  } else if (fn_name == "sphere") {
    c = erase(pz::sphere(module, "weight", get("radius", 1.0), get("embedded", false)));
  } else if (fn_name == "oblique") {
    c = erase(pz::oblique(module, "weight"));
  } else if (fn_name == "positive_definite") {
    c = kwargs.contains("f_fn") ? erase(pz::positive_definite(module, "weight", custom_f(), triv))
                                : pz::positive_definite(module, "weight", get("triv", std::string("expm")));
  } else if (fn_name == "positive_definite_cholesky") {
    c = erase(pz::positive_definite_cholesky(module, "weight"));
  } else if (fn_name == "invertible") {
    c = erase(pz::invertible(module, "weight"));
  } else if (fn_name == "hyperbolic") {
    c = erase(pz::hyperbolic(module, "weight", get("model", std::string("lorentz"))));
  } else if (fn_name == "low_rank") {
    c = erase(pz::low_rank(module, "weight", rank, triv));
  } else if (fn_name == "fixed_rank") {
    c = kwargs.contains("f_fn") ? erase(pz::fixed_rank(module, "weight", rank, custom_f(), triv))
                                : erase(pz::fixed_rank(module, "weight", rank, triv));
  } else if (fn_name == "positive_semidefinite") {
    c = erase(pz::positive_semidefinite(module, "weight", triv));
  } else if (fn_name == "positive_semidefinite_low_rank") {
    c = erase(pz::positive_semidefinite_low_rank(module, "weight", rank, triv));
  } else if (fn_name == "positive_semidefinite_fixed_rank") {
    c = erase(pz::positive_semidefinite_fixed_rank(module, "weight", rank, triv));
  } else if (fn_name == "almost_orthogonal") {
    c = kwargs.contains("f_fn")
            ? erase(pz::almost_orthogonal(module, "weight", get("lam", 0.1), custom_f(), triv))
            : erase(pz::almost_orthogonal(module, "weight", get("lam", 0.1), get("f", std::string("sin")), triv));
  } else if (fn_name == "symmetric") {
    c = erase(pz::symmetric(module, "weight", get("lower", true)));
  } else if (fn_name == "skew") {
    c = erase(pz::skew(module, "weight", get("lower", true)));
  } else {
    TORCH_CHECK_VALUE(false, "cpp_constraint: unknown constraint '", fn_name, "'");
  }
  if (kwargs.contains("init")) c->sample(get("init", std::string("uniform")));
  {
    torch::NoGradGuard no_grad;
    auto params = c->named_parameters();
    for (const auto& [name, delta] : deltas) {
      TORCH_CHECK_VALUE(params.contains(name), "cpp_constraint: the constraint has no parameter '", name, "'");
      params[name].add_(delta);
    }
  }
  torch::NoGradGuard no_grad;
  at::Tensor value = c->forward().detach().clone();
  for (auto& [path, p] : pz::parametrizations(*c)) p->rebase();
  return {value, c->forward().detach().clone()};
}

void bind_testing(py::module& m) {
  auto mt = m.def_submodule("testing", "Helpers of the test suite (not a public API)");
  mt.def("cpp_constraint", &cpp_constraint, py::arg("fn"), py::arg("shape"), py::arg("like"), py::arg("seed"),
         py::arg("kwargs"), py::arg("deltas"));
}

}  // namespace
