"""mantra.optim.RiemannianSGD / RiemannianAdam from Python: torch.optim bit for bit on Euclidean
tensors, the C++ suite's known optima (same steps, learning rates and tolerances), state_dict
round trips that resume identically, LR schedulers, errors."""

import io
import math

import pytest
import torch

import mantra
from mantra import manifolds as mf


def quadratic_problem(seed, shapes, dtype):
    g = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, dtype=dtype, generator=g) for s in shapes]
    targets = [torch.randn(s, dtype=dtype, generator=g) for s in shapes]
    return params, targets


def run_pair(make_ours, make_torch, dtype, steps=40):
    shapes = [(5, 3), (7,), (2, 3, 4)]
    a, targets = quadratic_problem(0, shapes, dtype)
    b = [t.clone() for t in a]
    for p in a + b:
        p.requires_grad_(True)
    ours, theirs = make_ours(a), make_torch(b)
    for step in range(steps):
        for params, opt in ((a, ours), (b, theirs)):
            opt.zero_grad()
            loss = sum(((p - t) ** 2 * (1 + step % 3)).sum() + (p ** 4).sum() * 0.01 for p, t in zip(params, targets))
            loss.backward()
            opt.step()
    return a, b


ADAM_SETTINGS = [dict(lr=1e-2), dict(lr=3e-2, weight_decay=0.1), dict(lr=1e-2, amsgrad=True),
                 dict(lr=5e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01, amsgrad=True)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("settings", ADAM_SETTINGS, ids=[str(s) for s in ADAM_SETTINGS])
def test_euclidean_adam_is_torch_adam_bit_for_bit(settings, dtype):
    a, b = run_pair(lambda p: mantra.optim.RiemannianAdam(p, **settings),
                    lambda p: torch.optim.Adam(p, foreach=False, **settings), dtype)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


SGD_SETTINGS = [dict(lr=1e-2), dict(lr=1e-2, momentum=0.9), dict(lr=1e-2, momentum=0.9, nesterov=True),
                dict(lr=1e-2, momentum=0.5, dampening=0.3, weight_decay=0.05)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("settings", SGD_SETTINGS, ids=[str(s) for s in SGD_SETTINGS])
def test_euclidean_sgd_is_torch_sgd_bit_for_bit(settings, dtype):
    a, b = run_pair(lambda p: mantra.optim.RiemannianSGD(p, **settings),
                    lambda p: torch.optim.SGD(p, foreach=False, **settings), dtype)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


# ---------------------------------------------------------------- known optima (tests/cpp/optim/known_optima.h)
# The same problems, initial points, learning rates, schedule (0.998ᵗ, here an LR scheduler) and
# tolerances (1e-6·max(1, |optimum|), point within 1e-10 of the manifold) as the C++ suite.

def spd_with_gap(n, seed):
    torch.manual_seed(seed)
    Q = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64))[0]
    ev = torch.linspace(1.0, 10.0, n, dtype=torch.float64)
    return (Q * ev) @ Q.T


def known_optima():
    problems = []
    A = spd_with_gap(10, 1)
    problems.append(("brockett_stiefel", mf.Stiefel(), (10, 3), lambda X, A=A: -(X * (A @ X)).sum(),
                     -torch.linalg.eigvalsh(A)[7:].sum().item(), "exp", 1.0))
    A2 = spd_with_gap(8, 2)
    problems.append(("eigenvector_sphere", mf.Sphere(), (8,), lambda x, A=A2: -(x * (A @ x)).sum(),
                     -torch.linalg.eigvalsh(A2).max().item(), "exp", 1.0))
    for negative_det in (False, True):
        torch.manual_seed(3)
        T = torch.randn(6, 6, dtype=torch.float64)
        if (torch.linalg.det(T).item() < 0) != negative_det:
            T[0].neg_()
        U, _, Vh = torch.linalg.svd(T)
        d = torch.ones(6, dtype=torch.float64)
        d[5] = -1.0 if torch.linalg.det(U @ Vh).item() < 0 else 1.0
        best = ((U * d) @ Vh - T).pow(2).sum().item()
        problems.append(("procrustes_SO" + ("_det_negative" if negative_det else ""), mf.Stiefel(special=True),
                         (6, 6), lambda X, T=T: (X - T).pow(2).sum(), best, "exp", 1.0))
    A3 = spd_with_gap(10, 5)
    problems.append(("invariant_subspace_grassmannian", mf.Grassmannian(), (10, 3),
                     lambda X, A=A3: -(X * (A @ X)).sum(), -torch.linalg.eigvalsh(A3)[7:].sum().item(), "exp", 1.0))
    torch.manual_seed(4)
    T4 = torch.randn(5, 4, dtype=torch.float64) * 2
    problems.append(("closest_oblique", mf.Oblique(), (5, 4), lambda X, T=T4: (X - T).pow(2).sum(),
                     (T4.norm(dim=0) - 1).pow(2).sum().item(), "exp", 1.0))
    torch.manual_seed(6)
    U6 = torch.linalg.qr(torch.randn(7, 5, dtype=torch.float64))[0]
    V6 = torch.linalg.qr(torch.randn(5, 5, dtype=torch.float64))[0]
    A6 = (U6 * torch.tensor([5.0, 4.0, 1.0, 0.5, 0.2], dtype=torch.float64)) @ V6.T
    problems.append(("truncated_svd_fixed_rank", mf.FixedRank(2), (7, 5), lambda X, A=A6: (X - A).pow(2).sum(),
                     1.0 + 0.25 + 0.04, "projection", 1.0))
    spd = mf.SPD()
    torch.manual_seed(7)
    SA, SB = spd.random(4, 4, dtype=torch.float64), spd.random(4, 4, dtype=torch.float64)
    dab = spd.distance(SA, SB).item()
    problems.append(("karcher_mean_spd", spd, (4, 4),
                     lambda X, A=SA, B=SB: spd.distance(X, A).pow(2) + spd.distance(X, B).pow(2), dab * dab / 2,
                     "exp", 0.4))
    H = mf.Lorentz()
    torch.manual_seed(8)
    ha, hb = H.random(4, dtype=torch.float64), H.random(4, dtype=torch.float64)
    dh = H.distance(ha, hb).item()
    problems.append(("hyperbolic_midpoint_lorentz", H, (4,),
                     lambda x, a=ha, b=hb: H.distance(x, a).pow(2) + H.distance(x, b).pow(2), dh * dh / 2, "exp", 0.6))
    return problems


