#!/usr/bin/env bash
# Tests of the mantra_train_rnn program (ctest runs one case per entry):
#   test_train_rnn.sh <mantra_train_rnn> <case> <work dir>
# on the copying task with a short lag (no corpus needed, seconds per run).
set -uo pipefail
bin="$1"; case_name="$2"; work="$3"
rm -rf "$work"; mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
small=(--task copying --lag 10 --copying-batches 6 --batch 8 --hidden 16 --threads 1)
all_models=dtriv1,dtriv100,dtrivinf,exprnn,cayley,cayley-base,rgd,lstm,rnn
# Columns epoch, train loss, valid loss, valid accuracy of a model's log (time differs).
losses() { cut -d, -f1-4 "$1/$2/log.csv"; }

case "$case_name" in
resume_is_exact)
  # 3 epochs in one go == 1 epoch, then --resume to 3: every logged loss identical.
  "$bin" "${small[@]}" --models $all_models --epochs 3 --out "$work/a" >/dev/null 2>&1 || fail "straight run"
  "$bin" "${small[@]}" --models $all_models --epochs 1 --out "$work/b" >/dev/null 2>&1 || fail "first part"
  "$bin" "${small[@]}" --models $all_models --epochs 3 --out "$work/b" --resume >"$work/out" 2>&1 || fail "resumed run"
  grep -q "resuming after epoch 1" "$work/out" || fail "did not resume"
  for m in ${all_models//,/ }; do
    [ "$(losses "$work/a" $m | wc -l)" -eq 4 ] || fail "$m: expected 3 epochs in the log"
    diff <(losses "$work/a" $m) <(losses "$work/b" $m) >&2 || fail "$m: resumed losses differ"
  done
  ;;
interrupt_keeps_last_epoch)
  # Ctrl-C (SIGINT) during epoch 3 of 40: exit 130, the checkpoint of epoch 2 stays, and
  # --resume continues to the same losses as an uninterrupted run.
  "$bin" "${small[@]}" --models dtriv100 --epochs 4 --out "$work/a" >/dev/null 2>&1 || fail "straight run"
  "$bin" "${small[@]}" --models dtriv100 --epochs 40 --copying-batches 6 --out "$work/b" >"$work/out" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    [ -f "$work/b/dtriv100/log.csv" ] && [ "$(wc -l < "$work/b/dtriv100/log.csv")" -ge 3 ] && break
    sleep 0.05
  done
  kill -INT $pid
  wait $pid; rc=$?
  [ $rc -eq 130 ] || fail "interrupted run exited with $rc, expected 130"
  grep -q "rerun with --resume" "$work/out" || fail "no resume hint"
  done_epochs=$(($(wc -l < "$work/b/dtriv100/log.csv") - 1))
  [ "$done_epochs" -ge 2 ] || fail "log lost finished epochs"
  "$bin" "${small[@]}" --models dtriv100 --epochs 4 --copying-batches 6 --out "$work/b" --resume >/dev/null 2>&1 ||
    fail "resume after interrupt"
  diff <(losses "$work/a" dtriv100) <(losses "$work/b" dtriv100 | head -5) >&2 || fail "losses after interrupt differ"
  ;;
