// The trainer's speech task (examples/rnn/tasks.h) on a tiny corpus: --target next|recall,
// --features standardized|raw-db, --loss-denominator valid|padded.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tasks.h"

#include <string>

namespace ex = mantra::examples;

// |a − b| <= atol + rtol·|b| elementwise (shapes equal), with the largest difference on failure.
#define EXPECT_ALLCLOSE(a, b, rtol, atol)                                                           \
  do {                                                                                              \
    const torch::Tensor a_ = (a), b_ = (b);                                                         \
    ASSERT_EQ(a_.sizes(), b_.sizes());                                                              \
    EXPECT_TRUE(torch::allclose(a_, b_, (rtol), (atol))) << "max |a - b| = " << (a_ - b_).abs().max().item<double>(); \
  } while (0)
using torch::indexing::Slice;

namespace {

// Two train utterances of 5 and 3 frames (F = 3, values far from zero mean / unit variance so
// that standardization changes them), one valid and one test utterance.
ex::SpeechCorpus tiny_corpus() {
  torch::manual_seed(3);
  auto utt = [](int64_t T) { return (torch::randn({T, 3}) * 7 - 40).to(torch::kFloat32); };
  ex::SpeechCorpus c;
  c.train = ex::make_sequence_set({utt(5), utt(3)}, {"a", "b"});
  c.valid = ex::make_sequence_set({utt(4)}, {"c"});
  c.test = ex::make_sequence_set({utt(6)}, {"d"});
  c.description = "tiny";
  return c;
}

ex::TaskOptions options(const std::string& target, const std::string& features, const std::string& denominator = "valid") {
  ex::TaskOptions o;
  o.batch = 2;
  o.target = target;
  o.features = features;
  o.loss_denominator = denominator;
  return o;
}

void expect_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected an error mentioning: " << needle;
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace

// next: x[t] = frame t, target[t] = frame t+1. recall: x[t] = frame t+1, target[t] = frame t
// (the published loader's pairing). Exact (the frames are copied, raw dB here).
TEST(SpeechTask, RecallShiftsTheTargetsByOneFrame) {
  const ex::SpeechCorpus corpus = tiny_corpus();
  const torch::Tensor u = corpus.valid.sequence(0);  // (4, 3)
  for (const std::string target : {"next", "recall"}) {
    auto task = ex::make_speech_task(options(target, "raw-db"), corpus);
    const auto batches = task->eval_batches("valid");
    ASSERT_EQ(batches.size(), 1u);
    const ex::Batch& b = batches[0];
    ASSERT_EQ(b.x.sizes(), (std::vector<int64_t>{3, 1, 3}));
    ASSERT_EQ(b.target.sizes(), (std::vector<int64_t>{3, 1, 3}));
    const torch::Tensor x = b.x.select(1, 0), y = b.target.select(1, 0);
    if (target == "next") {
      EXPECT_TRUE(torch::equal(x, u.index({Slice(0, 3)})));
      EXPECT_TRUE(torch::equal(y, u.index({Slice(1, 4)})));
    } else {
      EXPECT_TRUE(torch::equal(x, u.index({Slice(1, 4)})));
      EXPECT_TRUE(torch::equal(y, u.index({Slice(0, 3)})));
    }
    // The trivial "output the input" predictor: the same MSE both ways (|u[t+1] − u[t]|²).
    const double want = (u.index({Slice(1, 4)}) - u.index({Slice(0, 3)})).pow(2).mean().item<double>();
    EXPECT_NEAR(task->references()[0].second, want, 1e-4 * want);
  }
  // Padded train batch (lengths 5 and 3): the short utterance's mask ends after its 2 steps,
  // and in recall mode its last valid step still has frame t+1 inside the utterance.
  auto task = ex::make_speech_task(options("recall", "raw-db"), corpus);
  for (int64_t i = 0; i < task->train_batches(); ++i) {
    const ex::Batch b = task->train_batch(0, i);
    ASSERT_EQ(b.mask.sizes(), (std::vector<int64_t>{4, 2}));
    EXPECT_DOUBLE_EQ(b.mask.sum().item<double>(), 4 + 2);
  }
}

// raw-db: the inputs are the dB frames themselves and the output is the prediction in dB;
// standardized: inputs (frame − mean)/std, output de-standardized. Same loss for the same
// prediction in dB.
TEST(SpeechTask, RawDbBypassesStandardization) {
  const ex::SpeechCorpus corpus = tiny_corpus();
  auto raw = ex::make_speech_task(options("next", "raw-db"), corpus);
  auto std_task = ex::make_speech_task(options("next", "standardized"), corpus);
  const ex::Batch r = raw->eval_batches("test")[0], s = std_task->eval_batches("test")[0];
  const torch::Tensor u = corpus.test.sequence(0);
  EXPECT_TRUE(torch::equal(r.x.select(1, 0), u.index({Slice(0, 5)})));
  auto [mean, sd] = ex::feature_moments(corpus.train);
  sd = sd.clamp_min(1e-3);
  EXPECT_ALLCLOSE(s.x.select(1, 0), (u.index({Slice(0, 5)}) - mean) / sd, 1e-6, 1e-5);
  EXPECT_TRUE(torch::equal(r.target, s.target));
  // A prediction of p dB: raw output p, standardized output (p − mean)/std.
  const torch::Tensor p = r.target + 1.5;
  const double loss_raw = raw->loss(p, r, nullptr).item<double>();
  const double loss_std = std_task->loss((p - mean) / sd, s, nullptr).item<double>();
  EXPECT_NEAR(loss_raw, 2.25, 1e-4);
  EXPECT_NEAR(loss_std, 2.25, 1e-3);
  // Feeding the raw model standardized outputs is off by the whole feature scale.
  EXPECT_GT(raw->loss((p - mean) / sd, r, nullptr).item<double>(), 100.0);
}

// valid: sum of per-frame MSE / valid frames; padded: / all frames of the padded batch.
TEST(SpeechTask, LossDenominator) {
  const ex::SpeechCorpus corpus = tiny_corpus();
  auto valid = ex::make_speech_task(options("next", "raw-db", "valid"), corpus);
  auto padded = ex::make_speech_task(options("next", "raw-db", "padded"), corpus);
  const ex::Batch b = valid->train_batch(0, 0);
  const torch::Tensor p = b.target + 2.0;  // error 4 dB² on every frame
  ex::Score sv, sp;
  EXPECT_NEAR(valid->loss(p, b, &sv).item<double>(), 4.0, 1e-5);
  EXPECT_NEAR(padded->loss(p, b, &sp).item<double>(), 4.0 * 6 / 8, 1e-5);  // 6 valid of 4 x 2 steps
  EXPECT_DOUBLE_EQ(sv.count, 6);
  EXPECT_DOUBLE_EQ(sp.count, 8);
}

// --max-frames N: every utterance of every split is cut to its first N frames (the 5-frame
// train utterance to 4, the 3-frame one kept), the moments are those of the cut training frames,
// and the frames kept are the utterances' own, exactly.
TEST(SpeechTask, MaxFramesCutsEveryUtterance) {
  const ex::SpeechCorpus corpus = tiny_corpus();
  ex::TaskOptions o = options("next", "raw-db");
  o.max_frames = 4;
  auto task = ex::make_speech_task(o, corpus);
  const ex::Batch t = task->eval_batches("test")[0];  // 6 frames -> 4 -> 3 steps
  ASSERT_EQ(t.x.sizes(), (std::vector<int64_t>{3, 1, 3}));
  EXPECT_TRUE(torch::equal(t.x.select(1, 0), corpus.test.sequence(0).index({Slice(0, 3)})));
  EXPECT_TRUE(torch::equal(t.target.select(1, 0), corpus.test.sequence(0).index({Slice(1, 4)})));
  const ex::Batch b = task->train_batch(0, 0);  // lengths 4 and 3: 3 + 2 valid steps
  ASSERT_EQ(b.mask.sizes(), (std::vector<int64_t>{3, 2}));
  EXPECT_DOUBLE_EQ(b.mask.sum().item<double>(), 3 + 2);
  // The training mean it predicts (mean_output, raw dB) is the mean of the 4 + 3 frames kept.
  const torch::Tensor kept = torch::cat({corpus.train.sequence(0).index({Slice(0, 4)}), corpus.train.sequence(1)});
  EXPECT_ALLCLOSE(task->mean_output(), kept.mean(0), 1e-6, 1e-5);
  EXPECT_NE(task->description().find("first 4 frames"), std::string::npos) << task->description();
  // max_frames 0 keeps whole utterances; 1 is refused (no step would remain).
  o.max_frames = 0;
  EXPECT_EQ(ex::make_speech_task(o, corpus)->eval_batches("test")[0].x.size(0), 5);
  o.max_frames = 1;
  expect_error([&] { ex::make_speech_task(o, corpus); }, "--max-frames");
}

// mean_output: the output that predicts the training mean: the mean in dB with raw features,
// 0 with standardized ones (de-standardized to the mean); its loss equals the reference
// "predict the training mean".
TEST(SpeechTask, MeanOutputPredictsTheTrainingMean) {
  const ex::SpeechCorpus corpus = tiny_corpus();
  auto [mean, sd] = ex::feature_moments(corpus.train);
  for (const std::string features : {"raw-db", "standardized"}) {
    auto task = ex::make_speech_task(options("next", features), corpus);
    const torch::Tensor m = task->mean_output();
    ASSERT_EQ(m.sizes(), (std::vector<int64_t>{3}));
    if (features == "raw-db") EXPECT_ALLCLOSE(m, mean, 1e-6, 1e-5);
    else EXPECT_TRUE(torch::equal(m, torch::zeros({3})));
    const ex::Batch v = task->eval_batches("valid")[0];
    const double loss = task->loss(m.expand(v.target.sizes()), v, nullptr).item<double>();
    EXPECT_NEAR(loss, task->references()[1].second, 1e-4 * loss);
  }
}

TEST(SpeechTask, BadOptionsNameTheOption) {
  const ex::SpeechCorpus corpus = tiny_corpus();
  expect_error([&] { ex::make_speech_task(options("previous", "raw-db"), corpus); }, "--target");
  expect_error([&] { ex::make_speech_task(options("next", "log"), corpus); }, "--features");
  expect_error([&] { ex::make_speech_task(options("next", "raw-db", "all"), corpus); }, "--loss-denominator");
}
