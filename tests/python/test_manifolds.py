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
    (mf.SL(3), (3, 3)),
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


def test_check_point_rejects_complex_and_an_invalid_atol():
    for M, shape in CASES:
        X = M.random(*shape, dtype=torch.float64)
        assert "dtype is ComplexDouble" in M.check_point(X.to(torch.complex128)), M.name
        for atol in (float("nan"), -1.0, float("inf")):
            with pytest.raises(ValueError, match="check_point: argument 'atol' must be finite and >= 0"):
                M.check_point(X, atol)


def test_mixed_devices_dtypes_and_ranks_are_value_errors_naming_the_argument():
    St = mf.Stiefel()
    X = St.random(5, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"Stiefel.retract: argument 'V' must be on the device of 'X' \(cpu\), got meta"):
        St.retract(X, torch.zeros(5, 3, dtype=torch.float64, device="meta"))
    with pytest.raises(ValueError, match=r"Stiefel.retract: argument 'V' must have the dtype of 'X' \(Double\), got Float"):
        St.retract(X, torch.zeros(5, 3))
    with pytest.raises(ValueError, match="SO.retract: argument 'X' must be square"):
        mf.Stiefel(special=True).retract(X, torch.zeros_like(X))
    with pytest.raises(ValueError, match="Sphere.retract: argument 'X' must have at least 1 dimensions"):
        mf.Sphere().retract(torch.tensor(1.0), torch.tensor(0.0))
    with pytest.raises(ValueError, match="argument 'X' must be a real floating tensor"):
        St.project(X.to(torch.complex128))


def test_project_and_distances_do_not_hide_points_off_the_manifold():
    for M in (mf.Stiefel(), mf.Stiefel(special=True), mf.Grassmannian()):
        X = torch.eye(4, dtype=torch.float64)
        X[0, 0] = float("inf")
        P = M.project(X)
        assert not torch.isfinite(P).all() and M.check_point(P) != "", M.name
    A = torch.eye(3, dtype=torch.float64)
    A[0, 1] = 0.5
    assert torch.isnan(mf.SPD().distance(torch.eye(3, dtype=torch.float64), A))
    assert torch.isnan(mf.PoincareBall().distance(torch.zeros(2), torch.tensor([3.0, 4.0])))


def test_stiefel_exp_pulls_a_drifted_frame_back():
    # The zero step X ← R_X(−P_X(X)/2) reached ‖XᵀX − I‖ ≈ 1 after 60 steps.
    St = mf.Stiefel()
    torch.manual_seed(3)
    X = St.random(20, 5, dtype=torch.float64) + 1e-6 * torch.randn(20, 5, dtype=torch.float64)
    for _ in range(60):
        X = St.retract(X, -0.5 * St.proj_tangent(X, X))
    assert (X.mT @ X - torch.eye(5, dtype=torch.float64)).abs().max() < 1e-14
    # Long float32 steps stay finite and on the manifold (inf/NaN from ‖V‖ = 1e4 before).
    X = St.random(20, 5)
    V = St.proj_tangent(X, torch.randn(20, 5))
    for size in (1e4, 1e6):
        assert St.check_point(St.retract(X, size * V / V.norm()), 1e-5) == ""
