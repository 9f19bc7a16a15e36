"""examples/rnn/train_rnn.py (the Python twin of the C++ trainer) under torchrun with DDP: two
processes (gloo, loopback) end with bitwise identical weights and match one process."""

import os
import socket
import subprocess
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "examples", "rnn", "train_rnn.py")
ARGS = ["--task", "copying", "--lag", "8", "--copying-batches", "4", "--batch", "8", "--hidden", "12",
        "--epochs", "2", "--models", "dtriv3,lstm", "--threads", "1"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, out):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"), OMP_NUM_THREADS="1")
    r = subprocess.run(cmd + ARGS + ["--out", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout
    return r.stdout


def test_torchrun_ddp_matches_one_process(tmp_path):
    one = run([sys.executable, SCRIPT], tmp_path / "one")
    assert "| dtriv3 |" in one and "| lstm |" in one
    run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
         f"--master_port={free_port()}", SCRIPT], tmp_path / "ddp")
    for model in ("dtriv3", "lstm"):
        r0 = torch.load(tmp_path / "ddp" / f"{model}.rank0.pt")
        r1 = torch.load(tmp_path / "ddp" / f"{model}.rank1.pt")
        single = torch.load(tmp_path / "one" / f"{model}.pt")
        assert r0.keys() == r1.keys() == single.keys()
        for k in r0:
            assert torch.equal(r0[k], r1[k]), f"{model}.{k} differs between ranks"
            # The global batch is the same; only the all-reduce's float32 rounding differs.
            torch.testing.assert_close(r0[k], single[k], rtol=1e-4, atol=1e-5, msg=f"{model}.{k}")
