#include "speech_corpus.h"

#include "audio.h"
#include "io_util.h"
#include "subprocess.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <unistd.h>

namespace mantra::examples {
namespace {

std::atomic<int64_t> g_synthesized{0};

constexpr const char* kFeatureSpec =
    "8000Hz hann256 hop128 center-zero-pad 10*log10(1e-5+|X|^2) "
    "resample:kaiser-beta8.6-zc24-rolloff0.9";

// English accents of espeak-ng's own (non-MBROLA) voices, and voice variants.
const std::vector<std::string> kAccents = {"en-gb",          "en-us",      "en-gb-scotland", "en-gb-x-gbclan",
                                           "en-gb-x-rp",     "en-gb-x-gbcwmd", "en-029",     "en-us-nyc"};
const std::vector<std::string> kVariants = {"m1", "m2", "m3", "m4", "m5", "m6", "m7",
                                            "f1", "f2", "f3", "f4", "f5"};
constexpr int64_t kPitchMin = 25, kPitchMax = 75;   // espeak-ng -p (0..99, default 50)
constexpr int64_t kSpeedMin = 130, kSpeedMax = 190;  // espeak-ng -s words per minute (default 175)

struct Speaker {
  std::string accent, variant;
  int64_t pitch = 50, speed = 175;
  std::string name() const {
    return accent + "+" + variant + " p" + std::to_string(pitch) + " s" + std::to_string(speed);
  }
};

struct Utterance {
  int64_t speaker = 0;  // index into the speakers list
  int64_t sentence = 0;
};

// ---- cache folder helpers
std::string tmp_suffix() {
  static std::atomic<int> counter{0};
  return ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
}

bool cache_ready(const std::string& path, const std::string& key_text) {
  const std::string f = path + "/options.txt";
  return detail::file_exists(f) && detail::read_text_file(f) == key_text;
}

SpeechCorpus load_corpus_cache(const std::string& path) {
  SpeechCorpus c;
  c.train = load_sequence_set(path + "/train");
  c.valid = load_sequence_set(path + "/valid");
  c.test = load_sequence_set(path + "/test");
  c.description = detail::file_exists(path + "/description.txt") ? detail::read_text_file(path + "/description.txt") : "";
  while (!c.description.empty() && c.description.back() == '\n') c.description.pop_back();
  c.cache_path = path;
  c.from_cache = true;
  return c;
}

// Writes the corpus to a fresh temp folder next to `path`, then renames it into place; if another
// process got there first, keeps theirs (identical by construction).
void save_corpus_cache(const SpeechCorpus& c, const std::string& path, const std::string& key_text,
                       const std::vector<std::pair<std::string, std::string>>& meta) {
  const std::string tmp = path + tmp_suffix();
  try {
    detail::make_dirs(tmp);
    save_sequence_set(c.train, tmp + "/train", meta);
    save_sequence_set(c.valid, tmp + "/valid", meta);
    save_sequence_set(c.test, tmp + "/test", meta);
    const std::string desc = c.description + "\n";
    detail::write_file(tmp + "/description.txt", desc.data(), desc.size());
    detail::write_file(tmp + "/options.txt", key_text.data(), key_text.size());  // written last
    if (!detail::rename_path(tmp, path)) {
      detail::remove_tree(tmp);
      TORCH_CHECK(cache_ready(path, key_text), "cannot move the speech cache into place at ", path);
    }
  } catch (...) {
    detail::remove_tree(tmp);
    throw;
  }
}

std::string join_meta_value(const std::string& v) {
  std::string out = v;
  for (auto& ch : out)
    if (ch == '\n') ch = ' ';
  return out;
}

// Runs jobs 0..n-1 on `threads` workers; prints progress on stderr when verbose.
template <class F>
void parallel_for(int64_t n, int threads, bool verbose, const std::string& what, F&& job) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = static_cast<int>(std::min<int64_t>(threads, std::max<int64_t>(n, 1)));
  std::atomic<int64_t> next{0}, done{0};
  std::atomic<bool> failed{false};
  std::mutex err_mu;
  std::string err;
  auto worker = [&] {
    while (!failed) {
      const int64_t i = next++;
      if (i >= n) break;
      try {
        job(i);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(err_mu);
        if (!failed.exchange(true)) err = e.what();
      }
      ++done;
    }
  };
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  auto last = start;
  while (done < n && !failed) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto now = std::chrono::steady_clock::now();
    if (verbose && now - last >= std::chrono::seconds(2)) {
      last = now;
      const double secs = std::chrono::duration<double>(now - start).count();
      const int64_t d = done;
      const double rate = d / std::max(secs, 1e-9);
      std::fprintf(stderr, "[mantra speech] %s: %lld/%lld, %.1f/s, ETA %.0f s\n", what.c_str(),
                   static_cast<long long>(d), static_cast<long long>(n), rate, rate > 0 ? (n - d) / rate : 0.0);
    }
  }
  for (auto& t : pool) t.join();
  if (failed) TORCH_CHECK(false, err);
  if (verbose) {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "[mantra speech] %s: %lld done in %.1f s (%d threads)\n", what.c_str(),
                 static_cast<long long>(n), secs, threads);
  }
}

