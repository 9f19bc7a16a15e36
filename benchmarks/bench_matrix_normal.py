"""Matrix-normal operators on CPU: mantra's ops versus the torch composition and the bare GEMMs.

For each size (n = m; the batch of the linear op is N = n unless --batch is given, and the layer
sizes of examples/bayes with N = 128) prints the median time of the forward and of forward +
backward of
  sample:  torch.ops.mantra.matrix_normal_sample  vs  M + tril(A) @ E @ tril(B).T
  linear:  torch.ops.mantra.matrix_normal_linear  vs  X @ M + sqrt(rowsum((X @ tril(A))²)) * (E @ tril(B).T) + b
and the time of the dense GEMMs the composition does (sample: A@E, T@Bᵀ; linear: X@M, X@A,
E@Bᵀ; fwd+bwd: those plus the backward's GEMMs, timed as the composition's own products with
precomputed operands). Ratios above 1: mantra is faster.

    python benchmarks/bench_matrix_normal.py [--sizes 256 1024 4096] [--repeats 5] [--threads 0]
        [--ops 'sample fwd' 'linear fwd'] [--warmup 1] [--no-layers]
(n = 4096 takes minutes per row on one thread: e.g. --sizes 4096 --repeats 1 --warmup 0.)
"""

import argparse

import torch

import mantra  # noqa: F401
from timing import median_time

ops = torch.ops.mantra


def problem(N, n, m, dtype, g):
    M = torch.randn(n, m, dtype=dtype, generator=g)
    A = torch.randn(n, n, dtype=dtype, generator=g).tril(-1) / n ** 0.5 + torch.eye(n, dtype=dtype)
    B = torch.randn(m, m, dtype=dtype, generator=g).tril(-1) / m ** 0.5 + torch.eye(m, dtype=dtype)
    E = torch.randn(n, m, dtype=dtype, generator=g)
    X = torch.randn(N, n, dtype=dtype, generator=g)
    E2 = torch.randn(N, m, dtype=dtype, generator=g)
    b = torch.randn(m, dtype=dtype, generator=g)
    return M, A, B, E, X, E2, b


def name_ok(name, which):
    return not which or name in which


def compose_sample(M, A, B, E):
    return M + A.tril() @ E @ B.tril().T


def compose_linear(X, M, A, B, E2, b):
    return X @ M + (X @ A.tril()).square().sum(1, keepdim=True).sqrt() * (E2 @ B.tril().T) + b


def fwd_bwd(f, inputs, grad):
    def run():
        args = [t.detach().requires_grad_(rg) for t, rg in inputs]
        out = f(*args)
        out.backward(grad)
    return run


def bench(N, n, m, repeats, dtype, g, which, warmup):
    def timed(fn, reps):
        return median_time(fn, reps, warmup)

    M, A, B, E, X, E2, b = problem(N, n, m, dtype, g)
    At, Bt = A.tril(), B.tril()
    GW, GO = torch.randn(n, m, dtype=dtype, generator=g), torch.randn(N, m, dtype=dtype, generator=g)
    T, P, F = At @ E, X @ At, E2 @ Bt.T
    rows = {}
    # sample, forward
    if name_ok("sample fwd", which):
        rows["sample fwd"] = (timed(lambda: compose_sample(M, A, B, E), repeats),
                          timed(lambda: ops.matrix_normal_sample(M, A, B, E), repeats),
                          timed(lambda: (At @ E, T @ Bt.T), repeats))
    # sample, forward + backward (gradients to M, A, B; E is noise)
    ins = [(M, True), (A, True), (B, True), (E, False)]
    # the composition's GEMMs: fwd A@E, T@Bᵀ; bwd G@B (for T's grad), (G B)@Eᵀ (A's), Gᵀ@T (B's)
    H = GW @ Bt
    if name_ok("sample fwd+bwd", which):
        rows["sample fwd+bwd"] = (timed(fwd_bwd(compose_sample, ins, GW), repeats),
                              timed(fwd_bwd(ops.matrix_normal_sample, ins, GW), repeats),
                              timed(lambda: (At @ E, T @ Bt.T, GW @ Bt, H @ E.T, GW.T @ T), repeats))
    if name_ok("linear fwd", which):
        rows["linear fwd"] = (timed(lambda: compose_linear(X, M, A, B, E2, b), repeats),
                          timed(lambda: ops.matrix_normal_linear(X, M, A, B, E2, b), repeats),
                          timed(lambda: (X @ M, X @ At, E2 @ Bt.T), repeats))
    ins = [(X, True), (M, True), (A, True), (B, True), (E2, False), (b, True)]
    # bwd GEMMs: Xᵀ@G (M), G@Mᵀ (X), Xᵀ@dP (A), dP@Aᵀ (X), dFᵀ@E (B)
    if name_ok("linear fwd+bwd", which):
        rows["linear fwd+bwd"] = (timed(fwd_bwd(compose_linear, ins, GO), repeats),
                              timed(fwd_bwd(ops.matrix_normal_linear, ins, GO), repeats),
                              timed(lambda: (X @ M, X @ At, E2 @ Bt.T, X.T @ GO, GO @ M.T, X.T @ P,
                                                   P @ At.T, F.T @ E2), repeats))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--batch", type=int, default=0, help="N of the linear op (0: N = n)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--no-layers", action="store_true", help="skip the layer sizes of examples/bayes")
    parser.add_argument("--ops", nargs="+", default=[], help="only these rows, e.g. 'sample fwd' 'linear fwd'")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before the timed ones")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    g = torch.Generator().manual_seed(0)
    print(f"matrix-normal ops on CPU ({torch.get_num_threads()} threads), {args.dtype}, median of {args.repeats} runs, "
          f"torch {torch.__version__}")
    print(f"{'N x n x m':>16} {'op':>15} | {'torch ms':>9} {'mantra ms':>9} {'GEMMs ms':>9} | "
          f"{'torch/mantra':>12} {'mantra/GEMMs':>12}")
    shapes = [(args.batch or n, n, n) for n in args.sizes]
    if not args.no_layers:
        shapes += [(128, 784, 300), (128, 300, 100), (128, 100, 10)]
    for N, n, m in shapes:
        for name, (t_torch, t_mantra, t_gemm) in bench(N, n, m, args.repeats, dtype, g, args.ops, args.warmup).items():
            print(f"{f'{N}x{n}x{m}':>16} {name:>15} | {1e3 * t_torch:9.2f} {1e3 * t_mantra:9.2f} {1e3 * t_gemm:9.2f} | "
                  f"{t_torch / t_mantra:12.2f} {t_mantra / t_gemm:12.2f}", flush=True)


if __name__ == "__main__":
    main()
