"""Composite constraints from Python (low/fixed rank, PSD family, almost orthogonal, Householder,
Cholesky, symmetric/skew, callable triv): on the constraint after sampling, assignment and 100
optimizer steps; assignment round-trips; update_base keeps the weight; errors are ValueErrors."""

import pytest
import torch
import torch.nn as nn

import mantra


def svals(W):
    return torch.linalg.svdvals(W.detach().double())


def eigs(W):
    return torch.linalg.eigvalsh(W.detach().double())


def cayley(A):
    I = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    return torch.linalg.solve(I - A / 2, I + A / 2)


def orth_check(W, tol):
    W = W.detach().double()
    T = W.mT if W.shape[-2] < W.shape[-1] else W
    I = torch.eye(T.shape[-1], dtype=torch.float64)
    return (T.mT @ T - I).abs().max().item() < tol


def rank_at_most(W, r, tol):
    s = svals(W)
    return r >= s.shape[-1] or (s[..., r] / s[..., 0].clamp_min(1)).max().item() < tol


# name -> (attach, square only, check(W, tol), make a point of the constraint(shape, dtype))
def _low_rank_point(shape, dtype, r=2, positive=True):
    n, k = shape[-2:]
    U = torch.linalg.qr(torch.randn(*shape[:-2], n, r, dtype=torch.float64))[0]
    V = torch.linalg.qr(torch.randn(*shape[:-2], k, r, dtype=torch.float64))[0]
    s = torch.rand(*shape[:-2], r, dtype=torch.float64) + 0.5
    return ((U * s.unsqueeze(-2)) @ V.mT).to(dtype)


def _psd_point(shape, dtype, r=None):
    n = shape[-1]
    r = n if r is None else r
    U = torch.linalg.qr(torch.randn(*shape[:-2], n, r, dtype=torch.float64))[0]
    s = torch.rand(*shape[:-2], r, dtype=torch.float64) + 0.5
    return ((U * s.unsqueeze(-2)) @ U.mT).to(dtype)


def _near_orth_point(shape, dtype, lam=0.3):
    n, k = shape[-2:]
    r = min(n, k)
    U = torch.linalg.qr(torch.randn(*shape[:-2], n, r, dtype=torch.float64))[0]
    V = torch.linalg.qr(torch.randn(*shape[:-2], k, r, dtype=torch.float64))[0]
    s = 1 + lam * (2 * torch.rand(*shape[:-2], r, dtype=torch.float64) - 1) * 0.9
    return ((U * s.unsqueeze(-2)) @ V.mT).to(dtype)


def _orth_point(shape, dtype):
    square = shape[-1] == shape[-2]
    return mantra.manifolds.Stiefel(special=square).random(*shape, dtype=dtype)


CONSTRAINTS = {
    "low_rank": (lambda m: mantra.low_rank(m, "weight", 2), False,
                 lambda W, t: rank_at_most(W, 2, t), _low_rank_point),
    "fixed_rank": (lambda m: mantra.fixed_rank(m, "weight", 2), False,
                   lambda W, t: rank_at_most(W, 2, t) and (svals(W)[..., 1] > 1e-3).all().item(), _low_rank_point),
    "positive_semidefinite": (lambda m: mantra.positive_semidefinite(m, "weight"), True,
                              lambda W, t: (W - W.mT).abs().max() < t and (eigs(W) > -t).all().item(), _psd_point),
    "psd_low_rank": (lambda m: mantra.positive_semidefinite_low_rank(m, "weight", 2), True,
                     lambda W, t: (eigs(W) > -t).all().item() and rank_at_most(W, 2, t),
                     lambda s, d: _psd_point(s, d, 2)),
    "psd_fixed_rank": (lambda m: mantra.positive_semidefinite_fixed_rank(m, "weight", 2), True,
                       lambda W, t: (eigs(W) > -t).all().item() and rank_at_most(W, 2, t)
                       and (eigs(W)[..., -2] > 1e-3).all().item(), lambda s, d: _psd_point(s, d, 2)),
    "almost_orthogonal": (lambda m: mantra.almost_orthogonal(m, "weight", lam=0.3), False,
                          lambda W, t: ((svals(W) - 1).abs() <= 0.3 + t).all().item(), _near_orth_point),
    "almost_orthogonal_tanh": (lambda m: mantra.almost_orthogonal(m, "weight", lam=0.3, f="tanh"), False,
                               lambda W, t: ((svals(W) - 1).abs() < 0.3).all().item(), _near_orth_point),
    "householder": (lambda m: mantra.orthogonal(m, "weight", triv="householder"), False, orth_check, _orth_point),
    "callable_triv": (lambda m: mantra.orthogonal(m, "weight", triv=cayley), False, orth_check, _orth_point),
    "low_rank_callable_triv": (lambda m: mantra.low_rank(m, "weight", 2, triv=torch.matrix_exp), False,
                               lambda W, t: rank_at_most(W, 2, t), _low_rank_point),
    "cholesky": (lambda m: mantra.positive_definite(m, "weight", triv="cholesky"), True,
                 lambda W, t: (W - W.mT).abs().max() < t and (eigs(W) > 0).all().item(), _psd_point),
    "symmetric": (lambda m: mantra.symmetric(m, "weight"), True,
                  lambda W, t: (W - W.mT).abs().max().item() == 0, lambda s, d: _psd_point(s, d) - 0.3),
    "skew_upper": (lambda m: mantra.skew(m, "weight", lower=False), True,
                   lambda W, t: (W + W.mT).abs().max().item() == 0,
                   lambda s, d: (lambda A: A - A.mT)(torch.randn(s, dtype=d))),
}
SHAPES = [(5, 5), (7, 3), (3, 6), (2, 3, 4, 4)]
PARAMS = [(name, shape, dtype) for name, (_, square, _, _) in CONSTRAINTS.items() for shape in SHAPES
          for dtype in (torch.float32, torch.float64) if not square or shape[-1] == shape[-2]]


