"""Matrix exponential on CPU: mantra.expm versus torch.linalg.matrix_exp.

Prints, for each size, the median time of the forward and of forward+backward, and the
ratio torch/mantra (above 1: mantra is faster). Inputs: A standard normal (general matrix)
or skew-symmetric (G - Gᵀ)/2, the gradient of sum(exp(A) * W) with W standard normal.

    python benchmarks/bench_expm.py [--sizes 64 224 425 1024] [--repeats 7] [--kind general|skew]
"""

import argparse

import torch

import mantra
from timing import median_time


def make_input(n, kind, dtype, generator):
    G = torch.randn(n, n, dtype=dtype, generator=generator)
    return (G - G.T) / 2 if kind == "skew" else G


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224, 425, 1024])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--kind", choices=["general", "skew"], default="general")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    gen = torch.Generator().manual_seed(0)

    print(f"expm on CPU ({torch.get_num_threads()} threads), {args.kind} {args.dtype} input, "
          f"median of {args.repeats} runs, torch {torch.__version__}")
    header = f"{'n':>6} | {'torch fwd ms':>12} {'mantra fwd ms':>13} {'ratio':>6} | " \
             f"{'torch f+b ms':>12} {'mantra f+b ms':>13} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        A = make_input(n, args.kind, dtype, gen)
        W = torch.randn(n, n, dtype=dtype, generator=gen)
        results = {}
        for name, fn in (("torch", torch.linalg.matrix_exp), ("mantra", mantra.expm)):
            with torch.no_grad():
                fwd = median_time(lambda: fn(A), args.repeats)
            leaf = A.clone().requires_grad_(True)

            def fwd_bwd():
                (fn(leaf) * W).sum().backward()
                leaf.grad = None

            results[name] = (fwd, median_time(fwd_bwd, args.repeats))
        (tf, tb), (mf, mb) = results["torch"], results["mantra"]
        print(f"{n:>6} | {tf * 1e3:>12.2f} {mf * 1e3:>13.2f} {tf / mf:>6.2f} | "
              f"{tb * 1e3:>12.2f} {mb * 1e3:>13.2f} {tb / mb:>6.2f}", flush=True)


if __name__ == "__main__":
    main()
