// The tasks of the orthogonal-RNN trainer: TIMIT-style speech prediction (next frame or one-step
// recall), the copying task and pixel-by-pixel digits. A task hands out deterministic batches (a function of
// the seed, the epoch and the batch index, so a resumed run sees the same data) and scores the
// model's outputs.
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "data/sequence_data.h"

namespace mantra::examples {

struct Batch {
  torch::Tensor x;       // (T, N, input_size) float32
  torch::Tensor target;  // task-specific (see each task)
  torch::Tensor mask;    // (T, N) float32 where the loss counts (speech), else undefined
};

// Sum of the loss over the counted items and their number, so that means over many batches
// are exact; accuracy where the task has one (else correct = 0).
struct Score {
  double loss_sum = 0, count = 0, correct = 0;
  double loss() const { return count > 0 ? loss_sum / count : 0.0; }
  double accuracy() const { return count > 0 ? correct / count : 0.0; }
  Score& operator+=(const Score& o) {
    loss_sum += o.loss_sum;
    count += o.count;
    correct += o.correct;
    return *this;
  }
};

class Task {
 public:
  virtual ~Task() = default;
  virtual std::string name() const = 0;
  virtual std::string description() const = 0;
  virtual int64_t input_size() const = 0;
  virtual int64_t output_size() const = 0;
  virtual int64_t train_batches() const = 0;  // per epoch
  virtual Batch train_batch(int64_t epoch, int64_t index) const = 0;
  // "valid" or "test": fixed batches.
  virtual std::vector<Batch> eval_batches(const std::string& split) const = 0;
  // The mean loss to minimize (differentiable) and the batch's score.
  virtual torch::Tensor loss(const torch::Tensor& output, const Batch& batch, Score* score) const = 0;
  // Items (frames, symbols, images) in one epoch of training data, for the rate display.
  virtual int64_t train_items() const = 0;
  virtual std::string item_name() const = 0;
  virtual bool has_accuracy() const { return false; }
  // Reference losses that make the numbers readable, e.g. {"predict previous frame", 0.43}.
  virtual std::vector<std::pair<std::string, double>> references() const { return {}; }
  // The model output that predicts the training mean (speech: 0 when standardized, the per-bin
  // mean in dB with raw features); undefined where the task has none (read-out bias left at 0).
  virtual torch::Tensor mean_output() const { return {}; }
};

struct TaskOptions {
  std::string task = "timit";  // timit | copying | digits | mnist | pmnist | pdigits
  uint64_t seed = 0;
  // The synthetic corpus's seed (speakers, sentences); -1: `seed`. Runs that differ only in
  // `seed` then share one corpus and differ in initialization and batch order.
  int64_t data_seed = -1;
  int64_t batch = 32;
  // timit
  // next: input frame t, target frame t+1 (next-frame prediction). recall: input frame t+1,
  // target frame t (one-step recall: the pairing of the published expRNN TIMIT loader).
  std::string target = "next";
  // standardized: the model sees (frame - mean) / std of the training frames and its output is
  // mapped back to dB. raw-db: it sees and predicts the dB values themselves (the published).
  std::string features = "standardized";
  // valid: the MSE is averaged over the valid frames; padded: over all padded frames of the
  // batch (the published uRNN LSTM's mean; the padded frames add no error, only count).
  std::string loss_denominator = "valid";
  // > 0: every utterance of every split is cut to its first max_frames frames (shorter
  // sequences, a smaller CPU budget); 0: whole utterances.
  int64_t max_frames = 0;
  std::string timit_root;  // "" -> the synthetic espeak-ng corpus
  std::string timit_split = "mantra";  // mantra | published (see timit_corpus)
  int64_t train_utterances = 3640, valid_utterances = 192, test_utterances = 400;
  std::string cache_dir;
  // copying
  int64_t lag = 1000;
  int64_t copying_batches = 100;  // training batches per "epoch"
  // mnist
  std::string mnist_dir;
  bool verbose = true;
};

std::unique_ptr<Task> make_task(const TaskOptions& options);
// The speech task on a given corpus (tests; make_task builds or reads the corpus).
std::unique_ptr<Task> make_speech_task(const TaskOptions& options, SpeechCorpus corpus);

}  // namespace mantra::examples
