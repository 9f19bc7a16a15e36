#include "ops/expm_algorithm.h"

#include "ops/expm_skew.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <numeric>

namespace mantra::detail {
namespace {

// Largest 1-norm for which the Taylor approximant of each degree has relative backward error
// below the unit roundoff (Bader, Blanes & Casas 2019, Table 1).
constexpr std::array<double, kNumDegrees> kThetaFloat = {
    1.192092800768788e-07, 5.978858893805233e-04, 5.116619363445086e-02,
    5.800524627688768e-01, 1.461661507209034e+00, 3.010066362817634e+00};
constexpr std::array<double, kNumDegrees> kThetaDouble = {
    2.220446049250313e-16, 2.580956802971767e-08, 3.397168839976962e-04,
    4.991228871115323e-02, 2.996158913811580e-01, 1.090863719290036e+00};

using Term = ExpmTerm;
using Step = ExpmStep;
using Scheme = ExpmScheme;

Step combine(int out, double identity, std::vector<Term> terms) {
  Step s;
  s.product = false;
  s.out = out;
  s.identity = identity;
  s.terms = std::move(terms);
  return s;
}
Step product(int out, int a, int b, int addend = -1) {
  Step s;
  s.product = true;
  s.out = out;
  s.a = a;
  s.b = b;
  s.addend = addend;
  return s;
}

// out += X·Y over the batch, allocating out when undefined (an adjoint that is still zero).
void add_product(at::Tensor& out, const at::Tensor& X, const at::Tensor& Y) {
  if (out.defined()) {
    out.baddbmm_(X, Y);
  } else {
    out = at::bmm(X, Y);
  }
}
void add_scaled(at::Tensor& out, const at::Tensor& X, double c) {
  if (out.defined()) {
    out.add_(X, c);
  } else {
    out = X * c;
  }
}

std::vector<at::Tensor> evaluate(const Scheme& scheme, const at::Tensor& A) {
  std::vector<at::Tensor> R(scheme.registers);
  R[0] = A;
  for (const Step& s : scheme.steps) {
    if (s.product) {
      R[s.out] = s.addend >= 0 ? at::baddbmm(R[s.addend], R[s.a], R[s.b]) : at::bmm(R[s.a], R[s.b]);
    } else {
      at::Tensor acc;
      for (const Term& t : s.terms) {
        if (t.coef != 0.0) add_scaled(acc, R[t.src], t.coef);
      }
      if (!acc.defined()) acc = at::zeros_like(A);
      if (s.identity != 0.0) acc.diagonal(0, -2, -1).add_(s.identity);
      R[s.out] = acc;
    }
  }
  return R;
}

// Adjoint sweep: given the adjoint of the last register, the adjoint of register 0.
at::Tensor evaluate_reverse(const Scheme& scheme, const std::vector<at::Tensor>& R, at::Tensor G) {
  std::vector<at::Tensor> adj(scheme.registers);
  adj[scheme.registers - 1] = std::move(G);
  for (auto it = scheme.steps.rbegin(); it != scheme.steps.rend(); ++it) {
    const Step& s = *it;
    at::Tensor g = adj[s.out];
    adj[s.out] = at::Tensor();
    if (!g.defined()) continue;
    if (s.product) {
      add_product(adj[s.a], g, R[s.b].mT());
      add_product(adj[s.b], R[s.a].mT(), g);
      if (s.addend >= 0) add_scaled(adj[s.addend], g, 1.0);
    } else {
      for (const Term& t : s.terms) {
        if (t.coef != 0.0) add_scaled(adj[t.src], g, t.coef);
      }
    }
  }
  return adj[0].defined() ? adj[0] : at::zeros_like(R[0]);
}

// Matrices sharing a degree, ordered by squarings (descending) so that the ones still being
// squared at step i are a prefix.
struct Group {
  int degree_index;
  std::vector<int64_t> members;
  std::vector<int64_t> squarings;
  bool whole_batch;
};

std::vector<Group> make_groups(const ExpmPlan& plan) {
  const auto B = static_cast<int64_t>(plan.degree_index.size());
  std::vector<Group> groups;
  for (int d = 0; d < kNumDegrees; ++d) {
    Group g{d, {}, {}, false};
    for (int64_t i = 0; i < B; ++i) {
      if (plan.degree_index[i] == d) g.members.push_back(i);
    }
    if (g.members.empty()) continue;
    std::stable_sort(g.members.begin(), g.members.end(),
                     [&](int64_t x, int64_t y) { return plan.squarings[x] > plan.squarings[y]; });
    for (int64_t i : g.members) g.squarings.push_back(plan.squarings[i]);
    // The whole batch in its own order: no gather/scatter needed.
    g.whole_batch = static_cast<int64_t>(g.members.size()) == B && g.members.back() == B - 1 &&
                    std::is_sorted(g.members.begin(), g.members.end());
    groups.push_back(std::move(g));
  }
  return groups;
}

// Number of members still being squared at step i (a prefix when sorted descending).
int64_t active_count(const std::vector<int64_t>& squarings, int64_t step) {
  return std::count_if(squarings.begin(), squarings.end(), [&](int64_t s) { return s > step; });
}

// t in the dtype and on the device of `like`, without a no-op `to` call (an operator that
// returns its input is a schema violation under torch's schema checks).
at::Tensor cast_like(const at::Tensor& t, const at::Tensor& like) {
  if (t.scalar_type() == like.scalar_type() && t.device() == like.device()) return t;
  return t.to(like.device(), like.scalar_type());
}

at::Tensor index_tensor(const Group& g, const at::Tensor& like) {
  const at::Tensor idx = at::tensor(g.members, at::TensorOptions().dtype(at::kLong));
  return like.is_cpu() ? idx : idx.to(like.device());
}

// Per-member 2^-s as a (m, 1, 1) tensor, or undefined when no member is scaled.
at::Tensor scale_factors(const Group& g, const at::Tensor& like) {
  if (g.squarings.front() == 0) return at::Tensor();
  std::vector<double> f;
  for (int64_t s : g.squarings) f.push_back(std::ldexp(1.0, -static_cast<int>(s)));
  return cast_like(at::tensor(f, at::TensorOptions().dtype(at::kDouble)), like).view({-1, 1, 1});
}

}  // namespace

// Evaluation schemes of the degree-m Taylor polynomial with 0, 1, 2, 3, 4, 5 products.
const std::array<ExpmScheme, kNumDegrees>& expm_schemes() {
  static const std::array<ExpmScheme, kNumDegrees> table = [] {
    std::array<ExpmScheme, kNumDegrees> t;
    // m = 1: I + A
    t[0] = {2, {combine(1, 1.0, {{0, 1.0}})}};
    // m = 2: I + A + A²/2
    t[1] = {3, {product(1, 0, 0), combine(2, 1.0, {{0, 1.0}, {1, 0.5}})}};
    // m = 4: I + A + A²(I/2 + A/6 + A²/24)
    t[2] = {5,
            {product(1, 0, 0), combine(2, 0.5, {{0, 1.0 / 6}, {1, 1.0 / 24}}),
             combine(3, 1.0, {{0, 1.0}}), product(4, 1, 2, 3)}};
    // m = 8 (three products).
    {
      const double r = std::sqrt(177.0);
      const double x3 = 2.0 / 3.0;
      const double a1 = (1 + r) * x3 / 88, a2 = (1 + r) * x3 / 352;
      const double u2 = (857 - 58 * r) / 630;
      const double c0 = (-271 + 29 * r) / (315 * x3), c1 = 11 * (-1 + r) / (1260 * x3);
      const double c2 = 11 * (-9 + r) / (5040 * x3), c4 = -(-89 + r) / (5040 * x3 * x3);
      t[3] = {8,
              {product(1, 0, 0),                                  // A2
               combine(2, 0.0, {{0, a1}, {1, a2}}), product(3, 1, 2),  // A4 = A2 (a1 A + a2 A2)
               combine(4, 0.0, {{1, x3}, {3, 1.0}}),
               combine(5, c0, {{0, c1}, {1, c2}, {3, c4}}),
               combine(6, 1.0, {{0, 1.0}, {1, u2}}), product(7, 4, 5, 6)}};
    }
    // m = 12 (four products).
    {
      const double a[4][4] = {
          {-0.0186023205146205532243437300433, 4.60000000000000000000000000000,
           0.211693118299809442949323323336, 0.0},
          {-0.00500702322573317730979741843919, 0.992875103538486836140479571505,
           0.158224384715726725371768893252, -0.131810610138301840156819349464},
          {-0.573420122960522263905952420789, -0.132445561052799638845074997454,
           0.165635169436727415011171668419, -0.0202785554058925907933568229945},
          {-0.133399693943892059700768926983, 0.00172990000000000000000000000000,
           0.0107862779315792425026320640108, -0.00675951846863086359778560766482}};
      Scheme s{10, {product(1, 0, 0), product(2, 1, 0)}};  // A2, A3
      for (int j = 0; j < 4; ++j)                          // q3j in registers 3..6
        s.steps.push_back(combine(3 + j, a[0][j], {{0, a[1][j]}, {1, a[2][j]}, {2, a[3][j]}}));
      s.steps.push_back(product(7, 6, 6, 5));                        // q61 = q34² + q33
      s.steps.push_back(combine(8, 0.0, {{4, 1.0}, {7, 1.0}}));     // q32 + q61
      s.steps.push_back(product(9, 8, 7, 3));                        // (q32 + q61) q61 + q31
      t[4] = s;
    }
    // m = 18 (five products).
    {
      const double a1 = -0.100365581030144620014614939405, a2 = -0.00802924648241156960116919515244,
                   a3 = -0.000892138498045729955685466128049;
      const double b[5][4] = {
          {0.0, -10.96763960529620625935174626753684124863041876254774214673058385106461743913502064396554589372626845,
           -0.09043168323908105619714688770183495499470866281162649735086602288456671216199491949073419844120202066, 0.0},
          {0.3978497494996450761451961277102845756965081084076856223845951607640145373149032030404660339703426170,
           1.680158138789061971827854017248105095278579593010566858091585875627364747895724070033586802947436157,
           -0.06764045190713819075600799003797074854562826013273060070581796689746210078264908587143648477465431597, 0.0},
          {1.367837784604117199225237068782228242106453540654915795267462332707000476284638745738812082761860458,
           0.05717798464788655127028717132252481317274975093707600394506105236273081373356534970690710643085727120,
           0.06759613017704596460827991950789370565071000768138331455747136830953224978586305376886338214283464385,
           -0.0923364619367118592764570775143},
          {0.4982896225253826775568588172622733561849181397319696269923450773179744578906675427707618377504305561,
           -0.006982101224880520842904664838015531664389838152077753258353447125605205335288966277257918925881337834,
           0.02955525704293155274260691822422312437473046472743510159951445245685893720550532525991666174704105350,
           -0.0169364939002081717191385115723},
          {-0.0006378981945947233092415500564919285518773827581013332055148653241353120789646323186965398317523194760,
           0.00003349750170860705383133673406684398020225996444991565389728295589367037178816169580298011831485225359,
           -0.00001391802575160607011247399793437424028074102305234870853220069004278819595344896368546425681168813708,
           -0.0000140086798182036159794363205726}};
      Scheme s{12, {product(1, 0, 0), product(2, 1, 0), product(3, 2, 2)}};  // A2, A3, A6
      s.steps.push_back(combine(4, 0.0, {{0, a1}, {1, a2}, {2, a3}}));      // q31
      for (int j = 0; j < 4; ++j)  // q6j in registers 5..8 (rows of b: I, A, A2, A3, A6)
        s.steps.push_back(combine(5 + j, b[0][j], {{0, b[1][j]}, {1, b[2][j]}, {2, b[3][j]}, {3, b[4][j]}}));
      s.steps.push_back(product(9, 4, 8, 7));                      // q91 = q31 q64 + q63
      s.steps.push_back(combine(10, 0.0, {{6, 1.0}, {9, 1.0}}));  // q62 + q91
      s.steps.push_back(product(11, 10, 9, 5));                    // (q62 + q91) q91 + q61
      t[5] = s;
    }
    return t;
  }();
  return table;
}

// Which registers the reverse sweep reads: the operands of products.
std::vector<bool> expm_registers_to_keep(const ExpmScheme& scheme) {
  std::vector<bool> keep(scheme.registers, false);
  for (const ExpmStep& s : scheme.steps) {
    if (s.product) keep[s.a] = keep[s.b] = true;
  }
  return keep;
}

at::ScalarType expm_compute_dtype(at::ScalarType t) {
  return (t == at::kHalf || t == at::kBFloat16) ? at::kFloat : t;
}

void check_expm_argument(const at::Tensor& A, const char* op, const char* arg) {
  TORCH_CHECK_VALUE(A.defined(), op, ": argument '", arg, "' is an undefined tensor");
  TORCH_CHECK_VALUE(A.dim() >= 2, op, ": argument '", arg,
              "' must have at least 2 dimensions (..., n, n), got a ", A.dim(), "-D tensor of shape ",
              A.sizes());
  TORCH_CHECK_VALUE(A.size(-1) == A.size(-2), op, ": argument '", arg,
              "' must be square in its last two dimensions (..., n, n), got shape ", A.sizes());
  const auto t = A.scalar_type();
  TORCH_CHECK_VALUE(t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16, op,
              ": argument '", arg, "' must be float32 or float64 (float16/bfloat16 are computed in "
              "float32), got ", t);
}

void check_expm_backward_arguments(const at::Tensor& grad, const at::Tensor& A, const char* op) {
  check_expm_argument(A, op, "A");
  TORCH_CHECK_VALUE(grad.defined(), op, ": argument 'grad' is an undefined tensor");
  TORCH_CHECK_VALUE(grad.sizes() == A.sizes(), op, ": argument 'grad' must have the shape of 'A' ", A.sizes(),
                    ", got ", grad.sizes());
  TORCH_CHECK_VALUE(grad.scalar_type() == A.scalar_type(), op, ": argument 'grad' must have the dtype of 'A' (",
                    A.scalar_type(), "), got ", grad.scalar_type());
  TORCH_CHECK_VALUE(grad.device() == A.device(), op, ": argument 'grad' must be on the device of 'A' (", A.device(),
                    "), got ", grad.device());
}

namespace {

// Degree index and squarings for one matrix of 1-norm v (finite): the smallest degree whose θ
// bounds v, else the top degree after s halvings.
void plan_one(double v, const std::array<double, kNumDegrees>& theta, int64_t& d, int64_t& s) {
  d = 0;
  while (d < kNumDegrees - 1 && v > theta[d]) ++d;
  s = 0;
  if (v > theta[kNumDegrees - 1]) {
    s = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(std::log2(v / theta[kNumDegrees - 1]))));
    while (std::ldexp(v, -static_cast<int>(s)) > theta[kNumDegrees - 1]) ++s;
  }
}

