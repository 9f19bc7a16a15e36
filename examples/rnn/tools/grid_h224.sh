#!/usr/bin/env bash
# The hidden-224 cells of README "Results" (issue 16): EXPRNN at the paper's hidden 224 and the
# LSTM at hidden 84 (parameter-matched) under both recipes, seed 0, on the grid's corpus, cut
# and rule (controlled_grid.sh): next-frame prediction on standardized features, then the
# published one-step recall on raw dB (read-out starting at the training mean).
#   examples/rnn/tools/grid_h224.sh [trainer] [out dir]
set -euo pipefail
bin="${1:-build/examples/rnn/mantra_train_rnn}"
out="${2:-results/grid}"
export OMP_NUM_THREADS=1
common=(--task timit --train-utts 1024 --valid-utts 128 --test-utts 128 --max-frames 64 --data-seed 0
        --hidden 224 --batch 128 --epochs 300 --patience 5 --min-delta 0.01 --threads 1 --resume --seed 0
        --models exprnn,lstm-adam,lstm-urnn)
"$bin" "${common[@]}" --target next --features standardized --out "$out/h224/timit_next_standardized"
"$bin" "${common[@]}" --target recall --features raw-db --readout-init mean --out "$out/h224/timit_recall_raw-db"
