// mantra._C.bayes: the Bayesian matrix-normal layer's free functions (mantra/bayes/functional.h)
// and KL terms (mantra/bayes/matrix_normal.h) for the Python frontend (mantra.nn.MatrixNormalLinear).
// The parameters travel as seven optional tensors (mean, a_raw, b_raw, log_sigma2, bias,
// log_tau, log_gamma), None where the family or prior has none, optionally followed by the
// covariance string ("cholesky" or "spd"; a_raw, b_raw are then U, V). The conv geometry
// travels as (in_channels, kernel_size, stride, padding, dilation).
#include <pybind11/stl.h>
#include <torch/extension.h>

#include "mantra/bayes/functional.h"
#include "mantra/bayes/matrix_normal.h"

namespace py = pybind11;
namespace mb = mantra::bayes;

namespace {
using Opt = std::optional<at::Tensor>;
mb::MatrixNormalParams params(const py::tuple& t) {
  TORCH_CHECK_VALUE(t.size() == 7 || t.size() == 8, "mantra._C.bayes: 'params' must be the 7 tensors (mean, a_raw, "
                    "b_raw, log_sigma2, bias, log_tau, log_gamma) and optionally the covariance, got ", t.size());
  auto get = [&](size_t i) { return t[i].is_none() ? at::Tensor() : t[i].cast<at::Tensor>(); };
  mb::MatrixNormalParams p{get(0), get(1), get(2), get(3), get(4), get(5), get(6)};
  if (t.size() == 8) p.covariance = t[7].cast<std::string>();
  return p;
}
mb::ConvGeometry geometry(const std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>& g) {
  return {std::get<0>(g), std::get<1>(g), std::get<2>(g), std::get<3>(g), std::get<4>(g)};
}
using Geo = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>;
py::object maybe(const at::Tensor& t) { return t.defined() ? py::cast(t) : py::none(); }
}  // namespace