// 1-norm of the n×n row-major m: largest absolute column sum, summed down each column in
// scalar_t; NaN propagates (as amax does) so that the finiteness check sees it. N > 0 fixes n
// at compile time (the tiny matrices, where the loop overhead was most of the pass).
template <int N, typename scalar_t>
scalar_t one_norm(const scalar_t* m, int64_t n, scalar_t* col) {
  if constexpr (N > 0) n = N;
  for (int64_t j = 0; j < n; ++j) col[j] = std::abs(m[j]);
  for (int64_t r = 1; r < n; ++r)
    for (int64_t j = 0; j < n; ++j) col[j] += std::abs(m[r * n + j]);
  scalar_t mx = col[0];
  for (int64_t j = 1; j < n; ++j) mx = (col[j] > mx || std::isnan(col[j])) ? col[j] : mx;
  return mx;
}

}  // namespace

ExpmPlan expm_plan(const at::Tensor& A3, const char* op, const char* arg) {
  const auto B = A3.size(0);
  ExpmPlan plan;
  plan.degree_index.resize(B);
  plan.squarings.resize(B);
  if (B == 0 || A3.size(-1) == 0) return plan;
  const auto& theta = A3.scalar_type() == at::kDouble ? kThetaDouble : kThetaFloat;
  int64_t* degree = plan.degree_index.data();
  int64_t* squarings = plan.squarings.data();
  // The first matrix (of the flattened batch) that is not finite, B if none.
  std::atomic<int64_t> first_bad{B};
  const auto plan_range = [&](const double* norms, int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      if (!std::isfinite(norms[i - begin])) {
        int64_t seen = first_bad.load();
        while (i < seen && !first_bad.compare_exchange_weak(seen, i)) {
        }
        return;
      }
      plan_one(norms[i - begin], theta, degree[i], squarings[i]);
    }
  };
  if (A3.is_cpu() && A3.is_contiguous() && (A3.scalar_type() == at::kFloat || A3.scalar_type() == at::kDouble)) {
    // One parallel pass for norms and plan, no temporaries: on 10⁴ 2×2 matrices a pass with
    // runtime n took half the kernels' time, and the plan loop after it ran on one thread.
    const int64_t n = A3.size(-1);
    AT_DISPATCH_FLOATING_TYPES(A3.scalar_type(), "mantra::expm_plan", [&] {
      const scalar_t* a = A3.const_data_ptr<scalar_t>();
      at::parallel_for(0, B, std::max<int64_t>(1, 16384 / (n * n)), [&](int64_t begin, int64_t end) {
        std::vector<scalar_t> col(n);
        std::vector<double> norms(end - begin);
        const auto norms_of = [&](auto fixed_n) {
          for (int64_t i = begin; i < end; ++i)
            norms[i - begin] = static_cast<double>(one_norm<decltype(fixed_n)::value>(a + i * n * n, n, col.data()));
        };
        switch (n) {
          case 2: norms_of(std::integral_constant<int, 2>{}); break;
          case 3: norms_of(std::integral_constant<int, 3>{}); break;
          case 4: norms_of(std::integral_constant<int, 4>{}); break;
          case 8: norms_of(std::integral_constant<int, 8>{}); break;
          default: norms_of(std::integral_constant<int, 0>{});
        }
        plan_range(norms.data(), begin, end);
      });
    });
  } else {
    // One host synchronization for the whole batch.
    at::Tensor norms = A3.abs().sum(-2).amax(-1);
    if (!norms.is_cpu()) norms = norms.cpu();
    if (norms.scalar_type() != at::kDouble) norms = norms.to(at::kDouble);
    plan_range(norms.contiguous().const_data_ptr<double>(), 0, B);
  }
  const int64_t bad = first_bad.load();
  TORCH_CHECK_VALUE(bad == B, op, ": argument '", arg, "' contains NaN or Inf (matrix ", bad,
                    " of the flattened batch of ", B, ")");
  return plan;
}

