"""Assignment is atomic (succeeds or changes nothing) and converts other floating dtypes;
loaded state is checked (the constraint's identity, the base on its manifold) before anything
changes, and a float32 state loaded into a float64 model is re-projected."""

import math

import pytest
import torch
import torch.nn as nn

import mantra
from test_compile_export import CONSTRAINTS, N


def layer(constrain, dtype, seed):
    torch.manual_seed(seed)
    lin = nn.Linear(N, N, bias=False).to(dtype)
    constrain(lin)
    with torch.no_grad():
        for p in lin.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return lin


def snapshot(lin):
    """The constraint's state (torch's load_state_dict is not atomic across modules: a Linear's
    bias loads even when its weight's parametrization refuses its state)."""
    return {k: v.clone() for k, v in lin.state_dict().items() if isinstance(v, torch.Tensor) and "parametrizations" in k}


ASSIGNABLE = [c for c in CONSTRAINTS if c[0] != "positive_definite_f"]  # a callable f without f_inv


@pytest.mark.parametrize("name, constrain", ASSIGNABLE, ids=[c[0] for c in ASSIGNABLE])
def test_assignment_converts_dtypes_and_is_atomic(name, constrain):
    lin = layer(constrain, torch.float32, 0)
    X = layer(constrain, torch.float64, 1).weight.detach()  # a value of the constraint, float64
    lin.weight = X
    assert lin.weight.dtype == torch.float32
    assert (lin.weight.double() - X).abs().max().item() <= 1e-5 * max(1.0, X.abs().max().item()), name
    before, W = snapshot(lin), lin.weight.detach().clone()
    bad = X.clone()
    bad[0, 0] = math.nan
    with pytest.raises(ValueError):
        lin.weight = bad
    assert torch.equal(lin.weight, W), name
    after = snapshot(lin)
    assert all(torch.equal(before[k], after[k]) for k in before), name


def test_load_refuses_another_constraint_and_a_base_off_the_manifold():
    torch.manual_seed(0)
    saved = mantra.orthogonal(nn.Linear(N, N), "weight").state_dict()
    for other in (lambda m: mantra.orthogonal(m, "weight", triv="qr"),
                  lambda m: mantra.orthogonal(m, "weight", triv="cayley"), mantra.oblique, mantra.invertible,
                  lambda m: mantra.grassmannian(m, "weight")):
        target = nn.Linear(N, N)
        other(target)
        before = snapshot(target)
        with pytest.raises(RuntimeError, match="the state was saved from"):
            target.load_state_dict(saved)
        assert all(torch.equal(before[k], v) for k, v in snapshot(target).items())
    target = mantra.orthogonal(nn.Linear(N, N), "weight")
    W = target.weight.detach().clone()
    for tampered in (torch.randn(N, N), torch.diag(torch.tensor([-1.0] + [1.0] * (N - 1)))):
        state = dict(saved)
        state["parametrizations.weight.0.base"] = tampered
        with pytest.raises(RuntimeError, match="the saved base is not a point of SO"):
            target.load_state_dict(state)
        assert torch.equal(target.weight, W)
    target.load_state_dict(saved)  # the untampered state loads
    assert torch.equal(target.parametrizations.weight[0].base, saved["parametrizations.weight.0.base"])


def test_float32_state_into_a_float64_model_is_reprojected():
    torch.manual_seed(2)
    lin = mantra.orthogonal(nn.Linear(8, 8), "weight")
    with torch.no_grad():
        lin.parametrizations.weight.original.normal_(std=0.1)
    mantra.update_base(lin, "weight")
    saved = lin.state_dict()
    target = mantra.orthogonal(nn.Linear(8, 8, dtype=torch.float64), "weight")
    target.load_state_dict(saved)
    W = target.weight
    assert W.dtype == torch.float64
    assert (W.T @ W - torch.eye(8, dtype=torch.float64)).abs().max().item() < 1e-13
    assert (W - lin.weight.double()).abs().max().item() < 1e-5
