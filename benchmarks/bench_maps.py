"""The hot maps of issue 14 on CPU against the peer a user would pick, in one process.

Rows (median of --repeats runs, ratio = peer time / mantra time, above 1: mantra is faster):
- expm forward+backward on batches of tiny matrices (10⁴×2×2, 10⁴×3×3, 1024×8×8, 1024×16×16,
  256×32×32) against torch.linalg.matrix_exp; inputs standard normal scaled to 1-norm 1;
- the Cayley chart of orthogonal(weight 512×512) forward+backward (the weight and the
  gradient of sum(W·G)) against torch.nn.utils.parametrizations.orthogonal(orthogonal_map="cayley");
- the Householder constraint orthogonal(triv="householder") 512×512 forward+backward against
  torch.linalg.householder_product (512 reflectors, the same map), and mantra's forward alone
  with its backward/forward ratio.
float32 and float64.

    python benchmarks/bench_maps.py [--repeats 7] [--threads N] [--dtypes float32 float64] [--clock wall|cpu]
"""

import argparse

import torch
import torch.nn as nn
from torch.nn.utils import parametrizations

import mantra
import timing
from timing import median_time

TINY = [(10000, 2), (10000, 3), (1024, 8), (1024, 16), (256, 32)]


def fwd_bwd(fn, leaf, W):
    def run():
        (fn(leaf) * W).sum().backward()
        leaf.grad = None
    return run


def weight_fwd_bwd(layer, W):
    params = [p for p in layer.parameters() if p.requires_grad]

    def run():
        (layer.weight * W).sum().backward()
        for p in params:
            p.grad = None
    return run


def row(label, dtype_name, peer, mine):
    print(f"{label:<34} {dtype_name:>8} | {peer * 1e3:>10.3f} {mine * 1e3:>10.3f} {peer / mine:>7.2f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--clock", choices=sorted(timing.CLOCKS), default="wall",
                        help="cpu: the process's CPU time (all threads), steadier on a shared machine")
    args = parser.parse_args()
    timing.set_clock(args.clock)
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    print(f"hot maps on CPU ({torch.get_num_threads()} threads), median of {args.repeats} runs, torch {torch.__version__}")
    header = f"{'what':<34} {'dtype':>8} | {'peer ms':>10} {'mantra ms':>10} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        for batch, n in TINY:
            A = torch.randn(batch, n, n, dtype=dtype, generator=gen)
            A = A / A.abs().sum(-2, keepdim=True).amax(-1, keepdim=True)
            W = torch.randn(batch, n, n, dtype=dtype, generator=gen)
            leaf = A.clone().requires_grad_(True)
            peer = median_time(fwd_bwd(torch.linalg.matrix_exp, leaf, W), args.repeats)
            mine = median_time(fwd_bwd(mantra.expm, leaf, W), args.repeats)
            row(f"expm f+b {batch}×{n}×{n}", dtype_name, peer, mine)
        n = 512
        W = torch.randn(n, n, dtype=dtype, generator=gen)
        torch.manual_seed(0)
        lm = nn.Linear(n, n, bias=False, dtype=dtype)
        mantra.orthogonal(lm, "weight", triv="cayley")
        lt = nn.Linear(n, n, bias=False, dtype=dtype)
        parametrizations.orthogonal(lt, "weight", orthogonal_map="cayley")
        with torch.no_grad():  # away from the identity for both
            for p in list(lm.parameters()) + list(lt.parameters()):
                p.add_(0.01 * torch.randn(p.shape, dtype=dtype, generator=gen))
        row("Cayley chart f+b 512", dtype_name, median_time(weight_fwd_bwd(lt, W), args.repeats),
            median_time(weight_fwd_bwd(lm, W), args.repeats))
        lh = nn.Linear(n, n, bias=False, dtype=dtype)
        mantra.orthogonal(lh, "weight", triv="householder")
        H = torch.randn(n, n, dtype=dtype, generator=gen).tril(-1) + torch.eye(n, dtype=dtype)
        tau = (2 / (H * H).sum(0)).requires_grad_(True)
        Hl = H.requires_grad_(True)

        def torch_householder():
            (torch.linalg.householder_product(Hl, tau) * W).sum().backward()
            Hl.grad = None
            tau.grad = None

        mine = median_time(weight_fwd_bwd(lh, W), args.repeats)
        row("Householder f+b 512", dtype_name, median_time(torch_householder, args.repeats), mine)
        # Where mantra's backward stands against its forward (the forward that records the graph:
        # the compact-WY form; without gradients the forward is LAPACK's orgqr, as torch's).
        fwd = median_time(lambda: lh.weight, args.repeats)
        print(f"{'  mantra Householder fwd 512':<34} {dtype_name:>8} | {'':>10} {fwd * 1e3:>10.3f} "
              f"  backward/forward = {(mine - fwd) / fwd:.2f}", flush=True)


if __name__ == "__main__":
    main()
