// CPU kernels of the orthogonal-RNN recurrence (orthogonal_rnn_algorithm.h). Per time step one
// BLAS GEMM (mm_out on a view, so MKL writes straight into the output or gradient slice) and
// one fused pass: forward, u_t + GEMM output through modReLU; backward, the derivative and the
// step's share of dL/db (both from modrelu_algorithm.h, so NaN propagates as in torch's ops).
// No buffer is allocated inside the time loop. The gradient of the recurrent matrix is one
// large GEMM over all T·N rows after the loop (plus the h0 term), not one per step. (ATen's raw cpublas::gemm is not exported by libtorch.)
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "ops/cpu/modrelu_loops.h"
#include "ops/kernel_calls.h"
#include "ops/orthogonal_rnn_algorithm.h"

namespace mantra {
namespace {

// hidden (T, N, H) ← the recurrence; all tensors contiguous in the compute dtype.
template <typename scalar_t>
void forward_kernel(const at::Tensor& u, const at::Tensor& h0, const at::Tensor& B, const at::Tensor& b,
                    at::Tensor& hidden) {
  const int64_t T = u.size(0), N = u.size(1), H = u.size(2);
  if (T * N * H == 0) return;
  const at::Tensor Bt = B.t();
  const scalar_t* u_all = u.const_data_ptr<scalar_t>();
  at::Tensor prev = h0;
  for (int64_t t = 0; t < T; ++t) {
    at::Tensor cur = hidden.select(0, t);
    at::mm_out(cur, prev, Bt);  // cur = h_{t-1}·Bᵀ (beta = 0: C is not read)
    // cur ← modReLU(u_t + cur, b), one pass while cur is in cache.
    detail::modrelu_add_rows_<scalar_t>(cur.mutable_data_ptr<scalar_t>(), u_all + t * N * H,
                                        b.const_data_ptr<scalar_t>(), N, H);
    prev = cur;
  }
}

template <typename scalar_t>
void backward_kernel(const at::Tensor& grad_hidden, const at::Tensor& hidden, const at::Tensor& h0,
                     const at::Tensor& B, at::Tensor& grad_input, at::Tensor& grad_h0, at::Tensor& grad_B,
                     at::Tensor& grad_b) {
  const int64_t T = hidden.size(0), N = hidden.size(1), H = hidden.size(2);
  grad_h0.zero_();
  grad_B.zero_();
  grad_b.zero_();
  if (T * N * H == 0) return;
  // grad_h0 doubles as the carry dL/dh_{t-1} coming back from step t; at the end it is dL/dh0.
  scalar_t* carry = grad_h0.mutable_data_ptr<scalar_t>();
  const scalar_t* g_all = grad_hidden.const_data_ptr<scalar_t>();
  const scalar_t* h_all = hidden.const_data_ptr<scalar_t>();
  scalar_t* gp_all = grad_input.mutable_data_ptr<scalar_t>();
  // dL/db = Σ_{t,n} grad_pre·∂h/∂b, fused into the step's pass (no second sweep over T·N·H):
  // each chunk sums its rows in scalar_t (at most N of them), then adds into its thread's
  // double partial sums; buffers allocated once, outside the time loop.
  const int64_t threads = at::get_num_threads();
  std::vector<double> partial(static_cast<size_t>(threads * H), 0.0);
  std::vector<scalar_t> chunk_sum(static_cast<size_t>(threads * H), scalar_t(0));
  for (int64_t t = T - 1; t >= 0; --t) {
    const scalar_t* g = g_all + t * N * H;
    const scalar_t* h = h_all + t * N * H;
    scalar_t* gp = gp_all + t * N * H;
    at::parallel_for(0, N, detail::row_grain(H), [&](int64_t begin, int64_t end) {
      const int64_t tid = at::get_thread_num();
      scalar_t* acc = chunk_sum.data() + tid * H;
      double* part = partial.data() + tid * H;
      for (int64_t i = begin; i < end; ++i) {
        const scalar_t* gi = g + i * H;
        const scalar_t* hi = h + i * H;
        const scalar_t* ci = carry + i * H;
        scalar_t* gpi = gp + i * H;
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t v = (gi[j] + ci[j]) * detail::modrelu_dz(hi[j]);
          gpi[j] = v;
          acc[j] += v * detail::modrelu_db(hi[j]);
        }
      }
      for (int64_t j = 0; j < H; ++j) {
        part[j] += static_cast<double>(acc[j]);
        acc[j] = scalar_t(0);
      }
    });
    at::Tensor gp_t = grad_input.select(0, t);
    at::mm_out(grad_h0, gp_t, B);  // dL/dh_{t-1} = grad_pre_t·B
  }
  // dL/dB = Σ_t grad_pre_tᵀ·h_{t-1}: one GEMM over all T·N rows (plus the h0 term).
  grad_B.addmm_(grad_input[0].t(), h0);
  if (T > 1) {
    grad_B.addmm_(grad_input.narrow(0, 1, T - 1).reshape({-1, H}).t(), hidden.narrow(0, 0, T - 1).reshape({-1, H}));
  }
  scalar_t* gb = grad_b.mutable_data_ptr<scalar_t>();
  for (int64_t j = 0; j < H; ++j) {
    double sum = 0;
    for (int64_t p = 0; p < threads; ++p) sum += partial[p * H + j];
    gb[j] = static_cast<scalar_t>(sum);
  }
}

at::Tensor as_compute(const at::Tensor& t, at::ScalarType dtype) { return t.to(dtype).contiguous(); }

at::Tensor orthogonal_rnn_cpu(const at::Tensor& input, const at::Tensor& h0, const at::Tensor& recurrent,
                              const at::Tensor& bias) {
  MANTRA_COUNT_KERNEL_CALL("orthogonal_rnn.CPU");
  detail::check_orthogonal_rnn_arguments(input, h0, recurrent, bias);
  const auto dtype = detail::rnn_compute_dtype(input.scalar_type());
  const at::Tensor u = as_compute(input, dtype), h = as_compute(h0, dtype), B = as_compute(recurrent, dtype),
                   b = as_compute(bias, dtype);
  at::Tensor hidden = at::empty(input.sizes(), u.options());
  AT_DISPATCH_FLOATING_TYPES(dtype, "mantra::orthogonal_rnn", [&] { forward_kernel<scalar_t>(u, h, B, b, hidden); });
  return hidden.to(input.scalar_type());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> orthogonal_rnn_backward_cpu(
    const at::Tensor& grad_hidden, const at::Tensor& hidden, const at::Tensor& h0, const at::Tensor& recurrent,
    const at::Tensor& bias) {
  MANTRA_COUNT_KERNEL_CALL("orthogonal_rnn_backward.CPU");
  detail::check_orthogonal_rnn_backward_arguments(grad_hidden, hidden, h0, recurrent, bias);
  const auto dtype = detail::rnn_compute_dtype(hidden.scalar_type());
  const at::Tensor g = as_compute(grad_hidden, dtype), hs = as_compute(hidden, dtype), h = as_compute(h0, dtype),
                   B = as_compute(recurrent, dtype);
  const int64_t N = hidden.size(1), H = hidden.size(2);
  at::Tensor grad_input = at::empty(hidden.sizes(), hs.options());
  at::Tensor grad_h0 = at::empty({N, H}, hs.options());
  at::Tensor grad_B = at::empty({H, H}, hs.options());
  at::Tensor grad_b = at::empty({H}, hs.options());
  AT_DISPATCH_FLOATING_TYPES(dtype, "mantra::orthogonal_rnn_backward", [&] {
    backward_kernel<scalar_t>(g, hs, h, B, grad_input, grad_h0, grad_B, grad_b);
  });
  const auto out = hidden.scalar_type();
  return {grad_input.to(out), grad_h0.to(out), grad_B.to(out), grad_b.to(out)};
}

}  // namespace
}  // namespace mantra

TORCH_LIBRARY_IMPL(mantra, CPU, m) {
  m.impl("orthogonal_rnn", &mantra::orthogonal_rnn_cpu);
  m.impl("orthogonal_rnn_backward", &mantra::orthogonal_rnn_backward_cpu);
}