int64_t count_words(const std::string& s) {
  int64_t words = 0;
  bool in_word = false;
  for (char c : s) {
    const bool space = c == ' ';
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

bool plain_words(const std::string& s) {  // ASCII letters, spaces, apostrophes, hyphens
  for (char c : s)
    if (!std::isalpha(static_cast<unsigned char>(c)) && c != ' ' && c != '\'' && c != '-') return false;
  return true;
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(' ');
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(' ') + 1 - a);
}

// Legal texts have long sentences: each sentence is cut into clauses at , ; : ( ) " and
// consecutive clauses are joined into phrases of at most kMaxWords words; phrases of
// kMinWords..kMaxWords plain words (no digits or symbols, mostly lower case) are kept, with a
// capital first letter and a full stop: "You may copy and distribute the Program, or a work
// based on it."
constexpr int64_t kMinWords = 5, kMaxWords = 14;

void append_phrases(const std::string& sentence, std::vector<std::string>& out, std::set<std::string>& seen) {
  std::vector<std::string> chunk;
  int64_t chunk_words = 0;
  auto flush = [&] {
    if (chunk_words >= kMinWords && chunk_words <= kMaxWords) {
      std::string text;
      for (const auto& c : chunk) text += (text.empty() ? "" : ", ") + c;
      int64_t letters = 0, upper = 0;
      for (char c : text)
        if (std::isalpha(static_cast<unsigned char>(c))) {
          ++letters;
          upper += std::isupper(static_cast<unsigned char>(c)) ? 1 : 0;
        }
      text[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(text[0])));
      text += ".";
      if (upper * 5 < letters && seen.insert(text).second) out.push_back(text);
    }
    chunk.clear();
    chunk_words = 0;
  };
  std::string body = sentence;
  while (!body.empty() && std::strchr(".!? ", body.back())) body.pop_back();
  size_t start = 0;
  for (size_t i = 0; i <= body.size(); ++i) {
    if (i < body.size() && !std::strchr(",;:()\"", body[i])) continue;
    const std::string part = trim(body.substr(start, i - start));
    start = i + 1;
    if (part.empty()) continue;
    if (!plain_words(part)) {
      flush();
      continue;
    }
    const int64_t w = count_words(part);
    if (chunk_words + w > kMaxWords) flush();
    chunk.push_back(part);
    chunk_words += w;
  }
  flush();
}

