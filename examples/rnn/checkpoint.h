// The trainer's checkpoint file: an archive {format, payload, checksum} whose payload holds the
// bytes of the archive of the run's state and checksum their FNV-1a 64 hash, so that any altered
// or lost byte (tensor data included) is refused on load instead of being trained on; and the
// checks of the counters it carries.
#pragma once

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mantra::examples {

// Writes `state` to `path` wrapped with its checksum.
void write_checkpoint(torch::serialize::OutputArchive& state, const std::string& path);
// Reads the state written by write_checkpoint into `state`; errors name the file (unreadable or
// truncated, another format, a failed checksum).
void read_checkpoint(const std::string& path, const torch::Device& device, torch::serialize::InputArchive& state);

// The counters after an epoch: {epoch, best valid loss, seconds of steps, steps timed} and, for
// an orthogonal model, {dtriv steps, rebase count of each parametrization}.
struct CheckpointCounters {
  int64_t epoch = 0, steps_timed = 0, dtriv_steps = 0;
  double best = 0, step_seconds = 0;
  std::vector<int64_t> rebases;
};
torch::Tensor counters_tensor(const CheckpointCounters& c, bool orthogonal);
// Checks shape and values (whole numbers >= 0, the epoch equal to the history's rows); errors
// name `path` and the bad counter.
CheckpointCounters parse_counters(const torch::Tensor& counters, int64_t history_rows, bool orthogonal,
                                  int64_t parametrizations, const std::string& path);

}  // namespace mantra::examples
