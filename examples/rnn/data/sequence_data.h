// The data side of the orthogonal-RNN programs (examples/rnn): one header to include.
//   sequence_set.h   SequenceSet (variable-length sequences back to back), PaddedBatch, pad_batch,
//                    the on-disk format
//   audio.h          WAV / NIST SPHERE readers, resample, log_power_spectrogram (TIMIT features)
//   speech_corpus.h  SpeechCorpus: synthetic_speech_corpus (espeak-ng, cached), timit_corpus
//   copying_task.h   copying_batch, copying_baseline
//   digits.h         sklearn 8x8 digits, MNIST IDX, pixel permutations and sequences
// Namespace mantra::examples. Formats, cache location and timings: README.md next to this file.
#pragma once

#include "audio.h"
#include "copying_task.h"
#include "digits.h"
#include "sequence_set.h"
#include "speech_corpus.h"
