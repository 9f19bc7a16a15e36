// Per-matrix kernels of the tiny-matrix CPU paths (tiny_expm.cpp, tiny_qr_retraction.cpp): each
// runs matrix by matrix over [begin, end) of a contiguous batch, in the caller's scratch. They
// are compiled twice (tiny_kernels_impl.h): for the baseline x86-64/any target, and with
// AVX2+FMA (tiny_kernels_avx2.cpp), chosen at run time by the CPU; the FMA build rounds like
// ATen's vectorized kernels and BLAS do (fused multiply-adds). Plain data only crosses here.
#pragma once

#include <cstdint>

namespace mantra::detail::tiny {

constexpr int kTinyMaxSize = 32;   // largest n served
constexpr int kMaxRegisters = 12;  // the largest expm scheme (degree 18)
constexpr int kMaxTerms = 5;

// An ExpmScheme (expm_algorithm.h) as plain data.
struct FlatStep {
  int product, out, a, b, addend;
  double identity;
  int num_terms;
  int src[kMaxTerms];
  double coef[kMaxTerms];
};
// For a trace: the reverse sweep reads the operands of products. Those that are products
// themselves, or products a needed combine reads, are kept (kept of them, at most 4; slot[r]:
// register r's place in the trace, or -1; the last register never is one); the scaled input
// and the needed combines (replay[r]) are recomputed from them, as cheap passes in cache.
struct FlatScheme {
  int registers, num_steps;
  FlatStep steps[16];
  int kept;
  int slot[kMaxRegisters];
  bool replay[kMaxRegisters];
};

// Matrices of one plan the expm kernel runs together, interleaved (element e of lane l at
// e·L + l): 8 for n <= 8, else 1.
constexpr int kExpmLanes = 8;
inline int expm_lanes(int64_t n) { return n <= 8 ? kExpmLanes : 1; }

// Scratch elements expm_range needs for n×n matrices of at most `max_squarings` squarings
// (8 lanes of matrices for n <= 8).
inline int64_t expm_scratch_size(int64_t n, int64_t max_squarings) {
  return (2 * kMaxRegisters + 3 + max_squarings + 1) * n * n * expm_lanes(n);
}
// The trace of one group of the traced forward (what its reverse sweep reads): the kept
// registers, then the powers 0 … s-1 the squarings square (the first is the polynomial), each a
// block of n·n·expm_lanes(n) elements in the kernel's interleaved layout; groups follow each
// other in the order the kernel walks them. Per matrix that is (kept + s)·n² elements, kept <= 4
// (0, 0, 1, 2, 3, 4 for degrees 1 … 18): for 32×32 float64 with degree 18 and s = 5, 72 KiB.
// A group of c < 8 matrices still takes 8 lanes, at most one such group per distinct plan.
inline int64_t expm_trace_group_size(const FlatScheme& scheme, int64_t squarings, int64_t n) {
  return (scheme.kept + squarings) * n * n * expm_lanes(n);
}
// The QR kernels run qr_lanes matrices together, interleaved like the expm kernel's (one 32-byte
// vector per element: 8 float, 4 double).
constexpr int qr_lanes(int64_t element_size) { return static_cast<int>(32 / element_size); }
// Scratch elements of T (element_size bytes) qr_f/qr_d and qr_backward_f/d need for n×k matrices,
// with room to align it to 64 bytes.
inline int64_t qr_scratch_size(int64_t n, int64_t k, int64_t element_size) {
  return qr_lanes(element_size) * (2 * n * k + 4 * k * k + 3 * k) + 64 / element_size;
}

// The branch qr_f/qr_d took for a matrix (their `ok` output).
constexpr uint8_t kQrHouseholder = 0, kQrTwoPass = 1, kQrOnePass = 2;

// Kernel entries, one set per build; `kernels()` picks the build for this CPU.
struct Kernels {
  // out = exp(A_i), or (G non-null) the gradient of <G_i, exp(A_i)>, for i = order[p], p in
  // [begin, end); order lists the batch sorted by plan (degree, squarings: indices into schemes)
  // so that matrices sharing a plan run together, in groups of up to expm_lanes(n) taken
  // greedily from `begin` (so begin must start a group for a trace to line up). With G null and
  // trace_out non-null the forward also writes the trace of its groups there (from trace_out
  // on, expm_trace_group_size each); with G and trace_in non-null the gradient is the reverse
  // sweep alone over that trace, else it recomputes the forward.
  void (*expm_f)(const float* A, const float* G, float* out, float* trace_out, const float* trace_in, int64_t n,
                 int64_t begin, int64_t end, const int64_t* order, const int64_t* degree, const int64_t* squarings,
                 const FlatScheme* schemes, float* scratch);
  void (*expm_d)(const double* A, const double* G, double* out, double* trace_out, const double* trace_in,
                 int64_t n, int64_t begin, int64_t end, const int64_t* order, const int64_t* degree,
                 const int64_t* squarings, const FlatScheme* schemes, double* scratch);
  // CholeskyQR (one or two passes) of X_i (n×k, at X + i·n·k: row-major, or column-major where
  // x_columns) into Q_i, R_i (row-major); ok[i] the branch (kQr*), kQrHouseholder where the
  // Householder branch must take it.
  void (*qr_f)(const float* X, bool x_columns, float* Q, float* R, uint8_t* ok, int64_t n, int64_t k,
               int64_t begin, int64_t end, float* scratch);
  void (*qr_d)(const double* X, bool x_columns, double* Q, double* R, uint8_t* ok, int64_t n, int64_t k,
               int64_t begin, int64_t end, double* scratch);
  // The gradient of <G_i, Q(X_i)> from Q_i, R_i.
  void (*qr_backward_f)(const float* G, const float* Q, const float* R, float* out, int64_t n, int64_t k,
                        int64_t begin, int64_t end, float* scratch);
  void (*qr_backward_d)(const double* G, const double* Q, const double* R, double* out, int64_t n, int64_t k,
                        int64_t begin, int64_t end, double* scratch);
  const char* name;
};
const Kernels& kernels();

// The builds (defined in tiny_kernels_impl.h's two translation units).
const Kernels& kernels_baseline();
const Kernels* kernels_avx2();  // null where not built

}  // namespace mantra::detail::tiny
