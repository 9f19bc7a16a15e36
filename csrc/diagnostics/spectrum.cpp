#include "mantra/diagnostics/spectrum.h"

#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <limits>

namespace mantra::diagnostics {

namespace {

namespace ag = torch::autograd;

void check_options(const PowerIterationOptions& o, const char* fn) {
  TORCH_CHECK_VALUE(o.max_iterations >= 1, fn, ": argument 'max_iterations' must be >= 1, got ", o.max_iterations);
  TORCH_CHECK_VALUE(o.tolerance >= 0, fn, ": argument 'tolerance' must be >= 0, got ", o.tolerance);
}

// Gaussian start vectors, deterministic in the seed (drawn on the CPU, then moved).
torch::Tensor start_vector(at::IntArrayRef sizes, const torch::TensorOptions& options, at::Generator& gen) {
  return at::normal(0.0, 1.0, sizes, gen, torch::TensorOptions().dtype(torch::kFloat64)).to(options);
}

torch::Tensor or_zeros(const torch::Tensor& t, const torch::Tensor& like) { return t.defined() ? t : torch::zeros_like(like); }

// f(x) with x a fresh leaf that requires grad, checked to be (B, m) for x (B, n).
std::pair<torch::Tensor, torch::Tensor> row_output(const Function& f, const torch::Tensor& x, const char* fn) {
  TORCH_CHECK_VALUE(static_cast<bool>(f), fn, ": argument 'f' is empty");
  TORCH_CHECK_VALUE(x.defined() && x.dim() == 2 && x.size(0) > 0 && x.size(1) > 0, fn,
                    ": argument 'x' must be a non-empty batch of shape (B, n), got ", x.defined() ? x.sizes() : c10::IntArrayRef{});
  TORCH_CHECK_VALUE(at::isFloatingType(x.scalar_type()), fn, ": argument 'x' must be floating point, got ", x.scalar_type());
  torch::Tensor xl = x.detach().clone().requires_grad_(true);
  torch::Tensor y;
  {
    torch::AutoGradMode enable(true);
    y = f(xl);
  }
  TORCH_CHECK_VALUE(y.defined() && y.dim() == 2 && y.size(0) == x.size(0), fn,
                    ": the model's output must be (B, m) for 'x' of shape ", x.sizes(), ", got ",
                    y.defined() ? y.sizes() : c10::IntArrayRef{});
  TORCH_CHECK_VALUE(y.requires_grad(), fn, ": the model's output does not depend on 'x' through autograd");
  return {xl, y};
}

// Row-wise norms and inner products of (B, n) tensors, keeping the row dimension.
torch::Tensor row_dot(const torch::Tensor& a, const torch::Tensor& b) { return (a * b).sum(1); }

}  // namespace

JacobianSpectrum jacobian_spectrum(const Function& f, const torch::Tensor& x, const JacobianSpectrumOptions& options) {
  const char* fn = "jacobian_spectrum";
  check_options(options, fn);
  TORCH_CHECK_VALUE(options.chi_probes >= 0, fn, ": argument 'chi_probes' must be >= 0, got ", options.chi_probes);
  torch::AutoGradMode enable(true);
  auto [xl, y] = row_output(f, x, fn);
  const int64_t B = x.size(0), n = x.size(1), m = y.size(1);
  // g(u) = Jᵀu with a dummy cotangent u; ∂⟨g, v⟩/∂u = Jv (the double-backward JVP).
  torch::Tensor u = torch::zeros_like(y).requires_grad_(true);
  torch::Tensor g = ag::grad({y}, {xl}, {u}, /*retain_graph=*/true, /*create_graph=*/true)[0];
  auto jvp = [&](const torch::Tensor& v) {
    if (!g.requires_grad()) return torch::zeros_like(y);  // J does not depend on u: J = 0
    return or_zeros(ag::grad({g}, {u}, {v}, true, false, /*allow_unused=*/true)[0], y).detach();
  };
  auto vjp = [&](const torch::Tensor& w) { return or_zeros(ag::grad({y}, {xl}, {w}, true, false, true)[0], xl).detach(); };

  at::Generator gen = at::detail::createCPUGenerator(options.seed);
  JacobianSpectrum out;
  torch::Tensor v = start_vector({B, n}, x.options(), gen);
  v = v / v.norm(2, 1, true);
  torch::Tensor lambda = torch::zeros({B}, x.options());
  for (int64_t it = 1; it <= options.max_iterations; ++it) {
    torch::Tensor Av = vjp(jvp(v));  // JᵀJ v, row by row
    lambda = row_dot(v, Av);
    torch::Tensor res = (Av - lambda.unsqueeze(1) * v).norm(2, 1) / lambda.abs().clamp_min(std::numeric_limits<double>::min());
    res = torch::where(lambda == 0, torch::zeros_like(res), res);  // J_b = 0: λ = 0 exactly
    out.iterations = it;
    out.residual = res.max().item<double>();
    torch::Tensor nrm = Av.norm(2, 1, true);
    v = torch::where(nrm > 0, Av / nrm.clamp_min(std::numeric_limits<double>::min()), v);
    if (out.residual <= options.tolerance) {
      out.converged = true;
      break;
    }
  }
  out.s_max = lambda.clamp_min(0).sqrt();
  const double k = static_cast<double>(std::min(m, n));
  if (options.full_spectrum) {
    torch::Tensor J = jacobian(f, x);  // (B, m, n)
    out.singular_values = torch::linalg_svdvals(J);
    out.chi = J.pow(2).sum({1, 2}) / k;
    out.chi_stderr = torch::zeros({B}, x.options());
  } else if (options.chi_probes > 0) {
    // Hutchinson: E‖Jr‖² = ‖J‖²_F for Rademacher r (E rrᵀ = I).
    std::vector<torch::Tensor> samples;
    for (int64_t p = 0; p < options.chi_probes; ++p) {
      torch::Tensor r = at::bernoulli(torch::full({B, n}, 0.5, torch::kFloat64), gen).mul(2).sub(1).to(x.options());
      samples.push_back(jvp(r).pow(2).sum(1) / k);
    }
    torch::Tensor s = torch::stack(samples, 0);
    out.chi = s.mean(0);
    out.chi_stderr = options.chi_probes > 1 ? s.std(0) / std::sqrt(static_cast<double>(options.chi_probes))
                                            : torch::full({B}, std::numeric_limits<double>::quiet_NaN(), x.options());
  } else {
    out.chi = torch::full({B}, std::numeric_limits<double>::quiet_NaN(), x.options());
    out.chi_stderr = out.chi.clone();
  }
  return out;
}

torch::Tensor jacobian(const Function& f, const torch::Tensor& x) {
  torch::AutoGradMode enable(true);
  auto [xl, y] = row_output(f, x, "jacobian");
  const int64_t B = x.size(0), n = x.size(1), m = y.size(1);
  // Batched VJPs: each row of x is repeated c times and the c copies get the cotangents
  // e_i, …, e_{i+c−1}, so one backward pass gives c rows of every J_b (f acts on rows
  // independently). At most kRows rows per pass bound the memory.
  constexpr int64_t kRows = 1024;
  const int64_t c = std::max<int64_t>(1, std::min(m, kRows / B));
  std::vector<torch::Tensor> parts;
  for (int64_t i0 = 0; i0 < m; i0 += c) {
    const int64_t cc = std::min(c, m - i0);
    torch::Tensor xr = x.detach().unsqueeze(1).expand({B, cc, n}).reshape({B * cc, n}).clone().requires_grad_(true);
    torch::Tensor yr = f(xr);
    TORCH_CHECK_VALUE(yr.dim() == 2 && yr.size(0) == B * cc && yr.size(1) == m,
                      "jacobian: the model must act on rows independently; for ", B * cc, " rows it returned ",
                      yr.sizes());
    torch::Tensor e = torch::zeros({B, cc, m}, y.options());
    e.narrow(2, i0, cc).copy_(torch::eye(cc, y.options()).expand({B, cc, cc}));
    torch::Tensor g = or_zeros(ag::grad({yr}, {xr}, {e.reshape({B * cc, m})}, false, false, true)[0], xr);
    parts.push_back(g.reshape({B, cc, n}).detach());
  }
  return torch::cat(parts, 1);
}

// ---------------------------------------------------------------- Fisher
namespace {

struct FisherContext {
  std::vector<torch::Tensor> params;
  torch::Tensor z, u, p;        // output (N, k), dummy cotangent, softmax probabilities
  std::vector<torch::Tensor> g;  // J_θᵀu, one per parameter
  bool cross_entropy = false;
  double inv_n = 1;

