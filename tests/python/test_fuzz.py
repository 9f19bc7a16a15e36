"""The fuzz test of the reliability report (issue 17): every manifold method and public op called
with one argument malformed (wrong rank and shape, integer/bool/complex/half dtypes, NaN/Inf,
empty, non-contiguous, meta and mixed devices, wrong Python types), in a child process so that a
crash fails this test instead of killing the runner. See fuzz_cases.py for the outcomes."""

import collections
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def test_every_malformed_call_raises_naming_its_argument_or_is_correct():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, os.path.join(HERE, "fuzz_cases.py")], capture_output=True, text=True,
                          timeout=900, env=env)
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    last = rows[-1]["case"] if rows else "(none)"
    assert proc.returncode == 0, f"the child crashed (rc {proc.returncode}) after case {last}:\n{proc.stderr[-3000:]}"
    assert rows and rows[-1]["case"] == "done", f"the child stopped after {last}"
    rows = rows[:-1]
    counts = collections.Counter(r["outcome"] for r in rows)
    assert len(rows) >= 2000, counts  # the case list did not shrink by accident
    bad = [f"{r['case']}: {r['outcome']} ({r['detail']})" for r in rows if r["outcome"] != "clean"]
    assert not bad, f"{dict(counts)}\n" + "\n".join(bad[:60])
