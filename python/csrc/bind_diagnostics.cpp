// mantra._C.diagnostics: the isometry diagnostics and critical initialization of
// mantra::diagnostics. A Python model (any callable, e.g. a torch.nn.Module) reaches C++ as a
// std::function; the power iterations run in C++ with the GIL released and take it back only
// to call the model's forward (autograd then runs in the C++ engine as usual).
#include <pybind11/functional.h>
#include <pybind11/stl.h>
#include <torch/extension.h>

#include <sstream>

#include "mantra/diagnostics.h"

namespace py = pybind11;
namespace dg = mantra::diagnostics;

namespace {

dg::PowerIterationOptions power_options(int64_t max_iterations, double tolerance, uint64_t seed) {
  dg::PowerIterationOptions o;
  o.max_iterations = max_iterations;
  o.tolerance = tolerance;
  o.seed = seed;
  return o;
}

}  // namespace

void bind_diagnostics(py::module& m) {
  auto md = m.def_submodule("diagnostics", "Isometry diagnostics and critical initialization (mantra::diagnostics)");
  using release = py::call_guard<py::gil_scoped_release>;

  py::class_<dg::JacobianSpectrum>(md, "JacobianSpectrum", "Result of jacobian_spectrum (per-row tensors).")
      .def_readonly("s_max", &dg::JacobianSpectrum::s_max)
      .def_readonly("chi", &dg::JacobianSpectrum::chi)
      .def_readonly("chi_stderr", &dg::JacobianSpectrum::chi_stderr)
      .def_readonly("singular_values", &dg::JacobianSpectrum::singular_values)
      .def_readonly("iterations", &dg::JacobianSpectrum::iterations)
      .def_readonly("residual", &dg::JacobianSpectrum::residual)
      .def_readonly("converged", &dg::JacobianSpectrum::converged)
      .def("__repr__", [](const dg::JacobianSpectrum& s) {
        std::ostringstream os;
        os << "JacobianSpectrum(s_max max=" << s.s_max.max().item<double>() << ", iterations=" << s.iterations
           << ", residual=" << s.residual << ", converged=" << (s.converged ? "True" : "False") << ")";
        return os.str();
      });
  py::class_<dg::FisherEigen>(md, "FisherEigen", "Result of fisher_max_eigenvalue.")
      .def_readonly("lambda_max", &dg::FisherEigen::lambda_max)
      .def_readonly("vector", &dg::FisherEigen::vector)
      .def_readonly("iterations", &dg::FisherEigen::iterations)
      .def_readonly("residual", &dg::FisherEigen::residual)
      .def_readonly("converged", &dg::FisherEigen::converged)
      .def("__repr__", [](const dg::FisherEigen& e) {
        std::ostringstream os;
        os << "FisherEigen(lambda_max=" << e.lambda_max << ", iterations=" << e.iterations << ", residual=" << e.residual
           << ", converged=" << (e.converged ? "True" : "False") << ")";
        return os.str();
      });
  py::class_<dg::FisherBlockBound>(md, "FisherBlockBound", "Result of fisher_block_bound.")
      .def_readonly("block_lambda_max", &dg::FisherBlockBound::block_lambda_max)
      .def_readonly("block_iterations", &dg::FisherBlockBound::block_iterations)
      .def_readonly("lower", &dg::FisherBlockBound::lower)
      .def_readonly("gershgorin", &dg::FisherBlockBound::gershgorin)
      .def_readonly("sum", &dg::FisherBlockBound::sum)
      .def_readonly("upper", &dg::FisherBlockBound::upper);
  py::class_<dg::CriticalPoint>(md, "CriticalPoint", "(sigma_w, sigma_b) on the critical line for q_star.")
      .def_readonly("sigma_w", &dg::CriticalPoint::sigma_w)
      .def_readonly("sigma_b", &dg::CriticalPoint::sigma_b)
      .def_readonly("q_star", &dg::CriticalPoint::q_star)
      .def_readonly("chi", &dg::CriticalPoint::chi)
      .def("__repr__", [](const dg::CriticalPoint& p) {
        std::ostringstream os;
        os.precision(17);
        os << "CriticalPoint(sigma_w=" << p.sigma_w << ", sigma_b=" << p.sigma_b << ", q_star=" << p.q_star
           << ", chi=" << p.chi << ")";
        return os.str();
      });

  md.def(
      "jacobian_spectrum",
      [](const dg::Function& f, const torch::Tensor& x, int64_t max_iterations, double tolerance, uint64_t seed,
         int64_t chi_probes, bool full_spectrum) {
        dg::JacobianSpectrumOptions o;
        o.max_iterations = max_iterations;
        o.tolerance = tolerance;
        o.seed = seed;
        o.chi_probes = chi_probes;
        o.full_spectrum = full_spectrum;
        return dg::jacobian_spectrum(f, x, o);
      },
      py::arg("f"), py::arg("x"), py::arg("max_iterations") = 500, py::arg("tolerance") = 1e-6, py::arg("seed") = 0,
      py::arg("chi_probes") = 16, py::arg("full_spectrum") = false, release());
  md.def("jacobian", &dg::jacobian, py::arg("f"), py::arg("x"), release());
  md.def("fisher_vector_product", &dg::fisher_vector_product, py::arg("model"), py::arg("parameters"), py::arg("loss"),
         py::arg("data"), py::arg("v"), release());
  md.def(
      "fisher_max_eigenvalue",
      [](const dg::Function& f, const std::vector<torch::Tensor>& params, const std::string& loss,
         const torch::Tensor& data, int64_t max_iterations, double tolerance, uint64_t seed) {
        return dg::fisher_max_eigenvalue(f, params, loss, data, power_options(max_iterations, tolerance, seed));
      },
      py::arg("model"), py::arg("parameters"), py::arg("loss"), py::arg("data"), py::arg("max_iterations") = 500,
      py::arg("tolerance") = 1e-6, py::arg("seed") = 0, release());
  md.def("fisher_matrix", &dg::fisher_matrix, py::arg("model"), py::arg("parameters"), py::arg("loss"), py::arg("data"),
         release());
  md.def(
      "fisher_block_bound",
      [](const dg::Function& f, const std::vector<std::vector<torch::Tensor>>& blocks, const std::string& loss,
         const torch::Tensor& data, int64_t max_iterations, double tolerance, uint64_t seed) {
        return dg::fisher_block_bound(f, blocks, loss, data, power_options(max_iterations, tolerance, seed));
      },
      py::arg("model"), py::arg("blocks"), py::arg("loss"), py::arg("data"), py::arg("max_iterations") = 500,
      py::arg("tolerance") = 1e-6, py::arg("seed") = 0, release());

  md.def("gauss_hermite", &dg::gauss_hermite, py::arg("n") = 201);
  md.def("mean_squared_activation", &dg::mean_squared_activation, py::arg("activation"), py::arg("q"),
         py::arg("nodes") = 201);
  md.def("mean_squared_derivative", &dg::mean_squared_derivative, py::arg("activation"), py::arg("q"),
         py::arg("nodes") = 201);
  md.def("q_map", &dg::q_map, py::arg("activation"), py::arg("sigma_w"), py::arg("sigma_b"), py::arg("q"),
         py::arg("nodes") = 201);
  md.def("chi", &dg::chi, py::arg("activation"), py::arg("sigma_w"), py::arg("q"), py::arg("nodes") = 201);
  md.def("fixed_point_q", &dg::fixed_point_q, py::arg("activation"), py::arg("sigma_w"), py::arg("sigma_b"),
         py::arg("nodes") = 201, py::arg("q_max") = 1e6);
  md.def("critical_point", &dg::critical_point, py::arg("activation"), py::arg("q_star"), py::arg("nodes") = 201);
  md.def("orthogonal_init_", &dg::orthogonal_init_, py::arg("weight"), py::arg("sigma_w"),
         py::arg("generator") = py::none());
  md.def("gaussian_init_", &dg::gaussian_init_, py::arg("weight"), py::arg("sigma_w"), py::arg("generator") = py::none());
  md.def("bias_init_", &dg::bias_init_, py::arg("bias"), py::arg("sigma_b"), py::arg("generator") = py::none());
}
