#!/usr/bin/env bash
# All tests: sets up what is missing, builds, runs the GoogleTest suites (ctest) and pytest,
# prints the pass/fail counts of each and of both, and fails if either fails.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh" || exit 1
cd "$MANTRA_ROOT"
# One intra-op thread per test process: ctest runs two binaries at once on two cores, and
# torch's threads would oversubscribe them (the small-matrix tests get many times slower).
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
logdir="$MANTRA_BUILD/test-logs"
mkdir -p "$logdir"

echo "== C++ tests (ctest) =="
rm -rf "$MANTRA_BUILD/test-reports"
ctest --test-dir "$MANTRA_BUILD" --output-on-failure -j 2 2>&1 | tee "$logdir/ctest.log"
ctest_rc=${PIPESTATUS[0]}
echo "== Python tests (pytest) =="
"$MANTRA_VENV/bin/python" -m pytest tests/python -q -p no:cacheprovider 2>&1 | tee "$logdir/pytest.log"
pytest_rc=${PIPESTATUS[0]}

# C++ counts: every GoogleTest case from the binaries' XML reports, plus the other ctest
# entries (the installed-package consumer test) from ctest's closing line.
read -r g_total g_failed < <(cat "$MANTRA_BUILD"/test-reports/*.xml 2>/dev/null |
  sed -nE 's/^<testsuites tests="([0-9]+)" failures="([0-9]+)".*/\1 \2/p' |
  awk '{t += $1; f += $2} END {print t + 0, f + 0}')
read -r e_total e_failed < <(sed -nE 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2 \1/p' "$logdir/ctest.log" | tail -n1)
binaries=$(ls "$MANTRA_BUILD"/test-reports/*.xml 2>/dev/null | wc -l)
c_total=$(( g_total + ${e_total:-0} - binaries )); c_failed=$(( g_failed ))
c_passed=$((c_total - c_failed))
last="$(grep -E '[0-9]+ (passed|failed|error)' "$logdir/pytest.log" | tail -n1)"
count() { echo "$last" | grep -oE "[0-9]+ $1" | grep -oE '[0-9]+' || echo 0; }
p_passed=$(count passed); p_failed=$(( $(count failed) + $(count error) ))
if [ "$ctest_rc" -ne 0 ] && [ "$c_failed" -eq 0 ]; then c_failed=1; fi
if [ "$pytest_rc" -ne 0 ] && [ "$p_failed" -eq 0 ]; then p_failed=1; fi

echo "C++ (ctest):     $c_passed passed, $c_failed failed"
echo "Python (pytest): $p_passed passed, $p_failed failed"
echo "total: $((c_passed + p_passed)) passed, $((c_failed + p_failed)) failed"
if [ "$ctest_rc" -ne 0 ] || [ "$pytest_rc" -ne 0 ] || [ "$((c_passed + p_passed))" -eq 0 ]; then
  exit 1
fi