namespace {

// Scaling and squaring for every matrix of the plan (no skew route).
at::Tensor run_squaring(const at::Tensor& A3, const ExpmPlan& plan, std::vector<at::Tensor>* trace) {
  at::Tensor out;
  const auto groups = make_groups(plan);
  if (groups.size() != 1 || !groups[0].whole_batch) out = at::empty_like(A3);
  for (const Group& g : groups) {
    const Scheme& scheme = expm_schemes()[g.degree_index];
    at::Tensor idx = g.whole_batch ? at::Tensor() : index_tensor(g, A3);
    at::Tensor X = g.whole_batch ? A3 : A3.index_select(0, idx);
    if (at::Tensor f = scale_factors(g, X); f.defined()) X = X * f;
    std::vector<at::Tensor> R = evaluate(scheme, X);
    at::Tensor P = R.back();
    if (trace) {
      // Register 0 is (a scaled copy of) the input: the reverse sweep rebuilds it from A, so
      // the trace never aliases the input and autograd's version check guards A itself.
      const auto keep = expm_registers_to_keep(scheme);
      for (int r = 1; r < scheme.registers; ++r)
        if (keep[r]) trace->push_back(R[r]);
    }
    R.clear();
    // Squaring phase; the members still being squared are a prefix of the group.
    const int64_t m = static_cast<int64_t>(g.members.size());
    const int64_t max_s = g.squarings.front();
    for (int64_t step = 0; step < max_s; ++step) {
      const int64_t k = active_count(g.squarings, step);
      at::Tensor head = P.narrow(0, 0, k);
      at::Tensor sq = at::bmm(head, head);
      if (trace) trace->push_back(head);
      P = k == m ? sq : at::cat({sq, P.narrow(0, k, m - k)});
    }
    if (g.whole_batch && groups.size() == 1) {
      out = P;
    } else {
      out.index_copy_(0, idx, P);
    }
  }
  return out;
}

at::Tensor reverse_squaring(const at::Tensor& G3, const at::Tensor& A3, const ExpmPlan& plan,
                            at::TensorList trace) {
  at::Tensor grad;
  const auto groups = make_groups(plan);
  if (groups.size() != 1 || !groups[0].whole_batch) grad = at::zeros_like(G3);
  // Walk the trace in the order expm_run wrote it.
  size_t pos = 0;
  for (const Group& g : groups) {
    const Scheme& scheme = expm_schemes()[g.degree_index];
    at::Tensor idx = g.whole_batch ? at::Tensor() : index_tensor(g, G3);
    std::vector<at::Tensor> R(scheme.registers);
    R[0] = g.whole_batch ? A3 : A3.index_select(0, idx);
    if (at::Tensor f = scale_factors(g, R[0]); f.defined()) R[0] = R[0] * f;
    const auto keep = expm_registers_to_keep(scheme);
    for (int r = 1; r < scheme.registers; ++r) {
      if (!keep[r]) continue;
      TORCH_INTERNAL_ASSERT(pos < trace.size(), "expm trace does not match its plan");
      R[r] = trace[pos++];
    }
    const int64_t m = static_cast<int64_t>(g.members.size());
    const int64_t max_s = g.squarings.front();
    TORCH_INTERNAL_ASSERT(pos + max_s <= trace.size(), "expm trace does not match its plan");
    std::vector<at::Tensor> powers(trace.begin() + pos, trace.begin() + pos + max_s);
    pos += max_s;

    at::Tensor Gg = g.whole_batch ? G3 : G3.index_select(0, idx);
    // Squaring phase: Y = X² has adjoint Xᵀ·Ḡ + Ḡ·Xᵀ.
    for (int64_t step = max_s - 1; step >= 0; --step) {
      const at::Tensor& X = powers[step];
      const int64_t k = X.size(0);
      at::Tensor head = Gg.narrow(0, 0, k);
      at::Tensor back = at::bmm(X.mT(), head);
      back.baddbmm_(head, X.mT());
      Gg = k == m ? back : at::cat({back, Gg.narrow(0, k, m - k)});
    }
    at::Tensor dX = evaluate_reverse(scheme, R, Gg);
    if (at::Tensor f = scale_factors(g, dX); f.defined()) dX = dX * f;
    if (g.whole_batch && groups.size() == 1) {
      grad = dX;
    } else {
      grad.index_copy_(0, idx, dX);
    }
  }
  TORCH_INTERNAL_ASSERT(pos == trace.size(), "expm trace does not match its plan");
  return grad;
}

// The matrices of each route, and the plan of the scaling-and-squaring ones.
struct RouteSplit {
  std::vector<int64_t> squaring, skew;
  ExpmPlan squaring_plan;
};

RouteSplit split_routes(const ExpmPlan& plan) {
  RouteSplit r;
  for (size_t i = 0; i < plan.skew.size(); ++i) {
    if (plan.skew[i]) {
      r.skew.push_back(static_cast<int64_t>(i));
    } else {
      r.squaring.push_back(static_cast<int64_t>(i));
      r.squaring_plan.degree_index.push_back(plan.degree_index[i]);
      r.squaring_plan.squarings.push_back(plan.squarings[i]);
    }
  }
  return r;
}

at::Tensor indices(const std::vector<int64_t>& idx, const at::Tensor& like) {
  const at::Tensor t = at::tensor(idx, at::TensorOptions().dtype(at::kLong));
  return like.is_cpu() ? t : t.to(like.device());
}

}  // namespace

