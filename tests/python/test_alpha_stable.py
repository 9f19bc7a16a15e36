"""mantra.alpha_stable: α-stable (Hurwitz) weights X = P (S − Q/2) − αI (geotorch's alpha_stable).

Every eigenvalue of the weight has real part below −α after attaching, assignment and training;
assignment factors X through a Lyapunov solve (checked against the Lyapunov identity); refused
assignments change nothing; the composition op has exact gradients (gradcheck).
"""

import copy

import pytest
import torch
import torch.nn as nn

import mantra
from mantra import _C

F = _C.functional


def abscissa(X):
    """The largest real part of the eigenvalues (over a batch too)."""
    return torch.linalg.eigvals(X.detach().double()).real.max().item()


def stable(n, alpha, margin=0.2, batch=(), dtype=torch.float64, seed=0):
    """A random non-normal matrix shifted so that its abscissa is −alpha − margin."""
    g = torch.Generator().manual_seed(seed)
    G = torch.randn(batch + (n, n), generator=g, dtype=torch.float64) + torch.triu(
        torch.randn(batch + (n, n), generator=g, dtype=torch.float64), 1)
    shift = torch.linalg.eigvals(G).real.amax(-1) + alpha + margin
    return (G - shift[..., None, None] * torch.eye(n, dtype=torch.float64)).to(dtype)


