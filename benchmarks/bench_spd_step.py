"""One RiemannianAdam step on an SPD matrix: mantra against geoopt, in one process.

The point is the Bayesian MLP's first covariance factor, a 784×784 U (e⁻⁴·I plus a small step
on 442 of its rows, as MNIST's used pixels leave it), the Euclidean gradient supported on those
rows. mantra's step is the affine-invariant exp retraction with its transport (three symmetric
eigendecompositions); geoopt's is `geoopt.optim.RiemannianAdam` on
`geoopt.manifolds.SymmetricPositiveDefinite` with its defaults (the affine-invariant metric, its
own retraction and transport).
Prints the median time per step and the ratio geoopt/mantra (above 1: mantra is faster).

    python benchmarks/bench_spd_step.py [--n 784] [--repeats 5] [--threads 1] [--clock wall|cpu]
"""

import argparse
import os

import torch

import mantra
import timing
from timing import median_time


def point_and_gradient(n, dtype):
    used = min(n, 442 * n // 784)
    X = torch.eye(n, dtype=dtype) * 0.0183
    X[:used, :used] += 1e-3 * torch.eye(used, dtype=dtype)
    G = torch.zeros(n, n, dtype=dtype)
    G[:, :used] = 1e-2 * torch.randn(n, used, dtype=dtype, generator=torch.Generator().manual_seed(0))
    return X, (G + G.T) / 2


def stepper(make_optimizer, X, G):
    opt = make_optimizer(X)

    def step():
        X.grad = G.clone()
        opt.step()
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=784)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    timing.set_clock(args.clock)
    import geoopt
    print(f"RiemannianAdam step on SPD {args.n}×{args.n} ({torch.get_num_threads()} threads), median of "
          f"{args.repeats}, {args.clock} clock, geoopt {geoopt.__version__}, load average {os.getloadavg()[0]:.1f}")
    print(f"{'dtype':>8} | {'geoopt s':>9} {'mantra s':>9} {'ratio':>6}")
    for dtype in (torch.float32, torch.float64):
        X0, G = point_and_gradient(args.n, dtype)
        ours = stepper(lambda X: mantra.optim.RiemannianAdam([X], lr=0.03, manifold=mantra.manifolds.SPD()),
                       torch.nn.Parameter(X0.clone()), G)
        # geoopt's parameter carries its manifold (a ManifoldParameter).
        peer = stepper(lambda X: geoopt.optim.RiemannianAdam([X], lr=0.03),
                       geoopt.ManifoldParameter(X0.clone(), manifold=geoopt.manifolds.SymmetricPositiveDefinite()), G)
        t_peer = median_time(peer, args.repeats)
        t_ours = median_time(ours, args.repeats)
        print(f"{str(dtype).split('.')[-1]:>8} | {t_peer:9.3f} {t_ours:9.3f} {t_peer / t_ours:6.2f}")


if __name__ == "__main__":
    main()