void append_sentences(const std::string& text, std::vector<std::string>& out, std::set<std::string>& seen) {
  // Collapse whitespace, then cut after . ! ? followed by a space and an upper-case letter.
  std::string flat;
  flat.reserve(text.size());
  for (char ch : text) {
    if (std::isspace(static_cast<unsigned char>(ch))) {
      if (!flat.empty() && flat.back() != ' ') flat.push_back(' ');
    } else {
      flat.push_back(ch);
    }
  }
  size_t start = 0;
  for (size_t i = 0; i < flat.size(); ++i) {
    const char c = flat[i];
    const bool end = i + 1 == flat.size() ||
                     ((c == '.' || c == '!' || c == '?') && flat[i + 1] == ' ' && i + 2 < flat.size() &&
                      std::isupper(static_cast<unsigned char>(flat[i + 2])));
    if (!end) continue;
    append_phrases(flat.substr(start, i + 1 - start), out, seen);
    start = i + 2;
  }
}

}  // namespace

std::string default_cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/mantra";
  const char* home = std::getenv("HOME");
  TORCH_CHECK(home && *home, "default_cache_dir: neither XDG_CACHE_HOME nor HOME is set; pass a cache_dir");
  return std::string(home) + "/.cache/mantra";
}

int64_t synthesized_utterances() { return g_synthesized.load(); }

bool espeak_available(const std::string& espeak) {
  try {
    return detail::run_capture({espeak, "--version"}).exit_code == 0;
  } catch (const std::exception&) {
    return false;
  }
}

std::vector<std::string> corpus_sentences(const std::string& text_file) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  if (!text_file.empty()) {
    TORCH_CHECK(detail::file_exists(text_file), "corpus_sentences: text file ", text_file, " not found");
    append_sentences(detail::read_text_file(text_file), out, seen);
  } else {
    const std::string dir = "/usr/share/common-licenses";
    std::vector<std::string> files;
    for (const auto& e : detail::list_dir(dir))
      if (e.is_file && !e.is_symlink) files.push_back(dir + "/" + e.name);
    TORCH_CHECK(!files.empty(), "corpus_sentences: no license texts in ", dir,
                "; pass SyntheticSpeechOptions::text_file (any English text file)");
    std::sort(files.begin(), files.end());
    for (const auto& f : files) append_sentences(detail::read_text_file(f), out, seen);
  }
  return out;
}

