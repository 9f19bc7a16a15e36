"""mantra.manifolds from Python: the C++ classes, their retractions, autograd and errors."""

import pytest
import torch

from mantra import manifolds as mf

CASES = [
    (mf.Stiefel(), (7, 3)),
    (mf.Stiefel(special=True), (4, 4)),
    (mf.Grassmannian(), (6, 2)),
    (mf.Sphere(), (3, 5)),
    (mf.Oblique(), (5, 4)),
    (mf.FixedRank(2), (5, 4)),
    (mf.PSD(2), (4, 4)),
    (mf.GLPlus(3), (3, 3)),
    (mf.SPD(), (3, 3)),
    (mf.Lorentz(), (2, 4)),
    (mf.PoincareBall(), (2, 4)),
    (mf.Euclidean(), (3, 2)),
]
IDS = [f"{m.name}_{'x'.join(map(str, s))}" for m, s in CASES]


@pytest.mark.parametrize("M, shape", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_retraction_lands_on_the_manifold(M, shape, dtype):
    torch.manual_seed(0)
    X = M.random(*shape, dtype=dtype)
    assert X.dtype == dtype and tuple(X.shape) == shape
    atol = 1e-5 if dtype == torch.float32 else 1e-10
    assert M.check_point(X, atol) == ""
    assert M.check_point(M.origin(shape, dtype=dtype), atol) == ""
    V = M.proj_tangent(X, torch.randn(shape, dtype=dtype))
    V = 0.3 * V / V.norm()
    for method in M.retractions:
        Y = M.retract(X, V, method=method)
        assert M.check_point(Y, atol) == "", method
        Y2, U = M.retract_transport(X, V, V, method=method)
        assert torch.allclose(Y, Y2)
        # Transported vectors are tangent at the new point (projection leaves them alone).
        assert torch.allclose(M.proj_tangent(Y, U), U, atol=1e-4 if dtype == torch.float32 else 1e-10)


@pytest.mark.parametrize("M, shape", [c for c in CASES if c[0].name != "Euclidean"],
                         ids=[i for i, c in zip(IDS, CASES) if c[0].name != "Euclidean"])
def test_gradcheck_through_the_retraction(M, shape):
    torch.manual_seed(1)
    X = M.random(*shape, dtype=torch.float64)
    V = M.proj_tangent(X, torch.randn(shape, dtype=torch.float64))
    V = (0.2 * V / V.norm()).requires_grad_(True)
    method = M.retractions[0]
    assert torch.autograd.gradcheck(lambda v: M.retract(X, v, method=method), (V,), eps=1e-6, atol=1e-6)


def test_metric_and_distances():
    torch.manual_seed(2)
    spd = mf.SPD()
    A, B = spd.random(3, 3, dtype=torch.float64), spd.random(3, 3, dtype=torch.float64)
    # d(A, B) = ‖log_A(B)‖ in the affine-invariant metric at A.
    assert torch.allclose(spd.distance(A, B), spd.norm(A, spd.log(A, B)), rtol=1e-8)
    L = mf.Lorentz()
    x = L.random(5, dtype=torch.float64)
    assert abs(L.distance(x, x).item()) < 1e-7
    assert mf.Stiefel().inner(torch.eye(3, 2), torch.ones(3, 2), torch.ones(3, 2)).item() == 6.0


def test_bad_input_is_a_value_error_naming_the_argument():
    St = mf.Stiefel()
    X = St.random(5, 2)
    with pytest.raises(ValueError, match="argument 'V' must have the shape of 'X'"):
        St.retract(X, torch.zeros(2, 5))
    with pytest.raises(ValueError, match="argument 'method' must be one of"):
        St.retract(X, torch.zeros(5, 2), method="householder")
    with pytest.raises(ValueError, match="argument 'shape' must be square"):
        mf.Stiefel(special=True).random(4, 3)
    with pytest.raises(ValueError, match="argument 'rank'"):
        mf.FixedRank(4).random(3, 5)
    nan = torch.eye(3)
    nan[0, 1] = float("nan")
    assert "NaN" in St.check_point(nan)
    assert "determinant" in mf.Stiefel(special=True).check_point(torch.diag(torch.tensor([-1.0, 1.0, 1.0])))
    assert repr(St) == "mantra.manifolds.Stiefel()"
