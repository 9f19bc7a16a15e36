#include "audio.h"

#include "io_util.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <sstream>

namespace mantra::examples {
namespace {

uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

torch::Tensor pcm16_to_float(const uint8_t* data, int64_t count, bool big_endian) {
  auto wave = torch::empty({count}, torch::kFloat32);
  float* w = wave.data_ptr<float>();
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t* p = data + 2 * i;
    const uint16_t u = big_endian ? static_cast<uint16_t>((p[0] << 8) | p[1]) : le16(p);
    w[i] = static_cast<float>(static_cast<int16_t>(u)) / 32768.0f;
  }
  return wave;
}

}  // namespace

Audio parse_wav(const std::vector<uint8_t>& bytes, const std::string& name) {
  const size_t n = bytes.size();
  TORCH_CHECK(n >= 12, "WAV ", name, ": file too short (", n, " bytes) for a RIFF header");
  TORCH_CHECK(std::memcmp(bytes.data(), "RIFF", 4) == 0 && std::memcmp(bytes.data() + 8, "WAVE", 4) == 0,
              "WAV ", name, ": not a RIFF/WAVE file (magic)");
  size_t pos = 12;
  bool have_fmt = false;
  uint16_t channels = 0, bits = 0;
  uint32_t rate = 0;
  while (pos + 8 <= n) {
    const uint8_t* chunk = bytes.data() + pos;
    const uint32_t size = le32(chunk + 4);
    const size_t body = pos + 8;
    if (std::memcmp(chunk, "fmt ", 4) == 0) {
      TORCH_CHECK(size >= 16 && body + 16 <= n, "WAV ", name, ": fmt chunk too short (", size, " bytes)");
      const uint16_t format = le16(bytes.data() + body);
      channels = le16(bytes.data() + body + 2);
      rate = le32(bytes.data() + body + 4);
      bits = le16(bytes.data() + body + 14);
      bool pcm = format == 1;
      if (format == 0xFFFE && size >= 40 && body + 26 <= n) pcm = le16(bytes.data() + body + 24) == 1;
      TORCH_CHECK(pcm, "WAV ", name, ": field audio_format is ", format, "; only PCM (1) is supported");
      TORCH_CHECK(bits == 16, "WAV ", name, ": field bits_per_sample is ", bits, "; only 16-bit PCM is supported");
      TORCH_CHECK(channels == 1, "WAV ", name, ": field num_channels is ", channels, "; only mono is supported");
      TORCH_CHECK(rate > 0, "WAV ", name, ": field sample_rate is 0");
      have_fmt = true;
    } else if (std::memcmp(chunk, "data", 4) == 0) {
      TORCH_CHECK(have_fmt, "WAV ", name, ": data chunk before the fmt chunk");
      // Streamed files (espeak-ng --stdout) carry a placeholder size: read what is there.
      size_t avail = std::min<size_t>(size, n - body);
      avail -= avail % 2;
      Audio a;
      a.wave = pcm16_to_float(bytes.data() + body, static_cast<int64_t>(avail / 2), false);
      a.sample_rate = rate;
      return a;
    }
    pos = body + size + (size & 1);
  }
  TORCH_CHECK(false, "WAV ", name, ": no data chunk", have_fmt ? "" : " (and no fmt chunk)");
}

Audio read_wav(const std::string& path) { return parse_wav(detail::read_binary_file(path), path); }

void write_wav(const std::string& path, const torch::Tensor& wave, int64_t sample_rate) {
  TORCH_CHECK(wave.dim() == 1, "write_wav: wave must be 1-D, got ", wave.sizes());
  auto w = wave.to(torch::kFloat32).contiguous();
  const int64_t count = w.numel();
  std::vector<uint8_t> out(44 + 2 * count);
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) out[at + i] = static_cast<uint8_t>(v >> (8 * i));
  };
  auto put16 = [&](size_t at, uint16_t v) {
    out[at] = static_cast<uint8_t>(v);
    out[at + 1] = static_cast<uint8_t>(v >> 8);
  };
  std::memcpy(out.data(), "RIFF", 4);
  put32(4, static_cast<uint32_t>(36 + 2 * count));
  std::memcpy(out.data() + 8, "WAVEfmt ", 8);
  put32(16, 16);
  put16(20, 1);
  put16(22, 1);
  put32(24, static_cast<uint32_t>(sample_rate));
  put32(28, static_cast<uint32_t>(2 * sample_rate));
  put16(32, 2);
  put16(34, 16);
  std::memcpy(out.data() + 36, "data", 4);
  put32(40, static_cast<uint32_t>(2 * count));
  const float* p = w.data_ptr<float>();
  for (int64_t i = 0; i < count; ++i) {
    const double s = std::clamp(std::round(static_cast<double>(p[i]) * 32768.0), -32768.0, 32767.0);
    put16(44 + 2 * i, static_cast<uint16_t>(static_cast<int16_t>(s)));
  }
  detail::write_file(path, out.data(), out.size());
}

