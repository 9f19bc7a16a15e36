"""geotorch compatibility of the API surface, written from geotorch's documented signatures
(docs/source/constraints.rst and the docstrings of geotorch.constraints): names, argument names and
order, defaults, return value (the module), and ValueError for bad input."""

import inspect

import pytest
import torch
import torch.nn as nn

import mantra

# name -> geotorch's documented parameters, in order, with their defaults (inspect.Parameter.empty: none).
E = inspect.Parameter.empty
GEOTORCH = {
    "symmetric": [("module", E), ("tensor_name", "weight"), ("lower", True)],
    "skew": [("module", E), ("tensor_name", "weight"), ("lower", True)],
    "sphere": [("module", E), ("tensor_name", "weight"), ("radius", 1.0), ("embedded", False)],
    "orthogonal": [("module", E), ("tensor_name", "weight"), ("triv", "expm")],
    "almost_orthogonal": [("module", E), ("tensor_name", "weight"), ("lam", 0.1), ("f", "sin"), ("triv", "expm")],
    "grassmannian": [("module", E), ("tensor_name", "weight"), ("triv", "expm")],
    "low_rank": [("module", E), ("tensor_name", E), ("rank", E), ("triv", "expm")],
    "fixed_rank": [("module", E), ("tensor_name", E), ("rank", E), ("f", "softplus"), ("triv", "expm")],
    "invertible": [("module", E), ("tensor_name", "weight"), ("f", "softplus"), ("triv", "expm")],
    "sln": [("module", E), ("tensor_name", "weight"), ("f", "softplus"), ("triv", "expm")],
    "positive_definite": [("module", E), ("tensor_name", "weight"), ("f", "softplus"), ("triv", "expm")],
    "positive_semidefinite": [("module", E), ("tensor_name", "weight"), ("triv", "expm")],
    "positive_semidefinite_low_rank": [("module", E), ("tensor_name", E), ("rank", E), ("triv", "expm")],
    "positive_semidefinite_fixed_rank": [("module", E), ("tensor_name", E), ("rank", E), ("f", "softplus"),
                                         ("triv", "expm")],
}


@pytest.mark.parametrize("name", sorted(GEOTORCH))
def test_signature_matches_geotorch(name):
    params = list(inspect.signature(getattr(mantra, name)).parameters.values())
    assert [(p.name, p.default) for p in params] == GEOTORCH[name]


