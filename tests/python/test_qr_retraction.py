"""torch.ops.mantra.qr_retraction from Python: agreement with torch.linalg.qr (signs fixed), both
branches (CholeskyQR2 and the Householder fallback) at condition numbers up to 1e6 (float32) and
1e9 (float64), gradients, dispatcher conformance, edge cases, errors, and its users (Stiefel's
"qr" retraction, orthogonal(triv="qr"), the Riemannian optimizers)."""

import pytest
import torch

import mantra

qr_retraction = torch.ops.mantra.qr_retraction


def householder_count():
    return torch.ops.mantra._kernel_calls("qr_retraction.householder")


def with_condition(shape, cond, dtype=torch.float64, seed=0):
    """Matrices U diag(s) Vᵀ (built in float64) with singular values from 1 down to 1/cond."""
    g = torch.Generator().manual_seed(seed)
    *batch, n, k = shape
    U = torch.linalg.qr(torch.randn(*batch, n, k, dtype=torch.float64, generator=g))[0]
    V = torch.linalg.qr(torch.randn(*batch, k, k, dtype=torch.float64, generator=g))[0]
    s = torch.logspace(0, -torch.log10(torch.tensor(float(cond))).item(), k, dtype=torch.float64)
    return ((U * s) @ V.mT).to(dtype)


def torch_qr_positive(X):
    Q, R = torch.linalg.qr(X)
    d = R.diagonal(dim1=-2, dim2=-1)
    return Q * torch.where(d < 0, -1.0, 1.0).to(X.dtype).unsqueeze(-2)


def orthogonality(Q):
    Q = Q.double()
    return (Q.mT @ Q - torch.eye(Q.shape[-1], dtype=torch.float64)).abs().max().item()


