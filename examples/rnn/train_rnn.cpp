// mantra_train_rnn: trains orthogonal RNNs (dynamic trivialization, expRNN, Cayley, RGD) and
// LSTM / tanh-RNN baselines on TIMIT-style speech prediction, the copying task or pixel digits,
// and prints a results table and a plot of the learning curves. Run with --help.
#include <torch/torch.h>

#include <mantra/mantra.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>
#include <thread>

#include "checkpoint.h"
#include "data/io_util.h"
#include "models.h"
#include "report.h"
#include "tasks.h"

namespace ex = mantra::examples;
namespace nn = mantra::nn;
namespace io = mantra::examples::detail;

namespace {

std::atomic<int> g_interrupts{0};
void on_signal(int) {
  if (++g_interrupts >= 2) std::_Exit(130);  // a second Ctrl-C leaves at once
}

const char* kUsage = R"(usage: mantra_train_rnn [options]

Trains recurrent models and prints a results table (results.md) and learning curves
(curves.svg) in --out. Without options: the quick default run (synthetic TIMIT-style corpus,
full size, hidden 128, 12 epochs: a DTRIV100 and an EXPRNN orthogonal RNN and an LSTM with
about the same number of parameters; a few minutes on 2 cores).

task and data
  --task NAME          timit (default) | copying | digits | pdigits | mnist | pmnist
  --full               hidden 224, all models, 20 epochs (the paper's models and size, this setup)
  --train-utts N --valid-utts N --test-utts N   synthetic corpus size (default 3640/192/400)
  --timit-root DIR     real TIMIT (LDC tree, NIST SPHERE) instead of the synthetic corpus
  --timit-split S      mantra (default: SA1/SA2 out, 3696 train, test 50 non-core TEST speakers)
                       | published (the uRNN preprocessing: paths containing "sa" out, 3640 train,
                       test the 50 development-list speakers, 400 utterances); valid: core test
  --target T           next (default: input frame t, predict frame t+1) | recall (the published
                       expRNN pairing: input frame t+1, output frame t)
  --features F         standardized (default: inputs standardized, outputs mapped back to dB,
                       zero read-out) | raw-db (the published: raw dB in and out, torch's read-out)
  --loss-denominator D valid (default: MSE over the valid frames) | padded (over all padded
                       frames, the published uRNN LSTM's mean)
  --max-frames N       cut every utterance to its first N frames (default 0: whole utterances)
  --cache-dir DIR      where corpora are cached (default ~/.cache/mantra)
  --lag L              copying task lag (default 1000)
  --copying-batches N  training batches per copying "epoch" (default 100)
  --mnist-dir DIR      folder with the MNIST IDX files (tasks mnist, pmnist)
models
  --models LIST        comma separated from: dtriv1 dtriv100 dtrivinf dtrivK (any K) exprnn
                       cayley cayley-base rgd lstm lstm-adam lstm-urnn rnn (lstm-R: the LSTM
                       with recipe R whatever --lstm-recipe); "all" = dtriv1,dtriv100,dtrivinf,
                       exprnn,cayley,rgd,lstm
                       (default: dtriv100,exprnn,lstm; --full: all)
  --hidden N           orthogonal RNN hidden size (default 128; --full 224)
  --lstm-hidden N      LSTM hidden size (default: about the orthogonal model's parameter count)
  --rnn-hidden N       tanh-RNN hidden size (default: the same rule)
  --init NAME          orthogonal init: henaff (default) | cayley | torus | uniform | origin
  --readout-init I     zero (default, except with --features raw-db: W_out = 0, c = 0; with
                       standardized features every model starts by predicting the training
                       mean / uniform logits) | default (torch's init; the default with raw-db)
                       | mean (W_out = 0, c = the training mean in the output's units: with raw
                       dB, too, every model starts at the training-mean predictor)
optimization (the paper's defaults)
  --epochs N           (default 12; --full 20): the most epochs
  --patience P         early stopping: stop a model after P epochs without a new best
                       validation loss (default 0: off)
  --min-delta R        with --patience: a new best counts only when it is below (1 - R) x the
                       last counted one (default 0: any new best)
  --batch N            (default 32)
  --optimizer O        adam (default) | rmsprop: the optimizer of the unconstrained parameters
  --lr X               its learning rate (default 1e-3)
  --lr-orth X          RMSprop for the orthogonal parameters (default 1e-4)
  --orth-optimizer O   rmsprop (default) | adam | sgd | adagrad
  --lr-rgd X           SGD step of the rgd model (default 1e-2)
  --clip X             clip the gradient norm of any model (default 0: off)
  --lstm-recipe R      adam (default: --optimizer at --lr, torch's init) | urnn (the uRNN LSTM:
                       forget-gate bias 1, RMSprop lr 1e-3, elementwise gradient clipping at 1)
running
  --device D           cpu (default) | cuda
  --threads N          intra-op threads, N >= 1 (default: all cores)
  --seed N             (default 0): initialization, batch order and, unless --data-seed, the corpus
  --data-seed N        the synthetic corpus's seed (default: --seed), so that seeds share one corpus
  --out DIR            output folder (default results/<task>)
  --resume             continue each model from its last checkpoint (exactly: same losses)
)";

struct Config {
  ex::TaskOptions task;
  std::vector<std::string> models;
  int64_t hidden = 128, lstm_hidden = 0, rnn_hidden = 0;
  std::string init = "henaff";
  std::string readout_init;  // "" -> zero, or default with --features raw-db
  std::string lstm_recipe = "adam";
  int64_t epochs = 12;
  int64_t patience = 0;
  double min_delta = 0;  // patience: a new best counts when it is below (1 - min_delta) x the last counted one
  double lr = 1e-3, lr_orth = 1e-4, lr_rgd = 1e-2, clip = 0;
  std::string orth_optimizer = "rmsprop";
  std::string optimizer = "adam";
  std::string device = "cpu";
  int threads = 0;  // 0: not given (all cores)
  std::string out;
  bool resume = false;
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep))
    if (!item.empty()) out.push_back(item);
  return out;
}

Config parse(int argc, char** argv) {
  Config c;
  bool full = false, models_set = false, hidden_set = false, epochs_set = false;
  std::map<std::string, std::string> kv;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (a == "--full") {
      full = true;
    } else if (a == "--resume") {
      c.resume = true;
    } else if (a.rfind("--", 0) == 0) {
      TORCH_CHECK_VALUE(i + 1 < argc, "option ", a, " needs a value (see --help)");
      kv[a] = argv[++i];
    } else {
      TORCH_CHECK_VALUE(false, "unexpected argument '", a, "' (see --help)");
    }
  }
  auto take = [&](const char* key, auto& field) {
    auto it = kv.find(key);
    if (it == kv.end()) return false;
    std::istringstream in(it->second);
    in >> field;
    TORCH_CHECK_VALUE(!in.fail() && in.eof(), "option ", key, ": cannot read '", it->second, "'");
    kv.erase(it);
    return true;
  };
  auto take_str = [&](const char* key, std::string& field) {
    auto it = kv.find(key);
    if (it == kv.end()) return false;
    field = it->second;
    kv.erase(it);
    return true;
  };
  take_str("--task", c.task.task);
  take("--train-utts", c.task.train_utterances);
  take("--valid-utts", c.task.valid_utterances);
  take("--test-utts", c.task.test_utterances);
  take_str("--timit-root", c.task.timit_root);
  const bool split_set = take_str("--timit-split", c.task.timit_split);
  take_str("--target", c.task.target);
  take_str("--features", c.task.features);
  take_str("--loss-denominator", c.task.loss_denominator);
  take("--max-frames", c.task.max_frames);
  take_str("--cache-dir", c.task.cache_dir);
  take("--lag", c.task.lag);
  take("--copying-batches", c.task.copying_batches);
  take_str("--mnist-dir", c.task.mnist_dir);
  std::string models;
  models_set = take_str("--models", models);
  hidden_set = take("--hidden", c.hidden);
  take("--lstm-hidden", c.lstm_hidden);
  take("--rnn-hidden", c.rnn_hidden);
  take_str("--init", c.init);
  if (!take_str("--readout-init", c.readout_init)) c.readout_init = c.task.features == "raw-db" ? "default" : "zero";
  TORCH_CHECK_VALUE(c.readout_init == "zero" || c.readout_init == "default" || c.readout_init == "mean",
                    "option --readout-init must be zero, default or mean, got '", c.readout_init, "'");
  take_str("--lstm-recipe", c.lstm_recipe);
  ex::lstm_recipe(c.lstm_recipe, 1e-3);  // rejects an unknown name
  epochs_set = take("--epochs", c.epochs);
  take("--patience", c.patience);
  TORCH_CHECK_VALUE(c.patience >= 0, "option --patience must be >= 0 (0: off), got ", c.patience);
  take("--min-delta", c.min_delta);
  TORCH_CHECK_VALUE(std::isfinite(c.min_delta) && c.min_delta >= 0 && c.min_delta < 1,
                    "option --min-delta must be in [0, 1) (a relative improvement), got ", c.min_delta);
  take("--batch", c.task.batch);
  take("--lr", c.lr);
  take("--lr-orth", c.lr_orth);
  take("--lr-rgd", c.lr_rgd);
  take("--clip", c.clip);
  take_str("--orth-optimizer", c.orth_optimizer);
  take_str("--optimizer", c.optimizer);
  TORCH_CHECK_VALUE(c.optimizer == "adam" || c.optimizer == "rmsprop", "option --optimizer must be adam or rmsprop, got '",
                    c.optimizer, "'");
  take_str("--device", c.device);
  const bool threads_set = take("--threads", c.threads);
  take("--seed", c.task.seed);
  take("--data-seed", c.task.data_seed);
  TORCH_CHECK_VALUE(c.task.data_seed >= -1, "option --data-seed must be >= 0 (or -1: --seed), got ", c.task.data_seed);
  take_str("--out", c.out);
  TORCH_CHECK_VALUE(kv.empty(), "unknown option ", kv.empty() ? "" : kv.begin()->first, " (see --help)");
  if (!models_set) models = full ? "all" : "dtriv100,exprnn,lstm";
  if (models == "all") models = "dtriv1,dtriv100,dtrivinf,exprnn,cayley,rgd,lstm";
  c.models = split(models, ',');
  TORCH_CHECK_VALUE(!c.models.empty(), "option --models: no model named in '", models, "'");
  if (full && !hidden_set) c.hidden = 224;
  if (full && !epochs_set) c.epochs = 20;
  if (c.out.empty()) c.out = "results/" + c.task.task;
  TORCH_CHECK_VALUE(c.hidden > 0, "option --hidden must be positive, got ", c.hidden);
  TORCH_CHECK_VALUE(c.epochs > 0, "option --epochs must be positive, got ", c.epochs);
  TORCH_CHECK_VALUE(c.task.max_frames == 0 || c.task.max_frames >= 2,
                    "option --max-frames must be 0 (whole utterances) or >= 2, got ", c.task.max_frames);
  TORCH_CHECK_VALUE(!threads_set || c.threads >= 1, "option --threads must be >= 1, got ", c.threads);
  TORCH_CHECK_VALUE(c.task.copying_batches >= 1, "option --copying-batches must be >= 1, got ", c.task.copying_batches);
  TORCH_CHECK_VALUE(std::isfinite(c.clip) && c.clip >= 0, "option --clip must be >= 0 (0: off), got ", c.clip);
  for (const auto& [name, v] : {std::pair<const char*, double>{"--lr", c.lr}, {"--lr-orth", c.lr_orth},
                                {"--lr-rgd", c.lr_rgd}})
    // The parameters are float32: a larger step cannot even be applied.
    TORCH_CHECK_VALUE(std::isfinite(v) && v > 0 && v <= std::numeric_limits<float>::max(), "option ", name,
                      " must be a positive number representable in float32 (at most ",
                      std::numeric_limits<float>::max(), "), got ", v);
  // Checked here too (the task checks them again), before any corpus is built.
  TORCH_CHECK_VALUE(c.task.target == "next" || c.task.target == "recall", "option --target must be next or recall, got '",
                    c.task.target, "'");
  TORCH_CHECK_VALUE(c.task.features == "standardized" || c.task.features == "raw-db",
                    "option --features must be standardized or raw-db, got '", c.task.features, "'");
  TORCH_CHECK_VALUE(c.task.loss_denominator == "valid" || c.task.loss_denominator == "padded",
                    "option --loss-denominator must be valid or padded, got '", c.task.loss_denominator, "'");
  TORCH_CHECK_VALUE(c.task.timit_split == "mantra" || c.task.timit_split == "published",
                    "option --timit-split must be mantra or published, got '", c.task.timit_split, "'");
  TORCH_CHECK_VALUE(!split_set || !c.task.timit_root.empty(), "option --timit-split needs --timit-root (real TIMIT)");
  TORCH_CHECK_VALUE(c.device == "cpu" || c.device == "cuda", "option --device must be cpu or cuda, got '", c.device, "'");
  TORCH_CHECK_VALUE(c.device == "cpu" || torch::cuda::is_available(), "option --device cuda: no CUDA device is available");
  return c;
}

// ---------------------------------------------------------------- models

struct ModelKind {
  bool orthogonal = false;
  int64_t K = 0;  // rebase period (0: never)
  std::string triv = "expm";
  bool chart_at_identity = false;
  bool rgd = false;
  bool scornn_cayley = false;  // the published Cayley RNN (models.h CayleyRNNNet)
  std::string baseline;  // "lstm" | "rnn"
  std::string recipe;    // LSTM recipe ("" -> --lstm-recipe)
};

ModelKind model_kind(const std::string& name) {
  ModelKind k;
  if (name == "lstm-adam" || name == "lstm-urnn") {  // an LSTM with its recipe named
    k.baseline = "lstm";
    k.recipe = name.substr(5);
    return k;
  }
  if (name == "lstm" || name == "rnn") {
    k.baseline = name;
    return k;
  }
  k.orthogonal = true;
  if (name == "exprnn") {
    k.chart_at_identity = true;
  } else if (name == "cayley") {
    k.scornn_cayley = true;
  } else if (name == "cayley-base") {
    k.triv = "cayley";
  } else if (name == "rgd") {
    k.K = 1;
    k.rgd = true;
  } else if (name == "dtrivinf") {
    k.K = 0;
  } else if (name.rfind("dtriv", 0) == 0) {
    const std::string digits = name.substr(5);
    TORCH_CHECK_VALUE(!digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos,
                      "option --models: unknown model '", name,
                      "' (dtriv1, dtriv100, dtrivinf, dtrivK, exprnn, cayley, cayley-base, rgd, lstm, lstm-adam, lstm-urnn, rnn)");
    k.K = std::stoll(digits);
    TORCH_CHECK_VALUE(k.K > 0, "option --models: '", name, "' needs K >= 1 (dtrivinf never rebases)");
  } else {
    TORCH_CHECK_VALUE(false, "option --models: unknown model '", name,
                      "' (dtriv1, dtriv100, dtrivinf, dtrivK, exprnn, cayley, cayley-base, rgd, lstm, lstm-adam, lstm-urnn, rnn)");
  }
  return k;
}

// Hidden size of a baseline with about `target` parameters: a·h² + b·h + c = target.
int64_t matched_hidden(const std::string& baseline, int64_t in, int64_t out, int64_t target) {
  const double a = baseline == "lstm" ? 4 : 1;
  const double b = a * (in + 2) + out, c = out - static_cast<double>(target);
  return std::max<int64_t>(1, std::llround((-b + std::sqrt(b * b - 4 * a * c)) / (2 * a)));
}

std::shared_ptr<ex::RecurrentNetImpl> make_model_with_default_readout(const Config& c, const ex::Task& task,
                                                                    const std::string& name, int64_t* hidden) {
  const ModelKind k = model_kind(name);
  const int64_t in = task.input_size(), out = task.output_size();
  torch::manual_seed(c.task.seed);
  if (k.scornn_cayley) {
    *hidden = c.hidden;
    return ex::CayleyRNNNet(ex::CayleyRNNOptions(in, c.hidden).output_size(out)).ptr();
  }
  if (k.orthogonal) {
    *hidden = c.hidden;
    std::string init = c.init;
    if (k.triv == "cayley" && init == "henaff") init = "cayley";  // expRNN's Cayley init, through the library's map
    return ex::OrthogonalRNNNet(nn::OrthogonalRNNOptions(in, c.hidden)
                                    .output_size(out)
                                    .triv(k.triv)
                                    .init(init)
                                    .chart_at_identity(k.chart_at_identity))
        .ptr();
  }
  const int64_t target = nn::OrthogonalRNN(nn::OrthogonalRNNOptions(in, c.hidden).output_size(out))->degrees_of_freedom();
  torch::manual_seed(c.task.seed);
  if (k.baseline == "lstm") {
    *hidden = c.lstm_hidden > 0 ? c.lstm_hidden : matched_hidden("lstm", in, out, target);
    auto lstm = ex::LSTMBaseline(ex::RecurrentBaselineOptions(in, *hidden).output_size(out));
    const ex::TrainingRecipe recipe = ex::lstm_recipe(k.recipe.empty() ? c.lstm_recipe : k.recipe, c.lr);
    if (std::isfinite(recipe.forget_bias)) lstm->set_forget_bias(recipe.forget_bias);
    return lstm.ptr();
  }
  *hidden = c.rnn_hidden > 0 ? c.rnn_hidden : matched_hidden("rnn", in, out, target);
  return ex::RNNBaseline(ex::RecurrentBaselineOptions(in, *hidden).output_size(out)).ptr();
}

// The read-out y = W_out·h + c starts at zero (--readout-init zero): every model then begins
// at the trivial prediction (the training mean; uniform logits) whatever the size of its
// hidden state, which an orthogonal recurrence lets grow like sqrt(t). With raw dB features a
// zero read-out predicts 0 dB; --readout-init mean sets c to the training mean there, W_out = 0.
std::shared_ptr<ex::RecurrentNetImpl> make_model(const Config& c, const ex::Task& task, const std::string& name,
                                                 int64_t* hidden) {
  auto model = make_model_with_default_readout(c, task, name, hidden);
  if (c.readout_init == "zero" || c.readout_init == "mean") {
    torch::NoGradGuard no_grad;
    if (auto readout = model->readout()) {
      for (auto& p : readout->parameters()) p.zero_();
      // mean: the bias predicts the training mean in the output's own units (raw dB).
      const torch::Tensor mean = task.mean_output();
      if (c.readout_init == "mean" && mean.defined()) readout->bias.copy_(mean);
    }
  }
  return model;
}

std::shared_ptr<torch::optim::Optimizer> make_optimizer(const std::string& kind, std::vector<torch::Tensor> params,
                                                        double lr) {
  if (kind == "rmsprop") return std::make_shared<torch::optim::RMSprop>(params, torch::optim::RMSpropOptions(lr));
  if (kind == "adam") return std::make_shared<torch::optim::Adam>(params, torch::optim::AdamOptions(lr));
  if (kind == "sgd") return std::make_shared<torch::optim::SGD>(params, torch::optim::SGDOptions(lr));
  if (kind == "adagrad") return std::make_shared<torch::optim::Adagrad>(params, torch::optim::AdagradOptions(lr));
  TORCH_CHECK_VALUE(false, "option --orth-optimizer must be rmsprop, adam, sgd or adagrad; got '", kind, "'");
}

// ---------------------------------------------------------------- one model's run

struct EpochRecord {
  int64_t epoch;
  double train_loss, valid_loss, valid_accuracy, seconds;
};

struct RunResult {
  std::string model;
  int64_t hidden = 0, dof = 0, epochs = 0, best_epoch = 0;
  double best_valid = NAN, test = NAN, test_accuracy = NAN, seconds = 0, ms_per_step = NAN;
  std::vector<EpochRecord> history;
};

ex::Score evaluate(ex::RecurrentNetImpl& model, const ex::Task& task, const std::vector<ex::Batch>& batches,
                   const torch::Device& device) {
  torch::NoGradGuard no_grad;
  ex::Score score;
  for (const auto& b : batches) {
    ex::Batch d{b.x.to(device), b.target.to(device), b.mask.defined() ? b.mask.to(device) : b.mask};
    task.loss(model.forward(d.x), d, &score);
  }
  return score;
}

// The settings a checkpoint must share with the run that resumes it.
std::string fingerprint(const Config& c, const ex::Task& task, const std::string& model) {
  std::ostringstream s;
  s << task.description() << "|" << model << "|h" << c.hidden << "|lh" << c.lstm_hidden << "|rh" << c.rnn_hidden << "|"
    << c.init << "|" << c.readout_init << "|b" << c.task.batch << "|lr" << c.lr << "|" << c.lr_orth << "|" << c.lr_rgd << "|" << c.orth_optimizer
    << "|" << c.optimizer << "|clip" << c.clip << "|seed" << c.task.seed << "|copying_batches" << c.task.copying_batches << "|target "
    << c.task.target << "|features " << c.task.features << "|denominator " << c.task.loss_denominator << "|split "
    << c.task.timit_split << "|lstm " << c.lstm_recipe << "|max_frames " << c.task.max_frames;
  return s.str();
}

void save_atomically(const std::string& path, const std::function<void(const std::string&)>& write) {
  const std::string tmp = path + ".tmp";
  write(tmp);
  TORCH_CHECK(io::rename_path(tmp, path), "cannot move ", tmp, " to ", path);
}

void write_log(const std::string& path, const std::vector<EpochRecord>& history) {
  save_atomically(path, [&](const std::string& tmp) {
    std::ofstream f(tmp);
    f << "epoch,train_loss,valid_loss,valid_accuracy,seconds\n" << std::setprecision(10);
    for (const auto& r : history)
      f << r.epoch << "," << r.train_loss << "," << r.valid_loss << "," << r.valid_accuracy << "," << r.seconds << "\n";
  });
}

torch::Tensor history_tensor(const std::vector<EpochRecord>& h) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(h.size()), 5}, torch::kFloat64);
  for (size_t i = 0; i < h.size(); ++i) {
    const double row[5] = {static_cast<double>(h[i].epoch), h[i].train_loss, h[i].valid_loss, h[i].valid_accuracy,
                           h[i].seconds};
    for (int j = 0; j < 5; ++j) t[i][j] = row[j];
  }
  return t;
}

