"""mantra.optim.DynamicTrivialization from Python: known optima at K = 1, 100, ∞ over torch optimizers."""

import pytest
import torch
import torch.nn as nn

import mantra


def procrustes_problem(negative_det):
    torch.manual_seed(3)
    T = torch.randn(6, 6, dtype=torch.float64)
    if (torch.linalg.det(T) < 0) != negative_det:
        T[0].neg_()
    U, _, Vh = torch.linalg.svd(T)
    d = torch.ones(6, dtype=torch.float64)
    d[5] = torch.sign(torch.linalg.det(U @ Vh))
    R = (U * d) @ Vh  # the closest rotation
    return T, (R - T).pow(2).sum().item()


class Holder(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(6, 6, dtype=torch.float64))


@pytest.mark.parametrize("K", [1, 100, 0])
@pytest.mark.parametrize("negative_det", [False, True])
@pytest.mark.parametrize("make", ["adam", "rmsprop", "sgd"])
def test_procrustes_on_so_n_reaches_the_optimum(K, negative_det, make):
    T, best = procrustes_problem(negative_det)
    torch.manual_seed(7)
    m = mantra.orthogonal(Holder(), "weight")
    inner = {"adam": lambda p: torch.optim.Adam(p, lr=0.05),
             "rmsprop": lambda p: torch.optim.RMSprop(p, lr=0.01),
             "sgd": lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9)}[make](m.parameters())
    opt = mantra.optim.DynamicTrivialization(inner, m, K=K)
    sched = torch.optim.lr_scheduler.ExponentialLR(inner, gamma=0.998)
    for _ in range(2500):
        opt.zero_grad()
        (m.weight - T).pow(2).sum().backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        assert abs((m.weight - T).pow(2).sum().item() - best) < 1e-6 * best
        assert torch.allclose(m.weight @ m.weight.T, torch.eye(6, dtype=torch.float64), atol=1e-10)
        assert torch.linalg.det(m.weight).item() > 0


def test_errors_and_state():
    m = mantra.orthogonal(Holder(), "weight")
    with pytest.raises(ValueError, match="argument 'K' must be an int >= 0"):
        mantra.optim.DynamicTrivialization(torch.optim.SGD(m.parameters(), lr=0.1), m, K=-1)
    with pytest.raises(ValueError, match="does not own the tensor"):
        mantra.optim.DynamicTrivialization(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1), m, K=1)
    with pytest.raises(ValueError, match="has no mantra constraints"):
        mantra.optim.DynamicTrivialization(torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1), nn.Linear(2, 2))
    opt = mantra.optim.DynamicTrivialization(torch.optim.Adam(m.parameters(), lr=0.1), m, K=3)
    for _ in range(4):
        opt.zero_grad()
        m.weight.sum().backward()
        opt.step()
    state = opt.state_dict()
    assert state["steps"] == 4