outputs)
  "$bin" "${small[@]}" --hidden 32 --models dtriv100,lstm,rnn --epochs 2 --out "$work/a" >"$work/out" 2>"$work/err" || fail "run"
  for m in dtriv100 lstm rnn; do
    grep -qE "^\| $m +\|" "$work/a/results.md" || fail "results.md has no row for $m"
    for f in log.csv best.pt checkpoint.pt; do [ -s "$work/a/$m/$f" ] || fail "$m/$f missing"; done
  done
  grep -q "baseline 10 ln 8/(L+20) = 0.6931" "$work/a/results.md" || fail "copying baseline not reported"
  grep -q "<svg" "$work/a/curves.svg" && [ "$(grep -c "<polyline" "$work/a/curves.svg")" -eq 6 ] ||
    fail "curves.svg should hold 6 curves (train+valid x 3 models)"
  grep -q "epoch 2/2" "$work/err" || fail "no progress output"
  # Early stopping (--patience 2): each model stops 2 epochs after its best validation epoch
  # (or at --epochs), and its row reports the epochs run and the best one; lstm-adam and
  # lstm-urnn are the LSTM under its two recipes (different optimizers: different losses).
  "$bin" "${small[@]}" --models lstm-adam,lstm-urnn,exprnn --epochs 12 --patience 2 --lr 0.3 --out "$work/p" >/dev/null 2>&1 ||
    fail "patience run"
  stopped_early=0
  for m in lstm-adam lstm-urnn exprnn; do
    awk -F, -v m=$m 'NR > 1 { n = $1; if (best == "" || $3 < best) { best = $3; at = $1 } }
      END { if (!(n == 12 || n - at == 2)) { print m ": stopped at " n ", best " at > "/dev/stderr"; exit 1 } }' \
      "$work/p/$m/log.csv" || fail "$m: early stopping"
    [ "$(($(wc -l < "$work/p/$m/log.csv") - 1))" -lt 12 ] && stopped_early=$((stopped_early + 1))
  done
  [ $stopped_early -ge 1 ] || fail "no model stopped early (the check above could not fail)"
  grep -qE "^\| lstm-adam +\| 6 +\| [0-9]+ +\| 8 \(best 6\)" "$work/p/results.md" || fail "results row of an early-stopped model"
  cmp -s <(cut -d, -f3 "$work/p/lstm-adam/log.csv" | head -3) <(cut -d, -f3 "$work/p/lstm-urnn/log.csv" | head -3) &&
    fail "lstm-adam and lstm-urnn trained alike"
  # --min-delta 0.05: an improvement counts only below 95% of the last counted validation loss,
  # and a model stops 2 epochs after its last counted one (or at --epochs); it stops no later
  # than with any new best counting, so at least as early as the patience run above.
  "$bin" "${small[@]}" --models lstm-adam,exprnn --epochs 12 --patience 2 --min-delta 0.05 --lr 0.3 --out "$work/q" >/dev/null 2>&1 ||
    fail "min-delta run"
  shorter=0
  for m in lstm-adam exprnn; do
    awk -F, -v m=$m 'NR > 1 { n = $1; if (ref == "" || $3 < ref * 0.95) { ref = $3; at = $1 } }
      END { if (!(n == 12 || n - at == 2)) { print m ": stopped at " n ", last counted " at > "/dev/stderr"; exit 1 } }' \
      "$work/q/$m/log.csv" || fail "$m: early stopping with --min-delta"
    [ "$(wc -l < "$work/q/$m/log.csv")" -le "$(wc -l < "$work/p/$m/log.csv")" ] || fail "$m: --min-delta ran longer"
    [ "$(wc -l < "$work/q/$m/log.csv")" -lt "$(wc -l < "$work/p/$m/log.csv")" ] && shorter=$((shorter + 1))
  done
  [ $shorter -ge 1 ] || fail "--min-delta stopped no model earlier (the checks above could not tell it from patience alone)"
  # Baselines get about the orthogonal model's parameter count (within 10%).
  p() { sed -nE "s/^\| $1 +\| *[0-9]+ *\| *([0-9]+) .*/\1/p" "$work/a/results.md"; }
  for m in lstm rnn; do
    awk -v a="$(p dtriv100)" -v b="$(p $m)" 'BEGIN { r = b / a; exit !(r > 0.9 && r < 1.1) }' ||
      fail "$m has $(p $m) parameters vs $(p dtriv100)"
  done
  ;;
errors)
  "$bin" "${small[@]}" --models dtriv100,lsmt --epochs 1 --out "$work/a" >"$work/out" 2>&1
  [ $? -eq 2 ] && grep -q "option --models: unknown model 'lsmt'" "$work/out" || fail "bad model name"
  "$bin" --frobnicate 3 >"$work/out" 2>&1
  [ $? -eq 2 ] && grep -q "unknown option --frobnicate" "$work/out" || fail "unknown option"
  "$bin" "${small[@]}" --models dtriv100 --epochs 1 --out "$work/b" >/dev/null 2>&1 || fail "run"
  "$bin" "${small[@]}" --models dtriv100 --epochs 2 --lr 0.01 --out "$work/b" --resume >"$work/out" 2>&1
  [ $? -eq 2 ] && grep -q "was made with other settings" "$work/out" || fail "resume with other settings"
  "$bin" --task copying --lag 0 >"$work/out" 2>&1
  [ $? -eq 2 ] && grep -q "'--lag' must be >= 1" "$work/out" || fail "bad lag"
  # Issue 17: values that trained nothing or meant nothing are refused, naming the option.
  expect_refused() {  # <message> <args...>
    local msg="$1"; shift
    "$bin" "${small[@]}" --epochs 1 --out "$work/r" "$@" >"$work/out" 2>&1
    local rc=$?
    [ $rc -eq 2 ] && grep -qF -- "$msg" "$work/out" || { cat "$work/out" >&2; fail "$* : expected exit 2 and '$msg', got $rc"; }
    [ ! -e "$work/r" ] || fail "$*: a refused run wrote $work/r"
  }
  expect_refused "option --threads must be >= 1, got 0" --models dtriv100 --threads 0
  expect_refused "option --copying-batches must be >= 1, got 0" --models dtriv100 --copying-batches 0
  expect_refused "option --models: no model named in ','" --models ,
  expect_refused "option --clip must be >= 0 (0: off), got -1" --models dtriv100 --clip -1
  expect_refused "option --lr must be a positive number representable in float32" --models dtriv100 --lr 1e300
  expect_refused "option --lr-orth must be a positive number" --models dtriv100 --lr-orth 0
  expect_refused "option --lstm-recipe must be adam or urnn, got 'tf'" --models lstm --lstm-recipe tf
  expect_refused "option --timit-split needs --timit-root" --models lstm --timit-split published
  expect_refused "option --optimizer must be adam or rmsprop, got 'sgd'" --models lstm --optimizer sgd
  expect_refused "option --patience must be >= 0 (0: off), got -1" --models lstm --patience -1
  expect_refused "option --target must be next or recall, got 'back'" --task timit --target back --models lstm
  expect_refused "option --min-delta must be in [0, 1) (a relative improvement), got 1" --models lstm --min-delta 1
  expect_refused "option --readout-init must be zero, default or mean, got 'ones'" --models lstm --readout-init ones
  expect_refused "option --max-frames must be 0 (whole utterances) or >= 2, got 1" --task timit --max-frames 1 --models lstm
  # A checkpoint made with another --copying-batches is refused (it is in the fingerprint).
  "$bin" "${small[@]}" --models dtriv100 --epochs 2 --copying-batches 5 --out "$work/b" --resume >"$work/out" 2>&1
  [ $? -eq 2 ] && grep -q "was made with other settings" "$work/out" || fail "resume with other --copying-batches"
  # A checkpoint.pt that is a directory is an error, not a silent restart.
  mkdir -p "$work/d/dtriv100/checkpoint.pt"
  "$bin" "${small[@]}" --models dtriv100 --epochs 1 --out "$work/d" --resume >"$work/out" 2>&1
  [ $? -eq 2 ] && grep -qF "$work/d/dtriv100/checkpoint.pt is a directory" "$work/out" || fail "checkpoint directory"
  # A truncated checkpoint: the error names the file.
  "$bin" "${small[@]}" --models dtriv100 --epochs 1 --out "$work/t" >/dev/null 2>&1 || fail "run"
  f="$work/t/dtriv100/checkpoint.pt"
  head -c $(($(wc -c < "$f") / 2)) "$f" > "$f.half" && mv "$f.half" "$f"
  "$bin" "${small[@]}" --models dtriv100 --epochs 2 --out "$work/t" --resume >"$work/out" 2>&1
  [ $? -eq 2 ] && grep -qF "cannot read the checkpoint $f (truncated" "$work/out" || { cat "$work/out" >&2; fail "truncated checkpoint"; }
  ;;
