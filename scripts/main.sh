#!/usr/bin/env bash
# The main job: sets up what is missing, builds, and runs the orthogonal-RNN trainer on its
# built-in default (TIMIT-style speech synthesized with espeak-ng, cached after the first run).
# Extra arguments go to the trainer (e.g. --full, --task copying --lag 1000, --resume, --help).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$MANTRA_ROOT"
exec "$MANTRA_BUILD/examples/rnn/mantra_train_rnn" "$@"
