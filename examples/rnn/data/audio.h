// Audio for the speech task: WAV and NIST SPHERE readers, a band-limited resampler and the
// log-power spectrogram features of the TIMIT experiments of the dynamic-trivialization paper
// (Lezcano-Casado 2019; Wisdom et al. 2016).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mantra::examples {

// Mono audio: wave is 1-D float32 in [-1, 1) (16-bit PCM divided by 32768).
struct Audio {
  torch::Tensor wave;
  int64_t sample_rate = 0;
};

// RIFF WAV, 16-bit PCM, mono (what espeak-ng writes). A streamed file whose RIFF/data sizes are
// placeholders (espeak-ng --stdout writes 0x7ffff000) is read to the end of the data present.
// Errors are c10::Error naming `name` (the file) and the offending field.
Audio parse_wav(const std::vector<uint8_t>& bytes, const std::string& name = "<memory>");
Audio read_wav(const std::string& path);
// Writes 16-bit PCM mono (samples clipped to [-1, 1)); for tests and tools.
void write_wav(const std::string& path, const torch::Tensor& wave, int64_t sample_rate);

// NIST SPHERE (TIMIT's .WAV): header "NIST_1A\n<header size>\n" then "name -type value" lines
// up to "end_head"; fields read: sample_rate, sample_count, sample_n_bytes (2),
// sample_byte_format (01 little-endian, 10 big-endian), channel_count (1), sample_coding (pcm
// only: shorten-compressed files, "pcm,embedded-shorten-v2.00", are rejected; decompress
// them with sph2pipe first). Errors name the file and the field.
Audio read_sphere(const std::string& path);
// Reads either format, chosen by the first bytes ("RIFF" or "NIST_1A").
Audio read_audio(const std::string& path);

// Band-limited resampling by a rational factor to_hz/from_hz (reduced by their gcd):
// polyphase windowed-sinc interpolation, Kaiser window (beta 8.6, 24 zero crossings each
// side), cut-off at 0.9 x the lower Nyquist frequency, so downsampling is anti-aliased
// (22050 -> 8000: pass band flat to ~3.2 kHz, > 40 dB attenuation from 4.0 kHz).
// Output sample n sits at time n / to_hz; there are ceil(N * to_hz / from_hz) of them;
// the input is taken as zero outside its support. 1-D float32 in, 1-D float32 out.
torch::Tensor resample(const torch::Tensor& wave, int64_t from_hz, int64_t to_hz);

// Feature constants of the TIMIT setup: 8 kHz, 256-point STFT (32 ms), hop 128 (16 ms).
constexpr int64_t kSpeechSampleRate = 8000;
constexpr int64_t kStftSize = 256;
constexpr int64_t kStftHop = 128;
constexpr int64_t kSpectrumBins = kStftSize / 2 + 1;  // 129
constexpr double kLogPowerFloor = 1e-5;

// Log-power spectrogram of a 1-D float32 wave at 8 kHz: (frames, 129) float32 with
// feature[t][k] = 10 * log10(1e-5 + |X_t[k]|^2),
// X_t[k] = sum_{n=0}^{255} w[n] x[t*128 - 128 + n] exp(-2 pi i k n / 256)
// where w is the periodic Hann window (torch::hann_window(256)) and x is taken as zero outside
// [0, N): torch::stft with center=true and zero ("constant") padding of 128 samples each side,
// no normalisation. frames = 1 + floor(N / 128). The wave must not be empty.
torch::Tensor log_power_spectrogram(const torch::Tensor& wave);

}  // namespace mantra::examples
