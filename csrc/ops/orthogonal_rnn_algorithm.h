// The orthogonal-RNN recurrence over a whole sequence (expRNN, Lezcano-Casado & Martínez-Rubio
// 2019):  h_t = modReLU(u_t + h_{t-1}·Bᵀ, b),  modReLU(z, b) = sign(z)·max(|z| + b, 0),
// where u_t = W_in·x_t is projected by the caller (one GEMM for all t) and B is the recurrent
// matrix (computed once per sequence). Batches are rows: u (T, N, H), h0 (N, H), B (H, H).
//
// Backward (BPTT) needs only the hidden states: where h_t ≠ 0 the derivative of modReLU in z is
// 1 and sign(z_t) = sign(h_t); where h_t = 0 it is 0. So nothing but `hidden` is saved.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace mantra::detail {

// Validates the arguments of orthogonal_rnn / orthogonal_rnn_backward (shapes, dtypes, devices),
// naming the argument with the expected and actual value.
void check_orthogonal_rnn_arguments(const at::Tensor& input, const at::Tensor& h0, const at::Tensor& recurrent,
                                    const at::Tensor& bias, const char* op);

// The dtype the recurrence is computed in: float32 for half/bfloat16, else the input dtype.
at::ScalarType rnn_compute_dtype(at::ScalarType t);

// Reference implementations with ATen operations (any device): one addmm and the elementwise
// modReLU per step. The CPU kernel is the fast one; these serve the other devices and the tests.
at::Tensor orthogonal_rnn_generic(const at::Tensor& input, const at::Tensor& h0, const at::Tensor& recurrent,
                                  const at::Tensor& bias);
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> orthogonal_rnn_backward_generic(
    const at::Tensor& grad_hidden, const at::Tensor& hidden, const at::Tensor& h0, const at::Tensor& recurrent,
    const at::Tensor& bias);

}  // namespace mantra::detail