SHAPES = [(7, 3), (12, 12), (500, 20), (16, 8, 8), (3, 2, 40, 5)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_matches_torch_qr_with_sign_fix(shape, dtype, tol):
    X = with_condition(shape, 10.0, dtype, seed=1)
    Q = qr_retraction(X)
    assert Q.shape == X.shape and Q.dtype == dtype and Q.is_contiguous()
    ref = torch_qr_positive(X.double())
    assert (Q.double() - ref).abs().max().item() < tol


@pytest.mark.parametrize("dtype, cond, householder", [
    (torch.float32, 1.0, False), (torch.float32, 1e2, False),
    (torch.float32, 1e4, None), (torch.float32, 1e6, True),
    (torch.float64, 1e6, False), (torch.float64, 1e9, True),
])
@pytest.mark.parametrize("shape", [(200, 16), (64, 8, 8)])
def test_orthogonal_at_high_condition_numbers_on_both_branches(dtype, cond, householder, shape):
    # The branch threshold: CholeskyQR2 while ‖Q₁ᵀQ₁ − I‖_F <= 0.1 after its first pass
    # (estimated κ ≲ 1.3e3 in float32, 3e7 in float64), Householder beyond. Near the threshold
    # (None) the measured loss, not κ, decides: either branch, orthogonal all the same.
    X = with_condition(shape, cond, dtype, seed=2)
    before = householder_count()
    Q = qr_retraction(X)
    batch = X.numel() // (X.shape[-1] * X.shape[-2])
    if householder is not None:
        assert householder_count() - before == (batch if householder else 0)
    assert orthogonality(Q) < (1e-5 if dtype == torch.float32 else 1e-13)
    # X = QR with R = QᵀX upper triangular with a positive diagonal.
    Xd, Qd = X.double(), Q.double()
    R = Qd.mT @ Xd
    u = torch.finfo(dtype).eps
    assert (Qd @ R - Xd).norm().item() < 10 * u * Xd.norm().item() * X.shape[-1]
    assert (R.tril(-1).abs().amax(dim=(-2, -1)) < 1e3 * u * R.abs().amax(dim=(-2, -1))).all()
    assert (R.diagonal(dim1=-2, dim2=-1) > 0).all()


def test_mixed_batch_takes_each_branch_per_matrix():
    X = torch.stack([with_condition((30, 6), c, torch.float32, seed=3) for c in (1.0, 1e5, 10.0, 1e6)])
    before = householder_count()
    Q = qr_retraction(X)
    assert householder_count() - before == 2
    for i in range(4):
        assert torch.equal(Q[i], qr_retraction(X[i]))
    assert orthogonality(Q) < 1e-5


@pytest.mark.parametrize("shape", [(7, 3), (4, 4), (2, 6, 2), (3, 5, 5)])
def test_gradcheck(shape):
    X = with_condition(shape, 5.0, seed=4).requires_grad_(True)
    assert torch.autograd.gradcheck(qr_retraction, (X,), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("cond, householder", [(10.0, False), (1e9, True)])
@pytest.mark.parametrize("shape", [(40, 6), (3, 6, 6)])
def test_backward_equals_torch_qr_with_sign_fix(shape, cond, householder):
    X = with_condition(shape, cond, seed=5)
    G = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    A = X.clone().requires_grad_(True)
    before = householder_count()
    (qr_retraction(A) * G).sum().backward()
    assert (householder_count() - before > 0) == householder
    B = X.clone().requires_grad_(True)
    (torch_qr_positive(B) * G).sum().backward()
    rel = ((A.grad - B.grad).norm() / B.grad.norm()).item()
    assert rel < (1e-10 if cond < 100 else 1e-4)


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck(requires_grad, dtype):
    X = with_condition((2, 9, 4), 3.0, dtype, seed=7).requires_grad_(requires_grad)
    torch.library.opcheck(qr_retraction, (X,))
    torch.library.opcheck(torch.ops.mantra._qr_retraction_factors, (X.detach(),))
    Q, R = torch.ops.mantra._qr_retraction_factors(X.detach())
    G = torch.randn(2, 9, 4, dtype=dtype)
    torch.library.opcheck(torch.ops.mantra.qr_retraction_backward, (G, Q, R))


def test_factors_are_the_qr_with_positive_diagonal():
    X = with_condition((5, 10, 4), 20.0, seed=8)
    Q, R = torch.ops.mantra._qr_retraction_factors(X)
    assert torch.equal(Q, qr_retraction(X))
    assert torch.equal(R, R.triu()) and (R.diagonal(dim1=-2, dim2=-1) > 0).all()
    assert (Q @ R - X).abs().max().item() < 1e-14


@pytest.mark.parametrize("shape", [(0, 3, 2), (4, 0), (0, 0), (2, 0, 0)])
def test_empty(shape):
    X = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    Q = qr_retraction(X)
    assert Q.shape == X.shape
    Q.sum().backward()
    assert X.grad.shape == X.shape


def test_square_is_orthogonal_and_one_by_one_is_its_sign():
    X = with_condition((6, 6), 50.0, seed=9)
    Q = qr_retraction(X)
    assert orthogonality(Q) < 1e-14
    assert (Q - torch_qr_positive(X)).abs().max().item() < 1e-12
    assert torch.equal(qr_retraction(torch.tensor([[-3.0]])), torch.tensor([[-1.0]]))  # R = 3 > 0


def test_non_contiguous_inputs():
    base = with_condition((4, 20, 6), 8.0, seed=10)
    for X in (base.mT.contiguous().mT,            # column-major matrices
              base[:, ::2, :],                     # strided rows
              base[1].expand(3, 20, 6),            # a broadcast batch
              base.transpose(0, 1).transpose(0, 1)[..., :5]):
        assert not X.is_contiguous()
        Q = qr_retraction(X)
        assert (Q - torch_qr_positive(X)).abs().max().item() < 1e-12
    X = base.mT.contiguous().mT.requires_grad_(True)
    assert torch.autograd.gradcheck(qr_retraction, (X[:1, :8, :3],), eps=1e-6, atol=1e-7)


def test_rank_deficient_input_takes_householder_and_stays_orthonormal():
    # Documented fallback: Q is orthonormal, X = QR holds, R has a (near-)zero diagonal entry.
    X = with_condition((10, 4), 3.0, seed=11)
    X[:, 3] = X[:, 0] + X[:, 1]
    before = householder_count()
    Q = qr_retraction(X)
    assert householder_count() - before == 1
    assert orthogonality(Q) < 1e-14
    assert (Q @ (Q.mT @ X) - X).abs().max().item() < 1e-13
    assert (Q[:, :3] - torch_qr_positive(X)[:, :3]).abs().max().item() < 1e-12
    # The zero matrix: an orthonormal Q all the same.
    assert orthogonality(qr_retraction(torch.zeros(5, 2, dtype=torch.float64))) < 1e-15


def test_non_finite_input_gives_non_finite_output():
    X = with_condition((8, 3), 2.0, seed=12)
    X[2, 1] = float("nan")
    assert torch.isnan(qr_retraction(X)).any()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_types_compute_in_float32(dtype):
    X = with_condition((20, 4), 3.0, torch.float32, seed=13)
    Q = qr_retraction(X.to(dtype))
    assert Q.dtype == dtype
    assert torch.equal(Q, qr_retraction(X.to(dtype).float()).to(dtype))


@pytest.mark.parametrize("bad, message", [
    (torch.zeros(3), "argument 'X' must have at least 2 dimensions"),
    (torch.zeros(2, 3), "argument 'X' must be tall or square.*got shape \\[2, 3\\]"),
    (torch.zeros(3, 3, dtype=torch.int64), "argument 'X' must be float32 or float64.*got Long"),
])
def test_bad_input_names_the_argument(bad, message):
    with pytest.raises(ValueError, match="mantra::qr_retraction: " + message):
        qr_retraction(bad)


def test_bad_backward_arguments_name_them():
    Q, R = torch.ops.mantra._qr_retraction_factors(torch.randn(5, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="argument 'grad' must have the shape of 'Q'"):
        torch.ops.mantra.qr_retraction_backward(torch.zeros(5, 2, dtype=torch.float64), Q, R)
    with pytest.raises(ValueError, match="argument 'R' must have shape \\[3, 3\\]"):
        torch.ops.mantra.qr_retraction_backward(torch.zeros(5, 3, dtype=torch.float64), Q, R[:2])
    with pytest.raises(ValueError, match="argument 'grad' must have the dtype of 'Q' \\(Double\\), got Float"):
        torch.ops.mantra.qr_retraction_backward(torch.zeros(5, 3), Q, R)


def test_double_backward_is_a_clear_error():
    X = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(qr_retraction(X).sum(), X, create_graph=True)


def test_torch_compile_matches_eager():
    def loss(X):
        Q = qr_retraction(X)
        return (Q * Q.roll(1, -1)).sum() + Q[..., 0, :].sum()

    X = with_condition((3, 9, 4), 4.0, seed=14).requires_grad_(True)
    eager = torch.autograd.grad(loss(X), X)[0]
    compiled = torch.autograd.grad(torch.compile(loss, backend="aot_eager", fullgraph=True)(X), X)[0]
    assert torch.allclose(compiled, eager, rtol=1e-12, atol=1e-12)


def test_users_of_the_qr_retraction_run_the_operator():
    calls = lambda: (torch.ops.mantra._kernel_calls("qr_retraction.CPU")
                     + torch.ops.mantra._kernel_calls("_qr_retraction_factors.CPU"))
    M = mantra.manifolds.Stiefel()
    X = M.random((9, 4), dtype=torch.float64)
    V = M.proj_tangent(X, torch.randn(9, 4, dtype=torch.float64))
    before = calls()
    Y = M.retract(X, V, method="qr")
    assert calls() - before == 1
    assert (Y - torch_qr_positive(X + V)).abs().max().item() < 1e-12
    # orthogonal(triv="qr")
    layer = torch.nn.Linear(5, 7, dtype=torch.float64)
    mantra.orthogonal(layer, "weight", triv="qr")
    before = calls()
    layer.weight.sum().backward()
    assert calls() - before >= 1
    # RiemannianSGD with the qr retraction
    P = torch.nn.Parameter(M.random((9, 4), dtype=torch.float64))
    opt = mantra.optim.RiemannianSGD([P], lr=0.1, manifold=M, retraction="qr")
    (P * torch.randn(9, 4, dtype=torch.float64)).sum().backward()
    before = calls()
    opt.step()
    assert calls() - before >= 1
    assert orthogonality(P.detach()) < 1e-14


# The tiny-matrix CPU path (n <= 32, csrc/ops/cpu/tiny_qr_retraction.h): gradcheck on batches of
# square and tall tiny matrices (test_expm_qr_tiny.cpp checks it equals the general path).
@pytest.mark.parametrize("shape", [(6, 2, 2), (4, 3, 3), (3, 8, 8), (2, 16, 16), (3, 9, 4)])
def test_tiny_batch_gradcheck(shape):
    X = with_condition(shape, 3.0, seed=11).requires_grad_(True)
    assert torch.autograd.gradcheck(qr_retraction, (X,), eps=1e-6, atol=1e-7)


# The one-pass rule of the CPU kernels (csrc/ops/qr_retraction_rule.h): one CholeskyQR pass when
# the Gram matrix scaled to unit diagonal, C, has δ = min(Gershgorin radius, ‖C − I‖_F) <= 0.6
# (then κ(XD)² <= 4), two passes (or Householder) otherwise. Shapes: the tiny path (n <= 32), the
# general path on square-ish (TRSM) and tall (n >= 4k: explicit inverse) matrices.
ONE_PASS_SHAPES = [(16, 8, 8), (5, 20, 6), (3, 48, 48), (2, 40, 16), (2, 200, 16), (1, 3000, 40)]


def one_pass_count():
    return torch.ops.mantra._kernel_calls("qr_retraction.one_pass")


def with_correlation(shape, rho, scales=None, dtype=torch.float64, seed=0):
    """U M D⁻¹ with U orthonormal and MᵀM = C the identity but for C[0,1] = C[1,0] = rho, so that
    δ(C) = rho exactly (Gershgorin radius rho, ‖C − I‖_F = √2·rho); D⁻¹ scales the columns."""
    g = torch.Generator().manual_seed(seed)
    *batch, n, k = shape
    U = torch.linalg.qr(torch.randn(*batch, n, k, dtype=torch.float64, generator=g))[0]
    C = torch.eye(k, dtype=torch.float64)
    C[0, 1] = C[1, 0] = rho
    X = U @ torch.linalg.cholesky(C, upper=True)
    if scales is not None:
        X = X * torch.logspace(-scales, scales, k, dtype=torch.float64)
    return X.to(dtype)


def check_qr(X, Q, dtype):
    """Q orthonormal and X = QR (R = QᵀX upper, positive diagonal), stated tolerances: orthogonality
    4·√n·u (float32: also <= 1e-5, the issue's bound), ‖X − QR‖_F <= 4·k·u·‖X‖_F, Q equal to
    torch's Householder Q (signs fixed) within 1e-5 (float32) / 1e-12 (float64)."""
    u = torch.finfo(dtype).eps / 2
    n, k = X.shape[-2:]
    assert orthogonality(Q) <= min(4 * n ** 0.5 * u, 1e-5)
    Xd, Qd = X.double(), Q.double()
    R = Qd.mT @ Xd
    assert ((Qd @ R.triu() - Xd).norm(dim=(-2, -1)) <= 4 * k * u * Xd.norm(dim=(-2, -1))).all()
    assert (R.diagonal(dim1=-2, dim2=-1) > 0).all()
    assert (Qd - torch_qr_positive(Xd)).abs().max().item() < (1e-5 if dtype == torch.float32 else 1e-12)


@pytest.mark.parametrize("shape", ONE_PASS_SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("rho, one_pass", [(0.0, True), (0.55, True), (0.65, False), (0.9, False)])
@pytest.mark.parametrize("scales", [None, 3.0])
def test_one_pass_rule_both_sides_of_the_threshold(shape, dtype, rho, one_pass, scales):
    # scales: columns scaled from 1e-3 to 1e3 (CholeskyQR and the rule are scaling invariant).
    X = with_correlation(shape, rho, scales, dtype, seed=15)
    batch = X.numel() // (X.shape[-1] * X.shape[-2])
    before, before_h = one_pass_count(), householder_count()
    Q = qr_retraction(X)
    assert one_pass_count() - before == (batch if one_pass else 0)
    assert householder_count() - before_h == 0
    check_qr(X, Q, dtype)


def rule_delta(X):
    """δ of the one-pass rule per matrix, in float64: min(Gershgorin radius, ‖C − I‖_F)."""
    G = X.double().mT @ X.double()
    d = G.diagonal(dim1=-2, dim2=-1).rsqrt()
    C = G * d.unsqueeze(-1) * d.unsqueeze(-2) - torch.eye(G.shape[-1], dtype=torch.float64)
    return torch.minimum(C.abs().sum(-1).amax(-1), C.norm(dim=(-2, -1))).reshape(-1)


@pytest.mark.parametrize("shape", ONE_PASS_SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("step", [0.01, 0.5, 0.75, 1.0, 3.0, 10.0])
def test_retraction_points_slightly_and_far_off_the_manifold(shape, dtype, step):
    # X + V, V tangent of norm ‖V‖_F = `step` per matrix: the Gram matrix is I + VᵀV, so
    # δ <= ‖VᵀV‖_F <= step² and every step <= 0.77 takes one pass; beyond, each matrix takes it
    # exactly when its δ (recomputed here) is <= 0.6.
    g = torch.Generator().manual_seed(16)
    X0 = torch.linalg.qr(torch.randn(shape, dtype=torch.float64, generator=g))[0]
    G = torch.randn(shape, dtype=torch.float64, generator=g)
    V = G - X0 @ ((X0.mT @ G + G.mT @ X0) / 2)
    X = (X0 + step * V / V.norm(dim=(-2, -1), keepdim=True)).to(dtype)
    delta = rule_delta(X)
    assert (delta - 0.6).abs().min() > 1e-3  # no matrix at the threshold's rounding edge
    before = one_pass_count()
    Q = qr_retraction(X)
    taken = one_pass_count() - before
    assert taken == int((delta <= 0.6).sum())
    if step <= 0.77:
        assert taken == delta.numel()
    check_qr(X, Q, dtype)


@pytest.mark.parametrize("shape", ONE_PASS_SHAPES)
@pytest.mark.parametrize("dtype, cond", [(torch.float32, 1e2), (torch.float32, 1e6), (torch.float64, 1e2),
                                         (torch.float64, 1e9)])
def test_ill_conditioned_inputs_never_take_one_pass(shape, dtype, cond):
    # κ(X) >= 1e2 gives κ(XD) >= κ(X)/√k (van der Sluis) > 2 for these k: never one pass.
    X = with_condition(shape, cond, dtype, seed=17)
    before = one_pass_count()
    Q = qr_retraction(X)
    assert one_pass_count() - before == 0
    assert orthogonality(Q) < (1e-5 if dtype == torch.float32 else 1e-13)


def backward_inverse_count():
    return torch.ops.mantra._kernel_calls("qr_retraction_backward.inverse")


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-11), (torch.float32, 1e-4)])
@pytest.mark.parametrize("cond, inverse", [(1.0, True), (1.5, True), (30.0, False), (1e6, False)])
def test_backward_on_tall_matrices_both_sides_of_the_inverse_threshold(dtype, tol, cond, inverse):
    # Tall matrices (n >= 4k) apply R⁻ᵀ by the explicit inverse when ‖R‖_F‖R⁻¹‖_F <= 4k, by TRSM
    # beyond; either way the gradient equals torch's autograd of linalg.qr (in float64) to
    # tol·κ(X) relative.
    shape = (2, 300, 12)
    X = with_condition(shape, cond, dtype, seed=18)
    W = torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(19))
    A = X.clone().requires_grad_(True)
    before = backward_inverse_count()
    (qr_retraction(A) * W).sum().backward()
    assert backward_inverse_count() - before == (2 if inverse else 0)
    B = X.double().clone().requires_grad_(True)
    (torch_qr_positive(B) * W.double()).sum().backward()
    rel = ((A.grad.double() - B.grad).norm() / B.grad.norm()).item()
    assert rel < tol * cond


@pytest.mark.parametrize("shape", [(2, 48, 48), (2, 100, 40), (1, 70, 66)])
@pytest.mark.parametrize("cond", [1.5, 1e6])
def test_blocked_solve_and_its_trsm_fallback_forward_and_backward(shape, cond):
    # The general path's triangular solves go by blocks of 32 columns with the explicit inverses of
    # R's diagonal blocks where each is well conditioned (κ 1.5), by TRSM otherwise (κ 1e6, through
    # the CholeskyQR2 branch): both equal torch's Householder Q and its autograd gradient.
    X = with_condition(shape, cond, seed=20)
    W = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(21))
    A = X.clone().requires_grad_(True)
    Q = qr_retraction(A)
    (Q * W).sum().backward()
    B = X.clone().requires_grad_(True)
    Qt = torch_qr_positive(B)
    (Qt * W).sum().backward()
    assert (Q - Qt).abs().max().item() < 1e-13 * cond
    assert orthogonality(Q.detach()) < 1e-13
    assert ((A.grad - B.grad).norm() / B.grad.norm()).item() < 1e-12 * cond


@pytest.mark.parametrize("shape", [(100, 40), (3000, 40), (2, 48, 48)])
def test_general_path_rank_deficient_and_non_finite_inputs(shape):
    # The BLAS path (n > 32; tall and square): a rank-deficient matrix fails the Cholesky or loss
    # test and takes Householder (orthonormal Q, X = QQᵀX); NaN or Inf gives a non-finite Q.
    X = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(22))
    batch = X.numel() // (X.shape[-1] * X.shape[-2])
    Y = X.clone()
    Y[..., 3] = Y[..., 0] + Y[..., 1]
    before = householder_count()
    Q = qr_retraction(Y)
    assert householder_count() - before == batch
    assert orthogonality(Q) < 1e-13
    assert (Q @ (Q.mT @ Y) - Y).abs().max().item() < 1e-12
    for bad in (float("nan"), float("inf")):
        Z = X.clone()
        Z[..., 2, 1] = bad
        assert not torch.isfinite(qr_retraction(Z)).all()
