// The bodies of the tiny-matrix kernels (tiny_kernels.h), included by exactly two translation
// units, each compiled for its own instruction set; everything here has internal linkage so the
// two builds never merge. Plain loops on raw pointers, no library templates. N > 0 fixes the
// size at compile time (unrolled, vectorized loops); N == 0 takes the runtime size.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "ops/cpu/tiny_kernels.h"
#include "ops/qr_retraction_rule.h"  // plain C++: the CholeskyQR branch rule and thresholds

namespace mantra::detail::tiny {
namespace {

// Calls f(std::integral_constant<int, N>{}) with N = n for the sizes with their own
// instantiation (1 … 8, 16, 32), N = 0 (runtime size) otherwise.
template <typename F>
void dispatch_size(int64_t n, F&& f) {
  switch (n) {
#define MANTRA_TINY_CASE(K)                   \
  case K:                                     \
    f(std::integral_constant<int, K>{});      \
    return;
    MANTRA_TINY_CASE(1)
    MANTRA_TINY_CASE(2)
    MANTRA_TINY_CASE(3)
    MANTRA_TINY_CASE(4)
    MANTRA_TINY_CASE(5)
    MANTRA_TINY_CASE(6)
    MANTRA_TINY_CASE(7)
    MANTRA_TINY_CASE(8)
    MANTRA_TINY_CASE(16)
    MANTRA_TINY_CASE(32)
#undef MANTRA_TINY_CASE
    default:
      f(std::integral_constant<int, 0>{});
  }
}

template <typename T>
inline void copy(T* __restrict out, const T* __restrict in, int count) {
  for (int e = 0; e < count; ++e) out[e] = in[e];
}

// out (r×c) = a (r×m) · b (m×c), or out += a·b when `accumulate` (the product summed first, then
// added, as BLAS does for beta = 1). out must not alias a or b. R, M, C fixed when > 0. Rows are
// taken four at a time (then one by one), each accumulated in column blocks of 64 bytes (two
// AVX2 registers), which the k loop keeps in registers: eight independent accumulators hide the
// FMA latency. Every element is summed over k ascending from zero, whatever the grouping.
template <int RB, int M, int C, typename T>
inline void matmul_rows(T* __restrict out, const T* __restrict a, const T* __restrict b, int m_rt, int c_rt,
                        bool accumulate) {
  const int m = M > 0 ? M : m_rt, c = C > 0 ? C : c_rt;
  constexpr int kBlock = 64 / sizeof(T);
  constexpr int BJ = (C > 0 && C < kBlock) ? C : (C > 0 && C % kBlock == 0 ? kBlock : kTinyMaxSize);
  for (int j0 = 0; j0 < c; j0 += BJ) {
    const int bj = (C > 0 && C % BJ == 0) ? BJ : (c - j0 < BJ ? c - j0 : BJ);
    T acc[RB][BJ];
    for (int ii = 0; ii < RB; ++ii)
      for (int j = 0; j < bj; ++j) acc[ii][j] = T(0);
    for (int k = 0; k < m; ++k) {
      const T* brow = b + k * c + j0;
      for (int ii = 0; ii < RB; ++ii) {
        const T aik = a[ii * m + k];
        // No early complete unrolling: GCC would then fail to vectorize the fixed sizes.
#pragma GCC unroll 1
        for (int j = 0; j < bj; ++j) acc[ii][j] += aik * brow[j];
      }
    }
    for (int ii = 0; ii < RB; ++ii) {
      T* orow = out + ii * c + j0;
      if (accumulate) {
        for (int j = 0; j < bj; ++j) orow[j] += acc[ii][j];
      } else {
        for (int j = 0; j < bj; ++j) orow[j] = acc[ii][j];
      }
    }
  }
}

template <int R, int M, int C, typename T>
inline void matmul(T* __restrict out, const T* __restrict a, const T* __restrict b, int r_rt, int m_rt, int c_rt,
                   bool accumulate) {
  const int r = R > 0 ? R : r_rt, m = M > 0 ? M : m_rt, c = C > 0 ? C : c_rt;
  int i = 0;
  for (; i + 4 <= r; i += 4) matmul_rows<4, M, C>(out + i * c, a + i * m, b, m, c, accumulate);
  if (R <= 0 || R % 4 != 0)  // (a tail GCC would otherwise warn about at fixed multiples of 4)
    for (; i < r; ++i) matmul_rows<1, M, C>(out + i * c, a + i * m, b, m, c, accumulate);
}

// out (c×r) = aᵀ for a (r×c).
template <int R, int C, typename T>
inline void transpose(T* __restrict out, const T* __restrict a, int r_rt, int c_rt) {
  const int r = R > 0 ? R : r_rt, c = C > 0 ? C : c_rt;
  for (int i = 0; i < r; ++i)
    for (int j = 0; j < c; ++j) out[j * r + i] = a[i * c + j];
}

// ---- matrix exponential (the scheme walk of expm_algorithm.cpp) ----
//
// L > 1 lanes: L matrices that share a plan (degree and squarings) run together, stored
// interleaved (element e of lane l at e·L + l), so every operation is a loop over L lanes that
// vectorizes across matrices. Each lane does exactly the per-matrix operations, in the same
// order (products summed over k ascending from zero), so its result does not depend on L.

template <int L>
constexpr int lanes_for_size(int N) {
  return N > 0 && N <= 8 ? L : 1;
}

// out = a·b (or out += a·b) on L interleaved n×n matrices. Up to JB = 4 output columns at a
// time share each load of a's lane vector (a load per multiply-add instead of two).
template <int JB, int N, int L, typename T>
inline void lane_matmul_cols(T* __restrict out, const T* __restrict a, const T* __restrict b, int n, int i, int j0,
                             bool accumulate) {
  T acc[JB][L];
  for (int jj = 0; jj < JB; ++jj)
    for (int l = 0; l < L; ++l) acc[jj][l] = T(0);
  for (int k = 0; k < n; ++k) {
    const T* x = a + (i * n + k) * L;
    const T* y = b + (k * n + j0) * L;
    for (int jj = 0; jj < JB; ++jj)
      for (int l = 0; l < L; ++l) acc[jj][l] += x[l] * y[jj * L + l];
  }
  T* o = out + (i * n + j0) * L;
  if (accumulate) {
    for (int jj = 0; jj < JB; ++jj)
      for (int l = 0; l < L; ++l) o[jj * L + l] += acc[jj][l];
  } else {
    for (int jj = 0; jj < JB; ++jj)
      for (int l = 0; l < L; ++l) o[jj * L + l] = acc[jj][l];
  }
}

template <int N, int L, typename T>
inline void lane_matmul(T* __restrict out, const T* __restrict a, const T* __restrict b, int n_rt, bool accumulate) {
  const int n = N > 0 ? N : n_rt;
  for (int i = 0; i < n; ++i) {
    int j = 0;
    for (; j + 4 <= n; j += 4) lane_matmul_cols<4, N, L>(out, a, b, n, i, j, accumulate);
    for (; j < n; ++j) lane_matmul_cols<1, N, L>(out, a, b, n, i, j, accumulate);
  }
}

#if defined(__GNUC__)
#define MANTRA_TINY_VECTOR_PRODUCTS 1
// 32-byte vectors of the compiler's vector extension: one AVX2 register in the AVX2 build, two
// SSE registers in the baseline one.
template <typename T>
struct Vec32 {
  typedef T type __attribute__((vector_size(32)));
};
template <typename T>
using vec32_t = typename Vec32<T>::type;

// (By reference: a function returning a 32-byte vector would warn about its ABI in the
// baseline build.)
template <typename T>
inline void load32(vec32_t<T>& v, const T* p) {
  __builtin_memcpy(&v, p, sizeof(v));
}
template <typename T>
inline void store32(T* p, const vec32_t<T>& v) {
  __builtin_memcpy(p, &v, sizeof(v));
}

// out = a·b (or out += a·b) for N×N matrices, N a multiple of 4 and of two vectors (16, 32):
// blocks of 4 rows × 2 vectors of columns whose 8 accumulators live in registers across the k
// loop (where GCC, given matmul_rows' arrays, kept some in memory). Every element is summed over
// k ascending from zero, as in matmul_rows, so the results are the same.
template <int N, typename T>
inline void matmul_square_vec(T* __restrict out, const T* __restrict a, const T* __restrict b, bool accumulate) {
  using V = vec32_t<T>;
  constexpr int W = 32 / sizeof(T);
  static_assert(N % 4 == 0 && N % (2 * W) == 0, "matmul_square_vec: N must be a multiple of 4 and 2 vectors");
  for (int i0 = 0; i0 < N; i0 += 4)
    for (int j0 = 0; j0 < N; j0 += 2 * W) {
      V c00 = {}, c01 = {}, c10 = {}, c11 = {}, c20 = {}, c21 = {}, c30 = {}, c31 = {};
      for (int k = 0; k < N; ++k) {
        V b0, b1;
        load32(b0, b + k * N + j0);
        load32(b1, b + k * N + j0 + W);
        const T x0 = a[i0 * N + k];
        const T x1 = a[(i0 + 1) * N + k];
        const T x2 = a[(i0 + 2) * N + k];
        const T x3 = a[(i0 + 3) * N + k];
        c00 += x0 * b0;
        c01 += x0 * b1;
        c10 += x1 * b0;
        c11 += x1 * b1;
        c20 += x2 * b0;
        c21 += x2 * b1;
        c30 += x3 * b0;
        c31 += x3 * b1;
      }
      T* o = out + i0 * N + j0;
      const auto finish = [&](int offset, V& acc) {
        if (accumulate) {  // out += a·b: the product summed first, then added
          V v;
          load32(v, o + offset);
          acc = v + acc;
        }
        store32(o + offset, acc);
      };
      finish(0, c00);
      finish(W, c01);
      finish(N, c10);
      finish(N + W, c11);
      finish(2 * N, c20);
      finish(2 * N + W, c21);
      finish(3 * N, c30);
      finish(3 * N + W, c31);
    }
}
#else
#define MANTRA_TINY_VECTOR_PRODUCTS 0
#endif

// The vector kernel serves 16 and 32 (float and double); other n > 8 take matmul.
template <int N, typename T>
constexpr bool mm_vectorized() {
  return MANTRA_TINY_VECTOR_PRODUCTS && N > 0 && N % 4 == 0 && N % (64 / sizeof(T)) == 0;
}

// out = a·b (or +=) on the expm kernel's L interleaved n×n matrices.
template <int N, int L, typename T>
inline void mm(T* out, const T* a, const T* b, int n, bool accumulate) {
  if constexpr (L > 1) {
    lane_matmul<N, L>(out, a, b, n, accumulate);
  } else {
#if MANTRA_TINY_VECTOR_PRODUCTS
    if constexpr (mm_vectorized<N, T>()) {
      matmul_square_vec<N>(out, a, b, accumulate);
      return;
    }
#endif
    matmul<N, N, N>(out, a, b, n, n, n, accumulate);
  }
}

// Where one group's blocks (n·n·L elements each) live. The scratch holds, in blocks:
// registers, their adjoints, three temporaries, the powers the squarings square. With a trace
// (expm_trace_group_size) the kept registers and the powers 0 … s-1 live there instead, and the
// last square goes to the scratch's first power block. With s > 0 the last register (the
// polynomial) is power 0 itself, so the squaring chain starts without a copy.
template <typename T>
struct ExpmWork {
  T* regs[kMaxRegisters];
  T* adj_base;
  T* tmp_base;
  T* power_base;
  T* last_square;  // where power s (exp) goes
  int block;
  T* reg(int r) const { return regs[r]; }
  T* adj(int r) const { return adj_base + r * block; }
  T* tmp(int t) const { return tmp_base + t * block; }
  T* power(int64_t i) const { return power_base + i * block; }
};

template <typename T>
ExpmWork<T> expm_work(T* scratch, int block, const FlatScheme& scheme, int64_t s, T* trace) {
  ExpmWork<T> w;
  w.block = block;
  w.adj_base = scratch + kMaxRegisters * block;
  w.tmp_base = scratch + 2 * kMaxRegisters * block;
  T* scratch_powers = scratch + (2 * kMaxRegisters + 3) * block;
  w.power_base = trace != nullptr ? trace + scheme.kept * block : scratch_powers;
  w.last_square = trace != nullptr ? scratch_powers : scratch_powers + s * block;
  for (int r = 0; r < kMaxRegisters; ++r)
    w.regs[r] = trace != nullptr && r < scheme.registers && scheme.slot[r] >= 0 ? trace + scheme.slot[r] * block
                                                                                 : scratch + r * block;
  if (s > 0) w.regs[scheme.registers - 1] = w.power_base;
  return w;
}

// out = Σ_t coef_t·R[src_t], the terms summed in their order: the first term's product
// rounded (its own pass, behind a compiler barrier, so it cannot fuse into the next term), then the others
// as multiply-adds in registers in one pass. The same sums as one pass per term, two stores.
template <int NT, typename T>
inline void combine_fixed(T* __restrict out, const FlatStep& st, const ExpmWork<T>& w, int ne) {
  if constexpr (NT == 0) {
    for (int e = 0; e < ne; ++e) out[e] = T(0);
  } else {
    const T* src[NT];
    T c[NT];
    for (int t = 0; t < NT; ++t) {
      src[t] = w.reg(st.src[t]);
      c[t] = static_cast<T>(st.coef[t]);
    }
    for (int e = 0; e < ne; ++e) out[e] = src[0][e] * c[0];
#if defined(__GNUC__)
    // Fully unrolled (small fixed sizes), the two passes would merge and the product fuse.
    asm volatile("" ::: "memory");
#endif
    if constexpr (NT > 1) {
      for (int e = 0; e < ne; ++e) {
        T acc = out[e];
        for (int t = 1; t < NT; ++t) acc += src[t][e] * c[t];
        out[e] = acc;
      }
    }
  }
}

template <typename T>
inline void combine_terms(T* out, const FlatStep& st, const ExpmWork<T>& w, int ne) {
  static_assert(kMaxTerms == 5, "combine_terms: one case per term count");
  switch (st.num_terms) {
    case 0: return combine_fixed<0>(out, st, w, ne);
    case 1: return combine_fixed<1>(out, st, w, ne);
    case 2: return combine_fixed<2>(out, st, w, ne);
    case 3: return combine_fixed<3>(out, st, w, ne);
    case 4: return combine_fixed<4>(out, st, w, ne);
    default: return combine_fixed<5>(out, st, w, ne);
  }
}

// A combine step of the scheme: R[out] = identity·I + Σ coef·R[src].
template <int L, typename T>
inline void combine_step(const FlatStep& st, const ExpmWork<T>& w, int n) {
  T* out = w.reg(st.out);
  combine_terms(out, st, w, n * n * L);
  if (st.identity != 0.0) {
    const T id = static_cast<T>(st.identity);
    for (int i = 0; i < n; ++i)
      for (int l = 0; l < L; ++l) out[(i * n + i) * L + l] += id;
  }
}

// Forward from the scaled input in reg(0); returns exp (inside the work), keeping the powers.
template <int N, int L, typename T>
const T* expm_forward(const FlatScheme& scheme, int64_t s, const ExpmWork<T>& w, int n_rt) {
  const int n = N > 0 ? N : n_rt;
  const int ne = n * n * L;
  for (int si = 0; si < scheme.num_steps; ++si) {
    const FlatStep& st = scheme.steps[si];
    T* out = w.reg(st.out);
    if (st.product) {
      if (st.addend >= 0) copy(out, w.reg(st.addend), ne);
      mm<N, L>(out, w.reg(st.a), w.reg(st.b), n, st.addend >= 0);
    } else {
      combine_step<L>(st, w, n);
    }
  }
  const T* P = w.reg(scheme.registers - 1);  // power(0) when s > 0 (expm_work)
  if (s == 0) return P;
  for (int64_t step = 0; step < s; ++step)
    mm<N, L>(step + 1 < s ? w.power(step + 1) : w.last_square, w.power(step), w.power(step), n, false);
  return w.last_square;
}

// Reverse sweep after expm_forward (or over its trace), on the transposed adjoints H = Ḡᵀ, from
// Hᵀ of exp in tmp(0); returns Hᵀ of the scaled input (inside the work), or null where it is
// zero. Transposed, every adjoint of a product is a plain product (for Y = X·Z: X̄ᵀ = Z·Ȳᵀ,
// Z̄ᵀ = Ȳᵀ·X), so no transposes are needed, and each element is the same sum, in the same
// order, as that of Ḡ. It reads only the products' operands and the powers 0 … s-1.
template <int N, int L, typename T>
const T* expm_reverse(const FlatScheme& scheme, int64_t s, const ExpmWork<T>& w, int n_rt) {
  const int n = N > 0 ? N : n_rt;
  const int ne = n * n * L;
  T* g = w.tmp(0);
  T* next = w.tmp(1);
  // Squaring phase: Y = X² has X̄ = Xᵀ·Ȳ + Ȳ·Xᵀ, so X̄ᵀ = Ȳᵀ·X + X·Ȳᵀ.
  for (int64_t step = s - 1; step >= 0; --step) {
    mm<N, L>(next, g, w.power(step), n, false);
    mm<N, L>(next, w.power(step), g, n, true);
    T* swap = g;
    g = next;
    next = swap;
  }
  bool live[kMaxRegisters] = {};
  const int last = scheme.registers - 1;
  copy(w.adj(last), g, ne);
  live[last] = true;
  for (int si = scheme.num_steps - 1; si >= 0; --si) {
    const FlatStep& st = scheme.steps[si];
    if (!live[st.out]) continue;
    live[st.out] = false;
    const T* go = w.adj(st.out);
    if (st.product) {
      // adj[a] += Ḡ·R[b]ᵀ, adj[b] += R[a]ᵀ·Ḡ, adj[addend] += Ḡ, transposed.
      mm<N, L>(w.adj(st.a), w.reg(st.b), go, n, live[st.a]);
      live[st.a] = true;
      mm<N, L>(w.adj(st.b), go, w.reg(st.a), n, live[st.b]);
      live[st.b] = true;
      if (st.addend >= 0) {
        T* a = w.adj(st.addend);
        if (live[st.addend]) {
          for (int e = 0; e < ne; ++e) a[e] += go[e];
        } else {
          copy(a, go, ne);
          live[st.addend] = true;
        }
      }
    } else {
      for (int term = 0; term < st.num_terms; ++term) {
        const int r = st.src[term];
        const T c = static_cast<T>(st.coef[term]);
        T* a = w.adj(r);
        if (live[r]) {
          for (int e = 0; e < ne; ++e) a[e] += go[e] * c;
        } else {
          for (int e = 0; e < ne; ++e) a[e] = go[e] * c;
          live[r] = true;
        }
      }
    }
  }
  return live[0] ? w.adj(0) : nullptr;
}

// One group of c <= L matrices idx[0..c) sharing scheme and s (unused lanes repeat idx[0]).
// from_trace: w's trace holds the forward's intermediates, only the reverse sweep runs.
template <int N, int L, typename T>
void expm_group(const T* A, const T* G, T* out, const int64_t* idx, int c, const FlatScheme& scheme, int64_t s,
                const ExpmWork<T>& w, bool from_trace, int n_rt) {
  const int n = N > 0 ? N : n_rt;
  const int nn = n * n;
  const T f = static_cast<T>(std::ldexp(1.0, -static_cast<int>(s)));
  T* R0 = w.reg(0);
  for (int l = 0; l < L; ++l) {
    const T* a = A + idx[l < c ? l : 0] * nn;
    for (int e = 0; e < nn; ++e) R0[e * L + l] = s > 0 ? a[e] * f : a[e];
  }
  if (from_trace) {
    // The combines the reverse sweep reads, recomputed (the same bits) from the scaled input
    // and the products in the trace.
    for (int si = 0; si < scheme.num_steps; ++si) {
      const FlatStep& st = scheme.steps[si];
      if (!st.product && scheme.replay[st.out]) combine_step<L>(st, w, n);
    }
  } else {
    const T* E = expm_forward<N, L, T>(scheme, s, w, n);
    if (G == nullptr) {
      for (int l = 0; l < c; ++l) {
        T* o = out + idx[l] * nn;
        for (int e = 0; e < nn; ++e) o[e] = E[e * L + l];
      }
      return;
    }
  }
  T* g = w.tmp(0);  // Gᵀ: the reverse sweep runs on transposed adjoints
  for (int l = 0; l < L; ++l) {
    const T* gi = G + idx[l < c ? l : 0] * nn;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) g[(j * n + i) * L + l] = gi[i * n + j];
  }
  const T* d = expm_reverse<N, L, T>(scheme, s, w, n);
  for (int l = 0; l < c; ++l) {
    T* o = out + idx[l] * nn;
    if (d == nullptr) {
      for (int e = 0; e < nn; ++e) o[e] = T(0);
      continue;
    }
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        const T v = d[(j * n + i) * L + l];
        o[i * n + j] = s > 0 ? v * f : v;
      }
  }
}

