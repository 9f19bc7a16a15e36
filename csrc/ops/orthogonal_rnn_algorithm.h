// The orthogonal-RNN recurrence over a whole sequence (expRNN, Lezcano-Casado & Martínez-Rubio
// 2019):  h_t = modReLU(u_t + h_{t-1}·Bᵀ, b)  (modrelu_algorithm.h),
// where u_t = W_in·x_t is projected by the caller (one GEMM for all t) and B is the recurrent
// matrix (computed once per sequence). Batches are rows: u (T, N, H), h0 (N, H), B (H, H).
//
// Backward (BPTT) needs only the hidden states: the derivatives of modReLU depend on its
// output alone (∂h/∂z = 1 where h ≠ 0, 0 where h = 0; ∂h/∂b = sign(h)). So nothing but
// `hidden` is saved.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

#include "modrelu_algorithm.h"  // (relative: the tests include this header by path)

namespace mantra::detail {

// Argument checks of mantra::orthogonal_rnn (input, h0, recurrent, bias) and of
// mantra::orthogonal_rnn_backward (grad_hidden, hidden, h0, recurrent, bias): shapes, dtypes,
// devices, naming the op, the argument, the expected and the actual value. Every kernel of the
// op (Meta, CPU, the reference) calls its one check.
void check_orthogonal_rnn_arguments(const at::Tensor& input, const at::Tensor& h0, const at::Tensor& recurrent,
                                    const at::Tensor& bias);
void check_orthogonal_rnn_backward_arguments(const at::Tensor& grad_hidden, const at::Tensor& hidden,
                                             const at::Tensor& h0, const at::Tensor& recurrent,
                                             const at::Tensor& bias);

// The dtype the recurrence is computed in: float32 for half/bfloat16, else the input dtype.
at::ScalarType rnn_compute_dtype(at::ScalarType t);

// Reference implementations with ATen operations (any device): one addmm and one
// mantra::modrelu (or modrelu_backward) per step. The CPU kernel is the fast one; these serve
// the other devices and the tests.
at::Tensor orthogonal_rnn_generic(const at::Tensor& input, const at::Tensor& h0, const at::Tensor& recurrent,
                                  const at::Tensor& bias);
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> orthogonal_rnn_backward_generic(
    const at::Tensor& grad_hidden, const at::Tensor& hidden, const at::Tensor& h0, const at::Tensor& recurrent,
    const at::Tensor& bias);

}  // namespace mantra::detail
