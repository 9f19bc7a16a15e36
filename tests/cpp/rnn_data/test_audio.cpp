// Audio: log-power spectrogram, resampler, WAV and NIST SPHERE readers.
#include "sequence_data.h"
#include "io_util.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <unistd.h>

#include "temp_dir.h"

namespace me = mantra::examples;
namespace io = mantra::examples::detail;

namespace {

using mantra::examples::test::temp_dir;

torch::Tensor tone(double freq, double rate, int64_t n, double amplitude = 1.0) {
  auto t = torch::arange(n, torch::kFloat64) / rate;
  return (amplitude * torch::sin(2 * M_PI * freq * t)).to(torch::kFloat32);
}

// A NIST SPHERE file as TIMIT has them: a 1024-byte header, then 16-bit samples.
void write_sphere(const std::string& path, const std::vector<int16_t>& samples, const std::string& byte_format,
                  int64_t rate = 16000, const std::string& extra = "", const std::string& skip_field = "",
                  int64_t claimed_count = -1) {
  std::string h = "NIST_1A\n   1024\n";
  auto field = [&](const std::string& name, const std::string& line) {
    if (name != skip_field) h += line + "\n";
  };
  field("database_id", "database_id -s5 TIMIT");
  field("utterance_id", "utterance_id -s8 aks0_sa1");
  field("channel_count", "channel_count -i 1");
  field("sample_count", "sample_count -i " + std::to_string(claimed_count >= 0 ? claimed_count : int64_t(samples.size())));
  field("sample_rate", "sample_rate -i " + std::to_string(rate));
  field("sample_n_bytes", "sample_n_bytes -i 2");
  field("sample_byte_format", "sample_byte_format -s2 " + byte_format);
  field("sample_sig_bits", "sample_sig_bits -i 16");
  h += extra;
  h += "end_head\n";
  h.resize(1024, ' ');
  std::ofstream out(path, std::ios::binary);
  out.write(h.data(), h.size());
  for (int16_t s : samples) {
    const auto u = static_cast<uint16_t>(s);
    const char lo = static_cast<char>(u & 0xff), hi = static_cast<char>(u >> 8);
    if (byte_format == "10") {
      out.put(hi);
      out.put(lo);
    } else {
      out.put(lo);
      out.put(hi);
    }
  }
}

}  // namespace

// A tone exactly on bin 20 (625 Hz at 8 kHz) peaks in bin 20 with the Hann-window power
// (A/2 * sum w)^2 = (0.5 * 0.5 * 128)^2 = 1024 -> 30.1030 dB.
TEST(Features, PureTonePeaksInItsBin) {
  const int64_t n = 8000;
  auto feats = me::log_power_spectrogram(tone(20 * 8000.0 / 256, 8000, n, 0.5));
  ASSERT_EQ(feats.sizes(), (torch::IntArrayRef{1 + n / 128, 129}));
  ASSERT_EQ(feats.scalar_type(), torch::kFloat32);
  auto interior = feats.slice(0, 2, feats.size(0) - 2);  // frames fully inside the signal
  EXPECT_TRUE(torch::all(interior.argmax(1) == 20).item<bool>());
  const double expected_db = 10 * std::log10(1024.0 + 1e-5);
  EXPECT_NEAR(interior.select(1, 20).min().item<float>(), expected_db, 1e-3);
  EXPECT_NEAR(interior.select(1, 20).max().item<float>(), expected_db, 1e-3);
  // Leakage of a periodic Hann window into bins >= 2 away is exactly zero -> the 1e-5 floor.
  EXPECT_LT(interior.select(1, 25).max().item<float>(), -40.0f);
}

