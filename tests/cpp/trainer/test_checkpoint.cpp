// The trainer's checkpoint file (examples/rnn/checkpoint.h): round trip, checksum over every
// byte, truncation, and the counters' checks (issue 17).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "checkpoint.h"
#include "data/io_util.h"

#include <unistd.h>

#include <fstream>
#include <string>

namespace ex = mantra::examples;
namespace io = mantra::examples::detail;

namespace {

void expect_error(const std::function<void()>& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "expected an error mentioning: " << needles[0];
  } catch (const c10::Error& e) {
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

std::string temp_path(const std::string& name) {
  const std::string dir = "/tmp/mantra_test_checkpoint_" + std::to_string(getpid());
  io::make_dirs(dir);
  return dir + "/" + name;
}

// A state with a float tensor of known values and the counters of an orthogonal model.
std::string write_state(const std::string& name, const ex::CheckpointCounters& n) {
  torch::serialize::OutputArchive state;
  state.write("weights", torch::arange(1000, torch::kFloat32));
  state.write("counters", ex::counters_tensor(n, true));
  const std::string path = temp_path(name);
  ex::write_checkpoint(state, path);
  return path;
}

ex::CheckpointCounters some_counters() {
  ex::CheckpointCounters n;
  n.epoch = 3;
  n.best = 0.25;
  n.step_seconds = 1.5;
  n.steps_timed = 18;
  n.dtriv_steps = 18;
  n.rebases = {2};
  return n;
}

}  // namespace

TEST(Checkpoint, RoundTrip) {
  const std::string path = write_state("ok.pt", some_counters());
  torch::serialize::InputArchive in;
  ex::read_checkpoint(path, torch::kCPU, in);
  torch::Tensor w, c;
  in.read("weights", w);
  in.read("counters", c);
  EXPECT_TRUE(torch::equal(w, torch::arange(1000, torch::kFloat32)));
  const auto n = ex::parse_counters(c, 3, true, 1, path);
  EXPECT_EQ(n.epoch, 3);
  EXPECT_EQ(n.steps_timed, 18);
  EXPECT_EQ(n.dtriv_steps, 18);
  EXPECT_EQ(n.rebases, (std::vector<int64_t>{2}));
  EXPECT_DOUBLE_EQ(n.best, 0.25);
  io::remove_tree(path.substr(0, path.rfind('/')));
}

// One altered byte anywhere in the tensor data is refused, naming the file and the checksum.
TEST(Checkpoint, AlteredTensorBytesFailTheChecksum) {
  const std::string path = write_state("altered.pt", some_counters());
  std::vector<uint8_t> bytes = io::read_binary_file(path);
  // The float 500.0f (0x43FA0000, little endian) of the weights, inside the stored payload.
  const uint8_t pattern[4] = {0x00, 0x00, 0xFA, 0x43};
  auto it = std::search(bytes.begin(), bytes.end(), pattern, pattern + 4);
  ASSERT_NE(it, bytes.end());
  it[1] ^= 0x01;  // 500.0 -> 500.0000305
  io::write_file(path, bytes.data(), bytes.size());
  torch::serialize::InputArchive in;
  expect_error([&] { ex::read_checkpoint(path, torch::kCPU, in); }, {path, "fails its checksum"});
  io::remove_tree(path.substr(0, path.rfind('/')));
}

TEST(Checkpoint, TruncatedFileNamesTheFile) {
  const std::string path = write_state("truncated.pt", some_counters());
  std::vector<uint8_t> bytes = io::read_binary_file(path);
  io::write_file(path, bytes.data(), bytes.size() / 2);
  torch::serialize::InputArchive in;
  expect_error([&] { ex::read_checkpoint(path, torch::kCPU, in); }, {"cannot read the checkpoint " + path, "truncated"});
  io::remove_tree(path.substr(0, path.rfind('/')));
}

// A negative (or fractional, or NaN) epoch counter, or one that disagrees with the history,
// is refused (issue 17: a counter of -3 ran 9 epochs and reported 12).
TEST(Checkpoint, BadCountersAreRefused) {
  ex::CheckpointCounters n = some_counters();
  n.epoch = -3;
  const torch::Tensor negative = ex::counters_tensor(n, true);
  expect_error([&] { ex::parse_counters(negative, 3, true, 1, "c.pt"); }, {"c.pt", "epoch counter is -3"});
  torch::Tensor fractional = ex::counters_tensor(some_counters(), true);
  fractional[0] = 2.5;
  expect_error([&] { ex::parse_counters(fractional, 3, true, 1, "c.pt"); }, {"epoch counter is 2.5"});
  torch::Tensor nan_steps = ex::counters_tensor(some_counters(), true);
  nan_steps[3] = NAN;
  expect_error([&] { ex::parse_counters(nan_steps, 3, true, 1, "c.pt"); }, {"step counter is nan"});
  expect_error([&] { ex::parse_counters(ex::counters_tensor(some_counters(), true), 12, true, 1, "c.pt"); },
               {"epoch counter is 3 but its history holds 12 epochs"});
  expect_error([&] { ex::parse_counters(ex::counters_tensor(some_counters(), true), 3, false, 0, "c.pt"); },
               {"c.pt", "counters of shape"});
}
