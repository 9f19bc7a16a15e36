// mantra._C: loading it loads libmantra, which registers the torch.ops.mantra operators, and
// binds the C++ core for the Python frontend (the math stays in C++; Python wraps it).
#include <torch/extension.h>

#include "mantra/mantra.h"

namespace py = pybind11;
using namespace mantra::manifolds;

namespace {

namespace pz = mantra::parametrize;
namespace fn = mantra::parametrize::functional;

pz::SpectrumMap parse_spectrum(const std::string& f) {
  if (f == "identity") return pz::SpectrumMap::Identity;
  if (f == "softplus") return pz::SpectrumMap::Positive;
  if (f == "square") return pz::SpectrumMap::Square;
  if (f == "tanh") return pz::SpectrumMap::NearOne;
  if (f == "sin") return pz::SpectrumMap::NearOneSin;
  if (f == "scaled_sigmoid" || f == "sigmoid") return pz::SpectrumMap::NearOneSigmoid;
  TORCH_CHECK_VALUE(false, "argument 'f' must be identity, softplus, square, tanh, sin or scaled_sigmoid, got '", f, "'");
}

ManifoldPtr manifold_or_euclidean(const std::shared_ptr<Manifold>& m) {
  return m ? ManifoldPtr(m) : std::make_shared<Euclidean>();
}

Retraction parse_retraction(const std::string& name) { return retraction_from_string(name, "method"); }

template <typename M>
using Class = py::class_<M, Manifold, std::shared_ptr<M>>;

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

  // A point sampled as C++'s Parametrization.sample(init) does (uniform, origin, and on SO(n)
  // the RNN inits torus / henaff / cayley).
  m.def(
      "sample_point",
      [](std::shared_ptr<Manifold> manifold, std::vector<int64_t> shape, const std::string& init,
         const at::Tensor& like) {
        pz::ParametrizationImpl p(manifold, shape, {}, like.options());
        p.sample(init);
        return p.base.detach();
      },
      py::arg("manifold"), py::arg("shape"), py::arg("init"), py::arg("like"));
  m.def(
      "sample_in_chart",
      [](std::shared_ptr<Manifold> manifold, std::vector<int64_t> shape, const std::string& retraction,
         const std::string& init, const at::Tensor& like) {
        pz::ParametrizationImpl p(
            manifold, shape, pz::ParametrizationOptions().retraction(mantra::manifolds::retraction_from_string(retraction)),
            like.options());
        p.sample_in_chart(init);
        return std::make_pair(p.base.detach(), p.v.detach());
      },
      "C++'s Parametrization.sample_in_chart: (base = I, v = the block-skew log of a rotation init)",
      py::arg("manifold"), py::arg("shape"), py::arg("retraction"), py::arg("init"), py::arg("like"));

  // ------------------------------------------------------------ functional constraint maps
  auto mf = m.def_submodule("functional", "The constraint maps of mantra::parametrize::functional");
  mf.def(
      "spectrum",
      [](const at::Tensor& s, const std::string& f, double lam, double eps) {
        return fn::spectrum(s, parse_spectrum(f), lam, eps);
      },
      py::arg("s"), py::arg("f"), py::arg("lam") = 0.1, py::arg("eps") = 1e-5);
  mf.def(
      "inverse_spectrum",
      [](const at::Tensor& sigma, const std::string& f, double lam, double eps) {
        return fn::inverse_spectrum(sigma, parse_spectrum(f), lam, eps);
      },
      py::arg("sigma"), py::arg("f"), py::arg("lam") = 0.1, py::arg("eps") = 1e-5);
  mf.def(
      "spectral_compose",
      [](const at::Tensor& U, const at::Tensor& sigma, std::optional<at::Tensor> V) {
        return fn::spectral_compose(U, sigma, V ? *V : at::Tensor());
      },
      py::arg("U"), py::arg("sigma"), py::arg("V") = py::none());
  mf.def("spectral_factors", &fn::spectral_factors, py::arg("X"), py::arg("rank"), py::arg("symmetric"));
  mf.def(
      "spectral_check",
      [](const at::Tensor& X, std::vector<int64_t> shape, int64_t rank, bool symmetric, const std::string& f,
         double lam, double eps, double atol) {
        return fn::spectral_check(
            X, shape, pz::SpectralOptions().rank(rank).symmetric(symmetric).map(parse_spectrum(f)).lambda(lam).eps(eps).atol(atol));
      },
      py::arg("X"), py::arg("shape"), py::arg("rank"), py::arg("symmetric"), py::arg("f"), py::arg("lam") = 0.1,
      py::arg("eps") = 1e-5, py::arg("atol") = 1e-5);
  mf.def("householder", &fn::householder, py::arg("v"), py::arg("special"), py::arg("wide"));
  mf.def("householder_vectors", &fn::householder_vectors, py::arg("X"), py::arg("special"), py::arg("wide"));
  mf.def("cholesky", &fn::cholesky, py::arg("v"));
  mf.def("cholesky_inverse", &fn::cholesky_inverse, py::arg("X"));
  mf.def(
      "positive_definite_check",
      [](const at::Tensor& X, std::vector<int64_t> shape, double atol) { return fn::positive_definite_check(X, shape, atol); },
      py::arg("X"), py::arg("shape"), py::arg("atol") = 1e-5);
  mf.def("linear_map", &fn::linear_map, py::arg("v"), py::arg("skew"), py::arg("triangle") = "both");
  mf.def(
      "linear_map_check",
      [](const at::Tensor& X, std::vector<int64_t> shape, bool skew, double atol) {
        return fn::linear_map_check(X, shape, skew, atol);
      },
      py::arg("X"), py::arg("shape"), py::arg("skew"), py::arg("atol") = 1e-5);
  mf.def("orthogonality_penalty", &mantra::nn::orthogonality_penalty, py::arg("W"), py::arg("lam"));

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