// The features equal a direct DFT (float64) of the zero-padded, Hann-windowed frames.
// Tolerance: a float32 FFT perturbs X by about eps * sqrt(log2 256) * ||x w|| ~ 4e-7 ||x w||; we
// allow |dX| <= delta = 1e-5 ||x w|| (25x that). To first order d(10 log10 P) = 8.686 |dX| / |X|,
// so per bin |d dB| <= 8.686 delta sqrt(P) / (P + 1e-5) + 1e-5 (float32 rounding of a ~30 dB
// value). For most bins this is ~1e-5 dB; only bins near a spectral zero get a looser bound.
TEST(Features, MatchDirectDft) {
  torch::manual_seed(3);
  const int64_t n = 1500;
  auto wave = (0.1 * torch::randn({n}) + tone(440, 8000, n, 0.3)).to(torch::kFloat32);
  auto feats = me::log_power_spectrogram(wave).to(torch::kFloat64);
  const int64_t frames = 1 + n / 128;
  ASSERT_EQ(feats.size(0), frames);
  auto x = wave.to(torch::kFloat64);
  auto w = torch::hann_window(256, torch::kFloat64);
  const double* xp = x.data_ptr<double>();
  const double* wp = w.data_ptr<double>();
  double worst_ratio = 0;
  for (int64_t t = 0; t < frames; ++t) {
    std::vector<double> seg(256, 0.0);
    double norm2 = 0;
    for (int64_t i = 0; i < 256; ++i) {
      const int64_t j = t * 128 - 128 + i;
      seg[i] = (j >= 0 && j < n) ? xp[j] * wp[i] : 0.0;
      norm2 += seg[i] * seg[i];
    }
    const double delta = 1e-5 * std::sqrt(norm2);
    for (int64_t k = 0; k < 129; ++k) {
      double re = 0, im = 0;
      for (int64_t i = 0; i < 256; ++i) {
        re += seg[i] * std::cos(2 * M_PI * k * i / 256.0);
        im -= seg[i] * std::sin(2 * M_PI * k * i / 256.0);
      }
      const double p = re * re + im * im;
      const double ref = 10 * std::log10(1e-5 + p);
      const double tol = 8.686 * delta * std::sqrt(p) / (p + 1e-5) + 1e-5;
      const double err = std::abs(feats[t][k].item<double>() - ref);
      worst_ratio = std::max(worst_ratio, err / tol);
      ASSERT_LE(err, tol) << "frame " << t << " bin " << k << " ref " << ref;
    }
  }
  RecordProperty("worst_error_over_tolerance", std::to_string(worst_ratio));
}

TEST(Features, RejectsEmptyAndMultiDimensional) {
  mantra::test::expect_error([] { me::log_power_spectrogram(torch::zeros({0})); }, "empty");
  mantra::test::expect_error([] { me::log_power_spectrogram(torch::zeros({2, 300})); }, "1-D");
}

// 22050 -> 8000 (what espeak-ng writes -> the feature rate): a 1 kHz tone passes with max
// amplitude error < 1e-3 away from the ends; a 5 kHz tone (above the new Nyquist 4 kHz,
// it would alias to 3 kHz) comes out > 40 dB weaker.
TEST(Resample, DownsamplingPassesOneKilohertzAndSuppressesFive) {
  const int64_t n = 22050 * 2;
  auto out = me::resample(tone(1000, 22050, n), 22050, 8000);
  ASSERT_EQ(out.numel(), (n * 8000 + 22049) / 22050);
  auto ideal = tone(1000, 8000, out.numel());
  auto interior = torch::indexing::Slice(400, out.numel() - 400);  // 50 ms from each end
  const float err = (out.index({interior}) - ideal.index({interior})).abs().max().item<float>();
  EXPECT_LT(err, 1e-3f);
  RecordProperty("amplitude_error_1kHz", std::to_string(err));

  auto alias = me::resample(tone(5000, 22050, n), 22050, 8000);
  const double rms = alias.index({interior}).square().mean().sqrt().item<double>();
  const double db = 20 * std::log10(rms / std::sqrt(0.5));
  EXPECT_LT(db, -40.0);
  RecordProperty("attenuation_5kHz_dB", std::to_string(db));
}

TEST(Resample, UpsamplingAndIdentity) {
  auto out = me::resample(tone(1000, 8000, 8000), 8000, 16000);
  ASSERT_EQ(out.numel(), 16000);
  auto ideal = tone(1000, 16000, 16000);
  auto interior = torch::indexing::Slice(800, 16000 - 800);
  EXPECT_LT((out.index({interior}) - ideal.index({interior})).abs().max().item<float>(), 1e-3f);
  auto w = torch::randn({100});
  EXPECT_TRUE(torch::equal(me::resample(w, 8000, 8000), w));
  // 16 kHz (TIMIT) -> 8 kHz halves the length (rounded up).
  EXPECT_EQ(me::resample(torch::randn({1001}), 16000, 8000).numel(), 501);
  mantra::test::expect_error([] { me::resample(torch::zeros({10}), 0, 8000); }, "rates must be positive");
}

