"""One retraction plus transport on low rank ∩ oblique (issue 13): O((m+n) r²), never m×n.

Times LowRankOblique.retract_transport (polar and qr; the C++ maps of
mantra::manifolds::LowRankCoupled on the factor pair [H; V] of shape (m+n, r)) at m×n =
4096×1024, rank 64, then against m and n at fixed r, next to the dense projection of the
weight (truncated SVD of the m×n X followed by row normalization), which costs O(mn·min(m, n)).
A table, no asserts:

    python benchmarks/bench_low_rank_coupled.py --threads 1
"""

import argparse
import time

import torch

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rank", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dense-max", type=int, default=4096 * 1024,
                    help="largest m·n for the dense SVD baseline (4096×4096 takes over a minute on one core)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
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