CALLS = {
    "symmetric": lambda m: mantra.symmetric(m),
    "skew": lambda m: mantra.skew(m),
    "sphere": lambda m: mantra.sphere(m),
    "orthogonal": lambda m: mantra.orthogonal(m),
    "almost_orthogonal": lambda m: mantra.almost_orthogonal(m),
    "grassmannian": lambda m: mantra.grassmannian(m),
    "low_rank": lambda m: mantra.low_rank(m, "weight", 2),
    "fixed_rank": lambda m: mantra.fixed_rank(m, "weight", 2),
    "invertible": lambda m: mantra.invertible(m),
    "sln": lambda m: mantra.sln(m),
    "alpha_stable": lambda m: mantra.alpha_stable(m),  # geotorch's Hurwitz (hurwitz.py, after 0.4.0)
    "positive_definite": lambda m: mantra.positive_definite(m),
    "positive_semidefinite": lambda m: mantra.positive_semidefinite(m),
    "positive_semidefinite_low_rank": lambda m: mantra.positive_semidefinite_low_rank(m, "weight", 2),
    "positive_semidefinite_fixed_rank": lambda m: mantra.positive_semidefinite_fixed_rank(m, "weight", 2),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_returns_the_module_and_parametrizes_with_torch(name):
    layer = nn.Linear(5, 5)
    assert CALLS[name](layer) is layer
    assert torch.nn.utils.parametrize.is_parametrized(layer, "weight")
    assert layer.weight.shape == (5, 5)


def test_geotorch_documented_examples():
    torch.manual_seed(0)
    layer = nn.Linear(20, 30)
    mantra.orthogonal(layer, "weight")
    assert torch.norm(layer.weight.T @ layer.weight - torch.eye(20)) < 1e-4
    layer = nn.Linear(20, 30)
    mantra.almost_orthogonal(layer, "weight", 0.5)
    S = torch.linalg.svdvals(layer.weight)
    assert ((S >= 0.5) & (S <= 1.5)).all()
    layer = nn.Linear(20, 30)
    mantra.low_rank(layer, "weight", 4)
    assert (torch.linalg.svdvals(layer.weight) > 1e-5).sum() <= 4
    layer = nn.Linear(20, 30)
    mantra.fixed_rank(layer, "weight", 5)
    assert (torch.linalg.svdvals(layer.weight) > 1e-5).sum() == 5
    layer = nn.Linear(20, 20)
    mantra.invertible(layer, "weight")
    assert torch.det(layer.weight) > 0
    layer = nn.Linear(20, 20)  # geotorch's sln example: det(layer.weight) = 1.0000
    mantra.sln(layer, "weight")
    assert abs(torch.det(layer.weight.double()).item() - 1) < 1e-4
    layer = nn.Linear(20, 20)
    mantra.positive_definite(layer, "weight")
    assert (torch.linalg.eigvalsh(layer.weight) > 0).all()
    layer = nn.Linear(20, 20)
    mantra.positive_semidefinite_fixed_rank(layer, "weight", 5)
    L = torch.linalg.eigvalsh(layer.weight)
    assert (L > -1e-5).all() and (L > 1e-5).sum() == 5
    layer = nn.Linear(20, 30)
    mantra.sphere(layer, "bias")
    assert abs(torch.norm(layer.bias).item() - 1) < 1e-5
    layer = nn.Linear(20, 30)
    mantra.sphere(layer, "weight", radius=2.0)
    assert torch.allclose(torch.norm(layer.weight, dim=-1), torch.full((30,), 2.0))
    conv = nn.Conv2d(20, 40, 3, 3)  # every 3×3 kernel orthogonal
    mantra.orthogonal(conv, "weight")
    K = conv.weight
    assert torch.norm(K.transpose(-2, -1) @ K - torch.eye(3, 3).repeat(40, 20, 1, 1)) < 1e-3
    layer = nn.Linear(30, 30)
    mantra.symmetric(layer, "weight")
    assert torch.allclose(layer.weight, layer.weight.T)
    mantra.skew(nn.Linear(30, 30), "weight")
    # Assigning a point (geotorch's README: layer.weight = torch.eye(128, 64)).
    layer = nn.Linear(64, 128)
    mantra.orthogonal(layer, "weight")
    layer.weight = torch.eye(128, 64)
    assert torch.allclose(layer.weight, torch.eye(128, 64), atol=1e-6)


@pytest.mark.parametrize("call", [
    lambda: mantra.orthogonal(nn.Linear(4, 4), "bias"),                    # a vector (geotorch: VectorError)
    lambda: mantra.low_rank(nn.Linear(4, 4), "bias", 1),
    lambda: mantra.symmetric(nn.Linear(4, 3), "weight"),                   # not square (NonSquareError)
    lambda: mantra.skew(nn.Linear(4, 3), "weight"),
    lambda: mantra.positive_definite(nn.Linear(4, 3), "weight"),
    lambda: mantra.positive_semidefinite(nn.Linear(4, 3), "weight"),
    lambda: mantra.invertible(nn.Linear(4, 3), "weight"),
    lambda: mantra.sln(nn.Linear(4, 3), "weight"),
    lambda: mantra.sln(nn.Linear(4, 4), "weight", triv="cayley"),
    lambda: mantra.low_rank(nn.Linear(4, 3), "weight", 4),                 # rank too large (RankError)
    lambda: mantra.fixed_rank(nn.Linear(4, 3), "weight", 0),
    lambda: mantra.positive_semidefinite_low_rank(nn.Linear(4, 4), "weight", 5),
    lambda: mantra.almost_orthogonal(nn.Linear(4, 4), "weight", lam=1.5),
    lambda: mantra.almost_orthogonal(nn.Linear(4, 4), "weight", f="cos"),
    lambda: mantra.orthogonal(nn.Linear(4, 4), "weight", triv="exp2"),
    lambda: mantra.sphere(nn.Linear(4, 4), "weight", radius=-1.0),
    lambda: mantra.orthogonal(nn.Linear(4, 4), "weigth"),
], ids=lambda c: "")
def test_bad_input_is_a_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_assigning_off_the_manifold_is_a_value_error():
    layer = mantra.orthogonal(nn.Linear(4, 4), "weight")
    with pytest.raises(ValueError):  # geotorch: InManifoldError, a ValueError
        layer.weight = torch.ones(4, 4)


@pytest.mark.parametrize("lam", [0.0, 1.0])
def test_almost_orthogonal_accepts_geotorchs_whole_lam_range(lam):
    """geotorch's lam is in [0, 1]: 0 gives orthogonal weights (every singular value 1), 1 the
    interval [0, 2]; assignment of a value in range round-trips at both ends."""
    torch.manual_seed(0)
    layer = mantra.almost_orthogonal(nn.Linear(5, 5).double(), "weight", lam=lam)
    S = torch.linalg.svdvals(layer.weight.detach())
    assert ((S >= 1 - lam - 1e-12) & (S <= 1 + lam + 1e-12)).all()
    Q = torch.linalg.qr(torch.randn(5, 5, dtype=torch.float64))[0]
    X = Q * (1 + lam * torch.linspace(-0.9, 0.9, 5, dtype=torch.float64))
    layer.weight = X
    assert (layer.weight - X).abs().max().item() <= 1e-10