TEST(Wav, RoundTripAndStreamedHeader) {
  const std::string dir = temp_dir("wav");
  auto w = (0.5 * torch::randn({1000})).clamp(-1, 0.999f);
  me::write_wav(dir + "/a.wav", w, 22050);
  auto a = me::read_wav(dir + "/a.wav");
  EXPECT_EQ(a.sample_rate, 22050);
  ASSERT_EQ(a.wave.numel(), 1000);
  EXPECT_LE((a.wave - w).abs().max().item<float>(), 0.5f / 32768 + 1e-7f);  // 16-bit rounding
  EXPECT_TRUE(torch::equal(me::read_audio(dir + "/a.wav").wave, a.wave));

  // espeak-ng --stdout writes placeholder sizes 0x7ffff024 / 0x7ffff000: read what is there.
  std::ifstream in(dir + "/a.wav", std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (int i : {4, 40}) {
    bytes[i] = 0x00;
    bytes[i + 1] = 0xf0;
    bytes[i + 2] = 0xff;
    bytes[i + 3] = 0x7f;
  }
  auto s = me::parse_wav(bytes, "streamed");
  EXPECT_TRUE(torch::equal(s.wave, a.wave));

  auto stereo = bytes;
  stereo[22] = 2;
  mantra::test::expect_error([&] { me::parse_wav(stereo, "stereo.wav"); }, "num_channels");
  mantra::test::expect_error([&] { me::parse_wav(stereo, "stereo.wav"); }, "stereo.wav");
  auto eight_bit = bytes;
  eight_bit[34] = 8;
  mantra::test::expect_error([&] { me::parse_wav(eight_bit, "x"); }, "bits_per_sample");
  mantra::test::expect_error([&] { me::parse_wav({'R', 'I', 'F', 'F'}, "short.wav"); }, "short.wav");
  io::remove_tree(dir);
}

TEST(Sphere, RoundTripsBothByteOrders) {
  const std::string dir = temp_dir("sphere");
  std::vector<int16_t> samples = {0, 1, -1, 32767, -32768, 1234, -4321, 256, -256, 7};
  for (int i = 0; i < 1000; ++i) samples.push_back(static_cast<int16_t>((i * 7919) % 65536 - 32768));
  auto expected = torch::empty({int64_t(samples.size())}, torch::kFloat32);
  for (size_t i = 0; i < samples.size(); ++i) expected[i] = samples[i] / 32768.0f;
  for (const std::string order : {"01", "10"}) {
    const std::string path = dir + "/x" + order + ".wav";
    write_sphere(path, samples, order);
    auto a = me::read_sphere(path);
    EXPECT_EQ(a.sample_rate, 16000);
    EXPECT_TRUE(torch::equal(a.wave, expected)) << "byte format " << order;
    EXPECT_TRUE(torch::equal(me::read_audio(path).wave, expected));
  }
  io::remove_tree(dir);
}

TEST(Sphere, RejectsBadFilesNamingFileAndField) {
  const std::string dir = temp_dir("sphere_bad");
  const std::vector<int16_t> s(100, 5);
  auto expect_rejected = [&](const std::string& name, const std::string& field) {
    const std::string path = dir + "/" + name;
    mantra::test::expect_error([&] { me::read_sphere(path); }, path);
    mantra::test::expect_error([&] { me::read_sphere(path); }, field);
  };
  write_sphere(dir + "/shorten.wav", s, "01", 16000, "sample_coding -s26 pcm,embedded-shorten-v2.00\n");
  expect_rejected("shorten.wav", "sample_coding");
  expect_rejected("shorten.wav", "shorten");
  write_sphere(dir + "/norate.wav", s, "01", 16000, "", "sample_rate");
  expect_rejected("norate.wav", "sample_rate");
  write_sphere(dir + "/order.wav", s, "1");
  expect_rejected("order.wav", "sample_byte_format");
  write_sphere(dir + "/truncated.wav", s, "01", 16000, "", "", 5000);
  expect_rejected("truncated.wav", "sample_count");
  {  // channel_count 2
    std::string h = "NIST_1A\n   1024\nchannel_count -i 2\nsample_count -i 10\nsample_rate -i 16000\n"
                    "sample_n_bytes -i 2\nsample_byte_format -s2 01\nend_head\n";
    h.resize(1024 + 40, ' ');
    std::ofstream(dir + "/stereo.wav", std::ios::binary).write(h.data(), h.size());
  }
  expect_rejected("stereo.wav", "channel_count");
  std::ofstream(dir + "/riff.wav", std::ios::binary) << "RIFF0000WAVEfmt ";
  expect_rejected("riff.wav", "NIST_1A");
  io::remove_tree(dir);
}