bool plan_has_skew(const ExpmPlan& plan) {
  return std::any_of(plan.skew.begin(), plan.skew.end(), [](bool b) { return b; });
}

at::Tensor expm_run(const at::Tensor& A3, const ExpmPlan& plan, std::vector<at::Tensor>* trace) {
  if (!plan_has_skew(plan)) return run_squaring(A3, plan, trace);
  const RouteSplit r = split_routes(plan);
  if (r.squaring.empty()) return expm_skew_run(A3, trace);
  // Scaling and squaring's trace first, the skew route's (V, λ, P) last.
  const at::Tensor idx_sq = indices(r.squaring, A3), idx_sk = indices(r.skew, A3);
  at::Tensor out = at::empty_like(A3);
  out.index_copy_(0, idx_sq, run_squaring(A3.index_select(0, idx_sq), r.squaring_plan, trace));
  out.index_copy_(0, idx_sk, expm_skew_run(A3.index_select(0, idx_sk), trace));
  return out;
}

at::Tensor expm_reverse(const at::Tensor& G3, const at::Tensor& A3, const ExpmPlan& plan,
                        at::TensorList trace) {
  if (!plan_has_skew(plan)) return reverse_squaring(G3, A3, plan, trace);
  TORCH_INTERNAL_ASSERT(trace.size() >= kSkewTraceSize, "expm trace does not match its plan");
  const at::TensorList skew_trace = trace.slice(trace.size() - kSkewTraceSize);
  const RouteSplit r = split_routes(plan);
  if (r.squaring.empty()) return expm_skew_reverse(G3, A3, skew_trace);
  const at::Tensor idx_sq = indices(r.squaring, A3), idx_sk = indices(r.skew, A3);
  at::Tensor grad = at::empty_like(G3);
  grad.index_copy_(0, idx_sq, reverse_squaring(G3.index_select(0, idx_sq), A3.index_select(0, idx_sq),
                                               r.squaring_plan, trace.slice(0, trace.size() - kSkewTraceSize)));
  grad.index_copy_(0, idx_sk, expm_skew_reverse(G3.index_select(0, idx_sk), A3.index_select(0, idx_sk), skew_trace));
  return grad;
}

