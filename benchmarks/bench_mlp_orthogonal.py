"""One training step of an MLP with orthogonal weights: mantra versus torch.nn.utils.parametrizations.

A 4-layer MLP (tanh) with 512×512 weights (the widths are --width), each weight constrained to
SO(n) / orthogonal matrices, batch 256, CPU float32. One step = forward + backward + Adam step
(+ the constraint's own work: mantra rebases nothing here; it is the static chart at the base).
Prints the median time per step over --repeats steps after --warmup steps, per variant:

- mantra expm / cayley: ``mantra.orthogonal(layer, "weight", triv=...)`` (the C++ retraction at a
  base point; expm is mantra's own matrix exponential operator);
- torch matrix_exp / cayley: ``torch.nn.utils.parametrizations.orthogonal(layer,
  orthogonal_map=...)`` (torch's default on square weights is matrix_exp);
- unconstrained: plain ``nn.Linear`` layers (the floor).

    python benchmarks/bench_mlp_orthogonal.py [--width 512] [--batch 256] [--layers 4]
        [--repeats 20] [--warmup 3] [--threads N]
"""

import argparse
import statistics
import time

import torch
import torch.nn as nn
from torch.nn.utils import parametrizations

import mantra


def mlp(width, layers, constrain):
    torch.manual_seed(0)
    mods = []
    for i in range(layers):
        lin = nn.Linear(width, width)
        if constrain is not None:
            constrain(lin)
        mods += [lin, nn.Tanh()] if i < layers - 1 else [lin]
    return nn.Sequential(*mods)


VARIANTS = {
    "mantra expm": lambda lin: mantra.orthogonal(lin, "weight", triv="expm"),
    "mantra cayley": lambda lin: mantra.orthogonal(lin, "weight", triv="cayley"),
    "torch matrix_exp": lambda lin: parametrizations.orthogonal(lin, "weight", orthogonal_map="matrix_exp"),
    "torch cayley": lambda lin: parametrizations.orthogonal(lin, "weight", orthogonal_map="cayley"),
    "unconstrained": None,
}


def time_steps(model, x, y, repeats, warmup):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(args.batch, args.width, generator=g)
    y = torch.randn(args.batch, args.width, generator=g)
    print(f"MLP {args.layers}×({args.width}×{args.width}) orthogonal, batch {args.batch}, CPU float32, "
          f"{torch.get_num_threads()} threads; forward+backward+Adam step, median of {args.repeats} after "
          f"{args.warmup} warm-up steps")
    print(f"{'variant':<18} {'median ms':>10} {'min ms':>8} {'vs torch matrix_exp':>20}")
    results = {}
    for name, constrain in VARIANTS.items():
        results[name] = time_steps(mlp(args.width, args.layers, constrain), x, y, args.repeats, args.warmup)
    ref = results["torch matrix_exp"][0]
    for name, (med, best) in results.items():
        print(f"{name:<18} {med * 1e3:>10.2f} {best * 1e3:>8.2f} {ref / med:>19.2f}x")


if __name__ == "__main__":
    main()