@pytest.mark.parametrize("triv", ["expm", "cholesky"])
@pytest.mark.parametrize("alpha", [0.0, 0.5, -0.3])
@pytest.mark.parametrize("shape", [(5, 5), (2, 4, 4)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_attach_assign_and_train_keep_the_weight_alpha_stable(triv, alpha, shape, dtype):
    torch.manual_seed(1)
    layer = nn.Module()
    layer.weight = nn.Parameter(torch.randn(shape, dtype=dtype))  # not stable: the sampled value is kept
    mantra.alpha_stable(layer, "weight", alpha=alpha, triv=triv)
    assert layer.weight.dtype == dtype and tuple(layer.weight.shape) == shape
    assert abscissa(layer.weight) < -alpha
    # Assignment round-trips (float64 to 1e-10; float32 to its rounding of the factors).
    X = stable(shape[-1], alpha, batch=shape[:-2], dtype=dtype, seed=2)
    layer.weight = X
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    assert (layer.weight - X).abs().max().item() <= tol * max(1.0, X.abs().max().item())
    # 200 Adam steps towards an unstable target (I), rebasing every 20: stable throughout.
    target = torch.eye(shape[-1], dtype=dtype).expand(shape)
    opt = torch.optim.Adam(layer.parameters(), lr=0.05)
    start = (layer.weight - target).pow(2).sum().item()
    for t in range(200):
        opt.zero_grad()
        (layer.weight - target).pow(2).sum().backward()
        opt.step()
        if t % 20 == 19:
            before = layer.weight.detach().clone()
            mantra.update_base(layer, "weight")
            assert (layer.weight - before).abs().max().item() <= 10 * tol * max(1.0, before.abs().max().item())
        if t % 25 == 0:
            assert abscissa(layer.weight) < -alpha
    assert abscissa(layer.weight) < -alpha
    assert (layer.weight - target).pow(2).sum().item() < start


def test_the_closest_alpha_stable_matrix_to_a_stable_target_is_the_target():
    torch.manual_seed(2)
    alpha = 0.1
    T = stable(5, alpha, margin=0.3, seed=5)
    layer = mantra.alpha_stable(nn.Linear(5, 5, bias=False).double(), "weight", alpha=alpha)
    adam = torch.optim.Adam(layer.parameters(), lr=0.02)
    sched = torch.optim.lr_scheduler.ExponentialLR(adam, 0.997)
    opt = mantra.optim.DynamicTrivialization(adam, layer, K=50)
    for t in range(2000):
        opt.zero_grad()
        (layer.weight - T).pow(2).sum().backward()
        opt.step()
        sched.step()
    assert (layer.weight - T).abs().max().item() < 1e-3


def test_assignment_solves_the_lyapunov_equation():
    alpha = 0.25
    for seed in range(5):
        X = stable(7, alpha, margin=0.05, seed=seed)  # near the boundary, non-normal
        P, Q, S = F.hurwitz_factors(X, alpha)
        B = X + alpha * torch.eye(7, dtype=torch.float64)
        Y = torch.linalg.inv(P)
        assert (torch.ops.mantra.hurwitz_compose(P, Q, S, alpha) - X).abs().max().item() <= 1e-10
        assert torch.linalg.eigvalsh(P).min().item() > 0
        assert (S + S.mT).abs().max().item() == 0
        assert torch.equal(Q, torch.eye(7, dtype=torch.float64))
        assert (B.mT @ Y + Y @ B + Q).abs().max().item() <= 1e-8 * max(1.0, Y.abs().max().item())


def test_refused_assignment_changes_nothing_and_names_the_reason():
    layer = mantra.alpha_stable(nn.Linear(4, 4).double(), "weight", alpha=0.5)
    before = copy.deepcopy(layer.state_dict())
    value = layer.weight.detach().clone()
    with pytest.raises(ValueError, match=r"not a point of the α-stable matrices: it is not α-stable: the largest real "
                                         r"part of its eigenvalues is -0\.4.*not below −alpha = -0\.5"):
        layer.weight = -0.4 * torch.eye(4, dtype=torch.float64)
    nan = -torch.eye(4, dtype=torch.float64)
    nan[1, 2] = float("nan")
    with pytest.raises(ValueError, match="it contains NaN or Inf"):
        layer.weight = nan
    with pytest.raises(ValueError, match=r"it must have shape \[4, 4\], got \[3, 3\]"):
        layer.weight = -torch.eye(3, dtype=torch.float64)
    assert torch.equal(layer.weight, value)
    for k, v in layer.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match=r"alpha_stable: 'weight' must be square"):
        mantra.alpha_stable(nn.Linear(4, 3), "weight")
    with pytest.raises(ValueError, match=r"alpha_stable: argument 'alpha' must be a finite float, got inf"):
        mantra.alpha_stable(nn.Linear(3, 3), "weight", alpha=float("inf"))
    with pytest.raises(ValueError, match=r"argument 'alpha' must be a finite float, got True"):
        mantra.alpha_stable(nn.Linear(3, 3), "weight", alpha=True)
    with pytest.raises(ValueError, match=r"argument 'triv' must be 'expm' or 'cholesky', got 'cayley'"):
        mantra.alpha_stable(nn.Linear(3, 3), "weight", triv="cayley")
    with pytest.raises(ValueError, match=r"hurwitz_compose: arguments 'P' and 'S' must have the same shape"):
        torch.ops.mantra.hurwitz_compose(torch.eye(3), torch.eye(3), torch.zeros(4, 4), 0.0)


def test_compose_gradcheck_and_the_geotorch_signature():
    torch.manual_seed(3)
    P, Q, S = (torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(lambda p, q, s: torch.ops.mantra.hurwitz_compose(p, q, s, 0.7), (P, Q, S))
    import inspect
    params = [(p.name, p.default) for p in inspect.signature(mantra.alpha_stable).parameters.values()]
    # geotorch's Hurwitz(size, alpha=0.0, triv="expm"), as a constraint function.
    assert params == [("module", inspect.Parameter.empty), ("tensor_name", "weight"), ("alpha", 0.0),
                      ("triv", "expm")]


def test_state_dict_round_trip_and_a_state_of_another_alpha_is_refused():
    torch.manual_seed(4)
    a = mantra.alpha_stable(nn.Linear(4, 4), "weight", alpha=0.2)
    with torch.no_grad():
        for p in a.parameters():
            p.add_(0.1 * torch.randn_like(p))
    b = mantra.alpha_stable(nn.Linear(4, 4), "weight", alpha=0.2)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.weight, b.weight)
    c = mantra.alpha_stable(nn.Linear(4, 4), "weight", alpha=0.3)
    with pytest.raises(RuntimeError, match="the state was saved from"):
        c.load_state_dict(a.state_dict())


def test_spectral_abscissa_binding_matches_eigenvalues():
    """mantra.diagnostics.spectral_abscissa (the C++ one alpha_stable checks with) against torch's
    eigenvalues, batched, in float64; a Jordan-like non-normal matrix too."""
    g = torch.Generator().manual_seed(5)
    X = torch.randn(3, 4, 5, 5, generator=g, dtype=torch.float64)
    a = mantra.diagnostics.spectral_abscissa(X)
    assert a.shape == (3, 4) and a.dtype == torch.float64
    torch.testing.assert_close(a, torch.linalg.eigvals(X).real.amax(-1), rtol=0, atol=1e-12)
    J = torch.tensor([[-0.5, 100.0], [0.0, -0.5]])
    assert abs(float(mantra.diagnostics.spectral_abscissa(J)) + 0.5) < 1e-12
