"""positive_definite under DynamicTrivialization at the learning rates of the reliability report
(issue 17, item 6): SGD(1e-2) and Adam(1e-2) with K = 1 on ‖Wx‖² once drove the base's
smallest eigenvalue to −1e-17 and eigh failed (SGD near step 40, Adam near step 200). The base
must stay positive definite and every loss finite, in float32 and float64."""

import pytest
import torch
import torch.nn as nn

import mantra


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("opt", ["sgd", "adam"])
@pytest.mark.parametrize("K", [1, 10])
def test_positive_definite_stays_positive_definite_under_dynamic_trivialization(dtype, opt, K):
    torch.manual_seed(0)
    layer = mantra.positive_definite(nn.Linear(6, 6, bias=False, dtype=dtype), "weight")
    params = list(layer.parameters())
    inner = torch.optim.SGD(params, lr=1e-2) if opt == "sgd" else torch.optim.Adam(params, lr=1e-2)
    optimizer = mantra.optim.DynamicTrivialization(inner, layer, K=K)
    x = torch.randn(32, 6, dtype=dtype)
    first = None
    for step in range(400):
        loss = layer(x).pow(2).sum(-1).mean()  # ‖Wx‖²: pulls every eigenvalue toward 0
        assert torch.isfinite(loss), f"step {step}: loss {loss.item()}"
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        W = layer.weight.double()
        eig = torch.linalg.eigvalsh(W)
    assert (W - W.mT).abs().max().item() <= (1e-5 if dtype == torch.float32 else 1e-12)
    assert eig.min().item() > 0, eig
    assert loss.item() < 0.5 * first  # it did train
    base = layer.parametrizations.weight[0].base.double()
    assert torch.linalg.eigvalsh(base).min().item() > 0


def test_positive_definite_dynamic_trivialization_K1_sgd_is_riemannian_sgd():
    # The SPD chart is u ↦ B^{1/2} expm(sym u) B^{1/2} (Manifold::chart_vector), so one SGD step
    # on u followed by a rebase is the affine-invariant Riemannian gradient step
    # Exp_B(−lr · B sym(G) B): the same iterates as RiemannianSGD on the SPD manifold.
    torch.manual_seed(1)
    dtype = torch.float64
    layer = mantra.positive_definite(nn.Linear(4, 4, bias=False, dtype=dtype), "weight")
    with torch.no_grad():
        layer.weight = mantra.manifolds.SPD().random(4, 4, dtype=dtype)  # a base away from I
    X = nn.Parameter(layer.weight.detach().clone())
    x = torch.randn(16, 4, dtype=dtype)
    T = torch.randn(16, 4, dtype=dtype)
    dtriv = mantra.optim.DynamicTrivialization(torch.optim.SGD(layer.parameters(), lr=0.05), layer, K=1)
    rsgd = mantra.optim.RiemannianSGD([X], lr=0.05, manifold=mantra.manifolds.SPD(), stabilize=0)
    for _ in range(20):
        for model_loss, opt in ((lambda: (x @ layer.weight.mT - T).pow(2).mean(), dtriv),
                                (lambda: (x @ X.mT - T).pow(2).mean(), rsgd)):
            opt.zero_grad()
            model_loss().backward()
            opt.step()
    assert (layer.weight - X).abs().max().item() <= 1e-10
