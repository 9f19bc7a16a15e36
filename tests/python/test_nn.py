"""mantra.nn.Linear: torch.nn.Linear's drop-in with C++ mantra::nn::Linear's options."""

import pytest
import torch
import torch.nn as nn

import mantra


def test_constraint_none_is_torch_linear_exactly():
    torch.manual_seed(0)
    ours = mantra.nn.Linear(7, 5, constraint="none")
    torch.manual_seed(0)
    ref = nn.Linear(7, 5)
    assert torch.equal(ours.weight, ref.weight) and torch.equal(ours.bias, ref.bias)  # same initialization
    x = torch.randn(3, 7)
    assert torch.equal(ours(x), ref(x))
    with torch.no_grad():
        ours.weight.normal_()
        ref.weight.copy_(ours.weight)
    assert torch.equal(ours(x), ref(x))
    assert isinstance(ours, nn.Linear)


@pytest.mark.parametrize("constraint, in_f, out_f", [
    ("orthogonal", 6, 4), ("orthogonal", 4, 6), ("grassmannian", 3, 7), ("sphere", 5, 3), ("oblique", 3, 5),
    ("low_rank", 6, 5), ("fixed_rank", 6, 5), ("almost_orthogonal", 5, 5), ("invertible", 4, 4),
    ("positive_definite", 4, 4), ("positive_definite_cholesky", 4, 4), ("positive_semidefinite", 4, 4),
    ("symmetric", 4, 4), ("skew", 4, 4)])
def test_every_constraint_trains(constraint, in_f, out_f):
    torch.manual_seed(1)
    options = {"low_rank": dict(rank=2), "fixed_rank": dict(rank=2), "almost_orthogonal": dict(lam=0.2)}
    lin = mantra.nn.Linear(in_f, out_f, constraint=constraint, dtype=torch.float64, **options.get(constraint, {}))
    x, y = torch.randn(16, in_f, dtype=torch.float64), torch.randn(16, out_f, dtype=torch.float64)
    opt = torch.optim.Adam(lin.parameters(), lr=0.01)
    first = None
    for _ in range(30):
        opt.zero_grad()
        loss = (lin(x) - y).pow(2).mean()
        first = first if first is not None else loss.item()
        loss.backward()
        opt.step()
    assert loss.item() < first
    W = lin.weight.detach()
    assert torch.allclose(lin(x), x @ W.T + lin.bias)
    if constraint == "orthogonal":
        G = W @ W.T if out_f < in_f else W.T @ W
        assert torch.allclose(G, torch.eye(G.shape[0], dtype=torch.float64), atol=1e-12)
    if constraint == "almost_orthogonal":
        assert ((torch.linalg.svdvals(W) - 1).abs() < 0.2).all()


def test_scale_and_penalty():
    torch.manual_seed(2)
    lin = mantra.nn.Linear(6, 4, scale="per_row", orthogonality_penalty=0.5, dtype=torch.float64)
    with torch.no_grad():
        lin.scale.copy_(torch.arange(1.0, 5.0, dtype=torch.float64).view(4, 1))
    W = lin.effective_weight()
    Q = lin.weight
    assert torch.allclose(W, Q * lin.scale)
    x = torch.randn(3, 6, dtype=torch.float64)
    assert torch.allclose(lin(x), x @ W.T + lin.bias)
    G = W @ W.T
    expected = 0.25 * (G - torch.eye(4, dtype=torch.float64)).pow(2).sum()
    assert torch.allclose(lin.penalty(), expected, rtol=1e-12)
    iso = mantra.nn.Linear(3, 3, scale="isotropic")
    assert iso.scale.shape == (1,)
    assert mantra.nn.Linear(3, 3).penalty().item() == 0.0


def test_errors():
    with pytest.raises(ValueError, match="argument 'constraint' must be none, orthogonal"):
        mantra.nn.Linear(3, 3, constraint="unitary")
    with pytest.raises(ValueError, match="argument 'scale' must be none, isotropic or per_row"):
        mantra.nn.Linear(3, 3, scale="row")
    with pytest.raises(ValueError, match="arguments 'in_features' and 'out_features' must be positive"):
        mantra.nn.Linear(0, 3)
    with pytest.raises(ValueError, match="argument 'triv' must be one of"):
        mantra.nn.Linear(3, 3, triv="exp2")
    with pytest.raises(ValueError, match="argument 'rank'"):
        mantra.nn.Linear(3, 3, constraint="low_rank", rank=4)
    # Options the constraint does not use are refused, not ignored.
    with pytest.raises(ValueError, match="argument 'triv' has no effect with constraint 'sphere'"):
        mantra.nn.Linear(3, 3, constraint="sphere", triv="foo")
    with pytest.raises(ValueError, match="argument 'rank' has no effect with constraint 'sphere'"):
        mantra.nn.Linear(3, 3, constraint="sphere", rank=-5)
    with pytest.raises(ValueError, match="argument 'lam' has no effect with constraint 'orthogonal'"):
        mantra.nn.Linear(3, 3, lam=0.5)
