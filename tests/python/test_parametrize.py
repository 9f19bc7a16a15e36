"""geotorch-style constraints on torch.nn modules (mantra.orthogonal, …) built on the C++ manifolds."""

import copy

import pytest
import torch
import torch.nn as nn

import mantra

SHAPES = [(5, 5), (7, 3), (3, 6), (2, 3, 4, 4)]
CONSTRAINTS = {
    "orthogonal_expm": (lambda m: mantra.orthogonal(m, "weight", triv="expm"), False),
    "orthogonal_cayley": (lambda m: mantra.orthogonal(m, "weight", triv="cayley"), False),
    "orthogonal_qr": (lambda m: mantra.orthogonal(m, "weight", triv="qr"), False),
    "orthogonal_polar": (lambda m: mantra.orthogonal(m, "weight", triv="polar"), False),
    "grassmannian": (lambda m: mantra.grassmannian(m, "weight"), False),
    "sphere": (lambda m: mantra.sphere(m, "weight"), False),
    "oblique": (lambda m: mantra.oblique(m, "weight"), False),
    "hyperbolic": (lambda m: mantra.hyperbolic(m, "weight"), False),
    "positive_definite": (lambda m: mantra.positive_definite(m, "weight"), True),
    "invertible": (lambda m: mantra.invertible(m, "weight"), True),
    "sln": (lambda m: mantra.sln(m, "weight"), True),
}
PARAMS = [(name, shape, dtype) for name, (_, square) in CONSTRAINTS.items() for shape in SHAPES
          for dtype in (torch.float32, torch.float64) if not square or shape[-1] == shape[-2]]


class Holder(nn.Module):
    def __init__(self, shape, dtype):
        super().__init__()
        self.weight = nn.Parameter(0.3 * torch.randn(shape, dtype=dtype))


def the_manifold(module):
    return module.parametrizations.weight[0].manifold


@pytest.mark.parametrize("name, shape, dtype", PARAMS,
                         ids=[f"{n}-{'x'.join(map(str, s))}-{str(d)[6:]}" for n, s, d in PARAMS])
def test_constraint_holds_through_assignment_and_training(name, shape, dtype):
    torch.manual_seed(0)
    attach, _ = CONSTRAINTS[name]
    atol = 1e-5 if dtype == torch.float32 else 1e-10
    m = attach(Holder(shape, dtype))
    M = the_manifold(m)
    assert m.weight.dtype == dtype and tuple(m.weight.shape) == shape
    assert M.check_point(m.weight.detach(), atol) == ""
    # Assignment round-trips.
    X = M.random(*shape, dtype=dtype)
    m.weight = X
    assert torch.allclose(m.weight, X, atol=10 * atol, rtol=0)
    # 100 Adam steps towards a new point, rebasing every 10 steps.
    target = M.random(*shape, dtype=dtype)
    opt = torch.optim.Adam(m.parameters(), lr=0.02)
    start = (m.weight - target).pow(2).sum().item()
    for t in range(100):
        opt.zero_grad()
        (m.weight - target).pow(2).sum().backward()
        opt.step()
        if t % 10 == 9:
            before = m.weight.detach().clone()
            mantra.update_base(m, "weight")
            assert torch.allclose(m.weight, before, atol=10 * atol, rtol=0)
            assert m.parametrizations.weight.original.abs().max().item() == 0
    assert M.check_point(m.weight.detach(), atol) == ""
    single_point = name == "grassmannian" and shape[-1] == shape[-2]  # Gr(n, n) is one point
    if not single_point:
        assert (m.weight - target).pow(2).sum().item() < start