SpeechCorpus synthetic_speech_corpus(const SyntheticSpeechOptions& o) {
  TORCH_CHECK(o.train >= 0 && o.valid >= 0 && o.test >= 0, "synthetic_speech_corpus: negative split size");
  TORCH_CHECK(o.train + o.valid + o.test > 0, "synthetic_speech_corpus: all splits are empty");
  TORCH_CHECK(o.sentences_per_speaker >= 1, "synthetic_speech_corpus: sentences_per_speaker must be >= 1");
  const std::vector<std::string> sentences = corpus_sentences(o.text_file);
  TORCH_CHECK(static_cast<int64_t>(sentences.size()) >= o.sentences_per_speaker,
              "synthetic_speech_corpus: only ", sentences.size(), " usable sentences in ",
              o.text_file.empty() ? "/usr/share/common-licenses" : o.text_file, ", need at least ",
              o.sentences_per_speaker);
  uint64_t text_hash = detail::fnv1a64("");
  for (const auto& s : sentences) text_hash = detail::fnv1a64(s + "\n", text_hash);

  std::ostringstream key;
  key << "mantra synthetic speech corpus v1\n"
      << "train " << o.train << "\nvalid " << o.valid << "\ntest " << o.test << "\n"
      << "sentences_per_speaker " << o.sentences_per_speaker << "\nseed " << o.seed << "\n"
      << "text " << (o.text_file.empty() ? "/usr/share/common-licenses" : o.text_file) << "\n"
      << "text_sentences " << sentences.size() << "\ntext_hash " << detail::hex64(text_hash) << "\n"
      << "features " << kFeatureSpec << "\n";
  const std::string key_text = key.str();
  const std::string root = (o.cache_dir.empty() ? default_cache_dir() : o.cache_dir) + "/speech";
  const std::string path = root + "/synthetic-" + detail::hex64(detail::fnv1a64(key_text));
  if (cache_ready(path, key_text)) return load_corpus_cache(path);

  // ---- speakers and their sentences, all from one SplitMix64 stream
  detail::SplitMix64 rng(o.seed);
  const int64_t spp = o.sentences_per_speaker;
  const int64_t counts[3] = {o.train, o.valid, o.test};
  std::vector<Speaker> speakers;
  std::set<std::string> names;
  std::vector<Utterance> utts[3];
  for (int split = 0; split < 3; ++split) {
    const int64_t n_speakers = (counts[split] + spp - 1) / spp;
    for (int64_t s = 0; s < n_speakers; ++s) {
      Speaker sp;
      for (int attempt = 0;; ++attempt) {
        TORCH_CHECK(attempt < 10000, "synthetic_speech_corpus: cannot draw distinct speakers");
        sp.accent = kAccents[rng.uniform(0, kAccents.size() - 1)];
        sp.variant = kVariants[rng.uniform(0, kVariants.size() - 1)];
        sp.pitch = rng.uniform(kPitchMin, kPitchMax);
        sp.speed = rng.uniform(kSpeedMin, kSpeedMax);
        if (names.insert(sp.name()).second) break;
      }
      speakers.push_back(sp);
      // spp distinct sentences (partial Fisher-Yates over the pool).
      std::vector<int64_t> pool(sentences.size());
      for (size_t i = 0; i < pool.size(); ++i) pool[i] = static_cast<int64_t>(i);
      const int64_t take = std::min(spp, counts[split] - s * spp);
      for (int64_t j = 0; j < take; ++j) {
        std::swap(pool[j], pool[rng.uniform(j, pool.size() - 1)]);
        utts[split].push_back({static_cast<int64_t>(speakers.size()) - 1, pool[j]});
      }
    }
  }

  // ---- synthesis
  std::vector<std::pair<int, int64_t>> jobs;
  for (int split = 0; split < 3; ++split)
    for (int64_t i = 0; i < counts[split]; ++i) jobs.emplace_back(split, i);
  std::vector<torch::Tensor> feats[3];
  for (int split = 0; split < 3; ++split) feats[split].resize(counts[split]);
  std::string espeak_version;
  {
    const auto v = detail::run_capture({o.espeak, "--version"});
    TORCH_CHECK(v.exit_code == 0, "synthetic_speech_corpus: cannot run ", o.espeak,
                " (install the Debian package espeak-ng; scripts/setup.sh does) ", v.error);
    espeak_version = v.out.empty() ? "" : std::string(v.out.begin(), v.out.end());
    espeak_version = espeak_version.substr(0, espeak_version.find('\n'));
  }
  if (o.verbose)
    std::fprintf(stderr, "[mantra speech] synthesizing %lld utterances from %zu speakers with %s into %s\n",
                 static_cast<long long>(jobs.size()), speakers.size(), o.espeak.c_str(), path.c_str());
  parallel_for(static_cast<int64_t>(jobs.size()), o.threads, o.verbose, "utterances", [&](int64_t j) {
    const auto [split, i] = jobs[j];
    const Utterance& u = utts[split][i];
    const Speaker& sp = speakers[u.speaker];
    const auto r = detail::run_capture({o.espeak, "-v", sp.accent + "+" + sp.variant, "-p", std::to_string(sp.pitch),
                                        "-s", std::to_string(sp.speed), "--stdout", sentences[u.sentence]});
    TORCH_CHECK(r.exit_code == 0, o.espeak, " failed (exit ", r.exit_code, ") for speaker '", sp.name(), "': ", r.error);
    const Audio a = parse_wav(r.out, o.espeak + " output (speaker '" + sp.name() + "')");
    TORCH_CHECK(a.wave.numel() > 0, o.espeak, " wrote no samples for speaker '", sp.name(), "'");
    ++g_synthesized;
    feats[split][i] = log_power_spectrogram(resample(a.wave, a.sample_rate, kSpeechSampleRate));
  });

  SpeechCorpus c;
  SequenceSet* sets[3] = {&c.train, &c.valid, &c.test};
  int64_t n_speakers[3];
  for (int split = 0; split < 3; ++split) {
    std::vector<std::string> spk;
    std::set<int64_t> distinct;
    for (const auto& u : utts[split]) {
      spk.push_back(speakers[u.speaker].name());
      distinct.insert(u.speaker);
    }
    n_speakers[split] = static_cast<int64_t>(distinct.size());
    if (feats[split].empty()) {
      SequenceSet empty;
      empty.frames = torch::zeros({0, kSpectrumBins}, torch::kFloat32);
      *sets[split] = std::move(empty);
    } else {
      *sets[split] = make_sequence_set(feats[split], std::move(spk));
    }
    feats[split].clear();
  }
  std::ostringstream desc;
  desc << "synthetic espeak-ng speech (seed " << o.seed << "): train " << o.train << " utterances / " << n_speakers[0]
       << " speakers, valid " << o.valid << " / " << n_speakers[1] << ", test " << o.test << " / " << n_speakers[2]
       << "; " << kSpectrumBins << " log-power features at 8 kHz, hop 128";
  c.description = desc.str();
  std::vector<std::pair<std::string, std::string>> meta = {
      {"source", "synthetic-espeak-ng"}, {"espeak_version", join_meta_value(espeak_version)},
      {"seed", std::to_string(o.seed)},  {"sentences_per_speaker", std::to_string(spp)},
      {"features", kFeatureSpec},        {"text_hash", detail::hex64(text_hash)}};
  detail::make_dirs(root);
  save_corpus_cache(c, path, key_text, meta);
  c.cache_path = path;
  c.from_cache = false;
  return c;
}

