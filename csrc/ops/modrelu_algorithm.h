// modReLU, the nonlinearity of unitary/orthogonal RNNs (Arjovsky et al. 2016; expRNN):
//     modReLU(z, b) = sign(z)·max(|z| + b, 0)
// with one bias b per feature (the last dimension of z). This header is its only definition:
// the scalar functions below are what the kernels of mantra::modrelu / modrelu_backward (CPU,
// CUDA) and the fused CPU loops of mantra::orthogonal_rnn compute; everything else calls the
// mantra::modrelu operator.
#pragma once

#include <ATen/ATen.h>
#include <c10/macros/Macros.h>

#include <cmath>

namespace mantra::detail {

// |x| and copysign for the compute types (float, double) on host and device.
C10_HOST_DEVICE inline float abs_value(float x) { return ::fabsf(x); }
C10_HOST_DEVICE inline double abs_value(double x) { return ::fabs(x); }
C10_HOST_DEVICE inline float with_sign_of(float x, float s) { return ::copysignf(x, s); }
C10_HOST_DEVICE inline double with_sign_of(double x, double s) { return ::copysign(x, s); }

// modReLU(z, b), evaluated as torch evaluates the formula above: NaN in z or b gives NaN
// (sign(NaN) is 0, but 0·NaN is NaN), and so does sign(0)·∞. Written with selects and
// copysign only, so that the CPU row loops vectorize.
template <typename T>
C10_HOST_DEVICE inline T modrelu(T z, T b) {
  const T r = abs_value(z) + b;
  const T relu = r == r ? (r > T(0) ? r : T(0)) : r;  // max(r, 0), keeping NaN
  return with_sign_of(relu, z) * (z != T(0) ? T(1) : T(0));
}

// The derivatives, from the output h = modReLU(z, b) alone (so backward passes need only h):
// ∂h/∂z is 1 where h ≠ 0 and 0 where the unit is cut (h = 0); ∂h/∂b is sign(h). Both are NaN
// where h is NaN, so a NaN forward gives a NaN gradient instead of hiding it.
template <typename T>
C10_HOST_DEVICE inline T modrelu_dz(T h) {
  return h != h ? h : (h != T(0) ? T(1) : T(0));
}
template <typename T>
C10_HOST_DEVICE inline T modrelu_db(T h) {
  return h != h ? h : (h > T(0) ? T(1) : (h < T(0) ? T(-1) : T(0)));
}

// Argument checks of mantra::modrelu (z (..., H), bias (H,)) and mantra::modrelu_backward
// (grad and result of the shape of z), naming the op, the argument, expected and actual value.
void check_modrelu_arguments(const at::Tensor& z, const at::Tensor& bias, const char* op);
void check_modrelu_backward_arguments(const at::Tensor& grad, const at::Tensor& result, const char* op);

}  // namespace mantra::detail
