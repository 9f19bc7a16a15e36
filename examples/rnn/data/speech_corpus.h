// Speech corpora for the orthogonal-RNN speech-prediction task: a synthetic TIMIT-style corpus
// spoken by espeak-ng (built in, cached on disk) and the real TIMIT (LDC tree) when one has it.
// Features: audio.h (8 kHz, 129-bin log-power spectrogram, hop 128).
#pragma once

#include "sequence_set.h"

#include <cstdint>
#include <string>

namespace mantra::examples {

struct SpeechCorpus {
  SequenceSet train, valid, test;
  std::string description;  // one line: source, counts, options
  std::string cache_path;   // folder holding train/ valid/ test/ (see README.md)
  bool from_cache = false;  // true when read from the cache without synthesis/decoding
};

struct SyntheticSpeechOptions {
  int64_t train = 3640, valid = 192, test = 400;  // utterances per split (TIMIT setup)
  int64_t sentences_per_speaker = 8;               // like TIMIT's SI+SX sentences
  uint64_t seed = 0;
  std::string cache_dir;  // "" -> default_cache_dir()
  std::string text_file;  // "" -> the license texts in /usr/share/common-licenses/
  std::string espeak = "espeak-ng";  // executable (PATH lookup)
  int threads = 0;                   // 0 -> hardware concurrency
  bool verbose = true;               // progress on stderr while synthesizing
};

// $XDG_CACHE_HOME/mantra, else $HOME/.cache/mantra.
std::string default_cache_dir();

// The synthetic corpus: utterances of English sentences (taken from options.text_file, by
// default every Debian's /usr/share/common-licenses/) spoken by espeak-ng. A speaker is a tuple
// (accent voice, voice variant, pitch, speed), e.g. "en-gb-scotland+f3 p42 s161"; each speaker
// reads sentences_per_speaker sentences; speakers are distinct, hence disjoint across splits.
// Everything follows from the seed: the same options give bit-identical features.
// Audio 22050 Hz -> resample() to 8 kHz -> log_power_spectrogram().
// The first call writes the cache <cache_dir>/speech/synthetic-<key> (key: hash of the options
// that change the data), atomically (temp folder + rename); later calls read it and run nothing.
SpeechCorpus synthetic_speech_corpus(const SyntheticSpeechOptions& options = {});

// Number of utterances this process has synthesized with espeak-ng so far (a cache hit adds 0).
int64_t synthesized_utterances();
// True when `espeak` runs (espeak-ng --version exits 0).
bool espeak_available(const std::string& espeak = "espeak-ng");
// The sentences the synthetic corpus draws from (text_file "" -> the license texts): the text's
// sentences cut at , ; : ( ) " into clauses, joined into phrases of 5..14 plain words (ASCII
// letters, ' and -; no digits, symbols or mostly upper-case headings), deduplicated, in text
// order, each with a capital first letter and a full stop. ~1000 from Debian's license texts.
std::vector<std::string> corpus_sentences(const std::string& text_file = "");

// The real TIMIT, an LDC tree root/{TRAIN,TEST}/DR*/<SPEAKER>/*.WAV (NIST SPHERE, 16 kHz; names
// matched case-insensitively), resampled to 8 kHz, same features. Two splits:
// split "mantra" (default): SA1/SA2 excluded;
//   train: every TRAIN utterance (462 speakers x 8 = 3696 in the full corpus)
//   valid: the 24-speaker core test set (192 utterances)
//   test : 50 other TEST speakers x 8 = 400 utterances: the 144 non-core TEST speakers sorted
//          by "DRn/SPEAKER", taking those at positions floor(i * 144 / 50), i = 0..49.
// split "published" (the uRNN preprocessing that expRNN's TIMIT experiment uses): every file
// whose path below the root contains "sa" (case-insensitively) is dropped, which removes SA1/SA2
// and also every speaker whose identifier contains "sa";
//   train: the remaining TRAIN utterances (3640 in the full corpus, as the papers report)
//   valid: the 24-speaker core test set (192)
//   test : the 50 speakers of the TIMIT development-speaker list, timit_dev_speakers() (400).
// Cached like the synthetic corpus under <cache_dir>/speech/timit-<key> (cache_dir "" ->
// default_cache_dir()); the key hashes the split, the root's absolute path and its file names
// and sizes. verbose: progress on stderr while decoding.
SpeechCorpus timit_corpus(const std::string& root, const std::string& cache_dir = "", bool verbose = true,
                          const std::string& split = "mantra");

// Reads a corpus cache folder (the path printed by mantra_speech_corpus, SpeechCorpus::cache_path).
SpeechCorpus load_speech_corpus(const std::string& cache_path);

// The TIMIT core test set speakers ("DR1/MDAB0", ...), 24 entries.
const std::vector<std::string>& timit_core_test_speakers();
// The 50-speaker TIMIT development set ("DR1/FAKS0", ...; Halberstadt 1998, the list Kaldi ships
// as egs/timit/s5/conf/dev_spk.list): the test set of the published split.
const std::vector<std::string>& timit_dev_speakers();

}  // namespace mantra::examples
