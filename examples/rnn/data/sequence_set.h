// Variable-length sequences stored back to back, padding into time-major batches, and the
// on-disk format of a SequenceSet (also readable from Python with numpy; see README.md).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mantra::examples {

// Variable-length sequences stored back to back: sequence i is
// frames[offsets[i] : offsets[i+1]].
struct SequenceSet {
  torch::Tensor frames;               // (total_frames, feature_dim) float32, contiguous
  std::vector<int64_t> offsets{0};    // size()+1 entries, offsets[0] == 0
  std::vector<std::string> speakers;  // one per sequence (may be empty for non-speech)

  int64_t size() const { return static_cast<int64_t>(offsets.size()) - 1; }
  int64_t length(int64_t i) const;
  int64_t feature_dim() const;
  int64_t total_frames() const { return offsets.empty() ? 0 : offsets.back(); }
  // frames of sequence i, (length(i), feature_dim), a view.
  torch::Tensor sequence(int64_t i) const;
  // Checks the invariants above; throws c10::Error naming the broken one.
  void validate() const;
};

// Builds a set from per-sequence (T_i, F) float tensors (copied).
SequenceSet make_sequence_set(const std::vector<torch::Tensor>& sequences,
                              std::vector<std::string> speakers = {});

struct PaddedBatch {
  torch::Tensor x;        // (T_max, B, F) float32, time-major, zero padded
  torch::Tensor lengths;  // (B,) int64
  torch::Tensor mask;     // (T_max, B) float32, 1 on valid frames
};

// The sequences `indices` (any order, repeats allowed) padded with zeros to the longest one.
PaddedBatch pad_batch(const SequenceSet& set, const std::vector<int64_t>& indices);

// Per-feature mean and standard deviation over all frames (for input normalisation).
std::pair<torch::Tensor, torch::Tensor> feature_moments(const SequenceSet& set);

// On-disk format of one set, a folder holding
//   frames.f32    raw float32 little-endian, total_frames * feature_dim values, row-major
//   offsets.i64   raw int64 little-endian, size()+1 values
//   speakers.txt  one speaker per line, size() lines (absent when speakers is empty)
//   meta.txt      "key value" lines: format, sequences, total_frames, feature_dim, plus
//                 the caller's extra lines (options the set was made with)
// Python: np.fromfile(d+"/frames.f32", "<f4").reshape(-1, F); np.fromfile(d+"/offsets.i64", "<i8").
void save_sequence_set(const SequenceSet& set, const std::string& dir,
                       const std::vector<std::pair<std::string, std::string>>& extra_meta = {});
SequenceSet load_sequence_set(const std::string& dir);

}  // namespace mantra::examples
