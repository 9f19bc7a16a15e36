// The copying task of the orthogonal/unitary RNN papers (Arjovsky et al. 2016; the expRNN and
// dynamic-trivialization experiments of Lezcano-Casado 2019).
#pragma once

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>
#include <optional>

namespace mantra::examples {

constexpr int64_t kCopyingSymbols = 10;  // 0 blank, 1..8 data, 9 marker
constexpr int64_t kCopyingDataLength = 10;
constexpr int64_t kCopyingBlank = 0;
constexpr int64_t kCopyingMarker = 9;

struct CopyingBatch {
  torch::Tensor input;   // (L+20, B) int64, time-major
  torch::Tensor target;  // (L+20, B) int64, time-major
};

// For lag L >= 1: input = 10 data symbols uniform in 1..8, then L blanks (0), the marker 9 at
// step L+10, then 9 blanks; target = L+10 blanks, then the 10 data symbols (expRNN's layout: the
// marker arrives with the first recall step). Drawn from `generator`
// (default: torch's default CPU generator).
CopyingBatch copying_batch(int64_t lag, int64_t batch, std::optional<at::Generator> generator = std::nullopt);

// Cross-entropy (nats per time step) of the baseline that outputs blanks until the marker and
// then a uniform guess over the 8 data symbols: 10 ln 8 / (L + 20).
double copying_baseline(int64_t lag);

// A CPU generator seeded with `seed` (for copying_batch and friends).
at::Generator make_generator(uint64_t seed);

}  // namespace mantra::examples
