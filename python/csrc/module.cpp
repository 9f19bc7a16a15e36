// mantra._C: loading it loads libmantra, which registers the torch.ops.mantra operators.
// The bindings of the C++ core (manifolds, parametrizations, optimizers) live here too.
#include <pybind11/pybind11.h>

#include "mantra/mantra.h"

PYBIND11_MODULE(_C, m) {
  m.doc() = "mantra C++ core";
  m.attr("__version__") = MANTRA_VERSION;
  m.def("cuda_enabled", &mantra::cuda_enabled, "True when libmantra was built with its CUDA kernels");
}
