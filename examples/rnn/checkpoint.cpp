#include "checkpoint.h"

#include <c10/util/Exception.h>

#include "data/io_util.h"

#include <cmath>
#include <cstring>
#include <sstream>

namespace mantra::examples {
namespace {
constexpr const char* kCheckpointFormat = "mantra_train_rnn checkpoint 2";
}

void write_checkpoint(torch::serialize::OutputArchive& state, const std::string& path) {
  std::ostringstream buffer;
  state.save_to(buffer);
  const std::string bytes = buffer.str();
  torch::Tensor payload = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  std::memcpy(payload.data_ptr(), bytes.data(), bytes.size());
  torch::serialize::OutputArchive file;
  file.write("format", c10::IValue(std::string(kCheckpointFormat)));
  file.write("payload", payload);
  file.write("checksum", c10::IValue(detail::hex64(detail::fnv1a64(bytes.data(), bytes.size()))));
  file.save_to(path);
}

void read_checkpoint(const std::string& path, const torch::Device& device, torch::serialize::InputArchive& state) {
  torch::serialize::InputArchive file;
  c10::IValue format, checksum;
  torch::Tensor payload;
  try {
    file.load_from(path);
    file.read("format", format);
    file.read("checksum", checksum);
    file.read("payload", payload);
  } catch (const c10::Error& e) {
    TORCH_CHECK_VALUE(false, "--resume: cannot read the checkpoint ", path,
                      " (truncated, damaged or not a checkpoint of this program): ", e.what_without_backtrace());
  }
  TORCH_CHECK_VALUE(format.isString() && format.toStringRef() == kCheckpointFormat, "--resume: ", path,
                    " is not a checkpoint of this program (format '", format.isString() ? format.toStringRef() : "?",
                    "', expected '", kCheckpointFormat, "')");
  TORCH_CHECK_VALUE(payload.scalar_type() == torch::kUInt8 && payload.dim() == 1, "--resume: ", path,
                    " holds a payload of type ", payload.scalar_type(), "; not a checkpoint of this program");
  payload = payload.contiguous();
  const std::string sum = detail::hex64(detail::fnv1a64(payload.data_ptr(), static_cast<size_t>(payload.numel())));
  TORCH_CHECK_VALUE(checksum.isString() && checksum.toStringRef() == sum, "--resume: the checkpoint ", path,
                    " fails its checksum (stored ", checksum.isString() ? checksum.toStringRef() : "?", ", computed ",
                    sum, "): its bytes were altered or damaged; remove it to start afresh");
  state.load_from(static_cast<const char*>(payload.data_ptr()), static_cast<size_t>(payload.numel()), device);
}

torch::Tensor counters_tensor(const CheckpointCounters& c, bool orthogonal) {
  std::vector<double> v = {static_cast<double>(c.epoch), c.best, c.step_seconds, static_cast<double>(c.steps_timed)};
  if (orthogonal) {
    v.push_back(static_cast<double>(c.dtriv_steps));
    for (int64_t r : c.rebases) v.push_back(static_cast<double>(r));
  }
  return torch::tensor(v, torch::kFloat64);
}

CheckpointCounters parse_counters(const torch::Tensor& counters, int64_t history_rows, bool orthogonal,
                                  int64_t parametrizations, const std::string& path) {
  const int64_t want = orthogonal ? 5 + parametrizations : 4;
  TORCH_CHECK_VALUE(counters.dim() == 1 && counters.size(0) == want && counters.scalar_type() == torch::kFloat64,
                    "--resume: ", path, " holds counters of shape ", counters.sizes(), " and type ",
                    counters.scalar_type(), ", expected (", want, ") float64; not a checkpoint of this model");
  const torch::Tensor c = counters.contiguous();
  const double* v = c.data_ptr<double>();
  auto whole = [&](int64_t i, const char* what) {
    TORCH_CHECK_VALUE(std::isfinite(v[i]) && v[i] >= 0 && v[i] == std::floor(v[i]) && v[i] < 9e15, "--resume: ",
                      path, ": its ", what, " counter is ", v[i], "; expected a whole number >= 0");
    return static_cast<int64_t>(v[i]);
  };
  CheckpointCounters out;
  out.epoch = whole(0, "epoch");
  TORCH_CHECK_VALUE(out.epoch == history_rows, "--resume: ", path, ": its epoch counter is ", out.epoch,
                    " but its history holds ", history_rows, " epochs");
  out.best = v[1];
  out.step_seconds = v[2];
  TORCH_CHECK_VALUE(std::isfinite(out.step_seconds) && out.step_seconds >= 0, "--resume: ", path,
                    ": its step-time counter is ", out.step_seconds);
  out.steps_timed = whole(3, "step");
  if (orthogonal) {
    out.dtriv_steps = whole(4, "trivialization step");
    for (int64_t i = 0; i < parametrizations; ++i) out.rebases.push_back(whole(5 + i, "rebase"));
  }
  return out;
}

}  // namespace mantra::examples