template <typename T>
void expm_range(const T* A, const T* G, T* out, T* trace_out, const T* trace_in, int64_t n, int64_t begin,
                int64_t end, const int64_t* order, const int64_t* degree, const int64_t* squarings,
                const FlatScheme* schemes, T* scratch) {
  dispatch_size(n, [&](auto size) {
    constexpr int N = decltype(size)::value;
    constexpr int L = lanes_for_size<kExpmLanes>(N);
    const int block = static_cast<int>(n * n) * L;
    const bool from_trace = G != nullptr && trace_in != nullptr;
    // Only the reverse sweep reads it, through the work's (non-const) block pointers.
    T* trace = G == nullptr ? trace_out : const_cast<T*>(from_trace ? trace_in : nullptr);
    // Positions [begin, end) of `order`, which lists the matrices sorted by plan.
    for (int64_t p = begin; p < end;) {
      const int64_t first = order[p];
      int c = 1;
      while (c < L && p + c < end && degree[order[p + c]] == degree[first] &&
             squarings[order[p + c]] == squarings[first])
        ++c;
      const FlatScheme& scheme = schemes[degree[first]];
      const int64_t s = squarings[first];
      const ExpmWork<T> w = expm_work(scratch, block, scheme, s, trace);
      const int64_t size = trace != nullptr ? expm_trace_group_size(scheme, s, n) : 0;
#if defined(__GNUC__)
      // The reverse sweep hops between the trace's blocks faster than the hardware prefetcher
      // follows: ask for the next group's trace (about its size ahead) while this one runs.
      if (from_trace)
        for (int64_t e = 0; e < size; e += 64 / static_cast<int64_t>(sizeof(T)))
          __builtin_prefetch(trace + size + e, 0, 3);
#endif
      expm_group<N, L, T>(A, G, out, order + p, c, scheme, s, w, from_trace, static_cast<int>(n));
      if (trace != nullptr) trace += size;
      p += c;
    }
  });
}