at::Tensor to_batch(const at::Tensor& X) {
  const auto n = X.size(-1);
  const auto compute = expm_compute_dtype(X.scalar_type());
  const at::Tensor Xc = X.scalar_type() == compute ? X : X.to(compute);
  return Xc.reshape({-1, n, n}).contiguous();
}

at::Tensor from_batch(const at::Tensor& X3, at::IntArrayRef shape, at::ScalarType dtype) {
  const at::Tensor X = X3.view(shape);
  return X.scalar_type() == dtype ? X : X.to(dtype);
}

at::Tensor expm_forward_generic(const at::Tensor& A, bool skew_route) {
  check_expm_argument(A, "mantra::expm", "A");
  if (A.numel() == 0) return at::empty(A.sizes(), A.options());
  at::Tensor A3 = to_batch(A);
  ExpmPlan plan = expm_plan(A3, "mantra::expm", "A");
  if (skew_route) expm_choose_routes(A3, plan, ExpmPurpose::Value);
  return from_batch(expm_run(A3, plan, nullptr), A.sizes(), A.scalar_type());
}

at::Tensor expm_backward_generic(const at::Tensor& grad, const at::Tensor& A, bool skew_route) {
  check_expm_backward_arguments(grad, A, "mantra::expm_backward");
  if (A.numel() == 0) return at::zeros(A.sizes(), A.options());
  at::Tensor A3 = to_batch(A);
  ExpmPlan plan = expm_plan(A3, "mantra::expm_backward", "A");
  if (skew_route) expm_choose_routes(A3, plan, ExpmPurpose::Gradient);
  std::vector<at::Tensor> trace;
  expm_run(A3, plan, &trace);
  return from_batch(expm_reverse(to_batch(grad), A3, plan, trace), A.sizes(), A.scalar_type());
}

