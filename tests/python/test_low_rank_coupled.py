"""Low rank coupled with oblique / sphere / stacked Stiefel (issue 13), from Python.

The manifolds (bound C++ classes), the constraints low_rank_oblique / low_rank_sphere /
low_rank_stacked_stiefel (values feasible, assignment, rebase, training), the cross-language
equality of the weights (C++ side: mantra._C.testing.cpp_low_rank_coupled, agreement to 1e-12
in float64), and the weight-normalized low-rank option of mantra.nn.Linear.
"""

import pickle

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import mantra
from mantra import _C
from mantra.parametrize import CoupledLowRankParametrization

LRO, LRS, LRSS = mantra.manifolds.LowRankOblique, mantra.manifolds.LowRankSphere, mantra.manifolds.LowRankStackedStiefel
D = torch.float64


def max_abs(t):
    return t.abs().max().item()


# ---------------------------------------------------------------- manifolds

@pytest.mark.parametrize("M", [LRO(8, 6, 3), LRS(7, 4, 2), LRSS(6, 5, 3, 2), LRO(5, 5, 5, "exp"), LRSS(6, 4, 3, 3, "qr")],
                         ids=lambda M: M.spec)
def test_manifold_protocol_from_python(M):
    torch.manual_seed(0)
    P = M.random(2, M.m + M.n, M.rank, dtype=D)
    assert P.shape == (2, M.m + M.n, M.rank)
    assert M.check_point(P, 1e-12) == ""
    G = torch.randn_like(P)
    T = M.proj_tangent(P, G)
    assert max_abs(M.proj_tangent(P, T) - T) < 1e-13
    Y, U = M.retract_transport(P, 0.3 * T, T)
    assert M.check_point(Y, 1e-12) == ""
    assert max_abs(M.proj_tangent(Y, U) - U) < 1e-12
    # First order: R(tξ) − P − tξ = O(t²).
    e3 = (M.retract(P, 1e-3 * T) - P - 1e-3 * T).norm().item()
    e4 = (M.retract(P, 1e-4 * T) - P - 1e-4 * T).norm().item()
    assert e4 / e3 < 0.02
    X = M.compose(P)
    assert X.shape == (2, M.m, M.n)
    assert M.check_matrix(X, 1e-12) == ""
    assert max_abs(M.compose(M.factor(X)) - X) < 1e-12
    H, V = M.split(P)
    assert torch.equal(M.join(H, V), P)
    assert max_abs(V.mT @ V - torch.eye(M.rank, dtype=D)) < 1e-12
    # Spec and pickling rebuild an equal manifold.
    assert _C.manifolds.from_spec(M.spec).spec == M.spec
    M2 = pickle.loads(pickle.dumps(M))
    assert type(M2) is type(M) and M2.spec == M.spec


def test_manifold_h_holds_on_the_weight():
    torch.manual_seed(1)
    X = LRO(9, 7, 2).compose(LRO(9, 7, 2).random(16, 2, dtype=D))
    assert max_abs(X.norm(dim=1) - 1) < 1e-12
    assert torch.linalg.matrix_rank(X).item() == 2
    X = LRS(9, 7, 2).compose(LRS(9, 7, 2).random(16, 2, dtype=D))
    assert abs(X.norm().item() - 1) < 1e-12
    X = LRSS(6, 7, 4, 3).compose(LRSS(6, 7, 4, 3).random(13, 4, dtype=D))
    for j in range(2):
        B = X[3 * j:3 * j + 3]
        assert max_abs(B @ B.T - torch.eye(3, dtype=D)) < 1e-12


def test_manifold_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match=r"argument 'rank' must be in \[1, min\(m, n\) = 5\]"):
        LRO(6, 5, 0)
    with pytest.raises(ValueError, match="argument 'rank'"):
        LRS(6, 5, 6)
    with pytest.raises(ValueError, match="argument 'p'.*divide m = 7"):
        LRSS(7, 5, 3, 2)
    with pytest.raises(ValueError, match="not satisfiable"):
        LRSS(8, 5, 2, 4)
    with pytest.raises(ValueError, match="argument 'retraction'"):
        LRO(6, 5, 2, "cayley")
    with pytest.raises(ValueError, match=r"LowRankOblique.retract: argument 'X' must have shape \(..., m\+n, rank\)"):
        LRO(6, 5, 2).retract(torch.zeros(10, 2), torch.zeros(10, 2))


# ---------------------------------------------------------------- constraints