PROBLEMS = known_optima()


@pytest.mark.parametrize("which", ["sgd", "adam"])
@pytest.mark.parametrize("index", range(len(PROBLEMS)), ids=[p[0] for p in PROBLEMS])
def test_known_optimum(index, which):
    name, M, shape, loss, optimum, retraction, lr_scale = PROBLEMS[index]
    torch.manual_seed(7)
    X = M.random(*shape, dtype=torch.float64).requires_grad_(True)
    storage = X.data_ptr()
    if which == "sgd":
        opt = mantra.optim.RiemannianSGD([{"params": [X], "manifold": M}], lr=0.02 * lr_scale, momentum=0.9,
                                         retraction=retraction)
    else:
        opt = mantra.optim.RiemannianAdam([X], lr=0.05 * lr_scale, manifold=M, retraction=retraction)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.998)
    # The C++ suite runs 4000 steps; these runs are within tolerance after 50–1550 steps.
    for _ in range(2000 if name in ("procrustes_SO_det_negative", "truncated_svd_fixed_rank") else 700):
        opt.zero_grad()
        loss(X).backward()
        opt.step()
        sched.step()
    assert X.data_ptr() == storage, "the parameter is updated in place"
    with torch.no_grad():
        assert M.check_point(X, 1e-10) == ""
        assert abs(loss(X).item() - optimum) < 1e-6 * max(1.0, abs(optimum))


# ---------------------------------------------------------------- state

@pytest.mark.parametrize("make", [
    lambda groups: mantra.optim.RiemannianAdam(groups, lr=0.03, amsgrad=True),
    lambda groups: mantra.optim.RiemannianSGD(groups, lr=0.02, momentum=0.9, nesterov=True),
], ids=["adam", "sgd"])
def test_state_dict_round_trip_resumes_identically(make):
    torch.manual_seed(0)
    St, Sp = mf.Stiefel(), mf.Sphere()
    target = torch.randn(8, 3, dtype=torch.float64)
    v_target = torch.randn(5, dtype=torch.float64)

    def fresh():
        torch.manual_seed(1)
        X = St.random(8, 3, dtype=torch.float64).requires_grad_(True)
        x = Sp.random(5, dtype=torch.float64).requires_grad_(True)
        e = torch.randn(4, dtype=torch.float64, requires_grad=True)
        opt = make([{"params": [X], "manifold": St, "retraction": "cayley"}, {"params": [x], "manifold": Sp},
                    {"params": [e]}])
        return [X, x, e], opt

    def train(params, opt, steps):
        X, x, e = params
        for _ in range(steps):
            opt.zero_grad()
            ((X - target) ** 2).sum().add((x - v_target).pow(2).sum()).add(e.pow(2).sum()).backward()
            opt.step()

    p1, o1 = fresh()
    train(p1, o1, 20)
    buf = io.BytesIO()
    torch.save({"params": [p.detach().clone() for p in p1], "opt": o1.state_dict()}, buf)
    train(p1, o1, 15)

    p2, o2 = fresh()
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    with torch.no_grad():
        for p, s in zip(p2, saved["params"]):
            p.copy_(s)
    o2.load_state_dict(saved["opt"])
    assert o2.param_groups[0]["manifold"] is not None and o2.param_groups[0]["manifold"].name == "Stiefel"
    train(p2, o2, 15)
    for a, b in zip(p1, p2):
        assert torch.equal(a, b)