Audio read_sphere(const std::string& path) {
  const std::vector<uint8_t> bytes = detail::read_binary_file(path);
  const std::string where = "SPHERE " + path + ": ";
  TORCH_CHECK(bytes.size() >= 16 && std::memcmp(bytes.data(), "NIST_1A\n", 8) == 0, where,
              "not a NIST SPHERE file (magic \"NIST_1A\" missing)");
  // Second line: header size in bytes (1024 in TIMIT).
  size_t eol = 8;
  while (eol < bytes.size() && eol < 64 && bytes[eol] != '\n') ++eol;
  const std::string size_text(bytes.begin() + 8, bytes.begin() + eol);
  size_t header_size = 0;
  try {
    header_size = std::stoul(size_text);
  } catch (...) {
    TORCH_CHECK(false, where, "field header_size: '", size_text, "' is not a number");
  }
  TORCH_CHECK(header_size >= 16 && header_size <= bytes.size(), where, "field header_size: ", header_size,
              " does not fit a file of ", bytes.size(), " bytes");
  std::map<std::string, std::string> fields;
  std::istringstream header(std::string(bytes.begin() + eol + 1, bytes.begin() + header_size));
  std::string line;
  bool ended = false;
  while (std::getline(header, line)) {
    if (line.rfind("end_head", 0) == 0) {
      ended = true;
      break;
    }
    std::istringstream ls(line);
    std::string name, type;
    if (!(ls >> name >> type) || type.empty() || type[0] != '-') continue;
    std::string value;
    std::getline(ls, value);
    const size_t first = value.find_first_not_of(' ');
    value = first == std::string::npos ? "" : value.substr(first);
    if (type.size() > 2 && type[1] == 's') {  // -sN: a string of N characters
      const size_t len = std::stoul(type.substr(2));
      if (value.size() > len) value.resize(len);
    } else {
      while (!value.empty() && (value.back() == ' ' || value.back() == '\r')) value.pop_back();
    }
    fields[name] = value;
  }
  TORCH_CHECK(ended, where, "header has no end_head within ", header_size, " bytes");
  auto get = [&](const std::string& f) -> const std::string& {
    auto it = fields.find(f);
    TORCH_CHECK(it != fields.end(), where, "field ", f, " missing from the header");
    return it->second;
  };
  auto get_int = [&](const std::string& f) -> int64_t {
    const std::string& v = get(f);
    try {
      size_t used = 0;
      const int64_t x = std::stoll(v, &used);
      if (used == v.size()) return x;
    } catch (...) {
    }
    TORCH_CHECK(false, where, "field ", f, ": '", v, "' is not an integer");
  };
  if (fields.count("sample_coding")) {
    const std::string coding = fields["sample_coding"];
    TORCH_CHECK(coding == "pcm", where, "field sample_coding is '", coding,
                "'; only uncompressed pcm is supported",
                coding.find("shorten") != std::string::npos ? " (shorten-compressed: decompress with sph2pipe)" : "");
  }
  const int64_t channels = fields.count("channel_count") ? get_int("channel_count") : 1;
  TORCH_CHECK(channels == 1, where, "field channel_count is ", channels, "; only mono is supported");
  const int64_t n_bytes = get_int("sample_n_bytes");
  TORCH_CHECK(n_bytes == 2, where, "field sample_n_bytes is ", n_bytes, "; only 16-bit samples are supported");
  const std::string& order = get("sample_byte_format");
  TORCH_CHECK(order == "01" || order == "10", where, "field sample_byte_format is '", order,
              "'; expected 01 (little-endian) or 10 (big-endian)");
  const int64_t rate = get_int("sample_rate");
  TORCH_CHECK(rate > 0, where, "field sample_rate is ", rate);
  const int64_t count = get_int("sample_count");
  TORCH_CHECK(count >= 0, where, "field sample_count is ", count);
  const size_t need = static_cast<size_t>(count) * 2;
  TORCH_CHECK(bytes.size() - header_size >= need, where, "field sample_count is ", count, " (", need,
              " bytes) but the file has only ", bytes.size() - header_size, " bytes of samples");
  Audio a;
  a.wave = pcm16_to_float(bytes.data() + header_size, count, order == "10");
  a.sample_rate = rate;
  return a;
}

Audio read_audio(const std::string& path) {
  const std::vector<uint8_t> head = [&] {
    std::vector<uint8_t> h(8, 0);
    std::FILE* f = std::fopen(path.c_str(), "rb");
    TORCH_CHECK(f, "cannot open ", path);
    const size_t got = std::fread(h.data(), 1, 8, f);
    std::fclose(f);
    h.resize(got);
    return h;
  }();
  if (head.size() >= 7 && std::memcmp(head.data(), "NIST_1A", 7) == 0) return read_sphere(path);
  if (head.size() >= 4 && std::memcmp(head.data(), "RIFF", 4) == 0) return read_wav(path);
  TORCH_CHECK(false, "audio file ", path, ": neither NIST SPHERE nor RIFF WAV");
}

