// The synthetic espeak-ng corpus (deterministic, disjoint speakers, cached) and the TIMIT reader.
#include "sequence_data.h"
#include "io_util.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <algorithm>
#include <set>
#include <unistd.h>

#include "temp_dir.h"

namespace me = mantra::examples;
namespace io = mantra::examples::detail;

namespace {

using mantra::examples::test::temp_dir;

void expect_same(const me::SequenceSet& a, const me::SequenceSet& b) {
  EXPECT_TRUE(torch::equal(a.frames, b.frames));  // bit-identical
  EXPECT_EQ(a.offsets, b.offsets);
  EXPECT_EQ(a.speakers, b.speakers);
}

std::set<std::string> speaker_set(const me::SequenceSet& s) { return {s.speakers.begin(), s.speakers.end()}; }

}  // namespace

TEST(SpeechCorpus, LicenseTextsGiveManySentences) {
  if (!io::dir_exists("/usr/share/common-licenses")) GTEST_SKIP() << "no /usr/share/common-licenses";
  const auto s = me::corpus_sentences();
  EXPECT_GE(s.size(), 800u);  // 1058 on Debian 12
  EXPECT_EQ(std::set<std::string>(s.begin(), s.end()).size(), s.size());
  for (const auto& x : s) {
    EXPECT_TRUE(std::isupper(static_cast<unsigned char>(x[0]))) << x;
    EXPECT_EQ(x.back(), '.') << x;
    EXPECT_EQ(x.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ',-"), x.size() - 1) << x;
    const auto words = std::count(x.begin(), x.end(), ' ') + 1;
    EXPECT_GE(words, 5) << x;
    EXPECT_LE(words, 14) << x;
  }
}

TEST(SpeechCorpus, SyntheticIsDeterministicDisjointAndCached) {
  if (!me::espeak_available()) GTEST_SKIP() << "espeak-ng is not installed (apt-get install espeak-ng)";
  const std::string dir = temp_dir("speech");
  me::SyntheticSpeechOptions o;
  o.train = 6;
  o.valid = 2;
  o.test = 2;
  o.sentences_per_speaker = 2;  // 3 / 1 / 1 speakers
  o.seed = 7;
  o.threads = 2;
  o.verbose = false;
  o.cache_dir = dir + "/a";

  const int64_t before = me::synthesized_utterances();
  const auto c1 = me::synthetic_speech_corpus(o);
  EXPECT_FALSE(c1.from_cache);
  EXPECT_EQ(me::synthesized_utterances() - before, 10);
  ASSERT_EQ(c1.train.size(), 6);
  ASSERT_EQ(c1.valid.size(), 2);
  ASSERT_EQ(c1.test.size(), 2);
  for (const auto* s : {&c1.train, &c1.valid, &c1.test}) {
    EXPECT_EQ(s->feature_dim(), 129);
    for (int64_t i = 0; i < s->size(); ++i) EXPECT_GE(s->length(i), 50) << "a sentence lasts > 0.8 s";
    EXPECT_TRUE(torch::isfinite(s->frames).all().item<bool>());
    EXPECT_GE(s->frames.min().item<float>(), -50.0f - 1e-3f);  // the 1e-5 floor: -50 dB
  }
  // Speakers: 3 / 1 / 1, disjoint across the splits, 2 utterances each.
  const auto tr = speaker_set(c1.train), va = speaker_set(c1.valid), te = speaker_set(c1.test);
  EXPECT_EQ(tr.size(), 3u);
  EXPECT_EQ(va.size(), 1u);
  EXPECT_EQ(te.size(), 1u);
  for (const auto& s : va) EXPECT_EQ(tr.count(s) + te.count(s), 0u) << s;
  for (const auto& s : te) EXPECT_EQ(tr.count(s), 0u) << s;

  // The second call reads the cache: no synthesis, identical data.
  const int64_t mid = me::synthesized_utterances();
  const auto c2 = me::synthetic_speech_corpus(o);
  EXPECT_TRUE(c2.from_cache);
  EXPECT_EQ(me::synthesized_utterances(), mid);
  EXPECT_EQ(c2.cache_path, c1.cache_path);
  expect_same(c1.train, c2.train);
  expect_same(c1.test, c2.test);
  const auto c2b = me::load_speech_corpus(c1.cache_path);
  expect_same(c1.valid, c2b.valid);
  EXPECT_EQ(c2b.description, c1.description);
  // The cache is complete, with no temp folders left, in the documented format.
  for (const char* split : {"train", "valid", "test"})
    for (const char* f : {"frames.f32", "offsets.i64", "speakers.txt", "meta.txt"})
      EXPECT_TRUE(io::file_exists(c1.cache_path + "/" + split + "/" + f)) << split << "/" << f;
  EXPECT_EQ(io::file_size(c1.cache_path + "/train/frames.f32"), c1.train.total_frames() * 129 * 4);
  for (const auto& e : io::list_dir(o.cache_dir + "/speech"))
    EXPECT_EQ(e.name.find(".tmp"), std::string::npos) << e.name;

  // A fresh build elsewhere, one thread: bit-identical to the first.
  o.cache_dir = dir + "/b";
  o.threads = 1;
  const auto c3 = me::synthetic_speech_corpus(o);
  EXPECT_FALSE(c3.from_cache);
  expect_same(c1.train, c3.train);
  expect_same(c1.valid, c3.valid);
  expect_same(c1.test, c3.test);

  // Another seed: other speakers.
  o.seed = 8;
  o.train = 2;
  o.valid = o.test = 0;
  const auto c4 = me::synthetic_speech_corpus(o);
  EXPECT_NE(c4.train.speakers, std::vector<std::string>(c1.train.speakers.begin(), c1.train.speakers.begin() + 2));
  io::remove_tree(dir);
}

TEST(SpeechCorpus, MissingEspeakIsAClearError) {
  const std::string dir = temp_dir("speech_noespeak");
  me::SyntheticSpeechOptions o;
  o.train = 1;
  o.valid = o.test = 0;
  o.verbose = false;
  o.cache_dir = dir;
  o.espeak = "/nonexistent/espeak-ng";
  mantra::test::expect_error([&] { me::synthetic_speech_corpus(o); }, "espeak-ng");
  io::remove_tree(dir);
}

namespace {

void write_sphere16k(const std::string& path, const torch::Tensor& wave) {
  const int64_t n = wave.numel();
  std::string h = "NIST_1A\n   1024\ndatabase_id -s5 TIMIT\nchannel_count -i 1\nsample_count -i " +
                  std::to_string(n) +
                  "\nsample_rate -i 16000\nsample_n_bytes -i 2\nsample_byte_format -s2 01\n"
                  "sample_sig_bits -i 16\nend_head\n";
  h.resize(1024, ' ');
  std::ofstream out(path, std::ios::binary);
  out.write(h.data(), h.size());
  auto q = (wave * 32768).round().clamp(-32768, 32767).to(torch::kInt16).contiguous();
  out.write(reinterpret_cast<const char*>(q.data_ptr<int16_t>()), 2 * n);
}

}  // namespace

// A tiny LDC-style tree with mixed-case names: SA1/SA2 are dropped, the core test speaker MDAB0
// is the validation set, the other TEST speakers the test set.
TEST(Timit, ReadsAFakeTree) {
  const std::string root = temp_dir("timit");
  int k = 0;
  auto utt = [&](const std::string& rel) {
    const std::string full = root + "/" + rel;
    io::make_dirs(full.substr(0, full.rfind('/')));
    auto t = torch::arange(4800, torch::kFloat64) / 16000.0;
    write_sphere16k(root + "/" + rel, (0.3 * torch::sin(2 * M_PI * (300 + 100 * k++) * t)).to(torch::kFloat32));
  };
  utt("train/dr1/fcjf0/sa1.wav");
  utt("train/dr1/fcjf0/si648.wav");
  utt("train/dr1/fcjf0/sx38.wav");
  utt("train/DR2/MABC0/SX1.WAV");
  utt("TEST/DR1/MDAB0/SA2.WAV");
  utt("TEST/DR1/MDAB0/SI1.WAV");
  utt("TEST/DR1/MDAB0/SX2.WAV");
  utt("TEST/DR2/MXYZ0/SX3.WAV");
  // A converted RIFF copy next to its SPHERE original is ignored.
  me::write_wav(root + "/TEST/DR2/MXYZ0/SX3.WAV.wav", torch::zeros({100}), 16000);
  std::ofstream(root + "/TEST/DR2/MXYZ0/SX3.PHN") << "0 100 h#\n";

  const std::string cache = root + "/cache";
  const auto c = me::timit_corpus(root, cache, /*verbose=*/false);
  EXPECT_FALSE(c.from_cache);
  ASSERT_EQ(c.train.size(), 3);  // sa1 excluded
  EXPECT_EQ(c.train.speakers, (std::vector<std::string>{"DR1/FCJF0", "DR1/FCJF0", "DR2/MABC0"}));
  ASSERT_EQ(c.valid.size(), 2);
  EXPECT_EQ(c.valid.speakers, (std::vector<std::string>{"DR1/MDAB0", "DR1/MDAB0"}));
  ASSERT_EQ(c.test.size(), 1);
  EXPECT_EQ(c.test.speakers, (std::vector<std::string>{"DR2/MXYZ0"}));
  // Features = log_power_spectrogram(resample(16 kHz -> 8 kHz)): 2400 samples -> 19 frames.
  auto a = me::read_sphere(root + "/train/dr1/fcjf0/si648.wav");
  auto expected = me::log_power_spectrogram(me::resample(a.wave, 16000, 8000));
  EXPECT_EQ(c.train.length(0), 19);
  EXPECT_TRUE(torch::equal(c.train.sequence(0), expected));
  const auto again = me::timit_corpus(root, cache, false);
  EXPECT_TRUE(again.from_cache);
  EXPECT_TRUE(torch::equal(again.valid.frames, c.valid.frames));
  EXPECT_EQ(me::timit_core_test_speakers().size(), 24u);
  mantra::test::expect_error([&] { me::timit_corpus(root + "/TEST", cache); }, "TRAIN");
  io::remove_tree(root);
}

// The published split (the uRNN preprocessing): every path containing "sa" is dropped (SA1/SA2
// and the whole speaker FSAH0), the test set is the development-speaker list (FAKS0 here),
// other non-core TEST speakers (MXYZ0) are in no split, valid is the core test set.
TEST(Timit, PublishedSplit) {
  const std::string root = temp_dir("timit_published");
  int k = 0;
  auto utt = [&](const std::string& rel) {
    const std::string full = root + "/" + rel;
    io::make_dirs(full.substr(0, full.rfind('/')));
    auto t = torch::arange(4800, torch::kFloat64) / 16000.0;
    write_sphere16k(full, (0.3 * torch::sin(2 * M_PI * (300 + 100 * k++) * t)).to(torch::kFloat32));
  };
  utt("TRAIN/DR1/FCJF0/SA1.WAV");
  utt("TRAIN/DR1/FCJF0/SI648.WAV");
  utt("TRAIN/DR1/FCJF0/SX38.WAV");
  utt("TRAIN/DR3/FSAH0/SI1.WAV");
  utt("TRAIN/DR3/FSAH0/SX2.WAV");
  utt("TEST/DR1/MDAB0/SA2.WAV");
  utt("TEST/DR1/MDAB0/SI1.WAV");
  utt("TEST/DR1/FAKS0/SX1.WAV");
  utt("TEST/DR1/FAKS0/SA1.WAV");
  utt("TEST/DR2/MXYZ0/SX3.WAV");
  const std::string cache = root + "/cache";
  const auto pub = me::timit_corpus(root, cache, false, "published");
  EXPECT_EQ(pub.train.speakers, (std::vector<std::string>{"DR1/FCJF0", "DR1/FCJF0"}));
  EXPECT_EQ(pub.valid.speakers, (std::vector<std::string>{"DR1/MDAB0"}));
  EXPECT_EQ(pub.test.speakers, (std::vector<std::string>{"DR1/FAKS0"}));
  EXPECT_NE(pub.description.find("published split"), std::string::npos) << pub.description;
  // The mantra split of the same tree keeps FSAH0 and takes the test speakers by position.
  const auto mine = me::timit_corpus(root, cache, false);
  EXPECT_FALSE(mine.from_cache);  // another split, another cache entry
  EXPECT_EQ(mine.train.size(), 4);
  EXPECT_EQ(mine.test.speakers, (std::vector<std::string>{"DR1/FAKS0", "DR2/MXYZ0"}));
  EXPECT_TRUE(me::timit_corpus(root, cache, false, "published").from_cache);
  mantra::test::expect_error([&] { me::timit_corpus(root, cache, false, "kaldi"); }, "'split'");
  // The list: 50 distinct speakers, none in the core test set, none containing "SA" (so the
  // published test set keeps all 8 SI/SX utterances of each: 400).
  const auto& dev = me::timit_dev_speakers();
  EXPECT_EQ(dev.size(), 50u);
  std::set<std::string> unique(dev.begin(), dev.end());
  EXPECT_EQ(unique.size(), 50u);
  for (const auto& c : me::timit_core_test_speakers()) EXPECT_EQ(unique.count(c.substr(c.find('/') + 1)), 0u) << c;
  for (const auto& d : dev) EXPECT_EQ(d.find("SA"), std::string::npos) << d;
  io::remove_tree(root);
}
