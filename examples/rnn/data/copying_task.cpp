#include "copying_task.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

namespace mantra::examples {

CopyingBatch copying_batch(int64_t lag, int64_t batch, std::optional<at::Generator> generator) {
  TORCH_CHECK(lag >= 1, "copying_batch: lag must be >= 1, got ", lag);
  TORCH_CHECK(batch >= 1, "copying_batch: batch must be >= 1, got ", batch);
  const int64_t K = kCopyingDataLength, T = lag + 2 * K;
  auto data = at::randint(1, 9, {K, batch}, generator, at::TensorOptions().dtype(at::kLong));
  CopyingBatch b;
  b.input = at::zeros({T, batch}, at::kLong);
  b.target = at::zeros({T, batch}, at::kLong);
  b.input.slice(0, 0, K).copy_(data);
  b.input[lag + K].fill_(kCopyingMarker);  // with the first recall step, as expRNN's
  b.target.slice(0, lag + K, T).copy_(data);
  return b;
}

double copying_baseline(int64_t lag) {
  TORCH_CHECK(lag >= 1, "copying_baseline: lag must be >= 1, got ", lag);
  return kCopyingDataLength * std::log(8.0) / static_cast<double>(lag + 2 * kCopyingDataLength);
}

at::Generator make_generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

}  // namespace mantra::examples