// ---- QR retraction (CholeskyQR2 and its backward, as qr_retraction_algorithm.cpp) ----

// R (k×k, upper, lower part zeroed) with RᵀR = G, and inv[j] = 1/R[j][j]; false when a pivot
// is not positive (or NaN), where LAPACK's potrf reports info > 0.
template <int K, typename T>
bool cholesky_upper(T* __restrict R, T* __restrict inv, const T* __restrict G, int k_rt) {
  const int k = K > 0 ? K : k_rt;
  for (int j = 0; j < k; ++j) {
    T* row = R + j * k;
    for (int l = 0; l < j; ++l) row[l] = T(0);
    for (int l = j; l < k; ++l) row[l] = G[j * k + l];
    for (int p = 0; p < j; ++p) {
      const T* rp = R + p * k;
      const T rpj = rp[j];
      for (int l = j; l < k; ++l) row[l] -= rpj * rp[l];
    }
    if (!(row[j] > T(0))) return false;
    const T d = std::sqrt(row[j]);
    const T r = T(1) / d;
    row[j] = d;
    inv[j] = r;
    for (int l = j + 1; l < k; ++l) row[l] *= r;
  }
  return true;
}

// Yt (k×n) = R⁻ᵀ Xt for upper triangular R (k×k) with inv = 1/diag(R): Y = X R⁻¹ computed on
// transposes, so that each step is an axpy over the n rows (vectorized, no division chain).
// Yt may be Xt.
template <int N, int K, typename T>
void solve_right_upper_t(T* Yt, const T* Xt, const T* __restrict R, const T* __restrict inv, int n_rt, int k_rt) {
  const int n = N > 0 ? N : n_rt, k = K > 0 ? K : k_rt;
  for (int j = 0; j < k; ++j) {
    T* y = Yt + j * n;
    if (y != Xt + j * n)
      for (int i = 0; i < n; ++i) y[i] = Xt[j * n + i];
    for (int p = 0; p < j; ++p) {
      const T rpj = R[p * k + j];
      const T* yp = Yt + p * n;
      for (int i = 0; i < n; ++i) y[i] -= rpj * yp[i];
    }
    const T r = inv[j];
    for (int i = 0; i < n; ++i) y[i] *= r;
  }
}