std::vector<double> valid_losses(const std::vector<EpochRecord>& h) {
  std::vector<double> v;
  for (const auto& r : h) v.push_back(r.valid_loss);
  return v;
}

std::vector<EpochRecord> history_from(const torch::Tensor& t) {
  std::vector<EpochRecord> h;
  for (int64_t i = 0; i < t.size(0); ++i) {
    auto a = t[i];
    h.push_back({static_cast<int64_t>(a[0].item<double>()), a[1].item<double>(), a[2].item<double>(),
                 a[3].item<double>(), a[4].item<double>()});
  }
  return h;
}

std::vector<mantra::parametrize::Parametrization> parametrizations_of(ex::RecurrentNetImpl& model) {
  std::vector<mantra::parametrize::Parametrization> out;
  for (auto& [path, p] : mantra::parametrize::parametrizations(model)) out.push_back(p);
  return out;
}

RunResult run_model(const Config& c, const ex::Task& task, const std::string& name) {
  const torch::Device device(c.device == "cuda" ? torch::kCUDA : torch::kCPU);
  const std::string dir = c.out + "/" + name;
  io::make_dirs(dir);
  RunResult result;
  result.model = name;
  auto model = make_model(c, task, name, &result.hidden);
  model->to(device);
  result.dof = model->degrees_of_freedom();
  const ModelKind kind = model_kind(name);

  std::shared_ptr<torch::optim::Optimizer> orth_opt;
  std::unique_ptr<mantra::optim::DynamicTrivialization> dtriv;
  if (kind.orthogonal) {
    orth_opt = kind.rgd ? make_optimizer("sgd", model->constrained_parameters(), c.lr_rgd)
                        : make_optimizer(c.orth_optimizer, model->constrained_parameters(), c.lr_orth);
    // The published Cayley RNN trains its skew parameter directly (no library constraint).
    if (!kind.scornn_cayley) dtriv = std::make_unique<mantra::optim::DynamicTrivialization>(orth_opt, *model, kind.K);
  }
  // The unconstrained parameters: Adam (--lr), or the LSTM recipe's optimizer.
  ex::TrainingRecipe recipe = kind.baseline == "lstm"
                                  ? ex::lstm_recipe(kind.recipe.empty() ? c.lstm_recipe : kind.recipe, c.lr)
                                  : ex::lstm_recipe("adam", c.lr);
  if (recipe.optimizer == "adam") recipe.optimizer = c.optimizer;  // the default recipe: --optimizer at --lr
  auto adam_ptr = make_optimizer(recipe.optimizer, model->unconstrained_parameters(), recipe.lr);
  torch::optim::Optimizer& adam = *adam_ptr;

  const std::string checkpoint = dir + "/checkpoint.pt", best_path = dir + "/best.pt";
  const std::string print = fingerprint(c, task, name);
  int64_t start_epoch = 0;
  double best = INFINITY;
  double step_seconds = 0;
  int64_t steps_timed = 0;
  TORCH_CHECK_VALUE(!io::dir_exists(checkpoint), "--resume: ", checkpoint,
                    " is a directory, not a checkpoint; remove it or use another --out");
  if (c.resume && io::file_exists(checkpoint)) {
    torch::serialize::InputArchive archive;
    ex::read_checkpoint(checkpoint, device, archive);
    c10::IValue saved_print;
    archive.read("fingerprint", saved_print);
    TORCH_CHECK_VALUE(saved_print.toStringRef() == print, "--resume: ", checkpoint,
                      " was made with other settings; use another --out or leave out --resume.\n  checkpoint: ",
                      saved_print.toStringRef(), "\n  this run:   ", print);
    torch::serialize::InputArchive m, a;
    archive.read("model", m);
    model->load(m);
    archive.read("adam", a);
    adam.load(a);
    torch::Tensor counters, hist;
    archive.read("counters", counters);
    archive.read("history", hist);
    TORCH_CHECK_VALUE(hist.dim() == 2 && hist.size(1) == 5 && hist.scalar_type() == torch::kFloat64, "--resume: ",
                      checkpoint, " holds a history of shape ", hist.sizes(), "; not a checkpoint of this program");
    auto ps = parametrizations_of(*model);
    const ex::CheckpointCounters n =
        ex::parse_counters(counters, hist.size(0), orth_opt != nullptr, static_cast<int64_t>(ps.size()), checkpoint);
    start_epoch = n.epoch;
    best = n.best;
    step_seconds = n.step_seconds;
    steps_timed = n.steps_timed;
    if (orth_opt) {
      torch::serialize::InputArchive o;
      archive.read("orth_optimizer", o);
      orth_opt->load(o);
      if (dtriv) dtriv->set_steps(n.dtriv_steps);
      for (size_t i = 0; i < ps.size(); ++i) ps[i]->set_rebase_count(n.rebases[i]);
    }
    result.history = history_from(hist);
    std::cerr << "[" << name << "] resuming after epoch " << start_epoch << " (" << checkpoint << ")\n";
  }

  auto patience_ran_out = [&] {
    if (c.patience <= 0 || result.history.empty()) return false;
    return result.history.back().epoch - ex::last_counted_improvement(valid_losses(result.history), c.min_delta) >=
           c.patience;
  };
  for (int64_t epoch = start_epoch; epoch < c.epochs && !patience_ran_out(); ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t nb = task.train_batches();
    ex::ProgressBar bar(name, epoch + 1, c.epochs, nb, task.item_name());
    ex::Score train_score;
    int64_t items = 0;
    for (int64_t i = 0; i < nb; ++i) {
      if (g_interrupts > 0) {
        std::cerr << "\n[" << name << "] interrupted in epoch " << epoch + 1 << "; the checkpoint after epoch " << epoch
                  << " is kept: rerun with --resume to continue\n";
        std::exit(130);
      }
      ex::Batch b = task.train_batch(epoch, i);
      ex::Batch d{b.x.to(device), b.target.to(device), b.mask.defined() ? b.mask.to(device) : b.mask};
      const auto s0 = std::chrono::steady_clock::now();
      adam.zero_grad();
      if (dtriv) dtriv->zero_grad();
      else if (orth_opt) orth_opt->zero_grad();
      ex::Score s;
      torch::Tensor loss = task.loss(model->forward(d.x), d, &s);
      // A NaN/Inf loss means NaN/Inf in the parameters or the data (a diverged run, a damaged
      // checkpoint): stop instead of training on it.
      TORCH_CHECK(std::isfinite(s.loss_sum), "[", name, "] the training loss is ", s.loss_sum, " in epoch ",
                  epoch + 1, ", batch ", i + 1, "; the model's parameters or the data hold NaN/Inf",
                  c.resume ? " (the run resumed from " + checkpoint + ")" : std::string(),
                  ". Stopping; try a smaller learning rate (--lr ", c.lr, ", --lr-orth ", c.lr_orth,
                  kind.rgd ? ", --lr-rgd " + std::to_string(c.lr_rgd) : std::string(), ") or --clip");
      loss.backward();
      ex::clip_gradients(model->parameters(), c.clip, recipe.clip_value);
      if (dtriv) dtriv->step();
      else if (orth_opt) orth_opt->step();
      adam.step();
      step_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
      ++steps_timed;
      train_score += s;
      items += static_cast<int64_t>(s.count);
      bar.update(i + 1, train_score.loss(), items);
    }
    const ex::Score valid = evaluate(*model, task, task.eval_batches("valid"), device);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double prev_seconds = result.history.empty() ? 0.0 : result.history.back().seconds;
    result.history.push_back({epoch + 1, train_score.loss(), valid.loss(), valid.accuracy(), prev_seconds + seconds});
    std::ostringstream summary;
    summary << std::setprecision(5) << "train " << train_score.loss() << "  valid " << valid.loss();
    if (task.has_accuracy()) summary << " (accuracy " << std::setprecision(3) << 100 * valid.accuracy() << "%)";
    summary << "  " << ex::format_duration(seconds);
    if (valid.loss() < best) {
      best = valid.loss();
      summary << "  * best";
      save_atomically(best_path, [&](const std::string& tmp) { torch::save(model, tmp); });
    }
    bar.finish(summary.str());
    // The checkpoint: everything needed to continue exactly after this epoch.
    save_atomically(checkpoint, [&](const std::string& tmp) {
      torch::serialize::OutputArchive archive, m, a;
      archive.write("fingerprint", c10::IValue(print));
      model->save(m);
      archive.write("model", m);
      adam.save(a);
      archive.write("adam", a);
      ex::CheckpointCounters n;
      n.epoch = epoch + 1;
      n.best = best;
      n.step_seconds = step_seconds;
      n.steps_timed = steps_timed;
      if (orth_opt) {
        torch::serialize::OutputArchive o;
        orth_opt->save(o);
        archive.write("orth_optimizer", o);
        n.dtriv_steps = dtriv ? dtriv->steps() : steps_timed;
        for (auto& p : parametrizations_of(*model)) n.rebases.push_back(p->rebase_count());
      }
      archive.write("counters", ex::counters_tensor(n, orth_opt != nullptr));
      archive.write("history", history_tensor(result.history));
      ex::write_checkpoint(archive, tmp);
    });
    write_log(dir + "/log.csv", result.history);
  }

  // Test at the best validation epoch.
  if (io::file_exists(best_path)) torch::load(model, best_path, device);
  const ex::Score test = evaluate(*model, task, task.eval_batches("test"), device);
  result.epochs = static_cast<int64_t>(result.history.size());
  result.best_valid = best;
  for (const auto& r : result.history)
    if (r.valid_loss == best) result.best_epoch = r.epoch;
  result.test = test.loss();
  result.test_accuracy = test.accuracy();
  result.seconds = result.history.empty() ? 0 : result.history.back().seconds;
  result.ms_per_step = steps_timed > 0 ? 1000 * step_seconds / steps_timed : NAN;
  return result;
}

