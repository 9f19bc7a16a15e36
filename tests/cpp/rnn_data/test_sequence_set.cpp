// SequenceSet, pad_batch and the on-disk format.
#include "sequence_data.h"
#include "io_util.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <torch/torch.h>


namespace me = mantra::examples;
namespace io = mantra::examples::detail;

TEST(SequenceSet, PadBatchShapesMaskAndValues) {
  std::vector<torch::Tensor> seqs = {torch::randn({3, 4}), torch::randn({5, 4}), torch::randn({1, 4})};
  auto set = me::make_sequence_set(seqs, {"a", "b", "c"});
  EXPECT_EQ(set.size(), 3);
  EXPECT_EQ(set.feature_dim(), 4);
  EXPECT_EQ(set.offsets, (std::vector<int64_t>{0, 3, 8, 9}));
  EXPECT_EQ(set.length(1), 5);
  auto b = me::pad_batch(set, {2, 0, 1, 0});
  EXPECT_EQ(b.x.sizes(), (torch::IntArrayRef{5, 4, 4}));
  EXPECT_EQ(b.x.scalar_type(), torch::kFloat32);
  EXPECT_EQ(b.mask.sizes(), (torch::IntArrayRef{5, 4}));
  EXPECT_EQ(b.lengths.scalar_type(), torch::kInt64);
  EXPECT_TRUE(torch::equal(b.lengths, torch::tensor({1, 3, 5, 3}, torch::kInt64)));
  // mask[t][b] = t < length[b]; padded frames are exactly zero; valid frames are the sequences.
  auto t = torch::arange(5).unsqueeze(1);
  EXPECT_TRUE(torch::equal(b.mask, (t < b.lengths.unsqueeze(0)).to(torch::kFloat32)));
  EXPECT_TRUE(torch::equal(b.x.select(1, 1).slice(0, 0, 3), seqs[0]));
  EXPECT_TRUE(torch::equal(b.x.select(1, 2), seqs[1]));
  EXPECT_TRUE(torch::equal(b.x.select(1, 0).slice(0, 0, 1), seqs[2]));
  EXPECT_EQ(b.x.select(1, 0).slice(0, 1).abs().sum().item<float>(), 0.0f);
  EXPECT_EQ((b.x * (1 - b.mask).unsqueeze(2)).abs().sum().item<float>(), 0.0f);
  mantra::test::expect_error([&] { me::pad_batch(set, {3}); }, "out of range");
}

TEST(SequenceSet, SaveLoadRoundTripIsBitExact) {
  const std::string dir = ::testing::TempDir() + "/mantra_seqset_" + std::to_string(::getpid());
  std::vector<torch::Tensor> seqs = {torch::randn({7, 129}), torch::randn({2, 129})};
  auto set = me::make_sequence_set(seqs, {"spk one", "spk two"});
  me::save_sequence_set(set, dir, {{"seed", "5"}});
  auto back = me::load_sequence_set(dir);
  EXPECT_TRUE(torch::equal(back.frames, set.frames));
  EXPECT_EQ(back.offsets, set.offsets);
  EXPECT_EQ(back.speakers, set.speakers);
  // frames.f32 is raw float32: 9 * 129 * 4 bytes.
  EXPECT_EQ(io::file_size(dir + "/frames.f32"), int64_t{9 * 129 * 4});
  EXPECT_EQ(io::file_size(dir + "/offsets.i64"), int64_t{3 * 8});
  io::remove_tree(dir);
}