// CholeskyQR of one matrix (the rule of qr_retraction_rule.h: one pass where the Gram matrix
// certifies it, else two while ‖Q₁ᵀQ₁ − I‖_F <= kCholeskyQR2MaxLoss); returns kQrOnePass,
// kQrTwoPass, or kQrHouseholder where the Householder branch must take it.
template <int N, int K, typename T>
uint8_t cholesky_qr_one(const T* X, T* Q, T* R, T* w, int n_rt, int k_rt) {
  const int n = N > 0 ? N : n_rt, k = K > 0 ? K : k_rt;
  T* Qt = w;           // k×n: Xᵀ, then Q₁ᵀ, then Qᵀ
  T* G = Qt + k * n;   // k×k
  T* R1 = G + k * k;   // k×k
  T* R2 = R1 + k * k;  // k×k
  T* inv = R2 + k * k; // k
  T* rule = inv + k;   // 2k
  transpose<N, K>(Qt, X, n, k);
  matmul<K, N, K>(G, Qt, X, k, n, k, false);
  const bool one_pass = cholesky_qr_one_pass_suffices(G, k, rule);
  if (!cholesky_upper<K>(one_pass ? R : R1, inv, G, k)) return kQrHouseholder;
  if (one_pass) {
    solve_right_upper_t<N, K>(Qt, Qt, R, inv, n, k);
    transpose<K, N>(Q, Qt, k, n);
    return kQrOnePass;
  }
  solve_right_upper_t<N, K>(Qt, Qt, R1, inv, n, k);  // Q₁ᵀ
  transpose<K, N>(Q, Qt, k, n);                        // Q₁ (in the output)
  matmul<K, N, K>(G, Qt, Q, k, n, k, false);
  T loss = 0;
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < k; ++j) {
      const T e = G[i * k + j] - (i == j ? T(1) : T(0));
      loss += e * e;
    }
  if (!(std::sqrt(loss) <= static_cast<T>(kCholeskyQR2MaxLoss))) return kQrHouseholder;  // NaN: Householder
  if (!cholesky_upper<K>(R2, inv, G, k)) return kQrHouseholder;
  solve_right_upper_t<N, K>(Qt, Qt, R2, inv, n, k);
  transpose<K, N>(Q, Qt, k, n);
  matmul<K, K, K>(R, R2, R1, k, k, k, false);
  return kQrTwoPass;
}