// ------------------------------------------------------------------------------ TIMIT
const std::vector<std::string>& timit_core_test_speakers() {
  static const std::vector<std::string> core = {
      "DR1/MDAB0", "DR1/MWBT0", "DR1/FELC0", "DR2/MTAS1", "DR2/MWEW0", "DR2/FPAS0",
      "DR3/MJMP0", "DR3/MLNT0", "DR3/FPKT0", "DR4/MLLL0", "DR4/MTLS0", "DR4/FJLM0",
      "DR5/MBPM0", "DR5/MKLT0", "DR5/FNLP0", "DR6/MCMJ0", "DR6/MJDH0", "DR6/FMGD0",
      "DR7/MGRT0", "DR7/MNJM0", "DR7/FDHC0", "DR8/MJLN0", "DR8/MPAM0", "DR8/FMLD0"};
  return core;
}

const std::vector<std::string>& timit_dev_speakers() {
  // The standard 50-speaker TIMIT development set (Halberstadt 1998), as Kaldi ships it in
  // egs/timit/s5/conf/dev_spk.list; speaker identifiers are unique across dialect regions.
  static const std::vector<std::string> dev = {
      "FAKS0", "MMDB1", "MBDG0", "FEDW0", "MTDT0", "FSEM0", "MDVC0", "MRJM4", "MJSW0", "MTEB0",
      "FDAC1", "MMDM2", "MBWM0", "MGJF0", "MTHC0", "MBNS0", "MERS0", "FCAL1", "MREB0", "MJFC0",
      "FJEM0", "MPDF0", "MCSH0", "MGLB0", "MWJG0", "MMJR0", "FMAH0", "MMWH0", "FGJD0", "MRJR0",
      "MGWT0", "FCMH0", "FADG0", "MRTK0", "FNMR0", "MDLS0", "FDRW0", "FJSJ0", "FJMG0", "FMML0",
      "MJAR0", "FKMS0", "FDMS0", "MTAA0", "FREW0", "MDLF0", "MRCS0", "MAJC0", "MROA0", "MRWS1"};
  return dev;
}

