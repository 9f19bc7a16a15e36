// CUDA registration of the orthogonal-RNN recurrence: for now the ATen reference (one cuBLAS
// addmm and the elementwise modReLU per step). The fused persistent kernel is the CUDA issue's.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "ops/orthogonal_rnn_algorithm.h"

TORCH_LIBRARY_IMPL(mantra, CUDA, m) {
  m.impl("orthogonal_rnn", &mantra::detail::orthogonal_rnn_generic);
  m.impl("orthogonal_rnn_backward", &mantra::detail::orthogonal_rnn_backward_generic);
}
