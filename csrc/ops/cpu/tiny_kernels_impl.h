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
  // The same vector at any element-aligned address, aliasing T (for loads and stores in place).
  typedef T at_address __attribute__((vector_size(32), aligned(sizeof(T)), may_alias));
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
// The vector at p, as an lvalue: in loops with arrays of vectors (the QR kernels' blocks), loads
// and stores through it let GCC keep the arrays in registers, where load32's copy did not.
template <typename T>
inline typename Vec32<T>::at_address& lane_ref(T* p) {
  return *reinterpret_cast<typename Vec32<T>::at_address*>(p);
}
template <typename T>
inline const typename Vec32<T>::at_address& lane_ref(const T* p) {
  return *reinterpret_cast<const typename Vec32<T>::at_address*>(p);
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
// Without the vector extension, the same 32 bytes as an array, element by element (what the QR
// kernels' lanes need).
template <typename T>
struct vec32_t {
  static constexpr int kCount = static_cast<int>(32 / sizeof(T));
  T v[kCount];
  T& operator[](int i) { return v[i]; }
  T operator[](int i) const { return v[i]; }
  vec32_t& operator+=(const vec32_t& o) {
    for (int i = 0; i < kCount; ++i) v[i] += o.v[i];
    return *this;
  }
  vec32_t& operator-=(const vec32_t& o) {
    for (int i = 0; i < kCount; ++i) v[i] -= o.v[i];
    return *this;
  }
  vec32_t& operator*=(const vec32_t& o) {
    for (int i = 0; i < kCount; ++i) v[i] *= o.v[i];
    return *this;
  }
  vec32_t& operator/=(const vec32_t& o) {
    for (int i = 0; i < kCount; ++i) v[i] /= o.v[i];
    return *this;
  }
  friend vec32_t operator+(vec32_t a, const vec32_t& b) { return a += b; }
  friend vec32_t operator-(vec32_t a, const vec32_t& b) { return a -= b; }
  friend vec32_t operator*(vec32_t a, const vec32_t& b) { return a *= b; }
  friend vec32_t operator/(vec32_t a, const vec32_t& b) { return a /= b; }
};
template <typename T>
inline void load32(vec32_t<T>& v, const T* p) {
  for (int i = 0; i < vec32_t<T>::kCount; ++i) v.v[i] = p[i];
}
template <typename T>
inline void store32(T* p, const vec32_t<T>& v) {
  for (int i = 0; i < vec32_t<T>::kCount; ++i) p[i] = v.v[i];
}
template <typename T>
inline vec32_t<T>& lane_ref(T* p) {
  return *reinterpret_cast<vec32_t<T>*>(p);
}
template <typename T>
inline const vec32_t<T>& lane_ref(const T* p) {
  return *reinterpret_cast<const vec32_t<T>*>(p);
}
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
//
// L = qr_lanes(sizeof(T)) consecutive matrices run together, interleaved as in the small expm
// (element e of lane l at e·L + l; a short last group repeats its first matrix), so that every
// step is one 32-byte vector operation across the matrices: within one matrix, the Cholesky
// factor and the triangular solves are short serial loops that barely vectorize (measured: about
// 10× below the multiply-add rate at 16×16). Each lane does the operations of its matrix alone,
// so a result depends neither on the grouping nor on the thread split.

template <typename T>
constexpr int kQrL = qr_lanes(sizeof(T));

template <typename T>
inline T* align64(T* p) {
  return reinterpret_cast<T*>((reinterpret_cast<std::uintptr_t>(p) + 63) & ~std::uintptr_t(63));
}

template <typename T>
inline void splat(vec32_t<T>& v, T x) {
  for (int l = 0; l < kQrL<T>; ++l) v[l] = x;
}

// The one-pass rule's operations (qr_retraction_rule.h) on lanes: lane by lane, the operations
// the scalar rule does on one matrix, so each lane's branch is the one it would get alone (loops
// over the lanes, for the compiler to vectorize; the square roots become vsqrtps/vsqrtpd).
template <typename T>
struct LaneRuleOps {
  using V = vec32_t<T>;
  static constexpr int L = kQrL<T>;
  static T* advance(T* p, int64_t i) { return p + i * L; }
  static auto& at(T* p, int64_t i) { return lane_ref(p + i * L); }
  static const auto& at(const T* p, int64_t i) { return lane_ref(p + i * L); }
  template <typename W>
  static void zero(W& x) { for (int l = 0; l < L; ++l) x[l] = T(0); }
  static void abs(V& x) { for (int l = 0; l < L; ++l) x[l] = std::abs(x[l]); }
  template <typename W>
  static void rsqrt(W& x) { for (int l = 0; l < L; ++l) x[l] = T(1) / std::sqrt(x[l]); }
  static void sqrt(V& x) { for (int l = 0; l < L; ++l) x[l] = std::sqrt(x[l]); }
  template <typename W>
  static void max(V& m, const W& x) { for (int l = 0; l < L; ++l) m[l] = x[l] > m[l] ? x[l] : m[l]; }
  static void min(V& a, const V& b) { for (int l = 0; l < L; ++l) a[l] = a[l] < b[l] ? a[l] : b[l]; }
};

#if MANTRA_TINY_VECTOR_PRODUCTS && (defined(__clang__) || __GNUC__ >= 12)
#define MANTRA_TINY_LANE_TRANSPOSE 1
// v ← the transpose of the L×L block whose row i is v[i] (L = 8 float, 4 double), in rounds of
// pairwise shuffles: (un)interleaving L matrices takes a block of L elements at a time.
inline void transpose_lanes(vec32_t<float>* v) {
  vec32_t<float> t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shufflevector(v[i], v[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    t[i + 1] = __builtin_shufflevector(v[i], v[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int i = 0; i < 8; i += 4)
    for (int h = 0; h < 2; ++h) {
      u[i + 2 * h] = __builtin_shufflevector(t[i + h], t[i + h + 2], 0, 1, 8, 9, 4, 5, 12, 13);
      u[i + 2 * h + 1] = __builtin_shufflevector(t[i + h], t[i + h + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    }
  for (int j = 0; j < 4; ++j) {
    v[j] = __builtin_shufflevector(u[j], u[j + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    v[j + 4] = __builtin_shufflevector(u[j], u[j + 4], 4, 5, 6, 7, 12, 13, 14, 15);
  }
}
inline void transpose_lanes(vec32_t<double>* v) {
  vec32_t<double> t[4];
  for (int i = 0; i < 4; i += 2) {
    t[i] = __builtin_shufflevector(v[i], v[i + 1], 0, 4, 2, 6);
    t[i + 1] = __builtin_shufflevector(v[i], v[i + 1], 1, 5, 3, 7);
  }
  for (int j = 0; j < 2; ++j) {
    v[j] = __builtin_shufflevector(t[j], t[j + 2], 0, 1, 4, 5);
    v[j + 2] = __builtin_shufflevector(t[j], t[j + 2], 2, 3, 6, 7);
  }
}
#else
#define MANTRA_TINY_LANE_TRANSPOSE 0
#endif

// out (count elements per lane) = matrices 0 … c-1 of `in` (count apart), lanes c … L-1 = matrix 0.
template <typename T>
inline void interleave(T* __restrict out, const T* __restrict in, int count, int c) {
  constexpr int L = kQrL<T>;
  const T* m[L];
  for (int l = 0; l < L; ++l) m[l] = in + static_cast<int64_t>(l < c ? l : 0) * count;
  int e = 0;
#if MANTRA_TINY_LANE_TRANSPOSE
  for (const int blocks = count / L * L; e < blocks; e += L) {
    vec32_t<T> v[L];
    for (int l = 0; l < L; ++l) v[l] = lane_ref(m[l] + e);
    transpose_lanes(v);
    for (int j = 0; j < L; ++j) lane_ref(out + (e + j) * L) = v[j];
  }
#endif
  for (; e < count; ++e)
    for (int l = 0; l < L; ++l) out[e * L + l] = m[l][e];
}

// Matrix l of `out` (count elements each) = lane l of `in`, for l < c.
template <typename T>
inline void deinterleave(T* __restrict out, const T* __restrict in, int count, int c) {
  constexpr int L = kQrL<T>;
  int e = 0;
#if MANTRA_TINY_LANE_TRANSPOSE
  for (const int blocks = count / L * L; e < blocks; e += L) {
    vec32_t<T> v[L];
    for (int j = 0; j < L; ++j) v[j] = lane_ref(in + (e + j) * L);
    transpose_lanes(v);
    for (int l = 0; l < c; ++l) lane_ref(out + static_cast<int64_t>(l) * count + e) = v[l];
  }
#endif
  for (; e < count; ++e)
    for (int l = 0; l < c; ++l) out[static_cast<int64_t>(l) * count + e] = in[e * L + l];
}

// Lane l of `to` = lane l of `from` (count elements).
template <typename T>
inline void copy_lane(T* __restrict to, const T* __restrict from, int count, int l) {
  constexpr int L = kQrL<T>;
  for (int e = 0; e < count; ++e) to[e * L + l] = from[e * L + l];
}

// The IB×JB sums Σ_{s<m} a(ii, s)·b(s, jj) on lane vectors, a(ii, s) at a + (ii·ai + s·as)·L and
// b(s, jj) at b + (s·bs + jj·bj)·L, each summed over s ascending from zero in a register (the
// block's loads shared: IB + JB per IB·JB multiply-adds); finish(ii, jj, sum) consumes them.
template <int IB, int JB, typename T, typename F>
inline void lane_dot_block(const T* a, int ai, int as, const T* b, int bs, int bj, int m, F&& finish) {
  using V = vec32_t<T>;
  constexpr int L = kQrL<T>;
  V acc[IB][JB];
#pragma GCC unroll 8
  for (int ii = 0; ii < IB; ++ii)
#pragma GCC unroll 8
    for (int jj = 0; jj < JB; ++jj) acc[ii][jj] = V{};
  for (int s = 0; s < m; ++s) {
    V x[IB], y[JB];
#pragma GCC unroll 8
    for (int ii = 0; ii < IB; ++ii) x[ii] = lane_ref(a + (ii * ai + s * as) * L);
#pragma GCC unroll 8
    for (int jj = 0; jj < JB; ++jj) y[jj] = lane_ref(b + (s * bs + jj * bj) * L);
#pragma GCC unroll 8
    for (int ii = 0; ii < IB; ++ii)
#pragma GCC unroll 8
      for (int jj = 0; jj < JB; ++jj) acc[ii][jj] += x[ii] * y[jj];
  }
#pragma GCC unroll 8
  for (int ii = 0; ii < IB; ++ii)
#pragma GCC unroll 8
    for (int jj = 0; jj < JB; ++jj) finish(ii, jj, acc[ii][jj]);
}

// out (r×c on lanes, row-major) = Σ_{s<m} a(i, s)·b(s, j), then finish(i, j, sum, out element), in
// blocks of 4×2 (8 accumulators and 6 loads in 16 registers) and their tails; with `upper` only
// the blocks that meet the upper triangle j >= i (writing some of the lower triangle too).
template <typename T, typename F>
inline void lane_product(T* out, const T* a, int ai, int as, const T* b, int bs, int bj, int r, int c, int m,
                         bool upper, F&& finish) {
  constexpr int L = kQrL<T>;
  const auto run = [&](auto ib, auto jb, int i0, int j0) {
    constexpr int IB = decltype(ib)::value, JB = decltype(jb)::value;
    lane_dot_block<IB, JB>(a + i0 * ai * L, ai, as, b + j0 * bj * L, bs, bj, m,
                           [&](int ii, int jj, const vec32_t<T>& sum) {
                             finish(i0 + ii, j0 + jj, sum, out + ((i0 + ii) * c + j0 + jj) * L);
                           });
  };
  using C1 = std::integral_constant<int, 1>;
  using C2 = std::integral_constant<int, 2>;
  using C4 = std::integral_constant<int, 4>;
  for (int i0 = 0; i0 < r; i0 += 4) {
    const int ib = r - i0;
    for (int j0 = upper ? i0 : 0; j0 < c; j0 += 2) {
      const bool two = c - j0 >= 2;
      if (ib >= 4) {
        two ? run(C4{}, C2{}, i0, j0) : run(C4{}, C1{}, i0, j0);
      } else {
        for (int i = i0; i < r; ++i) two ? run(C1{}, C2{}, i, j0) : run(C1{}, C1{}, i, j0);
      }
    }
  }
}

// out (k×k upper triangle, on lanes) = Yᵀ Y for Y (n×k).
template <int N, int K, typename T>
inline void lane_gram(T* out, const T* Y, int n_rt, int k_rt) {
  const int n = N > 0 ? N : n_rt, k = K > 0 ? K : k_rt;
  lane_product(out, Y, 1, k, Y, k, 1, k, k, n, true,
               [](int, int, const vec32_t<T>& sum, T* o) { store32(o, sum); });
}

// Row `row` (c elements on lanes, from column j0) = g − Σ_{p<m} a(p)·b(p, j): a(p) at a + p·as·L,
// b(p, j) at b + (p·bs + j)·L; in blocks of 8, 4, 2, 1 columns (up to 8 independent sums).
template <typename T>
inline void lane_row_residual(T* row, const T* g, const T* a, int as, const T* b, int bs, int c, int m) {
  constexpr int L = kQrL<T>;
  int j = 0;
  const auto run = [&](auto jb) {
    constexpr int JB = decltype(jb)::value;
    lane_dot_block<1, JB>(a, 0, as, b + j * L, bs, 1, m, [&](int, int jj, const vec32_t<T>& sum) {
      vec32_t<T> v;
      load32(v, g + (j + jj) * L);
      store32(row + (j + jj) * L, v - sum);
    });
    j += JB;
  };
  for (; j + 8 <= c;) run(std::integral_constant<int, 8>{});
  if (j + 4 <= c) run(std::integral_constant<int, 4>{});
  if (j + 2 <= c) run(std::integral_constant<int, 2>{});
  if (j < c) run(std::integral_constant<int, 1>{});
}

// R (k×k upper, lower part zeroed) with RᵀR = G per lane (G's upper triangle read), inv = 1/diag(R);
// returns the lanes (bit l) where a pivot is not positive (or NaN), where LAPACK's potrf reports
// info > 0. Row j of R is G's row minus the sums over the rows above, in registers.
template <int K, typename T>
unsigned lane_cholesky_upper(T* R, T* inv, const T* G, int k_rt) {
  using V = vec32_t<T>;
  constexpr int L = kQrL<T>;
  const int k = K > 0 ? K : k_rt;
  unsigned failed = 0;
  for (int j = 0; j < k; ++j) {
    T* row = R + j * k * L;
    for (int e = 0; e < j * L; ++e) row[e] = T(0);
    lane_row_residual(row + j * L, G + (j * k + j) * L, R + j * L, k, R + j * L, k, k - j, j);
    V d;
    load32(d, row + j * L);
    for (int l = 0; l < L; ++l)
      if (!(d[l] > T(0))) failed |= 1u << l;
    for (int l = 0; l < L; ++l) d[l] = std::sqrt(d[l]);  // one vector sqrt (-fno-math-errno)
    V r;
    splat(r, T(1));
    r = r / d;
    store32(row + j * L, d);
    store32(inv + j * L, r);
    for (int l = j + 1; l < k; ++l) {
      V v;
      load32(v, row + l * L);
      store32(row + l * L, v * r);
    }
  }
  return failed;
}

// Y ← Y R⁻¹ (Y n×k, R upper, inv = 1/diag(R), on lanes): column j is (Y_j − Σ_{p<j} Y_p R[p][j])·inv[j],
// j ascending; Transposed: Y ← Y R⁻ᵀ (Y Rᵀ = M with M in Y), column j is
// (M_j − Σ_{p>j} Y_p R[j][p])·inv[j], j descending. Rows 8 at a time share each load of R (then
// one by one).
template <bool Transposed, int N, int K, typename T>
void lane_solve_right_upper(T* Y, const T* R, const T* inv, int n_rt, int k_rt) {
  constexpr int L = kQrL<T>;
  const int n = N > 0 ? N : n_rt, k = K > 0 ? K : k_rt;
  const auto rows = [&](auto rb, int r0) {
    constexpr int RB = decltype(rb)::value;
    for (int step = 0; step < k; ++step) {
      const int j = Transposed ? k - 1 - step : step;
      const int p0 = Transposed ? j + 1 : 0;                       // the sum's first p
      const T* rj = Transposed ? R + (j * k + p0) * L : R + j * L;  // R[j][p0…] or R[0…][j]
      vec32_t<T> r;
      load32(r, inv + j * L);
      lane_dot_block<RB, 1>(Y + (r0 * k + p0) * L, k, 1, rj, Transposed ? 1 : k, 0, Transposed ? k - 1 - j : j,
                            [&](int ii, int, const vec32_t<T>& sum) {
                              T* y = Y + ((r0 + ii) * k + j) * L;
                              vec32_t<T> v;
                              load32(v, y);
                              store32(y, (v - sum) * r);
                            });
    }
  };
  int r0 = 0;
  for (; r0 + 8 <= n; r0 += 8) rows(std::integral_constant<int, 8>{}, r0);
  if (N <= 0 || N % 8 != 0)  // (a tail GCC would otherwise warn about at fixed multiples of 8)
    for (; r0 < n; ++r0) rows(std::integral_constant<int, 1>{}, r0);
}

// One group of c <= L matrices: CholeskyQR by the rule of qr_retraction_rule.h (one pass where
// the Gram matrix certifies it, else two while ‖Q₁ᵀQ₁ − I‖_F <= kCholeskyQR2MaxLoss); ok[l] =
// kQrOnePass, kQrTwoPass, or kQrHouseholder where the Householder branch must take matrix l.
// The second pass runs for the group when one of its matrices needs it.
template <int N, int K, typename T>
void cholesky_qr_group(const T* X, bool x_columns, T* Q, T* R, uint8_t* ok, int c, T* w, int n_rt, int k_rt) {
  using V = vec32_t<T>;
  constexpr int L = kQrL<T>;
  const int n = N > 0 ? N : n_rt, k = K > 0 ? K : k_rt;
  const int nk = n * k, kk = k * k;
  T* Q1 = w;             // n×k: X, then Q₁ = X R₁⁻¹ in place
  T* Q2 = Q1 + nk * L;   // n×k: Q₂ = Q₁ R₂⁻¹
  T* G = Q2 + nk * L;    // k×k: XᵀX, then Q₁ᵀQ₁ (upper triangles)
  T* R1 = G + kk * L;    // k×k
  T* R2 = R1 + kk * L;   // k×k
  T* R21 = R2 + kk * L;  // k×k: R₂R₁
  T* inv = R21 + kk * L; // k
  T* rule = inv + k * L; // 2k
  if (x_columns) {  // the lanes of Xᵀ (k×n row-major) into Q2 (free until pass 2), then transposed
    interleave(Q2, X, nk, c);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < k; ++j) lane_ref(Q1 + (i * k + j) * L) = lane_ref(Q2 + (j * n + i) * L);
  } else {
    interleave(Q1, X, nk, c);
  }
  lane_gram<N, K>(G, Q1, n, k);
  // The rule without the scalar version's check of diag(G) > 0: a lane that fails it also fails
  // its Cholesky factor just below, which sends it to Householder.
  V delta;
  cholesky_qr_one_pass_delta<LaneRuleOps<T>>(delta, G, k, rule);
  uint8_t branch[L];
  for (int l = 0; l < L; ++l)
    branch[l] = delta[l] <= static_cast<T>(kCholeskyQROnePassMaxDelta) ? kQrOnePass : kQrTwoPass;
  const unsigned failed = lane_cholesky_upper<K>(R1, inv, G, k);
  lane_solve_right_upper<false, N, K>(Q1, R1, inv, n, k);
  bool second = false;
  for (int l = 0; l < c; ++l) {
    if (failed >> l & 1u) branch[l] = kQrHouseholder;
    second = second || branch[l] == kQrTwoPass;
  }
  if (second) {
    lane_gram<N, K>(G, Q1, n, k);
    // ‖Q₁ᵀQ₁ − I‖_F² from the upper triangle: the diagonal once, the rest twice.
    V diag = {}, off = {}, unit;
    splat(unit, T(1));
    for (int i = 0; i < k; ++i) {
      V g;
      load32(g, G + (i * k + i) * L);
      g = g - unit;
      diag += g * g;
      for (int j = i + 1; j < k; ++j) {
        load32(g, G + (i * k + j) * L);
        off += g * g;
      }
    }
    const V loss2 = diag + (off + off);
    const unsigned failed2 = lane_cholesky_upper<K>(R2, inv, G, k);
    copy(Q2, Q1, nk * L);
    lane_solve_right_upper<false, N, K>(Q2, R2, inv, n, k);
    // R₂R₁ (upper): element (i, j ≥ i) is Σ_{p=i…j} R₂[i][p] R₁[p][j], the terms where both are non-zero.
    for (int i = 0; i < k; ++i) {
      T* row = R21 + i * k * L;
      for (int e = 0; e < i * L; ++e) row[e] = T(0);
      for (int j = i; j < k; ++j)
        lane_dot_block<1, 1>(R2 + (i * k + i) * L, 0, 1, R1 + (i * k + j) * L, k, 0, j - i + 1,
                             [&](int, int, const V& sum) { store32(row + j * L, sum); });
    }
    for (int l = 0; l < c; ++l)
      if (branch[l] == kQrTwoPass &&
          (!(std::sqrt(loss2[l]) <= static_cast<T>(kCholeskyQR2MaxLoss)) || (failed2 >> l & 1u)))
        branch[l] = kQrHouseholder;  // (a NaN loss too)
  }
  for (int l = 0; l < c; ++l) {
    ok[l] = branch[l];
    if (branch[l] == kQrTwoPass) {
      copy_lane(Q1, Q2, nk, l);
      copy_lane(R1, R21, kk, l);
    }
  }
  deinterleave(Q, Q1, nk, c);
  deinterleave(R, R1, kk, c);
}

// One group of c <= L matrices: ∇X = [G + Q (tril₋₁(B − Bᵀ) − B)] R⁻ᵀ with B = QᵀG.
template <int N, int K, typename T>
void qr_backward_group(const T* G, const T* Q, const T* R, T* out, int c, T* w, int n_rt, int k_rt) {
  using V = vec32_t<T>;
  constexpr int L = kQrL<T>;
  const int n = N > 0 ? N : n_rt, k = K > 0 ? K : k_rt;
  const int nk = n * k, kk = k * k;
  T* Qi = w;             // n×k
  T* M = Qi + nk * L;    // n×k: G, then M = G + Q·Nm, then M R⁻ᵀ
  T* Ri = M + nk * L;    // k×k
  T* B = Ri + kk * L;    // k×k
  T* Nm = B + kk * L;    // k×k
  T* inv = Nm + kk * L;  // k
  interleave(Qi, Q, nk, c);
  interleave(M, G, nk, c);
  interleave(Ri, R, kk, c);
  lane_product(B, Qi, 1, k, M, k, 1, k, k, n, false, [](int, int, const V& sum, T* o) { store32(o, sum); });
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < k; ++j) {
      V bij, bji;
      load32(bij, B + (i * k + j) * L);
      load32(bji, B + (j * k + i) * L);
      V v = V{} - bij;
      if (i > j) v = (bij - bji) - bij;
      store32(Nm + (i * k + j) * L, v);
    }
  // M = G + Q·Nm: the product summed first, then added (as BLAS does for beta = 1).
  lane_product(M, Qi, k, 1, Nm, k, 1, n, k, k, false, [](int, int, const V& sum, T* o) {
    V g;
    load32(g, o);
    store32(o, g + sum);
  });
  V one;
  splat(one, T(1));
  for (int j = 0; j < k; ++j) {
    V d;
    load32(d, Ri + (j * k + j) * L);
    store32(inv + j * L, one / d);
  }
  lane_solve_right_upper<true, N, K>(M, Ri, inv, n, k);
  deinterleave(out, M, nk, c);
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
void qr_range(const T* X, bool x_columns, T* Q, T* R, uint8_t* ok, int64_t n, int64_t k, int64_t begin, int64_t end,
              T* scratch) {
  dispatch_shape(n, k, [&](auto ns, auto ks) {
    constexpr int N = decltype(ns)::value, K = decltype(ks)::value;
    constexpr int L = kQrL<T>;
    T* w = align64(scratch);
    for (int64_t i = begin; i < end; i += L) {
      const int c = static_cast<int>(end - i < L ? end - i : L);
      cholesky_qr_group<N, K>(X + i * n * k, x_columns, Q + i * n * k, R + i * k * k, ok + i, c, w,
                              static_cast<int>(n), static_cast<int>(k));
    }
  });
}

template <typename T>
void qr_backward_range(const T* G, const T* Q, const T* R, T* out, int64_t n, int64_t k, int64_t begin, int64_t end,
                       T* scratch) {
  dispatch_shape(n, k, [&](auto ns, auto ks) {
    constexpr int N = decltype(ns)::value, K = decltype(ks)::value;
    constexpr int L = kQrL<T>;
    T* w = align64(scratch);
    for (int64_t i = begin; i < end; i += L) {
      const int c = static_cast<int>(end - i < L ? end - i : L);
      qr_backward_group<N, K>(G + i * n * k, Q + i * n * k, R + i * k * k, out + i * n * k, c, w,
                              static_cast<int>(n), static_cast<int>(k));
    }
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