// ------------------------------------------------------------------------------ resampling
namespace {

double bessel_i0(double x) {
  double sum = 1.0, term = 1.0;
  const double q = x * x / 4.0;
  for (int k = 1; k < 200; ++k) {
    term *= q / (static_cast<double>(k) * k);
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  return sum;
}

constexpr double kZeroCrossings = 24.0;
constexpr double kKaiserBeta = 8.6;
constexpr double kRolloff = 0.9;

}  // namespace

torch::Tensor resample(const torch::Tensor& wave, int64_t from_hz, int64_t to_hz) {
  TORCH_CHECK(wave.dim() == 1, "resample: wave must be 1-D, got ", wave.sizes());
  TORCH_CHECK(from_hz > 0 && to_hz > 0, "resample: rates must be positive, got ", from_hz, " -> ", to_hz);
  auto x = wave.to(torch::kFloat32).contiguous();
  if (from_hz == to_hz) return x.clone();
  const int64_t g = std::gcd(from_hz, to_hz);
  const int64_t L = to_hz / g;    // up
  const int64_t M = from_hz / g;  // down
  const int64_t N = x.numel();
  const int64_t n_out = (N * L + M - 1) / M;
  // h(tau), tau in input samples: (2 fc / from) sinc(2 fc tau / from) kaiser(tau / half_width);
  // its samples at unit spacing sum to ~1 (unit gain) in both directions.
  const double fc = kRolloff * 0.5 * static_cast<double>(std::min(from_hz, to_hz));
  const double scale = 2.0 * fc / static_cast<double>(from_hz);
  const double half_width = kZeroCrossings / scale;
  const int64_t H = static_cast<int64_t>(std::ceil(half_width));
  const int64_t taps = 2 * H;
  const double i0_beta = bessel_i0(kKaiserBeta);
  auto h = [&](double tau) {
    const double r = tau / half_width;
    if (r <= -1.0 || r >= 1.0) return 0.0;
    const double a = M_PI * scale * tau;
    const double sinc = std::abs(a) < 1e-12 ? 1.0 : std::sin(a) / a;
    return scale * sinc * bessel_i0(kKaiserBeta * std::sqrt(1.0 - r * r)) / i0_beta;
  };
  // For phase p (output time = k + p/L), tap i multiplies x[k - H + 1 + i] at distance
  // tau = p/L + H - 1 - i.
  const bool table = L * taps <= (int64_t{1} << 22);
  std::vector<float> weights;
  if (table) {
    weights.resize(static_cast<size_t>(L * taps));
    for (int64_t p = 0; p < L; ++p)
      for (int64_t i = 0; i < taps; ++i)
        weights[p * taps + i] = static_cast<float>(h(static_cast<double>(p) / L + static_cast<double>(H - 1 - i)));
  }
  std::vector<float> row(table ? 0 : taps);
  auto out = torch::empty({n_out}, torch::kFloat32);
  const float* in = x.data_ptr<float>();
  float* o = out.data_ptr<float>();
  for (int64_t n = 0; n < n_out; ++n) {
    const int64_t k = (n * M) / L;
    const int64_t p = (n * M) % L;
    const float* w;
    if (table) {
      w = weights.data() + p * taps;
    } else {
      for (int64_t i = 0; i < taps; ++i) row[i] = static_cast<float>(h(static_cast<double>(p) / L + (H - 1 - i)));
      w = row.data();
    }
    const int64_t j0 = k - H + 1;
    const int64_t i_begin = std::max<int64_t>(0, -j0), i_end = std::min<int64_t>(taps, N - j0);
    double acc = 0.0;
    for (int64_t i = i_begin; i < i_end; ++i) acc += static_cast<double>(w[i]) * in[j0 + i];
    o[n] = static_cast<float>(acc);
  }
  return out;
}

// ------------------------------------------------------------------------------ features
torch::Tensor log_power_spectrogram(const torch::Tensor& wave) {
  TORCH_CHECK(wave.dim() == 1, "log_power_spectrogram: wave must be 1-D, got ", wave.sizes());
  TORCH_CHECK(wave.numel() > 0, "log_power_spectrogram: wave is empty");
  auto x = wave.to(torch::kFloat32).contiguous();
  auto window = at::hann_window(kStftSize, at::TensorOptions().dtype(at::kFloat));
  auto spec = at::stft(x, kStftSize, kStftHop, kStftSize, window, /*center=*/true, "constant",
                       /*normalized=*/false, /*onesided=*/true, /*return_complex=*/true);  // (129, frames)
  auto power = at::real(spec).square() + at::imag(spec).square();
  return (10.0 * at::log10(power.add(kLogPowerFloor))).t().contiguous();
}

}  // namespace mantra::examples
