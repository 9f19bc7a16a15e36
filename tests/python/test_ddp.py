"""DistributedDataParallel (2 processes, gloo, loopback) on a model with constraints trained through
rebases (DynamicTrivialization K=5) and a Riemannian optimizer: all ranks end bitwise identical,
and equal a single-process run on the same global batch within 1e-10 (float64; only the order of
the gradient sums differs)."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

import ddp_worker


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="torch.distributed with gloo is not available")
def test_ddp_two_processes_match_each_other_and_one_process(tmp_path):
    mp.spawn(ddp_worker.worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    single = ddp_worker.train()
    for key in ("a", "b", "frame"):
        assert torch.equal(r0[key], r1[key]), key
        assert (r0[key] - single[key]).abs().max().item() < 1e-10, key
    W = r0["a"]
    assert (W.T @ W - torch.eye(6, dtype=torch.float64)).abs().max().item() < 1e-12
    assert torch.linalg.matrix_rank(r0["b"]).item() == 3
    # Training moved the weights (the comparison is not between two untouched models).
    torch.manual_seed(0)
    untouched = ddp_worker.Model().double()
    assert (untouched.frame.detach() - r0["frame"]).abs().max().item() > 1e-3