std::string fixed(double v, int digits) {
  if (!std::isfinite(v)) return "-";
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

// A loss for the results table: 4 decimals, or 3 significant digits below 0.01 (a solved copying
// task ends near 1e-5 nats, which 4 decimals print as 0.0000).
std::string loss_text(double v) {
  if (!std::isfinite(v) || v == 0 || std::abs(v) >= 0.01) return fixed(v, 4);
  std::ostringstream s;
  s << std::scientific << std::setprecision(2) << v;
  return s.str();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Config c = parse(argc, argv);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    if (c.threads > 0) at::set_num_threads(c.threads);
    io::make_dirs(c.out);
    std::cerr << "mantra_train_rnn: task " << c.task.task << ", models " << c.models.size() << ", "
              << at::get_num_threads() << " threads, device " << c.device << ", out " << c.out << "\n";
    auto task = ex::make_task(c.task);
    std::cerr << "data: " << task->description() << "\n";
    std::vector<RunResult> results;
    for (const auto& name : c.models) {
      model_kind(name);  // reject bad names before any training
    }
    for (const auto& name : c.models) results.push_back(run_model(c, *task, name));

    // Results table, plot.
    const bool acc = task->has_accuracy();
    std::vector<std::string> header = {"model", "hidden", "parameters", "epochs", "best valid loss", "test loss"};
    if (acc) header.push_back("test accuracy");
    header.insert(header.end(), {"ms/step", "time"});
    std::vector<std::vector<std::string>> rows;
    std::vector<ex::Curve> curves;
    for (const auto& r : results) {
      std::vector<std::string> row = {r.model,
                                      std::to_string(r.hidden),
                                      std::to_string(r.dof),
                                      std::to_string(r.epochs) + " (best " + std::to_string(r.best_epoch) + ")",
                                      loss_text(r.best_valid),
                                      loss_text(r.test)};
      if (acc) row.push_back(fixed(100 * r.test_accuracy, 1) + "%");
      row.insert(row.end(), {fixed(r.ms_per_step, 1), ex::format_duration(r.seconds)});
      rows.push_back(row);
      ex::Curve curve{r.model, {}};
      for (const auto& h : r.history) curve.points.push_back({static_cast<double>(h.epoch), h.train_loss, h.valid_loss});
      curves.push_back(curve);
    }
    std::ostringstream md;
    md << "# " << c.task.task << " results\n\n" << task->description() << "\n\n" << ex::markdown_table(header, rows);
    const auto refs = task->references();
    if (!refs.empty()) {
      md << "\nReferences:";
      for (const auto& [label, value] : refs) md << " " << label << " = " << fixed(value, 4) << ";";
      md << "\n";
    }
    md << "\n" << at::get_num_threads() << " threads on " << c.device << "; loss: "
       << (c.task.task == "timit" ? "MSE per spectral bin (dB²)" : "cross-entropy (nats)") << ".\n";
    std::cout << "\n" << md.str();
    std::ofstream(c.out + "/results.md") << md.str();
    ex::write_svg_plot(c.out + "/curves.svg", c.task.task + ": learning curves",
                       c.task.task == "timit" ? "MSE (dB²)" : "cross-entropy", curves,
                       refs);
    std::cout << "\nwrote " << c.out << "/results.md, " << c.out << "/curves.svg, and per model log.csv, best.pt, "
              << "checkpoint.pt\n";
    return 0;
  } catch (const c10::Error& e) {
    std::cerr << "mantra_train_rnn: error: " << e.what_without_backtrace() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "mantra_train_rnn: error: " << e.what() << "\n";
    return 2;
  }
}