nonfinite_loss_stops)
  # A checkpoint whose input kernel W_in was overwritten with NaN: the checkpoint's checksum
  # refuses it before anything is trained (issue 17). The state's first tensor record is W_in
  # (hidden 16 x 10 copying symbols, float32: 640 bytes); the state archive is stored
  # uncompressed inside the file's payload, so its bytes are found and overwritten in place.
  "$bin" "${small[@]}" --models dtriv100 --epochs 1 --out "$work/a" >/dev/null 2>&1 || fail "first run"
  python3 - "$work/a/dtriv100/checkpoint.pt" <<'PY' || fail "could not poison the checkpoint"
import io, struct, sys, zipfile
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
with zipfile.ZipFile(path) as z:
    payload = next(i for i in z.infolist() if i.filename.endswith("/data/0"))
    raw = z.read(payload)
inner = zipfile.ZipFile(io.BytesIO(raw))
info = next(i for i in inner.infolist() if i.filename.endswith("/data/0"))
assert info.file_size == 640 and info.compress_type == zipfile.ZIP_STORED, info
w = inner.read(info)
at = data.find(w)
assert at > 0 and data.find(w, at + 1) < 0
data[at:at + 640] = struct.pack("<f", float("nan")) * 160
open(path, "wb").write(data)
PY
  "$bin" "${small[@]}" --models dtriv100 --epochs 2 --out "$work/a" --resume >"$work/out" 2>&1
  rc=$?
  [ $rc -eq 2 ] || fail "a run resumed from a NaN checkpoint exited $rc, expected 2"
  grep -qF "the checkpoint $work/a/dtriv100/checkpoint.pt fails its checksum" "$work/out" || { cat "$work/out" >&2; fail "no clear error"; }
  [ "$(wc -l < "$work/a/dtriv100/log.csv")" -eq 2 ] || fail "an epoch was logged after the refused checkpoint"
  # Parameters driven to Inf/NaN by a huge step: the run stops with an error naming the model,
  # the epoch, the batch and the learning-rate options, exit 2, and logs no epoch.
  "$bin" "${small[@]}" --models dtriv100 --epochs 2 --lr 1e30 --out "$work/b" >"$work/out" 2>&1
  rc=$?
  [ $rc -eq 2 ] || fail "a diverging run exited $rc, expected 2"
  grep -qE "\[dtriv100\] the training loss is -?(nan|inf) in epoch 1, batch [0-9]+" "$work/out" || { cat "$work/out" >&2; fail "no clear error"; }
  grep -qF -- "--lr 1e+30" "$work/out" || fail "the error does not name --lr"
  [ ! -e "$work/b/dtriv100/log.csv" ] || fail "an epoch was logged after the non-finite loss"
  ;;
*)
  fail "unknown case $case_name"
  ;;
esac
echo "ok: $case_name"