def test_errors():
    St = mf.Stiefel()
    X = St.random(5, 2).requires_grad_(True)
    with pytest.raises(ValueError, match="parameter 0 of param group 0 is not a point of Stiefel"):
        mantra.optim.RiemannianAdam([torch.randn(5, 2, requires_grad=True)], manifold=St)
    with pytest.raises(ValueError, match="argument 'lr' must be >= 0"):
        mantra.optim.RiemannianSGD([X], lr=-1, manifold=St)
    with pytest.raises(ValueError, match="'nesterov' requires momentum > 0"):
        mantra.optim.RiemannianSGD([X], lr=0.1, nesterov=True, manifold=St)
    with pytest.raises(ValueError, match="argument 'betas'"):
        mantra.optim.RiemannianAdam([X], betas=(1.0, 0.9), manifold=St)
    with pytest.raises(TypeError, match="'manifold' must be a mantra.manifolds object"):
        mantra.optim.RiemannianAdam([X], manifold="Stiefel")
    opt = mantra.optim.RiemannianAdam([X], lr=0.1, manifold=St, retraction="householder")
    X.grad = torch.randn(5, 2)
    with pytest.raises(ValueError, match="argument 'retraction' must be one of"):
        opt.step()
    # Loading a state saved on another manifold is a clear error.
    Y = mf.Grassmannian().random(5, 2).requires_grad_(True)
    other = mantra.optim.RiemannianAdam([Y], manifold=mf.Grassmannian())
    good = mantra.optim.RiemannianAdam([X], lr=0.1, manifold=St)
    with pytest.raises(ValueError, match="saved on Grassmannian but this optimizer's group is on Stiefel"):
        good.load_state_dict(other.state_dict())


def test_dynamic_trivialization_with_riemannian_optimizer_on_constraints():
    # RiemannianAdam on the unconstrained tensors of a constrained model (Euclidean groups) is Adam.
    torch.manual_seed(4)
    lin = mantra.orthogonal(torch.nn.Linear(4, 4).double(), "weight")
    opt = mantra.optim.DynamicTrivialization(mantra.optim.RiemannianAdam(lin.parameters(), lr=0.05), lin, K=5)
    T = torch.randn(4, 4, dtype=torch.float64)
    for _ in range(30):
        opt.zero_grad()
        (lin.weight - T).pow(2).sum().backward()
        opt.step()
    W = lin.weight.detach()
    assert torch.allclose(W @ W.T, torch.eye(4, dtype=torch.float64), atol=1e-12)
    assert opt.steps == 30 and math.isfinite(W.sum().item())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_spd_long_steps_stay_finite_in_the_transport_and_in_adam(dtype):
    """A step far longer than the point (RiemannianAdam's first steps on a small covariance, as
    the matrix-normal layers' SPD option takes) used to overflow the SPD transport's exp in
    float32 (the retraction was capped, the transport not), and the next step was NaN."""
    torch.manual_seed(0)
    M = mantra.manifolds.SPD()
    n = 24
    X = torch.eye(n, dtype=dtype) * torch.exp(torch.tensor(-4.0))
    G = torch.randn(n, n, dtype=dtype)
    V = -0.03 * (G + G.T) * 40  # ‖X^{-1/2} V X^{-1/2}‖ in the hundreds
    Y, T = M.retract_transport(X, V, V)
    assert torch.isfinite(Y).all() and torch.isfinite(T).all()
    assert M.check_point(Y, 1e-5) == ""
    W = X.clone().requires_grad_(True)
    opt = mantra.optim.RiemannianAdam([W], lr=0.03, manifold=M)
    idx = torch.randperm(n)[: n // 2]
    for _ in range(5):
        g = torch.zeros(n, n, dtype=dtype)
        h = 1e-3 * torch.randn(n // 2, n // 2, dtype=dtype)
        g[idx[:, None], idx[None, :]] = h + h.T
        W.grad = g
        opt.step()
        assert torch.isfinite(W).all()
        assert M.check_point(W.detach(), 1e-5) == ""


def test_spd_float32_step_with_a_large_eigenvalue_cluster_stays_finite():
    """The matrix-normal layers' SPD option on MNIST: U = e⁻⁴·I (784×784) and a gradient on the
    442 used pixels only. float32 LAPACK eigh returned NaN without an error on the step's
    X^{-1/2} V X^{-1/2} (342 equal eigenvalues), and the transported moment was NaN; mantra's
    eigh redoes such a decomposition in float64."""
    M = mantra.manifolds.SPD()
    n = 784
    torch.manual_seed(0)
    idx = torch.randperm(n)[:442]
    for _ in range(3):
        torch.randn(442, 442)
    U = (torch.eye(n) * math.exp(-4.0)).requires_grad_(True)
    opt = mantra.optim.RiemannianAdam([U], lr=0.03, manifold=M)
    G = torch.zeros(n, n)
    g = 1e-3 * torch.randn(442, 442)
    G[idx[:, None], idx[None, :]] = g + g.T
    U.grad = G
    opt.step()
    assert torch.isfinite(U).all() and torch.isfinite(opt.state[U]["exp_avg"]).all()
    assert M.check_point(U.detach(), 1e-5) == ""
