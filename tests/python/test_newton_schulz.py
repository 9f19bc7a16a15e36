"""The Newton–Schulz polar retraction ("newton_schulz") of Stiefel / SO(n) and of
orthogonal(triv="newton_schulz"): a fixed schedule (14 quintic + 6 cubic steps, matmuls only)
that equals the exact polar factor to rounding while ‖I + VᵀV‖₁ <= 10¹⁴ at a frame."""

import pytest
import torch

import mantra

mf = mantra.manifolds


def exact_polar(M):
    U, _, Vh = torch.linalg.svd(M.double(), full_matrices=False)
    return U @ Vh


def tangent(M, X, scale, seed):
    V = M.proj_tangent(X, torch.randn(X.shape, dtype=X.dtype, generator=torch.Generator().manual_seed(seed)))
    return scale * V / V.norm(dim=(-2, -1), keepdim=True)


def orthogonality(Y):
    Y = Y.double()
    return (Y.mT @ Y - torch.eye(Y.shape[-1], dtype=torch.float64)).abs().max().item()


SHAPES = [(9, 4), (6, 6), (3, 40, 7), (2, 5, 5)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-13), (torch.float32, 2e-6)])
@pytest.mark.parametrize("scale", [1e-3, 0.3, 3.0, 100.0])
def test_equals_the_exact_polar_factor_and_lands_on_the_manifold(shape, dtype, tol, scale):
    M = mf.Stiefel()
    X = M.random(shape, dtype=dtype)
    V = tangent(M, X, scale, seed=1)
    Y = M.retract(X, V, method="newton_schulz")
    assert Y.dtype == dtype and Y.shape == X.shape
    # The exact polar factor of X + V_t, V_t the tangent part of V (V is tangent here).
    assert (Y.double() - exact_polar(X + V)).abs().max().item() < tol * max(1.0, scale)
    assert orthogonality(Y) < tol
    assert (Y.double() - M.retract(X, V, method="polar").double()).abs().max().item() < tol * max(1.0, scale)


def test_edge_of_the_stated_domain_is_exact_and_a_rank_one_long_step_beyond_it_is_not():
    # ‖I + VᵀV‖₁ = 1 + s² for V = s·u vᵀ (one singular value s, the others of X + V are 1).
    M = mf.Stiefel()
    X = M.origin((8, 3), dtype=torch.float64)
    u = torch.zeros(8, 1, dtype=torch.float64)
    u[5] = 1.0
    v = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    inside = M.retract(X, 9e6 * u @ v, method="newton_schulz")       # ‖·‖₁ ≈ 8.1e13 <= 1e14
    assert orthogonality(inside) < 1e-13
    outside = M.retract(X, 1e10 * u @ v, method="newton_schulz")     # ≈ 1e20: beyond the schedule
    assert orthogonality(outside) > 1e-3


@pytest.mark.parametrize("shape", [(9, 4), (5, 5)])
def test_first_order(shape):
    # ‖R_X(tV) − (X + tV)‖ = O(t²): the ratio at t and t/10 is about 100.
    M = mf.Stiefel()
    X = M.random(shape, dtype=torch.float64)
    V = tangent(M, X, 1.0, seed=2)
    err = [(M.retract(X, t * V, method="newton_schulz") - (X + t * V)).norm().item() for t in (1e-2, 1e-3)]
    assert 80 < err[0] / err[1] < 120
    # R_X(0) = X to rounding.
    assert (M.retract(X, 0 * V, method="newton_schulz") - X).abs().max().item() < 1e-15


def test_gradcheck_and_second_order_agreement_with_polar():
    M = mf.Stiefel()
    X = M.random((7, 3), dtype=torch.float64)
    V = tangent(M, X, 0.5, seed=3).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: M.retract(X, v, method="newton_schulz"), (V,), eps=1e-6, atol=1e-6)
    g_ns = torch.autograd.grad(M.retract(X, V, method="newton_schulz").sum(), V)[0]
    g_polar = torch.autograd.grad(M.retract(X, V, method="polar").sum(), V)[0]
    assert (g_ns - g_polar).abs().max().item() < 1e-11


def test_special_orthogonal_stays_a_rotation():
    M = mf.Stiefel(special=True)
    X = M.random((6, 6), dtype=torch.float64)
    Y = M.retract(X, tangent(M, X, 0.4, seed=4), method="newton_schulz")
    assert M.check_point(Y, 1e-12) == ""
    assert torch.linalg.det(Y).item() > 0


def test_default_retraction_and_orthogonal_constraint():
    M = mf.Stiefel(retraction="newton_schulz")
    assert M.retractions[0] == "newton_schulz"
    layer = torch.nn.Linear(6, 10, dtype=torch.float64)
    mantra.orthogonal(layer, "weight", triv="newton_schulz")
    W = layer.weight
    assert (W.mT @ W - torch.eye(6, dtype=torch.float64)).abs().max().item() < 1e-13
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        (layer(torch.randn(4, 6, dtype=torch.float64)) ** 2).sum().backward()
        opt.step()
    W = layer.weight
    assert (W.mT @ W - torch.eye(6, dtype=torch.float64)).abs().max().item() < 1e-13


def test_riemannian_sgd_with_newton_schulz():
    M = mf.Stiefel()
    P = torch.nn.Parameter(M.random((12, 4), dtype=torch.float64))
    opt = mantra.optim.RiemannianSGD([P], lr=0.1, manifold=M, retraction="newton_schulz")
    for _ in range(3):
        opt.zero_grad()
        (P * torch.arange(48, dtype=torch.float64).view(12, 4)).sum().backward()
        opt.step()
    assert orthogonality(P.detach()) < 1e-13


def test_unknown_name_lists_newton_schulz():
    with pytest.raises(ValueError, match="newton_schulz"):
        mf.Stiefel(retraction="newton-schulz")