  // G v = (1/N) J_θᵀ H J_θ v.
  std::vector<torch::Tensor> product(const std::vector<torch::Tensor>& v) {
    std::vector<torch::Tensor> gs, vs;
    for (size_t i = 0; i < g.size(); ++i) {
      if (g[i].requires_grad()) {
        gs.push_back(g[i]);
        vs.push_back(v[i]);
      }
    }
    torch::Tensor w = gs.empty() ? torch::zeros_like(z) : or_zeros(ag::grad(gs, {u}, vs, true, false, true)[0], z);
    w = w.detach();
    if (cross_entropy) w = p * w - p * (p * w).sum(1, true);
    auto out = ag::grad({z}, params, {w * inv_n}, true, false, true);
    for (size_t i = 0; i < out.size(); ++i) out[i] = or_zeros(out[i], params[i]).detach();
    return out;
  }
};

FisherContext fisher_context(const Function& model, const std::vector<torch::Tensor>& parameters, const std::string& loss,
                             const torch::Tensor& data, const char* fn) {
  TORCH_CHECK_VALUE(static_cast<bool>(model), fn, ": argument 'model' is empty");
  TORCH_CHECK_VALUE(loss == "mse" || loss == "cross_entropy", fn,
                    ": argument 'loss' must be mse or cross_entropy (the losses with a Gauss–Newton Fisher product), got '",
                    loss, "'");
  FisherContext c;
  for (const auto& p : parameters) {
    if (p.defined() && p.requires_grad()) c.params.push_back(p);
  }
  TORCH_CHECK_VALUE(!c.params.empty(), fn, ": argument 'parameters' must hold at least one tensor that requires grad ",
                    "(a model without parameters has no Fisher information), got ", parameters.size(), " tensors, none trainable");
  TORCH_CHECK_VALUE(c.params.size() == parameters.size(), fn, ": argument 'parameters' holds ",
                    parameters.size() - c.params.size(), " tensor(s) that are undefined or do not require grad");
  TORCH_CHECK_VALUE(data.defined() && data.dim() >= 2 && data.size(0) > 0, fn,
                    ": argument 'data' must be a non-empty batch (N, ...) with at least 2 dimensions, got ",
                    data.defined() ? data.sizes() : c10::IntArrayRef{});
  torch::AutoGradMode enable(true);
  c.z = model(data);
  TORCH_CHECK_VALUE(c.z.defined() && c.z.dim() == 2 && c.z.size(0) == data.size(0), fn,
                    ": the model's output must be (N, k) for 'data' with N = ", data.size(0), " rows, got ",
                    c.z.defined() ? c.z.sizes() : c10::IntArrayRef{});
  TORCH_CHECK_VALUE(c.z.requires_grad(), fn, ": the model's output does not depend on 'parameters' through autograd");
  c.cross_entropy = loss == "cross_entropy";
  if (c.cross_entropy) c.p = torch::softmax(c.z.detach(), 1);
  c.inv_n = 1.0 / static_cast<double>(data.size(0));
  c.u = torch::zeros_like(c.z).requires_grad_(true);
  c.g = ag::grad({c.z}, c.params, {c.u}, true, true, true);
  for (size_t i = 0; i < c.g.size(); ++i) c.g[i] = or_zeros(c.g[i], c.params[i]);
  return c;
}

double total_dot(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (a[i].to(torch::kFloat64) * b[i].to(torch::kFloat64)).sum().item<double>();
  return s;
}

// Power iteration on c.product restricted to the parameters with mask[i] (others stay zero).
FisherEigen power_iterate(FisherContext& c, const std::vector<bool>& mask, const PowerIterationOptions& options) {
  at::Generator gen = at::detail::createCPUGenerator(options.seed);
  std::vector<torch::Tensor> v;
  for (size_t i = 0; i < c.params.size(); ++i) {
    torch::Tensor r = start_vector(c.params[i].sizes(), c.params[i].options(), gen);
    v.push_back(mask[i] ? r : torch::zeros_like(r));
  }
  auto normalize = [](std::vector<torch::Tensor>& w, double nrm) {
    for (auto& t : w) t = t / nrm;
  };
  normalize(v, std::sqrt(total_dot(v, v)));
  FisherEigen out;
  for (int64_t it = 1; it <= options.max_iterations; ++it) {
    std::vector<torch::Tensor> Gv = c.product(v);
    for (size_t i = 0; i < Gv.size(); ++i) {
      if (!mask[i]) Gv[i] = torch::zeros_like(Gv[i]);
    }
    const double lambda = total_dot(v, Gv);
    std::vector<torch::Tensor> r;
    for (size_t i = 0; i < v.size(); ++i) r.push_back(Gv[i] - lambda * v[i]);
    const double rn = std::sqrt(total_dot(r, r));
    const double gn = std::sqrt(total_dot(Gv, Gv));
    out.lambda_max = lambda;
    out.iterations = it;
    out.residual = lambda > 0 ? rn / lambda : (gn == 0 ? 0.0 : std::numeric_limits<double>::infinity());
    if (gn > 0) {
      normalize(Gv, gn);
      v = Gv;
    }
    if (out.residual <= options.tolerance) {
      out.converged = true;
      break;
    }
  }
  out.vector = v;
  return out;
}

}  // namespace

std::vector<torch::Tensor> fisher_vector_product(const Function& model, const std::vector<torch::Tensor>& parameters,
                                                 const std::string& loss, const torch::Tensor& data,
                                                 const std::vector<torch::Tensor>& v) {
  const char* fn = "fisher_vector_product";
  FisherContext c = fisher_context(model, parameters, loss, data, fn);
  TORCH_CHECK_VALUE(v.size() == c.params.size(), fn, ": argument 'v' must hold one tensor per parameter (",
                    c.params.size(), "), got ", v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    TORCH_CHECK_VALUE(v[i].defined() && v[i].sizes() == c.params[i].sizes(), fn, ": argument 'v[", i,
                      "]' must have the shape of its parameter ", c.params[i].sizes(), ", got ",
                      v[i].defined() ? v[i].sizes() : c10::IntArrayRef{});
  }
  std::vector<torch::Tensor> vv;
  for (size_t i = 0; i < v.size(); ++i) vv.push_back(v[i].detach().to(c.params[i].options()));
  return c.product(vv);
}

FisherEigen fisher_max_eigenvalue(const Function& model, const std::vector<torch::Tensor>& parameters,
                                  const std::string& loss, const torch::Tensor& data, const PowerIterationOptions& options) {
  const char* fn = "fisher_max_eigenvalue";
  check_options(options, fn);
  FisherContext c = fisher_context(model, parameters, loss, data, fn);
  return power_iterate(c, std::vector<bool>(c.params.size(), true), options);
}

torch::Tensor fisher_matrix(const Function& model, const std::vector<torch::Tensor>& parameters, const std::string& loss,
                            const torch::Tensor& data) {
  FisherContext c = fisher_context(model, parameters, loss, data, "fisher_matrix");
  std::vector<torch::Tensor> cols;
  for (size_t i = 0; i < c.params.size(); ++i) {
    for (int64_t j = 0; j < c.params[i].numel(); ++j) {
      std::vector<torch::Tensor> e;
      for (size_t k = 0; k < c.params.size(); ++k) e.push_back(torch::zeros_like(c.params[k]));
      e[i].view(-1)[j] = 1;
      std::vector<torch::Tensor> Ge = c.product(e);
      std::vector<torch::Tensor> flat;
      for (auto& t : Ge) flat.push_back(t.reshape(-1));
      cols.push_back(torch::cat(flat));
    }
  }
  return torch::stack(cols, 1);
}

FisherBlockBound fisher_block_bound(const Function& model, const std::vector<std::vector<torch::Tensor>>& blocks,
                                    const std::string& loss, const torch::Tensor& data, const PowerIterationOptions& options) {
  const char* fn = "fisher_block_bound";
  check_options(options, fn);
  TORCH_CHECK_VALUE(!blocks.empty(), fn, ": argument 'blocks' must hold at least one block of parameters, got none");
  std::vector<torch::Tensor> all;
  std::vector<size_t> owner;
  for (size_t b = 0; b < blocks.size(); ++b) {
    TORCH_CHECK_VALUE(!blocks[b].empty(), fn, ": argument 'blocks[", b, "]' is empty");
    for (const auto& t : blocks[b]) {
      all.push_back(t);
      owner.push_back(b);
    }
  }
  FisherContext c = fisher_context(model, all, loss, data, fn);
  FisherBlockBound out;
  double sum_sqrt = 0, max_l = 0;
  for (size_t b = 0; b < blocks.size(); ++b) {
    std::vector<bool> mask(all.size());
    for (size_t i = 0; i < all.size(); ++i) mask[i] = owner[i] == b;
    FisherEigen e = power_iterate(c, mask, options);
    const double l = std::max(e.lambda_max, 0.0);
    out.block_lambda_max.push_back(l);
    out.block_iterations.push_back(e.iterations);
    sum_sqrt += std::sqrt(l);
    out.sum += l;
    max_l = std::max(max_l, l);
  }
  out.lower = max_l;
  out.gershgorin = std::sqrt(max_l) * sum_sqrt;
  out.upper = std::min(out.gershgorin, out.sum);
  return out;
}

}  // namespace mantra::diagnostics