FUNCTIONS = [("low_rank_oblique", {"rank": 2}), ("low_rank_oblique", {"rank": 3, "triv": "expm"}),
             ("low_rank_sphere", {"rank": 2}), ("low_rank_sphere", {"rank": 1, "triv": "qr"}),
             ("low_rank_stacked_stiefel", {"rank": 3, "p": 2})]


def h_defect(fn, X, p=None):
    if fn == "low_rank_oblique":
        return max_abs(X.norm(dim=-1) - 1)
    if fn == "low_rank_sphere":
        return max_abs(torch.linalg.matrix_norm(X) - 1)
    B = X.unflatten(-2, (X.shape[-2] // p, p))
    return max_abs(B @ B.mT - torch.eye(p, dtype=X.dtype))


@pytest.mark.parametrize("fn, kwargs", FUNCTIONS, ids=lambda v: str(v))
def test_constraint_values_are_feasible_and_assignable(fn, kwargs):
    torch.manual_seed(2)
    layer = nn.Linear(7, 6).double()
    getattr(mantra, fn)(layer, "weight", **kwargs)
    p = layer.parametrizations.weight[0]
    assert isinstance(p, CoupledLowRankParametrization)
    assert layer.parametrizations.weight.original.shape == (6 + 7, kwargs["rank"])
    W = layer.weight.detach()
    assert W.shape == (6, 7)
    assert h_defect(fn, W, kwargs.get("p")) < 1e-12
    assert torch.linalg.svdvals(W)[kwargs["rank"]:].max().item() < 1e-12
    # Assigning a point of the set keeps it exactly; anything else is refused with the reason.
    M = p.manifold
    X = M.compose(M.random(13, kwargs["rank"], dtype=D))
    layer.weight = X
    assert max_abs(layer.weight - X) < 1e-12
    with pytest.raises(ValueError, match="rank exceeds"):
        layer.weight = torch.randn(6, 7, dtype=D)
    with pytest.raises(ValueError, match="must have shape"):
        layer.weight = torch.randn(6, 6, dtype=D)
    # A rebase does not move the weight.
    with torch.no_grad():
        layer.parametrizations.weight.original.add_(0.2 * torch.randn(13, kwargs["rank"], dtype=D))
    before = layer.weight.detach().clone()
    mantra.update_base(layer, "weight")
    assert max_abs(layer.weight - before) < 1e-10
    assert max_abs(layer.parametrizations.weight.original) == 0


def test_constraint_errors_name_the_argument():
    with pytest.raises(ValueError, match="low_rank_oblique: argument 'rank'"):
        mantra.low_rank_oblique(nn.Linear(5, 7), "weight", 6)
    with pytest.raises(ValueError, match="argument 'p'"):
        mantra.low_rank_stacked_stiefel(nn.Linear(5, 7), "weight", 3, 2)
    with pytest.raises(ValueError, match="argument 'triv' must be one of polar, qr, expm"):
        mantra.low_rank_sphere(nn.Linear(5, 7), "weight", 2, triv="cayley")


def test_batched_weights():
    torch.manual_seed(3)
    m = nn.Module()
    m.weight = nn.Parameter(torch.randn(3, 6, 5, dtype=D))
    mantra.low_rank_oblique(m, "weight", 2)
    assert m.weight.shape == (3, 6, 5)
    assert max_abs(m.weight.norm(dim=-1) - 1) < 1e-12
    assert (torch.linalg.matrix_rank(m.weight.detach()) == 2).all()


def test_dynamic_trivialization_fits_a_matrix_of_the_set():
    # Adam through the trivialization, rebasing every step (K = 1), on ½‖X − A‖² with A in
    # the set: the weight reaches A and stays feasible.
    torch.manual_seed(4)
    M = LRO(10, 8, 2)
    A = M.compose(M.random(18, 2, dtype=D))
    layer = nn.Linear(8, 10).double()
    mantra.low_rank_oblique(layer, "weight", 2)
    opt = mantra.optim.DynamicTrivialization(torch.optim.Adam(layer.parameters(), lr=0.02), layer, 1)
    for _ in range(1500):
        opt.zero_grad()
        loss = 0.5 * (layer.weight - A).pow(2).sum()
        loss.backward()
        opt.step()
    assert (layer.weight - A).norm().item() < 1e-4
    assert max_abs(layer.weight.norm(dim=1) - 1) < 1e-12


def test_riemannian_sgd_on_the_manifold_recovers_the_top_singular_pair():
    torch.manual_seed(5)
    M = LRS(9, 7, 1)
    A = torch.randn(9, 7, dtype=D)
    U, S, Vh = torch.linalg.svd(A)
    P = M.random(16, 1, dtype=D).requires_grad_()
    opt = mantra.optim.RiemannianSGD([P], lr=0.2, manifold=M)
    for _ in range(2000):
        opt.zero_grad()
        (-(A * M.compose(P)).sum()).backward()
        opt.step()
    X = M.compose(P).detach()
    assert abs((A * X).sum().item() - S[0].item()) < 1e-10
    assert max_abs(X - torch.outer(U[:, 0], Vh[0])) < 1e-6


def test_float32_weights_stay_feasible_after_10000_steps():
    torch.manual_seed(6)
    M = LRO(12, 9, 4)
    P = M.random(21, 4)
    noise = [torch.randn(21, 4) for _ in range(16)]
    with torch.no_grad():
        for step in range(10000):
            T = M.proj_tangent(P, noise[step % 16])
            P = M.retract(P, T * (0.1 / T.norm()))
    X = M.compose(P).double()
    assert P.dtype == torch.float32
    assert max_abs(torch.diagonal(X @ X.T) - 1) <= 1e-5
    sv = torch.linalg.svdvals(X)
    assert (sv[4] / sv[0]).item() <= 1e-5


# ---------------------------------------------------------------- the same weights in C++ and Python

CROSS = [("low_rank_oblique", {"rank": 2}, (6, 5)), ("low_rank_oblique", {"rank": 3, "triv": "qr"}, (4, 7)),
         ("low_rank_oblique", {"rank": 2, "triv": "expm"}, (2, 6, 5)),
         ("low_rank_sphere", {"rank": 2}, (6, 5)), ("low_rank_sphere", {"rank": 1, "triv": "expm"}, (3, 8)),
         ("low_rank_stacked_stiefel", {"rank": 3, "p": 2}, (6, 5)),
         ("low_rank_stacked_stiefel", {"rank": 3, "p": 3, "triv": "expm"}, (2, 6, 4)),
         ("low_rank_oblique", {"rank": 2, "init": "origin"}, (6, 5))]


@pytest.mark.parametrize("fn, kwargs, shape", CROSS, ids=lambda v: str(v))
def test_cpp_and_python_give_the_same_weights(fn, kwargs, shape):
    seed = 1234
    torch.manual_seed(seed)
    module = nn.Module()
    module.weight = nn.Parameter(torch.randn(shape, dtype=D))
    py_kwargs = {k: v for k, v in kwargs.items() if k != "init"}
    getattr(mantra, fn)(module, "weight", **py_kwargs)
    if "init" in kwargs:
        mantra.sample(module, "weight", init=kwargs["init"])
    original = module.parametrizations.weight.original
    torch.manual_seed(seed + 1)
    delta = 0.1 * torch.randn_like(original)
    with torch.no_grad():
        original.add_(delta)
        value = module.weight.detach().clone()
        mantra.update_base(module, "weight")
        rebased = module.weight.detach().clone()
    triv = kwargs.get("triv", _C.functional.low_rank_coupled_triv())
    cpp_value, cpp_rebased = _C.testing.cpp_low_rank_coupled(fn, list(shape), torch.empty(0, dtype=D), seed,
                                                             kwargs["rank"], kwargs.get("p", 1), triv,
                                                             kwargs.get("init", ""), {"v": delta})
    assert value.shape == cpp_value.shape == shape
    assert max_abs(value - cpp_value) <= 1e-12
    assert max_abs(rebased - cpp_rebased) <= 1e-12
    assert max_abs(rebased - value) <= 1e-10


def test_the_default_triv_is_the_cpp_one():
    import inspect
    for fn in ("low_rank_oblique", "low_rank_sphere", "low_rank_stacked_stiefel"):
        assert inspect.signature(getattr(mantra, fn)).parameters["triv"].default == "polar"
    assert _C.functional.low_rank_coupled_triv() == "polar"


# ---------------------------------------------------------------- weight-normalized low rank (Linear)

def test_linear_weight_normalized_low_rank():
    torch.manual_seed(7)
    layer = mantra.nn.Linear(20, 12, constraint="low_rank_oblique", rank=3, scale="per_row").double()
    with torch.no_grad():
        layer.scale.copy_(torch.rand(12, 1, dtype=D) + 0.5)
    W = layer.effective_weight()
    # W = diag(g) X, X of rank ≤ 3 with unit rows: the row norms are g.
    assert max_abs(W.norm(dim=1, keepdim=True) - layer.scale) < 1e-12
    assert torch.linalg.matrix_rank(W.detach()).item() == 3
    x = torch.randn(5, 20, dtype=D)
    # The factored forward is the dense one.
    assert max_abs(layer(x) - F.linear(x, W, layer.bias)) < 1e-12
    # Parameters: v of the factors (m+n)·r, g (m), bias (m).
    assert sum(t.numel() for t in layer.parameters()) == (12 + 20) * 3 + 12 + 12
    # It trains: gradients reach the factors and g.
    layer(x).pow(2).sum().backward()
    assert layer.parametrizations.weight.original.grad.abs().sum() > 0
    assert layer.scale.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="argument 'rank' has no effect"):
        mantra.nn.Linear(4, 3, constraint="oblique", rank=2)


def test_linear_low_rank_sphere_in_float32():
    torch.manual_seed(8)
    layer = mantra.nn.Linear(9, 6, constraint="low_rank_sphere", rank=2)
    x = torch.randn(4, 9)
    assert abs(layer.weight.norm().item() - 1) < 1e-5
    assert max_abs(layer(x) - F.linear(x, layer.weight, layer.bias)) < 1e-5


# ---------------------------------------------------------------- the ops, torch.compile and torch.export

def test_ops_pass_opcheck():
    torch.manual_seed(9)
    M = LRO(6, 5, 2)
    P = M.random(11, 2, dtype=D).requires_grad_()
    torch.library.opcheck(torch.ops.mantra.low_rank_coupled_compose, (P, M.spec))
    x, g, b = torch.randn(3, 5, dtype=D), torch.rand(6, 1, dtype=D), torch.randn(6, dtype=D)
    torch.library.opcheck(torch.ops.mantra.low_rank_coupled_linear, (x, P, M.spec, g, b))
    assert torch.autograd.gradcheck(lambda p: torch.ops.mantra.low_rank_coupled_linear(x, p, M.spec, g, b), (P,))
    with pytest.raises(ValueError, match="argument 'manifold' must be LowRankOblique, LowRankSphere or"):
        torch.ops.mantra.low_rank_coupled_compose(P, "Sphere(retraction=exp)")


class CoupledNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(5, 6, bias=False, dtype=D)
        mantra.low_rank_oblique(self.a, "weight", 2)
        self.b = nn.Linear(6, 4, bias=False, dtype=D)
        mantra.low_rank_stacked_stiefel(self.b, "weight", 3, 2, triv="expm")
        self.c = mantra.nn.Linear(4, 3, constraint="low_rank_oblique", rank=2, scale="per_row", dtype=D)

    def forward(self, x):
        return self.c(torch.tanh(self.b(torch.tanh(self.a(x)))))


def test_compile_fullgraph_and_export_trace_through():
    torch.manual_seed(10)
    net = CoupledNet()
    x = torch.randn(7, 5, dtype=D)
    eager = net(x)
    eager.sum().backward()
    grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    compiled = torch.compile(net, fullgraph=True, backend="aot_eager")
    out = compiled(x)
    out.sum().backward()
    assert max_abs(out - eager) < 1e-12
    assert all(max_abs(p.grad - g) < 1e-12 for p, g in zip(net.parameters(), grads))
    exported = torch.export.export(net, (x,))
    assert max_abs(exported.module()(x) - eager) < 1e-12


def test_pickle_deepcopy_and_state_dict_round_trip():
    import copy
    torch.manual_seed(11)
    layer = mantra.nn.Linear(5, 6, constraint="low_rank_oblique", rank=2, scale="per_row", dtype=D)
    x = torch.randn(3, 5, dtype=D)
    for other in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
        assert max_abs(other(x) - layer(x)) == 0
    fresh = mantra.nn.Linear(5, 6, constraint="low_rank_oblique", rank=2, scale="per_row", dtype=D)
    fresh.load_state_dict(layer.state_dict())
    assert max_abs(fresh(x) - layer(x)) == 0
    # A state of another coupled manifold (here another rank) is refused.
    with pytest.raises(RuntimeError):
        mantra.nn.Linear(5, 6, constraint="low_rank_oblique", rank=3, scale="per_row", dtype=D).load_state_dict(
            layer.state_dict())
