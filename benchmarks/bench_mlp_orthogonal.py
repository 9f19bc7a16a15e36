"""One training step of an MLP with orthogonal weights: mantra versus torch.nn.utils.parametrizations.

A 4-layer MLP (tanh) with 512×512 weights (the widths are --width), each weight constrained to
SO(n) / orthogonal matrices, batch 256, CPU float32. One step = forward + backward + Adam step
(+ the constraint's own work: mantra rebases nothing here; it is the static chart at the base).
Prints the median time per step over --repeats steps after --warmup steps, per variant:

- mantra expm / cayley: ``mantra.orthogonal(layer, "weight", triv=...)`` (the C++ retraction at a
  base point; expm is mantra's own matrix exponential operator);
- torch matrix_exp / cayley: ``torch.nn.utils.parametrizations.orthogonal(layer,
  orthogonal_map=...)`` (torch's default on square weights is matrix_exp);
- geotorch expm / cayley: ``geotorch.orthogonal(layer, "weight", triv=...)``;
- mantra householder / torch householder: the Householder map (orthogonal(triv="householder"),
  orthogonal_map="householder");
- mantra / geoopt RiemannianAdam (lr 1e-3) and RiemannianSGD (lr 1e-2, momentum 0.9): the weights
  themselves on Stiefel (mantra.optim.* with the exp or the qr retraction; geoopt.optim.* with
  geoopt.Stiefel(), whose retraction is QR with the sign fix), biases Euclidean;
- unconstrained: plain ``nn.Linear`` layers (the floor).

geotorch and geoopt are optional (``pip install -r benchmarks/requirements-peers.txt``); their
rows are skipped when they are absent.

    python benchmarks/bench_mlp_orthogonal.py [--width 512] [--batch 256] [--layers 4]
        [--repeats 20] [--warmup 3] [--threads N] [--clock wall|cpu] [--only NAME ...]
"""

import argparse
import statistics
import time

import torch
import torch.nn as nn
from torch.nn.utils import parametrizations

import mantra

try:
    import geotorch
except ImportError:  # optional peer
    geotorch = None
try:
    import geoopt
except ImportError:  # optional peer
    geoopt = None


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
    "mantra householder": lambda lin: mantra.orthogonal(lin, "weight", triv="householder"),
    "torch matrix_exp": lambda lin: parametrizations.orthogonal(lin, "weight", orthogonal_map="matrix_exp"),
    "torch cayley": lambda lin: parametrizations.orthogonal(lin, "weight", orthogonal_map="cayley"),
    "torch householder": lambda lin: parametrizations.orthogonal(lin, "weight", orthogonal_map="householder"),
    "geotorch expm": (lambda lin: geotorch.orthogonal(lin, "weight", triv="expm")) if geotorch else "skip",
    "geotorch cayley": (lambda lin: geotorch.orthogonal(lin, "weight", triv="cayley")) if geotorch else "skip",
    "mantra RAdam exp": ("mantra", "adam", "exp"),
    "mantra RAdam qr": ("mantra", "adam", "qr"),
    "geoopt RAdam": ("geoopt", "adam", None) if geoopt else "skip",
    "mantra RSGD exp": ("mantra", "sgd", "exp"),
    "mantra RSGD qr": ("mantra", "sgd", "qr"),
    "geoopt RSGD": ("geoopt", "sgd", None) if geoopt else "skip",
    "unconstrained": None,
}


def riemannian_model(width, layers, library, method, retraction):
    # The weights start orthogonal and are updated on Stiefel by the Riemannian optimizer
    # (Adam lr 1e-3, or SGD lr 1e-2 with momentum 0.9); biases Euclidean in the same optimizer.
    model = mlp(width, layers, None)
    weights = [m.weight for m in model if isinstance(m, nn.Linear)]
    biases = [m.bias for m in model if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for w in weights:
            w.copy_(torch.linalg.qr(w)[0])
    kw = {"lr": 1e-3} if method == "adam" else {"lr": 1e-2, "momentum": 0.9}
    if library == "geoopt":
        for m in model:
            if isinstance(m, nn.Linear):
                m.weight = geoopt.ManifoldParameter(m.weight.detach().clone(), manifold=geoopt.Stiefel())
        weights = [m.weight for m in model if isinstance(m, nn.Linear)]
        cls = geoopt.optim.RiemannianAdam if method == "adam" else geoopt.optim.RiemannianSGD
        opt = cls([{"params": weights}, {"params": biases}], **kw)
    else:
        cls = mantra.optim.RiemannianAdam if method == "adam" else mantra.optim.RiemannianSGD
        opt = cls([{"params": weights, "manifold": mantra.manifolds.Stiefel()}, {"params": biases}],
                  retraction=retraction, **kw)
    return model, opt


def time_steps(model, x, y, repeats, warmup, clock, opt=None):
    opt = opt or torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = clock()
        step()
        times.append(clock() - start)
    return statistics.median(times), min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall: time.perf_counter; cpu: time.process_time (the process's CPU time, all threads: "
                             "steadier than wall time on a loaded machine, at --threads 1 the time the step needs)")
    parser.add_argument("--only", nargs="*", default=None, help="run only these variants (names as printed)")
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(args.batch, args.width, generator=g)
    y = torch.randn(args.batch, args.width, generator=g)
    print(f"MLP {args.layers}×({args.width}×{args.width}) orthogonal, batch {args.batch}, CPU float32, "
          f"{torch.get_num_threads()} threads; forward+backward+Adam step, median of {args.repeats} after "
          f"{args.warmup} warm-up steps, {args.clock} clock")
    print(f"{'variant':<18} {'median ms':>10} {'min ms':>8} {'vs torch matrix_exp':>20}")
    results = {}
    for name, constrain in VARIANTS.items():
        if args.only is not None and name not in args.only and name != "torch matrix_exp":
            continue
        if constrain == "skip":
            print(f"{name:<18} skipped (not installed: pip install -r benchmarks/requirements-peers.txt)")
            continue
        if isinstance(constrain, tuple):
            model, opt = riemannian_model(args.width, args.layers, *constrain)
            results[name] = time_steps(model, x, y, args.repeats, args.warmup, clock, opt)
        else:
            results[name] = time_steps(mlp(args.width, args.layers, constrain), x, y, args.repeats, args.warmup, clock)
    ref = results["torch matrix_exp"][0]
    for name, (med, best) in results.items():
        print(f"{name:<18} {med * 1e3:>10.2f} {best * 1e3:>8.2f} {ref / med:>19.2f}x")
    # mantra / best peer of the same method (above 1: mantra is faster).
    pairs = [("mantra expm", ["torch matrix_exp", "geotorch expm"]), ("mantra cayley", ["torch cayley", "geotorch cayley"]),
             ("mantra householder", ["torch householder"]), ("mantra RAdam exp", ["geoopt RAdam"]),
             ("mantra RAdam qr", ["geoopt RAdam"]), ("mantra RSGD exp", ["geoopt RSGD"]), ("mantra RSGD qr", ["geoopt RSGD"])]
    for mine, peers in pairs:
        present = [p for p in peers if p in results]
        if present and mine in results:
            best_peer = min(present, key=lambda p: results[p][0])
            print(f"{mine}: best peer {best_peer}, peer/mantra = {results[best_peer][0] / results[mine][0]:.2f}x"
                  + "".join(f", {p}/mantra = {results[p][0] / results[mine][0]:.2f}x" for p in present))


if __name__ == "__main__":
    main()
