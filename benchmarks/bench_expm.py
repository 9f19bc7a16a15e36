"""Matrix exponential on CPU: mantra.expm versus torch.linalg.matrix_exp.

Prints, for each case, the median time of the forward and of forward+backward, and the ratio
torch/mantra (above 1: mantra is faster), float32 and float64 in one process. The cases are
the issue's: batches of tiny matrices (B×n×n, mantra's per-matrix CPU path for n <= 32) and
single n×n matrices. Inputs: A standard normal (general), skew-symmetric (G - Gᵀ)/2 (skew), or
a standard normal matrix scaled to 1-norm 1 (unit: the dynamic-trivialization regime, where
no squarings are needed); the gradient that of sum(exp(A) * W) with W standard normal.

For single matrices it also prints the products × GEMM bound of the forward: the number of
n×n products mantra's scaling-and-squaring plan does (Taylor scheme + squarings, read from its
trace), the measured time of one n×n GEMM (torch.mm) and mantra's forward time in GEMM-times;
the forward cannot beat that product count by more than its non-GEMM work. Where the autograd
forward takes the eigendecomposition route for skew input (route "eig", csrc/ops/expm_skew.h;
"sq" is scaling and squaring), the same cases are also timed with that route switched off
(the old route: "sq fwd ms", "sq f+b ms"); the plain forward follows its own rule (n >= 320).

    python benchmarks/bench_expm.py [--cases 10000x2 1024x8 224 ...] [--repeats 7]
        [--kinds general skew unit] [--dtypes float32 float64] [--threads N] [--clock wall|cpu]
"""

import argparse
import os

import torch

import mantra
import timing
from timing import median_time

DEFAULT_CASES = ["10000x2", "10000x3", "1024x8", "1024x16", "256x32", "224", "425", "1024"]
PRODUCTS_PER_DEGREE = [0, 1, 2, 3, 4, 5]  # Taylor degrees 1, 2, 4, 8, 12, 18 (expm_algorithm.cpp)


def make_input(batch, n, kind, dtype, generator):
    G = torch.randn((n, n) if batch == 0 else (batch, n, n), dtype=dtype, generator=generator)
    if kind == "unit":
        return G / G.abs().sum(-2).amax(-1)[..., None, None]
    return (G - G.mT) / 2 if kind == "skew" else G


def parse_case(case):
    if "x" in case:
        b, n = case.split("x")
        return int(b), int(n)
    return 0, int(case)  # a single matrix


def products(A):
    """Matrix products of mantra's scaling-and-squaring forward for the single matrix A (plan:
    degree, squarings), and whether the autograd forward takes the skew route (plan row 3)."""
    plan = torch.ops.mantra._expm_traced(A)[1][0]
    return PRODUCTS_PER_DEGREE[int(plan[0, 0])] + int(plan[1, 0]), plan.shape[0] == 3 and bool(plan[2, 0])


def time_mantra(A, W, repeats):
    with torch.no_grad():
        fwd = median_time(lambda: mantra.expm(A), repeats)
    leaf = A.clone().requires_grad_(True)

    def fwd_bwd():
        (mantra.expm(leaf) * W).sum().backward()
        leaf.grad = None

    return fwd, median_time(fwd_bwd, repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=DEFAULT_CASES, help="BxN (a batch) or N (one matrix)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--big-repeats", type=int, default=3, help="repeats for single matrices n >= 400")
    parser.add_argument("--kinds", nargs="+", choices=["general", "skew", "unit"],
                        default=["general", "skew"])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: the process's CPU time (all threads), robust to other jobs on a shared "
                             "machine; with --threads 1 it is the work done")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    timing.set_clock(args.clock)
    gen = torch.Generator().manual_seed(0)

    print(f"expm on CPU ({torch.get_num_threads()} threads), median of {args.repeats} runs "
          f"({args.big_repeats} for n >= 400), {args.clock} clock, torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}")
    header = f"{'case':>9} {'kind':>7} {'dtype':>7} | {'torch fwd ms':>12} {'mantra fwd ms':>13} {'ratio':>6} | " \
             f"{'torch f+b ms':>12} {'mantra f+b ms':>13} {'ratio':>6} | {'products':>8} {'GEMM ms':>8} " \
             f"{'fwd/GEMM':>8} | {'route':>5} {'sq fwd ms':>9} {'sq f+b ms':>9} {'f+b ratio':>9}"
    print(header)
    print("-" * len(header))
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        for kind in args.kinds:
            for case in args.cases:
                batch, n = parse_case(case)
                repeats = args.big_repeats if batch == 0 and n >= 400 else args.repeats
                A = make_input(batch, n, kind, dtype, gen)
                W = torch.randn(A.shape, dtype=dtype, generator=gen)
                results = {}
                for name, fn in (("torch", torch.linalg.matrix_exp), ("mantra", mantra.expm)):
                    with torch.no_grad():
                        fwd = median_time(lambda: fn(A), repeats)
                    leaf = A.clone().requires_grad_(True)

                    def fwd_bwd():
                        (fn(leaf) * W).sum().backward()
                        leaf.grad = None

                    results[name] = (fwd, median_time(fwd_bwd, repeats))
                (tf, tb), (mf, mb) = results["torch"], results["mantra"]
                bound = ""
                if batch == 0:
                    B = torch.randn(n, n, dtype=dtype, generator=gen)
                    gemm = median_time(lambda: torch.mm(A, B), max(repeats, 5))
                    prods, eig = products(A)
                    bound = f"{prods:>8} {gemm * 1e3:>8.2f} {mf / gemm:>8.1f} | {'eig' if eig else 'sq':>5}"
                    if eig:  # the old route: scaling and squaring for the same input
                        old = torch.ops.mantra._expm_skew_route(-1)
                        try:
                            sf, sb = time_mantra(A, W, repeats)
                        finally:
                            torch.ops.mantra._expm_skew_route(old)
                        bound += f" {sf * 1e3:>9.2f} {sb * 1e3:>9.2f} {tb / sb:>9.2f}"
                print(f"{case:>9} {kind:>7} {dtype_name:>7} | {tf * 1e3:>12.2f} {mf * 1e3:>13.2f} {tf / mf:>6.2f} | "
                      f"{tb * 1e3:>12.2f} {mb * 1e3:>13.2f} {tb / mb:>6.2f} | {bound}", flush=True)


if __name__ == "__main__":
    main()