namespace {

struct TimitSpeaker {
  std::string name;                // "DR1/FCJF0"
  std::vector<std::string> files;  // sorted utterance paths, SA1/SA2 excluded
};

// Children of `dir` (full paths), sorted by name: directories or regular files.
std::vector<std::string> sorted_children(const std::string& dir, bool dirs) {
  std::vector<std::string> out;
  for (const auto& e : detail::list_dir(dir))
    if (dirs ? e.is_dir : e.is_file) out.push_back(dir + "/" + e.name);
  return out;
}

std::string base_name(const std::string& path) { return path.substr(path.rfind('/') + 1); }

std::string find_child_dir(const std::string& dir, const std::string& name_upper) {
  for (const auto& p : sorted_children(dir, true))
    if (detail::to_upper(base_name(p)) == name_upper) return p;
  return {};
}

// The utterances of every speaker under set_dir; `drop(path)` removes a file.
std::vector<TimitSpeaker> timit_speakers(const std::string& set_dir,
                                         const std::function<bool(const std::string&)>& drop) {
  std::vector<TimitSpeaker> out;
  for (const auto& dr : sorted_children(set_dir, true)) {
    const std::string dr_name = detail::to_upper(base_name(dr));
    if (dr_name.rfind("DR", 0) != 0) continue;
    for (const auto& spk : sorted_children(dr, true)) {
      TimitSpeaker s;
      s.name = dr_name + "/" + detail::to_upper(base_name(spk));
      std::set<std::string> names_upper;
      const auto files = sorted_children(spk, false);
      for (const auto& f : files) names_upper.insert(detail::to_upper(base_name(f)));
      for (const auto& f : files) {
        const std::string up = detail::to_upper(base_name(f));
        if (up.size() < 5 || up.substr(up.size() - 4) != ".WAV") continue;
        const std::string stem = up.substr(0, up.size() - 4);
        // Converted copies "SX3.WAV.wav" next to the SPHERE "SX3.WAV": keep the original.
        if (stem.size() > 4 && stem.substr(stem.size() - 4) == ".WAV" && names_upper.count(stem)) continue;
        if (drop(f)) continue;
        s.files.push_back(f);
      }
      if (!s.files.empty()) out.push_back(std::move(s));
    }
  }
  // Sorted by upper-case name ("DR1/FCJF0"), whatever the case of the folders.
  std::sort(out.begin(), out.end(), [](const TimitSpeaker& a, const TimitSpeaker& b) { return a.name < b.name; });
  return out;
}

}  // namespace

SpeechCorpus load_speech_corpus(const std::string& cache_path) {
  TORCH_CHECK(detail::file_exists(cache_path + "/options.txt"), "load_speech_corpus: ", cache_path,
              " is not a complete speech corpus cache (no options.txt)");
  return load_corpus_cache(cache_path);
}