std::tuple<at::Tensor, std::vector<at::Tensor>> expm_traced_generic(const at::Tensor& A, bool skew_route) {
  // The forward of mantra::expm under autograd: its errors name the public op.
  check_expm_argument(A, "mantra::expm", "A");
  if (A.numel() == 0) return {at::empty(A.sizes(), A.options()), {}};
  at::Tensor A3 = to_batch(A);
  ExpmPlan plan = expm_plan(A3, "mantra::expm", "A");
  if (skew_route) expm_choose_routes(A3, plan, ExpmPurpose::Gradient);
  std::vector<at::Tensor> trace = {pack_plan(plan)};
  at::Tensor E = expm_run(A3, plan, &trace);
  return {from_batch(E, A.sizes(), A.scalar_type()), std::move(trace)};
}

at::Tensor expm_forward_generic(const at::Tensor& A) { return expm_forward_generic(A, false); }
at::Tensor expm_backward_generic(const at::Tensor& grad, const at::Tensor& A) {
  return expm_backward_generic(grad, A, false);
}
std::tuple<at::Tensor, std::vector<at::Tensor>> expm_traced_generic(const at::Tensor& A) {
  return expm_traced_generic(A, false);
}

at::Tensor expm_traced_backward_generic(const at::Tensor& grad, const at::Tensor& A, at::TensorList trace) {
  check_expm_backward_arguments(grad, A, "mantra::_expm_traced_backward");
  if (A.numel() == 0) return at::zeros(A.sizes(), A.options());
  TORCH_CHECK_VALUE(!trace.empty(), "mantra::_expm_traced_backward: argument 'trace' must be the trace "
                    "mantra::_expm_traced returned for 'A', got an empty list");
  at::Tensor A3 = to_batch(A);
  const ExpmPlan plan = unpack_plan(trace[0], A3.size(0));
  return from_batch(expm_reverse(to_batch(grad), A3, plan, trace.slice(1)), A.sizes(), A.scalar_type());
}

