"""One retraction plus transport on low rank ∩ oblique (issue 13): O((m+n) r²), never m×n.

Times LowRankOblique.retract_transport (polar and qr; the C++ maps of
mantra::manifolds::LowRankCoupled on the factor pair [H; V] of shape (m+n, r)) at m×n =
4096×1024, rank 64, then against m and n at fixed r, next to the dense projection of the
weight (truncated SVD of the m×n X followed by row normalization), which costs O(mn·min(m, n)).
Then the weight-normalized low-rank mantra.nn.Conv2d: its factored forward (a conv by Vᵀ with r
channels, then a 1×1 conv by diag(g)·H) against the dense conv of the composed kernel.
Tables, no asserts:

    python benchmarks/bench_low_rank_coupled.py --threads 1
"""

import argparse
import time

import torch
import torch.nn.functional as F

import mantra
from mantra import _C


def best_of(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def dense_projection(X, r):
    U, S, Vh = torch.linalg.svd(X, full_matrices=False)
    Y = (U[:, :r] * S[:r]) @ Vh[:r]
    return Y / Y.norm(dim=1, keepdim=True)


def conv_table(args, dtype):
    r, batch, side = args.conv_rank, 8, 32
    print(f"\nWN+LR Conv2d 3×3, padding 1, rank {r}, batch {batch}, {side}×{side} maps, inference (no grad), "
          f"{args.dtype}, {args.threads} thread(s), best of {args.repeat}")
    print("| c_in = c_out | factored forward (ms) | dense conv of the composed kernel (ms) | ratio | "
          "multiply-adds ratio |")
    print("|---|---|---|---|---|")
    for c in (64, 128, 256):
        torch.manual_seed(0)
        layer = mantra.nn.Conv2d(c, c, 3, padding=1, constraint="low_rank_oblique", rank=r, scale="per_row",
                                 dtype=dtype)
        x = torch.randn(batch, c, side, side, dtype=dtype)
        with torch.no_grad():
            K = layer.effective_weight()  # composed once: the dense baseline's best case
            factored = best_of(lambda: layer(x), args.repeat) * 1e3
            dense = best_of(lambda: F.conv2d(x, K, layer.bias, padding=1), args.repeat) * 1e3
        macs = r * (9 * c + c) / (9 * c * c)
        print(f"| {c} | {factored:.2f} | {dense:.2f} | {dense / factored:.1f}× | {macs:.3f} |", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rank", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dense-max", type=int, default=4096 * 1024,
                    help="largest m·n for the dense SVD baseline (4096×4096 takes over a minute on one core)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--tables", nargs="+", choices=["retraction", "conv"], default=["retraction", "conv"])
    ap.add_argument("--conv-rank", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    if "retraction" in args.tables:
        retraction_table(args, dtype)
    if "conv" in args.tables:
        conv_table(args, dtype)


def retraction_table(args, dtype):
    r = args.rank
    print(f"low rank ∩ oblique, rank {r}, {args.dtype}, {args.threads} thread(s), best of {args.repeat}")
    print("| m | n | retract+transport polar (ms) | qr (ms) | exp (ms) | dense SVD + row normalization (ms) | ratio |")
    print("|---|---|---|---|---|---|---|")
    sizes = [(1024, 256), (2048, 512), (4096, 1024), (8192, 2048), (16384, 4096), (4096, 256), (4096, 4096)]
    for m, n in sizes:
        M = _C.manifolds.LowRankOblique(m, n, r)
        torch.manual_seed(0)
        P = M.random(m + n, r, dtype=dtype)
        V = M.proj_tangent(P, torch.randn(m + n, r, dtype=dtype)) * 1e-2
        U = M.proj_tangent(P, torch.randn(m + n, r, dtype=dtype))
        cells = []
        for method in ("polar", "qr", "exp"):
            cells.append(best_of(lambda: M.retract_transport(P, V, U, method), args.repeat) * 1e3)
        if m * n <= args.dense_max:
            X = M.compose(P) + 1e-2 * torch.randn(m, n, dtype=dtype)
            dense = best_of(lambda: dense_projection(X, r), max(1, args.repeat // 2)) * 1e3
            dense_s, ratio = f"{dense:.1f}", f"{dense / cells[0]:.0f}×"
        else:
            dense_s, ratio = "—", "—"
        print(f"| {m} | {n} | {cells[0]:.2f} | {cells[1]:.2f} | {cells[2]:.2f} | {dense_s} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