// ∇X = [G + Q (tril₋₁(B − Bᵀ) − B)] R⁻ᵀ with B = QᵀG.
template <int N, int K, typename T>
void qr_backward_one(const T* G, const T* Q, const T* R, T* out, T* w, int n_rt, int k_rt) {
  const int n = N > 0 ? N : n_rt, k = K > 0 ? K : k_rt;
  T* Qt = w;           // k×n, then Mᵀ
  T* B = Qt + k * n;   // k×k
  T* Nm = B + k * k;   // k×k
  T* inv = Nm + k * k; // k
  transpose<N, K>(Qt, Q, n, k);
  matmul<K, N, K>(B, Qt, G, k, n, k, false);
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < k; ++j) Nm[i * k + j] = (i > j ? B[i * k + j] - B[j * k + i] : T(0)) - B[i * k + j];
  copy(out, G, n * k);
  matmul<N, K, K>(out, Q, Nm, n, k, k, true);  // M
  // out ← M R⁻ᵀ, i.e. R Xᵀ = Mᵀ: back substitution on the transposes, an axpy over n per step.
  for (int j = 0; j < k; ++j) inv[j] = T(1) / R[j * k + j];
  T* Mt = Qt;
  transpose<N, K>(Mt, out, n, k);
  for (int j = k - 1; j >= 0; --j) {
    T* x = Mt + j * n;
    for (int p = j + 1; p < k; ++p) {
      const T rjp = R[j * k + p];
      const T* xp = Mt + p * n;
      for (int i = 0; i < n; ++i) x[i] -= rjp * xp[i];
    }
    const T r = inv[j];
    for (int i = 0; i < n; ++i) x[i] *= r;
  }
  transpose<K, N>(out, Mt, k, n);
}