class Holder(nn.Module):
    def __init__(self, shape, dtype):
        super().__init__()
        self.weight = nn.Parameter(0.3 * torch.randn(shape, dtype=dtype))


@pytest.mark.parametrize("name, shape, dtype", PARAMS,
                         ids=[f"{n}-{'x'.join(map(str, s))}-{str(d)[6:]}" for n, s, d in PARAMS])
def test_constraint_holds_through_assignment_and_training(name, shape, dtype):
    torch.manual_seed(0)
    attach, _, check, make = CONSTRAINTS[name]
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    m = attach(Holder(shape, dtype))
    assert m.weight.dtype == dtype and tuple(m.weight.shape) == shape
    assert check(m.weight, tol), "after attaching"
    mantra.sample(m, "weight")
    assert check(m.weight, tol), "after sample"
    # Assignment round-trips.
    X = make(shape, dtype)
    m.weight = X
    assert torch.allclose(m.weight, X, atol=50 * tol, rtol=0)
    # 100 Adam steps towards a target, rebasing every 10 steps (the weight does not move).
    target = torch.randn(shape, dtype=dtype)
    opt = torch.optim.Adam(m.parameters(), lr=0.02)
    start = (m.weight - target).pow(2).sum().item()
    for t in range(100):
        opt.zero_grad()
        (m.weight - target).pow(2).sum().backward()
        opt.step()
        if t % 10 == 9:
            before = m.weight.detach().clone()
            mantra.update_base(m, "weight")
            assert torch.allclose(m.weight, before, atol=10 * tol, rtol=0)
    assert check(m.weight, tol), "after training"
    assert (m.weight - target).pow(2).sum().item() < start


def test_assignment_off_the_constraint_is_a_value_error_with_the_reason():
    lin = mantra.low_rank(nn.Linear(5, 6), "weight", 2)
    with pytest.raises(ValueError, match="rank exceeds 2"):
        lin.weight = torch.randn(6, 5)
    psd = mantra.positive_semidefinite(nn.Linear(4, 4), "weight")
    with pytest.raises(ValueError, match="negative eigenvalue"):
        psd.weight = -torch.eye(4)
    with pytest.raises(ValueError, match="not symmetric"):
        psd.weight = torch.triu(torch.ones(4, 4))
    ao = mantra.almost_orthogonal(nn.Linear(4, 4), "weight", lam=0.1)
    with pytest.raises(ValueError, match="differs from 1 by"):
        ao.weight = 2 * torch.eye(4)
    h = mantra.orthogonal(nn.Linear(4, 4), "weight", triv="householder")
    with pytest.raises(ValueError, match="not a point of SO"):
        h.weight = torch.ones(4, 4)
    c = mantra.positive_definite(nn.Linear(3, 3), "weight", triv="cholesky")
    with pytest.raises(ValueError, match="not positive definite"):
        c.weight = torch.diag(torch.tensor([1.0, -1.0, 2.0]))
    s = mantra.symmetric(nn.Linear(3, 3), "weight")
    with pytest.raises(ValueError, match="not symmetric"):
        s.weight = torch.triu(torch.ones(3, 3))
    fr = mantra.fixed_rank(nn.Linear(5, 5), "weight", 3, f=torch.exp)  # a callable without inverse
    with pytest.raises(ValueError, match="no inverse"):
        fr.weight = _low_rank_point((5, 5), torch.float32, 3)


def test_symmetric_uses_one_triangle_like_geotorch():
    lin = nn.Linear(4, 4, bias=False)
    W = lin.weight.detach().clone()
    mantra.symmetric(lin, "weight")  # lower triangle mirrored
    assert torch.equal(lin.weight, W.tril() + W.tril(-1).mT)
    lin2 = nn.Linear(4, 4, bias=False)
    W2 = lin2.weight.detach().clone()
    mantra.skew(lin2, "weight", lower=False)
    assert torch.equal(lin2.weight, W2.triu(1) - W2.triu(1).mT)


def test_pair_f_assigns_and_maps():
    lin = mantra.fixed_rank(nn.Linear(5, 6).double(), "weight", 2, f=(torch.exp, torch.log))
    X = _low_rank_point((6, 5), torch.float64)
    lin.weight = X
    assert torch.allclose(lin.weight, X, atol=1e-10)
    fn = lin.parametrizations.weight[0]
    assert torch.allclose(svals(lin.weight)[:2], torch.exp(lin.parametrizations.weight.original1).sort(
        descending=True).values, atol=1e-10)
    assert fn.rank == 2


def test_householder_round_trip_and_its_singular_point():
    torch.manual_seed(3)
    for shape, special in (((5, 5), True), ((6, 3), False), ((3, 6), False)):
        X = mantra.manifolds.Stiefel(special=special).random(*shape, dtype=torch.float64)
        lin = mantra.orthogonal(nn.Linear(shape[1], shape[0]).double(), "weight", triv="householder")
        lin.weight = X
        assert torch.allclose(lin.weight, X, atol=1e-12)
    # X = I needs the identity instead of a reflection: the C++ explanation comes through.
    h = mantra.orthogonal(nn.Linear(3, 3).double(), "weight", triv="householder")
    with pytest.raises(ValueError, match="has no Householder vectors"):
        h.weight = torch.eye(3, dtype=torch.float64)
