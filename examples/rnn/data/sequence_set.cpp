#include "sequence_set.h"

#include "io_util.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

namespace mantra::examples {

int64_t SequenceSet::length(int64_t i) const {
  TORCH_CHECK(i >= 0 && i < size(), "SequenceSet::length: index ", i, " out of range [0, ", size(), ")");
  return offsets[i + 1] - offsets[i];
}

int64_t SequenceSet::feature_dim() const { return frames.defined() ? frames.size(1) : 0; }

torch::Tensor SequenceSet::sequence(int64_t i) const {
  TORCH_CHECK(i >= 0 && i < size(), "SequenceSet::sequence: index ", i, " out of range [0, ", size(), ")");
  return frames.slice(0, offsets[i], offsets[i + 1]);
}

void SequenceSet::validate() const {
  TORCH_CHECK(!offsets.empty() && offsets[0] == 0, "SequenceSet: offsets must start with 0");
  for (size_t i = 1; i < offsets.size(); ++i)
    TORCH_CHECK(offsets[i] >= offsets[i - 1], "SequenceSet: offsets decrease at ", i);
  TORCH_CHECK(frames.defined() && frames.dim() == 2, "SequenceSet: frames must be (total_frames, feature_dim)");
  TORCH_CHECK(frames.scalar_type() == torch::kFloat32, "SequenceSet: frames must be float32, got ",
              frames.scalar_type());
  TORCH_CHECK(frames.is_contiguous(), "SequenceSet: frames must be contiguous");
  TORCH_CHECK(frames.size(0) == offsets.back(), "SequenceSet: frames has ", frames.size(0),
              " rows but offsets end at ", offsets.back());
  TORCH_CHECK(speakers.empty() || static_cast<int64_t>(speakers.size()) == size(),
              "SequenceSet: ", speakers.size(), " speakers for ", size(), " sequences");
}

SequenceSet make_sequence_set(const std::vector<torch::Tensor>& sequences, std::vector<std::string> speakers) {
  SequenceSet set;
  set.offsets.assign(1, 0);
  int64_t feature_dim = -1;
  for (size_t i = 0; i < sequences.size(); ++i) {
    const auto& s = sequences[i];
    TORCH_CHECK(s.dim() == 2, "make_sequence_set: sequence ", i, " must be (T, F), got ", s.sizes());
    TORCH_CHECK(feature_dim < 0 || s.size(1) == feature_dim, "make_sequence_set: sequence ", i, " has ",
                s.size(1), " features, expected ", feature_dim);
    feature_dim = s.size(1);
    set.offsets.push_back(set.offsets.back() + s.size(0));
  }
  if (sequences.empty()) {
    set.frames = torch::zeros({0, 0}, torch::kFloat32);
  } else {
    std::vector<at::Tensor> parts(sequences.begin(), sequences.end());
    for (auto& p : parts) p = p.to(torch::kFloat32);
    set.frames = at::cat(parts, 0).contiguous();
  }
  set.speakers = std::move(speakers);
  set.validate();
  return set;
}

PaddedBatch pad_batch(const SequenceSet& set, const std::vector<int64_t>& indices) {
  TORCH_CHECK(!indices.empty(), "pad_batch: indices must not be empty");
  const int64_t B = static_cast<int64_t>(indices.size());
  const int64_t F = set.feature_dim();
  int64_t t_max = 0;
  std::vector<int64_t> lengths(B);
  for (int64_t b = 0; b < B; ++b) {
    lengths[b] = set.length(indices[b]);
    t_max = std::max(t_max, lengths[b]);
  }
  PaddedBatch out;
  out.x = torch::zeros({t_max, B, F}, torch::kFloat32);
  out.mask = torch::zeros({t_max, B}, torch::kFloat32);
  out.lengths = torch::from_blob(lengths.data(), {B}, torch::kInt64).clone();
  const float* src = set.frames.data_ptr<float>();
  float* dst = out.x.data_ptr<float>();
  float* mask = out.mask.data_ptr<float>();
  for (int64_t b = 0; b < B; ++b) {
    const float* seq = src + set.offsets[indices[b]] * F;
    for (int64_t t = 0; t < lengths[b]; ++t) {
      std::memcpy(dst + (t * B + b) * F, seq + t * F, sizeof(float) * F);
      mask[t * B + b] = 1.0f;
    }
  }
  return out;
}

std::pair<torch::Tensor, torch::Tensor> feature_moments(const SequenceSet& set) {
  TORCH_CHECK(set.total_frames() > 0, "feature_moments: the set has no frames");
  auto f = set.frames.to(torch::kFloat64);
  auto mean = f.mean(0);
  auto std = f.std(0, /*unbiased=*/false);
  return {mean.to(torch::kFloat32), std.to(torch::kFloat32)};
}

void save_sequence_set(const SequenceSet& set, const std::string& dir,
                       const std::vector<std::pair<std::string, std::string>>& extra_meta) {
  set.validate();
  detail::check_little_endian();
  detail::make_dirs(dir);
  detail::write_file(dir + "/frames.f32", set.frames.data_ptr<float>(),
                     sizeof(float) * static_cast<size_t>(set.frames.numel()));
  detail::write_file(dir + "/offsets.i64", set.offsets.data(), sizeof(int64_t) * set.offsets.size());
  if (!set.speakers.empty()) {
    std::string text;
    for (const auto& s : set.speakers) {
      TORCH_CHECK(s.find('\n') == std::string::npos, "save_sequence_set: speaker name with a newline");
      text += s + "\n";
    }
    detail::write_file(dir + "/speakers.txt", text.data(), text.size());
  }
  std::ostringstream meta;
  meta << "format mantra-sequence-set 1\n"
       << "sequences " << set.size() << "\n"
       << "total_frames " << set.total_frames() << "\n"
       << "feature_dim " << set.feature_dim() << "\n"
       << "frames_dtype float32-little-endian\n"
       << "offsets_dtype int64-little-endian\n";
  for (const auto& [k, v] : extra_meta) meta << k << " " << v << "\n";
  const std::string m = meta.str();
  detail::write_file(dir + "/meta.txt", m.data(), m.size());
}

SequenceSet load_sequence_set(const std::string& dir) {
  detail::check_little_endian();
  const std::string meta_text = detail::read_text_file(dir + "/meta.txt");
  std::map<std::string, std::string> meta;
  std::istringstream in(meta_text);
  std::string line;
  while (std::getline(in, line)) {
    auto sp = line.find(' ');
    if (sp != std::string::npos) meta[line.substr(0, sp)] = line.substr(sp + 1);
  }
  auto field = [&](const std::string& k) -> int64_t {
    auto it = meta.find(k);
    TORCH_CHECK(it != meta.end(), "load_sequence_set: ", dir, "/meta.txt has no field '", k, "'");
    return std::stoll(it->second);
  };
  TORCH_CHECK(meta["format"] == "mantra-sequence-set 1", "load_sequence_set: ", dir,
              "/meta.txt: unknown format '", meta["format"], "'");
  const int64_t n = field("sequences"), total = field("total_frames"), F = field("feature_dim");
  SequenceSet set;
  set.offsets.resize(n + 1);
  detail::read_file_exact(dir + "/offsets.i64", set.offsets.data(), sizeof(int64_t) * (n + 1));
  set.frames = torch::empty({total, F}, torch::kFloat32);
  detail::read_file_exact(dir + "/frames.f32", set.frames.data_ptr<float>(), sizeof(float) * total * F);
  if (detail::file_exists(dir + "/speakers.txt")) {
    std::istringstream sp(detail::read_text_file(dir + "/speakers.txt"));
    while (std::getline(sp, line)) set.speakers.push_back(line);
  }
  set.validate();
  return set;
}

}  // namespace mantra::examples
