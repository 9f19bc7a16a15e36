"""QR retraction on CPU: torch.ops.mantra.qr_retraction versus torch.linalg.qr with the sign fix.

The peer is what a user writes for the Q factor with positive diag(R):
``Q, R = torch.linalg.qr(X); Q * sign(diag(R))``. Inputs are retraction points X + V (X a
random frame, V a tangent step of norm 0.5 per matrix), the gradient that of sum(Q * W).
Prints the median time of the forward and of forward+backward and the ratio torch/mantra
(above 1: mantra is faster), float32 and float64, in one process; and the GEMM-time G (one
n×k by k×k product, 2nk² flops, over the batch) with both forward+backward times in G, the
unit of the bound (mantra's forward+backward needs at least about 4 G, 5 G on tall matrices:
the Gram matrix, Cholesky and the solve, and the backward's two products and solve).

    python benchmarks/bench_qr_retraction.py [--repeats 7] [--threads N] [--dtypes float32 float64] [--clock wall|cpu]
"""

import argparse
import os

import torch

import mantra  # noqa: F401  (loads the operators)
import timing
from timing import median_time

SHAPES = [(1024, 16, 16), (256, 32, 32), (64, 128, 128), (1, 4096, 256), (1, 30000, 50)]


def torch_qr_positive(X):
    Q, R = torch.linalg.qr(X)
    d = R.diagonal(dim1=-2, dim2=-1)
    return Q * torch.where(d < 0, -1.0, 1.0).to(X.dtype).unsqueeze(-2)


def retraction_point(shape, dtype, gen):
    X = torch.linalg.qr(torch.randn(shape, dtype=torch.float64, generator=gen))[0]
    G = torch.randn(shape, dtype=torch.float64, generator=gen)
    V = G - X @ ((X.mT @ G + G.mT @ X) / 2)
    V = 0.5 * V / V.norm(dim=(-2, -1), keepdim=True)
    return (X + V).to(dtype)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: the process's CPU time (all threads), robust to other jobs on a shared "
                             "machine; with --threads 1 it is the work done")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    timing.set_clock(args.clock)
    gen = torch.Generator().manual_seed(0)
    print(f"qr_retraction on CPU ({torch.get_num_threads()} threads), median of {args.repeats} runs, "
          f"{args.clock} clock, torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}")
    header = f"{'shape':>16} {'dtype':>8} | {'torch fwd ms':>12} {'mantra fwd ms':>13} {'ratio':>6} | " \
             f"{'torch f+b ms':>12} {'mantra f+b ms':>13} {'ratio':>6} | {'G ms':>7} {'torch G':>7} {'mantra G':>8}"
    print(header)
    print("-" * len(header))
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        for shape in SHAPES:
            X = retraction_point(shape, dtype, gen)
            W = torch.randn(shape, dtype=dtype, generator=gen)
            results = {}
            for name, fn in (("torch", torch_qr_positive), ("mantra", torch.ops.mantra.qr_retraction)):
                with torch.no_grad():
                    fwd = median_time(lambda: fn(X), args.repeats)
                leaf = X.clone().requires_grad_(True)

                def fwd_bwd():
                    (fn(leaf) * W).sum().backward()
                    leaf.grad = None

                results[name] = (fwd, median_time(fwd_bwd, args.repeats))
            (tf, tb), (mf, mb) = results["torch"], results["mantra"]
            K = torch.randn(shape[0], shape[2], shape[2], dtype=dtype, generator=gen)
            gemm = median_time(lambda: torch.matmul(X, K), args.repeats)
            label = "×".join(str(s) for s in (shape[1:] if shape[0] == 1 else shape))
            print(f"{label:>16} {dtype_name:>8} | {tf * 1e3:>12.3f} {mf * 1e3:>13.3f} {tf / mf:>6.2f} | "
                  f"{tb * 1e3:>12.3f} {mb * 1e3:>13.3f} {tb / mb:>6.2f} | {gemm * 1e3:>7.3f} {tb / gemm:>7.1f} "
                  f"{mb / gemm:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
