#!/usr/bin/env bash
# The controlled comparison of README "Results" (issue 16): the 2x2 grid {next, recall} x
# {standardized, raw-db} on the built-in corpus, six models, two seeds, trained until the
# early-stopping rule fires.
#   examples/rnn/tools/controlled_grid.sh [trainer] [out dir] [seeds]
# One thread per run (OMP_NUM_THREADS=1 --threads 1), one run at a time, seed-major (every cell
# of seed 0 first). The budget (README "Results", docs/results/timit_grid.md): corpus 1024/128/128
# utterances cut to their first 64 frames, orthogonal hidden 64, LSTM hidden 25
# (parameter-matched), batch 128, the published learning rates (Adam 1e-3, orthogonal RMSprop
# 1e-4; the uRNN LSTM's RMSprop 1e-3), at most 300 epochs, stop after 5 epochs without lowering
# the validation loss 1% below the last counted improvement. raw-db: the read-out bias starts at
# the training mean in dB (--readout-init mean; see the README for why). --resume continues an
# interrupted grid.
set -euo pipefail
bin="${1:-build/examples/rnn/mantra_train_rnn}"
out="${2:-results/grid}"
seeds="${3:-0 1}"
export OMP_NUM_THREADS=1
common=(--task timit --train-utts 1024 --valid-utts 128 --test-utts 128 --max-frames 64 --data-seed 0
        --hidden 64 --batch 128 --epochs 300 --patience 5 --min-delta 0.01 --threads 1 --resume)
models=exprnn,dtrivinf,dtriv100,dtriv1,lstm-adam,lstm-urnn
for seed in $seeds; do
  for target in next recall; do
    for features in standardized raw-db; do
      extra=()
      [ "$features" = raw-db ] && extra=(--readout-init mean)
      "$bin" "${common[@]}" "${extra[@]}" --seed "$seed" --target "$target" --features "$features" \
        --models "$models" --out "$out/seed$seed/timit_${target}_${features}"
    done
  done
done