void bind_bayes(pybind11::module_& m) {
  auto b = m.def_submodule("bayes", "Bayesian layers with matrix-normal posteriors (mantra::bayes)");
  b.def("check_options", &mb::check_options, py::arg("posterior"), py::arg("prior"), py::arg("sampling"));
  b.def(
      "initial_params",
      [](int64_t in, int64_t out, const std::string& posterior, const std::string& prior, bool bias, double init,
         const at::Tensor& like, std::optional<at::Generator> gen, const std::string& covariance) {
        auto p = mb::initial_params(in, out, posterior, prior, bias, init, like.options(), gen, covariance);
        return py::make_tuple(maybe(p.mean), maybe(p.a_raw), maybe(p.b_raw), maybe(p.log_sigma2), maybe(p.bias),
                              maybe(p.log_tau), maybe(p.log_gamma));
      },
      py::arg("in_features"), py::arg("out_features"), py::arg("posterior"), py::arg("prior"), py::arg("bias"),
      py::arg("init_log_variance"), py::arg("like"), py::arg("generator") = py::none(),
      py::arg("covariance") = "cholesky");
  b.def("check_covariance", &mb::check_covariance, py::arg("covariance"));
  b.def(
      "check_geometry", [](const Geo& g) { mb::check_geometry(geometry(g)); }, py::arg("geometry"));
  b.def(
      "conv_sampled_forward",
      [](const at::Tensor& X, const py::tuple& p, const std::string& posterior, const std::string& sampling,
         const Geo& g, std::optional<at::Generator> gen) {
        return mb::conv_sampled_forward(X, params(p), posterior, sampling, geometry(g), gen);
      },
      py::arg("X"), py::arg("params"), py::arg("posterior"), py::arg("sampling"), py::arg("geometry"),
      py::arg("generator") = py::none());
  b.def(
      "conv_mean_forward",
      [](const at::Tensor& X, const py::tuple& p, Opt mask, const Geo& g) {
        return mb::conv_mean_forward(X, params(p), mask, geometry(g));
      },
      py::arg("X"), py::arg("params"), py::arg("mask"), py::arg("geometry"));
  b.def(
      "conv_patches", [](const at::Tensor& X, const Geo& g) { return mb::conv_patches(X, geometry(g)); }, py::arg("X"),
      py::arg("geometry"));
  b.def(
      "conv_kernel", [](const at::Tensor& W, const Geo& g) { return mb::conv_kernel(W, geometry(g)); }, py::arg("W"),
      py::arg("geometry"));
  b.def(
      "kept_input_channels", [](const at::Tensor& mask, const Geo& g) { return mb::kept_input_channels(mask, geometry(g)); },
      py::arg("mask"), py::arg("geometry"));
  b.def(
      "pruned_conv",
      [](const py::tuple& p, const std::string& post, const std::string& prior, double t, const Geo& g, Opt keep_in,
         Opt keep_out) {
        auto [W, bias, chans, cols] = mb::pruned_conv(params(p), post, prior, t, geometry(g), keep_in, keep_out);
        return py::make_tuple(W, maybe(bias), chans, cols);
      },
      py::arg("params"), py::arg("posterior"), py::arg("prior"), py::arg("threshold"), py::arg("geometry"),
      py::arg("keep_in") = py::none(), py::arg("keep_out") = py::none());
  b.def("row_factor", [](const py::tuple& p) { return mb::row_factor(params(p)); }, py::arg("params"));
  b.def("column_factor", [](const py::tuple& p) { return mb::column_factor(params(p)); }, py::arg("params"));
  b.def(
      "sampled_forward",
      [](const at::Tensor& X, const py::tuple& p, const std::string& posterior, const std::string& sampling,
         std::optional<at::Generator> gen) { return mb::sampled_forward(X, params(p), posterior, sampling, gen); },
      py::arg("X"), py::arg("params"), py::arg("posterior"), py::arg("sampling"), py::arg("generator") = py::none());
  b.def(
      "mean_forward", [](const at::Tensor& X, const py::tuple& p, Opt mask) { return mb::mean_forward(X, params(p), mask); },
      py::arg("X"), py::arg("params"), py::arg("mask") = py::none());
  b.def(
      "kl",
      [](const py::tuple& p, const std::string& posterior, const std::string& prior, double prior_variance) {
        return mb::kl(params(p), posterior, prior, prior_variance);
      },
      py::arg("params"), py::arg("posterior"), py::arg("prior"), py::arg("prior_variance") = 1.0);
  b.def(
      "marginal_variance", [](const py::tuple& p, const std::string& post) { return mb::marginal_variance(params(p), post); },
      py::arg("params"), py::arg("posterior"));
  b.def(
      "log_alpha", [](const py::tuple& p, const std::string& post) { return mb::log_alpha(params(p), post); },
      py::arg("params"), py::arg("posterior"));
  b.def(
      "mask",
      [](const py::tuple& p, const std::string& post, const std::string& prior, double t) {
        return mb::mask(params(p), post, prior, t);
      },
      py::arg("params"), py::arg("posterior"), py::arg("prior"), py::arg("threshold"));
  b.def(
      "group_masks", [](const py::tuple& p, const std::string& post, double t) { return mb::group_masks(params(p), post, t); },
      py::arg("params"), py::arg("posterior"), py::arg("threshold"));
  b.def(
      "pruned",
      [](const py::tuple& p, const std::string& post, const std::string& prior, double t, Opt keep_in, Opt keep_out) {
        auto [W, bias, rows, cols] = mb::pruned(params(p), post, prior, t, keep_in, keep_out);
        return py::make_tuple(W, maybe(bias), rows, cols);
      },
      py::arg("params"), py::arg("posterior"), py::arg("prior"), py::arg("threshold"), py::arg("keep_in") = py::none(),
      py::arg("keep_out") = py::none());
  b.def("negative_elbo", &mb::negative_elbo, py::arg("mean_nll"), py::arg("kl_sum"), py::arg("dataset_size"),
        py::arg("kl_weight") = 1.0);
  b.def("kl_warmup", &mb::kl_warmup, py::arg("step"), py::arg("warmup_steps"));
  b.def("cholesky_factor", &mb::cholesky_factor, py::arg("raw"));
  b.def("mn_variance", &mb::mn_variance, py::arg("A"), py::arg("B"));
  b.def("mn_log_det", &mb::mn_log_det, py::arg("A"), py::arg("B"));
  b.def("kl_mn_normal", &mb::kl_mn_normal, py::arg("M"), py::arg("A"), py::arg("B"), py::arg("prior_variance"));
  b.def("kl_mn_ard", &mb::kl_mn_ard, py::arg("M"), py::arg("A"), py::arg("B"));
  b.def("kl_mn_group_ard", &mb::kl_mn_group_ard, py::arg("M"), py::arg("A"), py::arg("B"), py::arg("log_tau"),
        py::arg("log_gamma"));
  b.def("kl_diag_normal", &mb::kl_diag_normal, py::arg("mu"), py::arg("log_sigma2"), py::arg("prior_variance"));
  b.def("kl_diag_ard", &mb::kl_diag_ard, py::arg("mu"), py::arg("log_sigma2"));
  b.def("kl_diag_group_ard", &mb::kl_diag_group_ard, py::arg("mu"), py::arg("log_sigma2"), py::arg("log_tau"),
        py::arg("log_gamma"));
}
