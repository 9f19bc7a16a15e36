"""examples/bayes/mantra_train_bayes (when built): it runs on sklearn's digits, writes its table and
plots, prunes to a network that gives the masked one's outputs (it checks that itself and fails
otherwise), and --resume continues exactly (the same table as one uninterrupted run); the LeNet-style
conv net (MatrixNormalConv2d) and the SPD covariance run and prune the same way."""

import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "build" / "examples" / "bayes" / "mantra_train_bayes"

pytestmark = pytest.mark.skipif(not PROGRAM.exists(), reason="mantra_train_bayes is not built")


def run(out, *args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run([str(PROGRAM), "--data", "digits", "--models", "det,mn-ard,mnd-gard", "--hidden", "32,16",
                          "--out", str(out), *args], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def table_rows(text):
    return [line for line in text.splitlines() if line.startswith("|") and "---" not in line]


def test_outputs_and_exact_resume(tmp_path):
    straight = run(tmp_path / "a", "--epochs", "3")
    for name in ("results.md", "curves_accuracy.svg", "curves_sparsity.svg", "mn-ard.pt"):
        assert (tmp_path / "a" / name).exists(), name
    rows = table_rows(straight)
    assert any(r.startswith("| MN, ARD") for r in rows) and any("x" in r and "MN+DIAG, group ARD" in r for r in rows)
    run(tmp_path / "b", "--epochs", "1")
    resumed = run(tmp_path / "b", "--epochs", "3", "--resume")
    # Every column but the time per epoch (the last one of the summary table) is identical.
    def without_time(text):
        return [r.rstrip().rstrip("|").rsplit("|", 1)[0] if len(r.split("|")) == 10 else r for r in table_rows(text)]
    assert without_time(straight) == without_time(resumed)
    assert len(without_time(straight)) >= 10


def test_lenet_and_spd_run_and_prune(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run([str(PROGRAM), "--net", "lenet", "--models", "det,mnd-gard,mn-ard-spd", "--conv", "3,4",
                          "--hidden", "16", "--epochs", "1", "--out", str(tmp_path)], capture_output=True, text=True,
                         env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = table_rows(res.stdout)
    layers = [r.split("|")[2].strip() for r in rows if r.startswith("| MN+DIAG, group ARD") and len(r.split("|")) == 8]
    assert layers == ["conv1", "conv2", "fc1", "fc2"]
    conv2 = next(r for r in rows if r.startswith("| MN+DIAG, group ARD") and "conv2" in r)
    cells = [c.strip() for c in conv2.split("|")]
    # A = C_in·k·k·C_out of conv2; rows × cols left as input channels of 3 × output channels of 4.
    assert cells[3] == str(3 * 25 * 4)
    kept_in, kept_out = cells[6].split(" x ")
    assert kept_in.endswith("/3") and kept_out.endswith("/4")
    assert int(cells[4]) <= int(cells[3])
    assert any(r.startswith("| MN, ARD, SPD") for r in rows)
    assert (tmp_path / "mn-ard-spd.pt").exists()


def test_bad_arguments_are_reported():
    res = subprocess.run([str(PROGRAM), "--models", "mn-full"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "unknown model 'mn-full'" in res.stderr