at::Tensor pack_plan(const ExpmPlan& plan) {
  std::vector<int64_t> packed(plan.degree_index);
  packed.insert(packed.end(), plan.squarings.begin(), plan.squarings.end());
  const bool skew = plan_has_skew(plan);
  if (skew) packed.insert(packed.end(), plan.skew.begin(), plan.skew.end());
  return at::tensor(packed, at::TensorOptions().dtype(at::kLong)).view({skew ? 3 : 2, -1});
}

ExpmPlan unpack_plan(const at::Tensor& packed, int64_t batch) {
  TORCH_CHECK_VALUE(packed.is_cpu() && packed.scalar_type() == at::kLong && packed.dim() == 2 &&
                        (packed.size(0) == 2 || packed.size(0) == 3) && packed.size(1) == batch,
                    "mantra::_expm_traced_backward: argument 'trace' must start with the plan of 'A' (an int64 "
                    "CPU tensor of shape [2, ", batch, "] or [3, ", batch, "]), got a ", packed.scalar_type(),
                    " tensor of shape ", packed.sizes(), " on ", packed.device());
  const at::Tensor p = packed.contiguous();
  const int64_t* d = p.const_data_ptr<int64_t>();
  ExpmPlan plan;
  plan.degree_index.assign(d, d + batch);
  plan.squarings.assign(d + batch, d + 2 * batch);
  if (packed.size(0) == 3) {
    for (int64_t i = 0; i < batch; ++i) {
      TORCH_CHECK_VALUE(d[2 * batch + i] == 0 || d[2 * batch + i] == 1,
                        "mantra::_expm_traced_backward: argument 'trace' holds an invalid plan (matrix ", i, ")");
      plan.skew.push_back(d[2 * batch + i] == 1);
    }
  }
  for (int64_t i = 0; i < batch; ++i) {
    TORCH_CHECK_VALUE(plan.degree_index[i] >= 0 && plan.degree_index[i] < kNumDegrees && plan.squarings[i] >= 0 &&
                          plan.squarings[i] <= kMaxSquarings,
                      "mantra::_expm_traced_backward: argument 'trace' holds an invalid plan (matrix ", i, ")");
  }
  return plan;
}

}  // namespace mantra::detail
