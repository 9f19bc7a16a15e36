// mantra._C: loading it loads libmantra, which registers the torch.ops.mantra operators, and
// binds the C++ core for the Python frontend (the math stays in C++; Python wraps it).
#include <torch/extension.h>

#include "mantra/mantra.h"

namespace py = pybind11;
using namespace mantra::manifolds;

namespace {

Retraction parse_retraction(const std::string& name) { return retraction_from_string(name, "method"); }

template <typename M>
using Class = py::class_<M, Manifold, std::shared_ptr<M>>;

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "mantra C++ core";
  m.attr("__version__") = MANTRA_VERSION;
  m.def("cuda_enabled", &mantra::cuda_enabled, "True when libmantra was built with its CUDA kernels");

  auto mm = m.def_submodule("manifolds", "Manifolds (the C++ classes of mantra::manifolds)");
  py::class_<Manifold, std::shared_ptr<Manifold>>(mm, "Manifold",
                                                   "A manifold: the protocol of mantra::manifolds::Manifold")
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
}
