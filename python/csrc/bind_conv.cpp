// The C++ side of tests/python/test_conv.py's cross-language test (mantra._C.testing.cpp_conv2d):
// mantra::nn::Conv2d built as a C++ user would, after manual_seed(seed).
#include <pybind11/stl.h>
#include <torch/extension.h>

#include "mantra/mantra.h"

namespace py = pybind11;

namespace {

// The kernel (effective_weight) and forward(input) of a Conv2d built in float32 after
// manual_seed(seed), converted to input's dtype.
std::pair<at::Tensor, at::Tensor> cpp_conv2d(int64_t seed, int64_t in_channels, int64_t out_channels,
                                             std::vector<int64_t> kernel_size, std::vector<int64_t> stride,
                                             std::vector<int64_t> padding, std::vector<int64_t> dilation,
                                             int64_t groups, bool bias, const std::string& constraint,
                                             const std::string& triv, int64_t rank, const std::string& scale,
                                             const at::Tensor& input) {
  TORCH_CHECK_VALUE(kernel_size.size() == 2 && stride.size() == 2 && padding.size() == 2 && dilation.size() == 2,
                    "cpp_conv2d: kernel_size, stride, padding and dilation must be pairs");
  torch::manual_seed(seed);
  mantra::nn::Conv2d layer(mantra::nn::Conv2dOptions(in_channels, out_channels, {kernel_size[0], kernel_size[1]})
                               .stride({stride[0], stride[1]})
                               .padding({padding[0], padding[1]})
                               .dilation({dilation[0], dilation[1]})
                               .groups(groups)
                               .bias(bias)
                               .constraint(constraint)
                               .triv(triv)
                               .rank(rank)
                               .scale(scale));
  layer->to(input.scalar_type());
  torch::NoGradGuard no_grad;
  return {layer->effective_weight(), layer->forward(input)};
}

}  // namespace

void bind_conv(py::module_& m) {
  py::module_ t = m.attr("testing");
  t.def("cpp_conv2d", &cpp_conv2d, py::arg("seed"), py::arg("in_channels"), py::arg("out_channels"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
        py::arg("bias"), py::arg("constraint"), py::arg("triv"), py::arg("rank"), py::arg("scale"), py::arg("input"));
}