template <typename F>
void dispatch_shape(int64_t n, int64_t k, F&& f) {
  if (n == k) {
    dispatch_size(n, [&](auto size) {
      constexpr int S = decltype(size)::value;
      f(std::integral_constant<int, S>{}, std::integral_constant<int, S>{});
    });
  } else {
    f(std::integral_constant<int, 0>{}, std::integral_constant<int, 0>{});
  }
}

template <typename T>
void qr_range(const T* X, T* Q, T* R, uint8_t* ok, int64_t n, int64_t k, int64_t begin, int64_t end, T* scratch) {
  dispatch_shape(n, k, [&](auto ns, auto ks) {
    constexpr int N = decltype(ns)::value, K = decltype(ks)::value;
    for (int64_t i = begin; i < end; ++i)
      ok[i] = cholesky_qr_one<N, K>(X + i * n * k, Q + i * n * k, R + i * k * k, scratch, static_cast<int>(n),
                                    static_cast<int>(k));
  });
}

template <typename T>
void qr_backward_range(const T* G, const T* Q, const T* R, T* out, int64_t n, int64_t k, int64_t begin, int64_t end,
                       T* scratch) {
  dispatch_shape(n, k, [&](auto ns, auto ks) {
    constexpr int N = decltype(ns)::value, K = decltype(ks)::value;
    for (int64_t i = begin; i < end; ++i)
      qr_backward_one<N, K>(G + i * n * k, Q + i * n * k, R + i * k * k, out + i * n * k, scratch,
                            static_cast<int>(n), static_cast<int>(k));
  });
}

}  // namespace
}  // namespace mantra::detail::tiny

// Defines `const Kernels& NAME()` returning this build's entries.
#define MANTRA_TINY_DEFINE_KERNELS(NAME, LABEL)                                                                 \
  namespace mantra::detail::tiny {                                                                           \
  namespace {                                                                                                \
  const Kernels table = {&expm_range<float>,        &expm_range<double>, &qr_range<float>, &qr_range<double>, \
                         &qr_backward_range<float>, &qr_backward_range<double>, LABEL};                     \
  }                                                                                                          \
  const Kernels& NAME() { return table; }                                                                    \
  }
