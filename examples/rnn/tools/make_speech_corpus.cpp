// mantra_speech_corpus: builds (or finds) the cached speech corpus and prints its folder on
// stdout, so that other programs (the Python twin of the trainer) can read it with numpy.
//   mantra_speech_corpus [--train N] [--valid N] [--test N] [--seed S] [--cache-dir DIR]
//                        [--text FILE] [--espeak EXE] [--threads T] [--quiet]
//   mantra_speech_corpus --timit ROOT [--cache-dir DIR]
#include "sequence_data.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

namespace {

void usage(const char* prog) {
  std::fprintf(stderr,
               "usage: %s [--train N] [--valid N] [--test N] [--seed S] [--cache-dir DIR] [--text FILE]\n"
               "          [--espeak EXE] [--threads T] [--quiet]\n"
               "       %s --timit ROOT [--cache-dir DIR]\n"
               "Builds the speech corpus cache (synthetic espeak-ng speech by default; defaults are the\n"
               "TIMIT sizes 3640/192/400) and prints the cache folder, which holds train/ valid/ test/.\n",
               prog, prog);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mantra::examples;
  SyntheticSpeechOptions o;
  std::string timit;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s: %s needs a value\n", argv[0], a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    try {
      if (a == "--train") o.train = std::stoll(value());
      else if (a == "--valid") o.valid = std::stoll(value());
      else if (a == "--test") o.test = std::stoll(value());
      else if (a == "--seed") o.seed = std::stoull(value());
      else if (a == "--cache-dir") o.cache_dir = value();
      else if (a == "--text") o.text_file = value();
      else if (a == "--espeak") o.espeak = value();
      else if (a == "--threads") o.threads = std::stoi(value());
      else if (a == "--timit") timit = value();
      else if (a == "--quiet") o.verbose = false;
      else if (a == "-h" || a == "--help") {
        usage(argv[0]);
        return 0;
      } else {
        std::fprintf(stderr, "%s: unknown argument %s\n", argv[0], a.c_str());
        usage(argv[0]);
        return 2;
      }
    } catch (const std::logic_error&) {
      std::fprintf(stderr, "%s: bad value for %s\n", argv[0], a.c_str());
      return 2;
    }
  }
  try {
    const auto start = std::chrono::steady_clock::now();
    const SpeechCorpus c = timit.empty() ? synthetic_speech_corpus(o) : timit_corpus(timit, o.cache_dir, o.verbose);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (o.verbose)
      std::fprintf(stderr, "[mantra speech] %s\n[mantra speech] %s in %.1f s; frames train/valid/test: %lld/%lld/%lld\n",
                   c.description.c_str(), c.from_cache ? "read from cache" : "built", secs,
                   static_cast<long long>(c.train.total_frames()), static_cast<long long>(c.valid.total_frames()),
                   static_cast<long long>(c.test.total_frames()));
    std::cout << c.cache_path << std::endl;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
  return 0;
}