def test_linear_and_conv_see_the_constrained_weight():
    torch.manual_seed(1)
    lin = mantra.orthogonal(nn.Linear(6, 4).double(), "weight")
    x = torch.randn(3, 6, dtype=torch.float64)
    W = lin.weight
    assert torch.allclose(W @ W.T, torch.eye(4, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(lin(x), x @ W.T + lin.bias)
    conv = mantra.orthogonal(nn.Conv2d(2, 3, 3), "weight")  # each 3×3 kernel in SO(3)
    K = conv.weight
    assert torch.allclose(K @ K.mT, torch.eye(3).expand(3, 2, 3, 3), atol=1e-5)
    assert torch.allclose(torch.linalg.det(K), torch.ones(3, 2), atol=1e-5)


def test_keeps_a_weight_that_is_already_a_point():
    Q = mantra.manifolds.Stiefel(special=True).random(4, 4)
    lin = nn.Linear(4, 4, bias=False)
    with torch.no_grad():
        lin.weight.copy_(Q)
    mantra.orthogonal(lin, "weight")
    assert torch.allclose(lin.weight, Q, atol=1e-7)


def test_state_dict_and_deepcopy_round_trip():
    torch.manual_seed(2)
    a = mantra.orthogonal(nn.Linear(5, 5), "weight")
    with torch.no_grad():
        a.parametrizations.weight.original.normal_()
    mantra.update_base(a, "weight")
    b = mantra.orthogonal(nn.Linear(5, 5), "weight")
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.weight, b.weight)
    assert "parametrizations.weight.0.base" in a.state_dict()
    c = copy.deepcopy(a)
    assert torch.equal(a.weight, c.weight)


def test_errors():
    lin = mantra.orthogonal(nn.Linear(4, 4), "weight")
    with pytest.raises(ValueError, match="not a point of SO: its determinant"):
        lin.weight = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="not a point of SO: .*not orthonormal"):
        lin.weight = torch.ones(4, 4)
    with pytest.raises(ValueError, match="argument 'triv' must be one of expm, cayley, qr, polar"):
        mantra.orthogonal(nn.Linear(4, 4), "weight", triv="householderx")
    with pytest.raises(ValueError, match="has no tensor 'weigth'"):
        mantra.orthogonal(nn.Linear(4, 4), "weigth")
    with pytest.raises(ValueError, match="'weight' of Linear is not parametrized"):
        mantra.update_base(nn.Linear(4, 4), "weight")
    with pytest.raises(ValueError, match="argument 'model' must be 'lorentz' or 'poincare'"):
        mantra.hyperbolic(nn.Linear(4, 4), "weight", model="klein")


def test_sample_inits_of_cpp():
    torch.manual_seed(5)
    lin = mantra.orthogonal(nn.Linear(6, 6).double(), "weight")
    mantra.sample(lin, "weight", init="torus")  # block-diagonal 2×2 rotations (C++'s RNN init)
    W = lin.weight.detach()
    mask = torch.block_diag(*[torch.ones(2, 2, dtype=torch.bool)] * 3)
    assert W[~mask].abs().max().item() < 1e-14
    assert torch.allclose(W.T @ W, torch.eye(6, dtype=torch.float64), atol=1e-13)
    mantra.sample(lin, "weight", init="origin")
    assert torch.equal(lin.weight.detach(), torch.eye(6, dtype=torch.float64))
    with pytest.raises(ValueError, match="argument 'init' must be uniform, origin, torus, henaff or cayley"):
        mantra.sample(lin, "weight", init="kaiming")
    tall = mantra.orthogonal(nn.Linear(3, 6), "weight")
    with pytest.raises(ValueError, match="needs square matrices"):
        mantra.sample(tall, "weight", init="henaff")


def test_update_base_reprojects_every_100_rebases():
    torch.manual_seed(6)
    lin = mantra.orthogonal(nn.Linear(5, 5), "weight")
    p = lin.parametrizations.weight[0]
    for _ in range(100):
        with torch.no_grad():
            lin.parametrizations.weight.original.normal_(std=0.3)
        mantra.update_base(lin, "weight")
    B = p.base.double()
    assert (B.T @ B - torch.eye(5, dtype=torch.float64)).abs().max().item() < 2e-6


@pytest.mark.parametrize("triv", ["cayley", "expm"])
def test_square_chart_gradcheck_and_manifold_error(triv):
    # The square SO(n) chart base·R(skew(baseᵀu)) through torch.ops.mantra.trivialize: the
    # cayley one solves with the base as right-hand side; both skip the tangent projection.
    torch.manual_seed(6)
    M = mantra.manifolds.Stiefel(special=True)
    base = M.random(6, 6, dtype=torch.float64)
    u = torch.randn(6, 6, dtype=torch.float64, requires_grad=True)
    chart = lambda v: torch.ops.mantra.trivialize(base, v, M.spec, triv, 1.0)
    assert torch.autograd.gradcheck(chart, (u,), eps=1e-6, atol=1e-8)
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        Y = torch.ops.mantra.trivialize(base.to(dtype), 3 * u.detach().to(dtype), M.spec, triv, 1.0)
        assert (Y.mT @ Y - torch.eye(6, dtype=dtype)).abs().max() < tol


@pytest.mark.parametrize("shape,special", [((5, 5), True), ((7, 3), False), ((2, 4, 4), False)])
def test_householder_map_gradcheck_and_forward_only_path(shape, special):
    # torch.ops.mantra.householder: the compact-WY (UT) form with gradients, LAPACK's
    # householder_product without; both are the same map.
    torch.manual_seed(9)
    v = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: torch.ops.mantra.householder(x, special, False), (v,), eps=1e-6,
                                    atol=1e-8)
    with torch.no_grad():
        lapack = torch.ops.mantra.householder(v, special, False)
    assert (torch.ops.mantra.householder(v, special, False) - lapack).abs().max() < 1e-12
