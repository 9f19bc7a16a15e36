#include "tasks.h"

#include "data/io_util.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace mantra::examples {
namespace {

uint64_t mix(uint64_t seed, uint64_t a, uint64_t b) {
  // SplitMix64 over (seed, a, b): independent streams per epoch and batch.
  uint64_t z = seed ^ (a * 0x9E3779B97F4A7C15ULL) ^ (b * 0xBF58476D1CE4E5B9ULL + 0x94D049BB133111EBULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Batches of a shuffled index range: epoch e uses permutation(n, mix(seed, e)).
std::vector<int64_t> batch_indices(int64_t n, int64_t batch, uint64_t seed, int64_t epoch, int64_t index) {
  const std::vector<int64_t> perm = detail::permutation(n, mix(seed, static_cast<uint64_t>(epoch), 0));
  const int64_t begin = index * batch, end = std::min(n, begin + batch);
  return std::vector<int64_t>(perm.begin() + begin, perm.begin() + end);
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---------------------------------------------------------------- speech

SpeechCorpus load_corpus(const TaskOptions& o) {
  if (o.timit_root.empty()) {
    SyntheticSpeechOptions so;
    so.train = o.train_utterances;
    so.valid = o.valid_utterances;
    so.test = o.test_utterances;
    so.seed = o.data_seed >= 0 ? static_cast<uint64_t>(o.data_seed) : o.seed;
    so.cache_dir = o.cache_dir;
    so.verbose = o.verbose;
    return synthetic_speech_corpus(so);
  }
  return timit_corpus(o.timit_root, o.cache_dir, o.verbose, o.timit_split);
}

// The first max_frames frames of every sequence (a copy).
SequenceSet crop_sequences(const SequenceSet& set, int64_t max_frames) {
  std::vector<torch::Tensor> seqs;
  for (int64_t i = 0; i < set.size(); ++i) {
    const torch::Tensor s = set.sequence(i);
    seqs.push_back(s.narrow(0, 0, std::min(s.size(0), max_frames)));
  }
  return make_sequence_set(seqs, set.speakers);
}

class SpeechTask : public Task {
 public:
  SpeechTask(const TaskOptions& o, SpeechCorpus corpus) : options_(o), corpus_(std::move(corpus)) {
    TORCH_CHECK_VALUE(o.max_frames == 0 || o.max_frames >= 2, "option --max-frames must be 0 (whole utterances) or >= 2, got ",
                      o.max_frames);
    if (o.max_frames > 0) {
      corpus_.train = crop_sequences(corpus_.train, o.max_frames);
      corpus_.valid = crop_sequences(corpus_.valid, o.max_frames);
      corpus_.test = crop_sequences(corpus_.test, o.max_frames);
    }
    TORCH_CHECK_VALUE(o.target == "next" || o.target == "recall", "option --target must be next or recall, got '",
                      o.target, "'");
    TORCH_CHECK_VALUE(o.features == "standardized" || o.features == "raw-db",
                      "option --features must be standardized or raw-db, got '", o.features, "'");
    TORCH_CHECK_VALUE(o.loss_denominator == "valid" || o.loss_denominator == "padded",
                      "option --loss-denominator must be valid or padded, got '", o.loss_denominator, "'");
    TORCH_CHECK_VALUE(corpus_.train.size() > 0 && corpus_.valid.size() > 0 && corpus_.test.size() > 0,
                      "speech task: every split needs utterances; got train ", corpus_.train.size(), ", valid ",
                      corpus_.valid.size(), ", test ", corpus_.test.size());
    raw_ = o.features == "raw-db";
    recall_ = o.target == "recall";
    padded_ = o.loss_denominator == "padded";
    auto [mean, std] = feature_moments(corpus_.train);
    mean_ = mean;
    std_ = std.clamp_min(1e-3);
  }
  std::string name() const override { return "timit"; }
  std::string description() const override {
    std::ostringstream s;
    s << (recall_ ? "one-step recall (input frame t+1, target frame t)" : "next-frame prediction")
      << " of 129-bin log-power spectra, " << (raw_ ? "raw dB features" : "standardized features")
      << " (MSE in dB², per bin, over " << (padded_ ? "all padded frames" : "the valid frames") << "); "
      << corpus_.description;
    if (options_.max_frames > 0) s << "; every utterance cut to its first " << options_.max_frames << " frames";
    return s.str();
  }
  int64_t input_size() const override { return corpus_.train.feature_dim(); }
  int64_t output_size() const override { return corpus_.train.feature_dim(); }
  int64_t train_batches() const override { return ceil_div(corpus_.train.size(), options_.batch); }
  int64_t train_items() const override { return corpus_.train.total_frames() - corpus_.train.size(); }
  std::string item_name() const override { return "frames"; }

  // Batches of similar lengths (less padding): the epoch's permutation is cut into pools of
  // 16 batches, each pool sorted by length and cut into batches, the batches shuffled.
  Batch train_batch(int64_t epoch, int64_t index) const override {
    const SequenceSet& set = corpus_.train;
    const int64_t n = set.size(), B = options_.batch, pool = 16 * B;
    std::vector<int64_t> order = detail::permutation(n, mix(options_.seed, static_cast<uint64_t>(epoch), 0));
    for (int64_t p = 0; p < n; p += pool) {
      std::stable_sort(order.begin() + p, order.begin() + std::min(n, p + pool),
                       [&](int64_t a, int64_t b) { return set.length(a) < set.length(b); });
    }
    const std::vector<int64_t> batch_order =
        detail::permutation(train_batches(), mix(options_.seed, static_cast<uint64_t>(epoch), 1));
    const int64_t begin = batch_order[index] * B, end = std::min(n, begin + B);
    return make_batch(set, std::vector<int64_t>(order.begin() + begin, order.begin() + end));
  }
  std::vector<Batch> eval_batches(const std::string& split) const override {
    const SequenceSet& set = split == "valid" ? corpus_.valid : corpus_.test;
    std::vector<Batch> out;
    for (int64_t b = 0; b < set.size(); b += options_.batch) {
      std::vector<int64_t> idx;
      for (int64_t i = b; i < std::min(set.size(), b + options_.batch); ++i) idx.push_back(i);
      out.push_back(make_batch(set, idx));
    }
    return out;
  }
  // The loss is the MSE of the prediction in dB (per bin, averaged over the 129 bins and the
  // valid frames, or all padded frames). Standardized features: the output is mapped back to dB.
  torch::Tensor loss(const torch::Tensor& output, const Batch& batch, Score* score) const override {
    const torch::Tensor pred_db = raw_ ? output : output * std_.to(output.device()) + mean_.to(output.device());
    const torch::Tensor per_frame = (pred_db - batch.target).pow(2).mean(-1) * batch.mask;
    const torch::Tensor frames = padded_ ? torch::full({}, static_cast<double>(batch.mask.numel()), batch.mask.options())
                                         : batch.mask.sum();
    const torch::Tensor total = per_frame.sum();
    if (score) {
      score->loss_sum += total.item<double>();
      score->count += frames.item<double>();
    }
    return total / frames.clamp_min(1);
  }
  std::vector<std::pair<std::string, double>> references() const override {
    // Two trivial predictors on the validation set: the input frame itself (next: the previous
    // frame; recall: the following one), and the training mean.
    double prev = 0, mean = 0, count = 0;
    for (const Batch& b : eval_batches("valid")) {
      const torch::Tensor x_db = raw_ ? b.x : b.x * std_ + mean_;
      prev += ((x_db - b.target).pow(2).mean(-1) * b.mask).sum().item<double>();
      mean += ((mean_ - b.target).pow(2).mean(-1) * b.mask).sum().item<double>();
      count += padded_ ? static_cast<double>(b.mask.numel()) : b.mask.sum().item<double>();
    }
    return {{recall_ ? "output the input frame (valid)" : "repeat the previous frame (valid)", prev / count},
            {"predict the training mean (valid)", mean / count}};
  }
  torch::Tensor mean_output() const override { return raw_ ? mean_.clone() : torch::zeros_like(mean_); }

 private:
  // next: x = frames 0..T-2, target = frames 1..T-1. recall: x = frames 1..T-1, target =
  // frames 0..T-2. Either way a step counts when both of its frames are in the utterance.
  Batch make_batch(const SequenceSet& set, const std::vector<int64_t>& idx) const {
    PaddedBatch p = pad_batch(set, idx);
    const int64_t T = p.x.size(0);
    const torch::Tensor first = p.x.narrow(0, 0, T - 1), second = p.x.narrow(0, 1, T - 1);
    const torch::Tensor& in = recall_ ? second : first;
    Batch b;
    b.x = (raw_ ? in.clone() : (in - mean_) / std_).contiguous();
    b.target = (recall_ ? first : second).contiguous();
    b.mask = p.mask.narrow(0, 1, T - 1).contiguous();
    return b;
  }
  TaskOptions options_;
  SpeechCorpus corpus_;
  torch::Tensor mean_, std_;
  bool raw_ = false, recall_ = false, padded_ = false;
};

// ---------------------------------------------------------------- copying

class CopyingTask : public Task {
 public:
  explicit CopyingTask(const TaskOptions& o) : options_(o) {
    TORCH_CHECK_VALUE(o.lag >= 1, "copying task: argument '--lag' must be >= 1, got ", o.lag);
  }
  std::string name() const override { return "copying"; }
  std::string description() const override {
    std::ostringstream s;
    s << "copying task, lag L = " << options_.lag << " (sequences of " << options_.lag + 20
      << " steps, 8 data symbols), cross-entropy per step; baseline 10 ln 8/(L+20) = " << copying_baseline(options_.lag);
    return s.str();
  }
  int64_t input_size() const override { return kCopyingSymbols; }
  int64_t output_size() const override { return kCopyingSymbols - 1; }
  int64_t train_batches() const override { return options_.copying_batches; }
  int64_t train_items() const override { return options_.copying_batches * options_.batch * (options_.lag + 20); }
  std::string item_name() const override { return "symbols"; }
  Batch train_batch(int64_t epoch, int64_t index) const override {
    return make(mix(options_.seed, static_cast<uint64_t>(epoch) + 1, static_cast<uint64_t>(index)));
  }
  std::vector<Batch> eval_batches(const std::string& split) const override {
    std::vector<Batch> out;
    for (int64_t i = 0; i < 4; ++i) out.push_back(make(mix(options_.seed, split == "valid" ? 1000003 : 2000003, i)));
    return out;
  }
  torch::Tensor loss(const torch::Tensor& output, const Batch& batch, Score* score) const override {
    const torch::Tensor logits = output.reshape({-1, output_size()});
    const torch::Tensor target = batch.target.reshape({-1}).to(output.device());
    const torch::Tensor l = torch::nn::functional::cross_entropy(logits, target);
    if (score) {
      score->loss_sum += l.item<double>() * target.size(0);
      score->count += target.size(0);
      // Accuracy on the 10 recalled symbols.
      const torch::Tensor last = output.narrow(0, output.size(0) - kCopyingDataLength, kCopyingDataLength).argmax(-1);
      const torch::Tensor want = batch.target.narrow(0, batch.target.size(0) - kCopyingDataLength, kCopyingDataLength);
      score->correct += (last.cpu() == want).sum().item<double>() * target.size(0) / want.numel();
    }
    return l;
  }
  bool has_accuracy() const override { return true; }
  std::vector<std::pair<std::string, double>> references() const override {
    return {{"baseline 10 ln 8/(L+20)", copying_baseline(options_.lag)}};
  }

 private:
  Batch make(uint64_t seed) const {
    CopyingBatch c = copying_batch(options_.lag, options_.batch, make_generator(seed));
    Batch b;
    b.x = torch::one_hot(c.input, kCopyingSymbols).to(torch::kFloat32);
    b.target = c.target;
    return b;
  }
  TaskOptions options_;
};

// ---------------------------------------------------------------- pixel digits

class DigitsTask : public Task {
 public:
  explicit DigitsTask(const TaskOptions& o) : options_(o) {
    const bool mnist = o.task == "mnist" || o.task == "pmnist";
    DigitsData d = mnist ? load_mnist_idx(o.mnist_dir) : load_sklearn_digits(find_sklearn_digits(), 0.2, o.seed);
    // Validation: the last tenth of the training images (the data's own order).
    const int64_t n = d.train_images.size(0), n_valid = std::max<int64_t>(1, n / 10);
    train_images_ = d.train_images.narrow(0, 0, n - n_valid);
    train_labels_ = d.train_labels.narrow(0, 0, n - n_valid);
    valid_images_ = d.train_images.narrow(0, n - n_valid, n_valid);
    valid_labels_ = d.train_labels.narrow(0, n - n_valid, n_valid);
    test_images_ = d.test_images;
    test_labels_ = d.test_labels;
    if (o.task == "pmnist" || o.task == "pdigits") permutation_ = pixel_permutation(d.train_images.size(1), o.seed);
    pixels_ = d.train_images.size(1);
    name_ = o.task;
  }
  std::string name() const override { return name_; }
  std::string description() const override {
    std::ostringstream s;
    s << (name_ == "mnist" || name_ == "pmnist" ? "MNIST" : "scikit-learn 8x8 digits") << " pixel by pixel ("
      << pixels_ << " steps" << (permutation_.defined() ? ", permuted" : "") << "), " << train_images_.size(0)
      << " train / " << valid_images_.size(0) << " valid / " << test_images_.size(0) << " test images";
    return s.str();
  }
  int64_t input_size() const override { return 1; }
  int64_t output_size() const override { return 10; }
  int64_t train_batches() const override { return ceil_div(train_images_.size(0), options_.batch); }
  int64_t train_items() const override { return train_images_.size(0); }
  std::string item_name() const override { return "images"; }
  Batch train_batch(int64_t epoch, int64_t index) const override {
    const auto idx = batch_indices(train_images_.size(0), options_.batch, options_.seed, epoch, index);
    const torch::Tensor i = torch::tensor(idx, torch::kInt64);
    return make(train_images_.index_select(0, i), train_labels_.index_select(0, i));
  }
  std::vector<Batch> eval_batches(const std::string& split) const override {
    const torch::Tensor& images = split == "valid" ? valid_images_ : test_images_;
    const torch::Tensor& labels = split == "valid" ? valid_labels_ : test_labels_;
    std::vector<Batch> out;
    for (int64_t b = 0; b < images.size(0); b += options_.batch) {
      const int64_t len = std::min(options_.batch, images.size(0) - b);
      out.push_back(make(images.narrow(0, b, len), labels.narrow(0, b, len)));
    }
    return out;
  }
  // Classification from the output at the last pixel.
  torch::Tensor loss(const torch::Tensor& output, const Batch& batch, Score* score) const override {
    const torch::Tensor logits = output[output.size(0) - 1];
    const torch::Tensor target = batch.target.to(output.device());
    const torch::Tensor l = torch::nn::functional::cross_entropy(logits, target);
    if (score) {
      score->loss_sum += l.item<double>() * target.size(0);
      score->count += target.size(0);
      score->correct += (logits.argmax(-1) == target).sum().item<double>();
    }
    return l;
  }
  bool has_accuracy() const override { return true; }

 private:
  Batch make(const torch::Tensor& images, const torch::Tensor& labels) const {
    Batch b;
    b.x = pixel_sequences(images, permutation_);
    b.target = labels;
    return b;
  }
  TaskOptions options_;
  std::string name_;
  int64_t pixels_ = 0;
  torch::Tensor train_images_, train_labels_, valid_images_, valid_labels_, test_images_, test_labels_, permutation_;
};

}  // namespace

std::unique_ptr<Task> make_task(const TaskOptions& o) {
  TORCH_CHECK_VALUE(o.batch > 0, "argument '--batch' must be positive, got ", o.batch);
  if (o.task == "timit") return std::make_unique<SpeechTask>(o, load_corpus(o));
  if (o.task == "copying") return std::make_unique<CopyingTask>(o);
  if (o.task == "digits" || o.task == "pdigits" || o.task == "mnist" || o.task == "pmnist") {
    TORCH_CHECK_VALUE(!(o.task == "mnist" || o.task == "pmnist") || !o.mnist_dir.empty(),
                      "task '", o.task, "' needs '--mnist-dir' (a folder with the MNIST IDX files)");
    return std::make_unique<DigitsTask>(o);
  }
  TORCH_CHECK_VALUE(false, "argument '--task' must be timit, copying, digits, pdigits, mnist or pmnist; got '", o.task,
                    "'");
}

std::unique_ptr<Task> make_speech_task(const TaskOptions& o, SpeechCorpus corpus) {
  TORCH_CHECK_VALUE(o.batch > 0, "argument '--batch' must be positive, got ", o.batch);
  return std::make_unique<SpeechTask>(o, std::move(corpus));
}

}  // namespace mantra::examples