SpeechCorpus timit_corpus(const std::string& root, const std::string& cache_dir, bool verbose,
                          const std::string& split_name) {
  TORCH_CHECK_VALUE(split_name == "mantra" || split_name == "published",
                    "timit_corpus: argument 'split' must be mantra or published, got '", split_name, "'");
  TORCH_CHECK(detail::dir_exists(root), "timit_corpus: ", root, " is not a directory");
  const bool published = split_name == "published";
  const std::string abs = detail::absolute_path(root);
  const std::string train_dir = find_child_dir(abs, "TRAIN"), test_dir = find_child_dir(abs, "TEST");
  TORCH_CHECK(!train_dir.empty() && !test_dir.empty(), "timit_corpus: ", root,
              " must hold TRAIN/ and TEST/ (the LDC TIMIT tree; names in any case)");
  const std::string abs_slash = abs + "/";
  // mantra: SA1, SA2 (the same two sentences for everyone) out. published: the uRNN
  // preprocessing's rule, every path containing "sa" out (also speakers such as *SA*0).
  auto drop = [&](const std::string& path) {
    std::string rel = path.substr(abs_slash.size());
    std::transform(rel.begin(), rel.end(), rel.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (published) return rel.find("sa") != std::string::npos;
    return base_name(rel).rfind("sa", 0) == 0;
  };
  const auto train_spk = timit_speakers(train_dir, drop);
  const auto test_spk = timit_speakers(test_dir, drop);
  TORCH_CHECK(!train_spk.empty(), "timit_corpus: no utterances under ", train_dir);
  const auto& core_list = timit_core_test_speakers();
  const std::set<std::string> core(core_list.begin(), core_list.end());
  std::vector<const TimitSpeaker*> valid_spk, others;
  for (const auto& s : test_spk) (core.count(s.name) ? valid_spk : others).push_back(&s);
  std::vector<const TimitSpeaker*> chosen;
  if (published) {
    const auto& dev_list = timit_dev_speakers();
    const std::set<std::string> dev(dev_list.begin(), dev_list.end());
    for (const auto* s : others)
      if (dev.count(base_name(s->name))) chosen.push_back(s);
  } else {
    const size_t m = others.size(), want = std::min<size_t>(50, m);
    for (size_t i = 0; i < want; ++i) chosen.push_back(others[i * m / want]);
  }

  std::vector<std::string> files[3];
  std::vector<std::string> spk_names[3];
  auto add = [&](int split, const TimitSpeaker& s) {
    for (const auto& f : s.files) {
      files[split].push_back(f);
      spk_names[split].push_back(s.name);
    }
  };
  for (const auto& s : train_spk) add(0, s);
  for (const auto* s : valid_spk) add(1, *s);
  for (const auto* s : chosen) add(2, *s);

  std::ostringstream key;
  key << "mantra TIMIT corpus v1\n" << (published ? "split published\n" : "") << "root " << abs << "\nfeatures " << kFeatureSpec << "\n";
  uint64_t h = detail::fnv1a64("");
  for (int split = 0; split < 3; ++split)
    for (const auto& f : files[split]) {
      h = detail::fnv1a64(std::to_string(split) + " " + f.substr(abs_slash.size()) + " " +
                              std::to_string(detail::file_size(f)) + "\n",
                          h);
    }
  key << "files " << files[0].size() << " " << files[1].size() << " " << files[2].size() << "\nfiles_hash "
      << detail::hex64(h) << "\n";
  const std::string key_text = key.str();
  const std::string croot = (cache_dir.empty() ? default_cache_dir() : cache_dir) + "/speech";
  const std::string path = croot + "/timit-" + detail::hex64(detail::fnv1a64(key_text));
  if (cache_ready(path, key_text)) return load_corpus_cache(path);

  std::vector<std::pair<int, int64_t>> jobs;
  std::vector<torch::Tensor> feats[3];
  for (int split = 0; split < 3; ++split) {
    feats[split].resize(files[split].size());
    for (size_t i = 0; i < files[split].size(); ++i) jobs.emplace_back(split, static_cast<int64_t>(i));
  }
  parallel_for(static_cast<int64_t>(jobs.size()), 0, verbose, "TIMIT files", [&](int64_t j) {
    const auto [split, i] = jobs[j];
    const Audio a = read_audio(files[split][i]);
    TORCH_CHECK(a.wave.numel() > 0, "timit_corpus: ", files[split][i], " has no samples");
    feats[split][i] = log_power_spectrogram(resample(a.wave, a.sample_rate, kSpeechSampleRate));
  });
  SpeechCorpus c;
  SequenceSet* sets[3] = {&c.train, &c.valid, &c.test};
  for (int split = 0; split < 3; ++split) {
    if (feats[split].empty()) {
      sets[split]->frames = torch::zeros({0, kSpectrumBins}, torch::kFloat32);
    } else {
      *sets[split] = make_sequence_set(feats[split], spk_names[split]);
    }
    feats[split].clear();
  }
  std::ostringstream desc;
  desc << "TIMIT at " << abs << ": train " << files[0].size() << " utterances / " << train_spk.size()
       << " speakers, valid (core test) " << files[1].size() << " / " << valid_spk.size() << ", test "
       << files[2].size() << " / " << chosen.size()
       << (published ? " (the development-speaker list); published split: paths containing \"sa\" excluded; "
                     : "; SA1/SA2 excluded; ")
       << kSpectrumBins
       << " log-power features at 8 kHz, hop 128";
  c.description = desc.str();
  detail::make_dirs(croot);
  save_corpus_cache(c, path, key_text, {{"source", "timit"}, {"features", kFeatureSpec}});
  c.cache_path = path;
  return c;
}

}  // namespace mantra::examples
