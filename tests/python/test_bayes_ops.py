"""torch.ops.mantra.matrix_normal_{sample,linear}: the convention Cov(vec_r W) = U⊗V by Monte Carlo,
gradients (gradcheck float64, zero gradient on the upper triangles), dispatcher conformance
(opcheck), torch.compile, and errors naming the argument."""

import pytest
import torch

import mantra  # noqa: F401  (registers torch.ops.mantra)

ops = torch.ops.mantra


def lower(n, g, dtype=torch.float64):
    L = torch.randn(n, n, generator=g, dtype=torch.float64).tril(-1) * 0.5
    return (L + torch.diag(torch.rand(n, generator=g, dtype=torch.float64) + 0.5)).to(dtype)


def problem(N, n, m, seed=0, dtype=torch.float64, junk_upper=True):
    g = torch.Generator().manual_seed(seed)
    M = torch.randn(n, m, generator=g, dtype=torch.float64).to(dtype)
    A, B = lower(n, g, dtype), lower(m, g, dtype)
    if junk_upper:  # the ops must ignore the upper triangles
        A = A + torch.randn(n, n, generator=g, dtype=torch.float64).triu(1).to(dtype)
        B = B + torch.randn(m, m, generator=g, dtype=torch.float64).triu(1).to(dtype)
    E = torch.randn(n, m, generator=g, dtype=torch.float64).to(dtype)
    X = torch.randn(N, n, generator=g, dtype=torch.float64).to(dtype)
    E2 = torch.randn(N, m, generator=g, dtype=torch.float64).to(dtype)
    bias = torch.randn(m, generator=g, dtype=torch.float64).to(dtype)
    return M, A, B, E, X, E2, bias


def test_monte_carlo_covariance_is_kron_u_v_of_row_stacking():
    g = torch.Generator().manual_seed(1)
    n, m, K, c = 3, 2, 40000, 400
    M, A, B = torch.randn(n, m, generator=g, dtype=torch.float64), lower(n, g), lower(m, g)
    U, V = A @ A.T, B @ B.T
    # c samples per call, side by side: mean [M ... M], column factor diag(B, ..., B).
    Mc, Bc = M.repeat(1, c), torch.block_diag(*[B] * c)
    S = torch.cat([ops.matrix_normal_sample(Mc, A, Bc, torch.randn(n, c * m, generator=g, dtype=torch.float64))
                   .reshape(n, c, m).permute(1, 0, 2) for _ in range(K // c)]).reshape(K, n * m)
    kron = torch.kron(U, V)
    se_mean = (kron.diagonal() / K).sqrt()
    assert ((S.mean(0) - M.reshape(-1)).abs() / se_mean).max() < 5
    cov = torch.cov(S.T)
    d = kron.diagonal()
    se = ((torch.outer(d, d) + kron ** 2) / K).sqrt()
    assert ((cov - kron).abs() / se).max() < 5
    assert ((cov - torch.kron(V, U)).abs() / se).max() > 20  # the other convention is rejected


def test_local_reparameterization_matches_wtx():
    g = torch.Generator().manual_seed(2)
    n, m, K = 4, 3, 40000
    M, A, B = torch.randn(n, m, generator=g, dtype=torch.float64), lower(n, g), lower(m, g)
    x = torch.randn(1, n, generator=g, dtype=torch.float64)
    O = ops.matrix_normal_linear(x.expand(K, n).contiguous(), M, A, B, torch.randn(K, m, generator=g, dtype=torch.float64))
    cov_ref = (x @ A @ A.T @ x.T).item() * (B @ B.T)
    se_mean = (cov_ref.diagonal() / K).sqrt()
    assert (((O.mean(0) - (x @ M).reshape(-1)).abs()) / se_mean).max() < 5
    d = cov_ref.diagonal()
    se = ((torch.outer(d, d) + cov_ref ** 2) / K).sqrt()
    assert ((torch.cov(O.T) - cov_ref).abs() / se).max() < 5


# The triangular products recurse on factors over 64 rows whose product is at least 2^18
# multiply-adds: (20, 100, 10) is all leaves, (30, 70, 65) mixed, (60, 200, 130) all recursive.
@pytest.mark.parametrize("N, n, m", [(4, 3, 2), (20, 100, 10), (30, 70, 65), (60, 200, 130)])
def test_values_and_gradients_equal_the_composition(N, n, m):
    M, A, B, E, X, E2, bias = [t.requires_grad_() for t in problem(N, n, m)]
    W = ops.matrix_normal_sample(M, A, B, E)
    O = ops.matrix_normal_linear(X, M, A, B, E2, bias)
    Wr = M + A.tril() @ E @ B.tril().T
    Or = X @ M + (X @ A.tril()).square().sum(1, keepdim=True).sqrt() * (E2 @ B.tril().T) + bias
    torch.testing.assert_close(W, Wr, rtol=1e-12, atol=1e-11)
    torch.testing.assert_close(O, Or, rtol=1e-12, atol=1e-11)
    GW, GO = torch.randn_like(W), torch.randn_like(O)
    inputs = (M, A, B, E, X, E2, bias)
    mine = torch.autograd.grad((W, O), inputs, (GW, GO))
    ref = torch.autograd.grad((Wr, Or), inputs, (GW, GO))
    for a, b in zip(mine, ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    assert mine[1].triu(1).abs().max() == 0 and mine[2].triu(1).abs().max() == 0


def test_gradcheck_float64():
    M, A, B, E, X, E2, bias = [t.requires_grad_() for t in problem(5, 4, 3, seed=3)]
    assert torch.autograd.gradcheck(ops.matrix_normal_sample, (M, A, B, E))
    assert torch.autograd.gradcheck(ops.matrix_normal_linear, (X, M, A, B, E2, bias))
    assert torch.autograd.gradcheck(lambda *a: ops.matrix_normal_linear(*a, None), (X, M, A, B, E2))


def test_opcheck():
    M, A, B, E, X, E2, bias = problem(5, 4, 3, seed=4, junk_upper=False)
    for rg in (False, True):
        args = [t.clone().requires_grad_(rg) for t in (M, A, B, E)]
        torch.library.opcheck(ops.matrix_normal_sample, tuple(args))
        args = [t.clone().requires_grad_(rg) for t in (X, M, A, B, E2, bias)]
        torch.library.opcheck(ops.matrix_normal_linear, tuple(args))
        torch.library.opcheck(ops.matrix_normal_linear, tuple(args[:5]))


def test_compile_fullgraph_matches_eager():
    M, A, B, E, X, E2, bias = problem(6, 5, 4, seed=5, dtype=torch.float32)

    def f(X, M, A, B, E2, bias):
        return torch.tanh(ops.matrix_normal_linear(X, M, A, B, E2, bias)).sum()

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(X, M, A, B, E2, bias), f(X, M, A, B, E2, bias), rtol=1e-6, atol=1e-6)


def test_same_noise_same_sample_and_generator_determinism():
    M, A, B, _, _, _, _ = problem(1, 4, 3, seed=6)
    e1 = torch.randn(4, 3, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    e2 = torch.randn(4, 3, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    assert torch.equal(ops.matrix_normal_sample(M, A, B, e1), ops.matrix_normal_sample(M, A, B, e2))


def test_bad_input_names_the_argument():
    M, A, B, E, X, E2, bias = problem(4, 3, 2, seed=7, junk_upper=False)
    cases = [
        (lambda: ops.matrix_normal_sample(M, torch.ones(3, 2, dtype=torch.float64), B, E), "argument 'A' must be a square"),
        (lambda: ops.matrix_normal_sample(M, A, torch.ones(2, 3, dtype=torch.float64), E), "argument 'B' must be a square"),
        (lambda: ops.matrix_normal_sample(M, torch.eye(4, dtype=torch.float64), B, E), "argument 'A' must be (n, n)"),
        (lambda: ops.matrix_normal_sample(M, A, B, E.T), "argument 'E' must have shape"),
        (lambda: ops.matrix_normal_sample(M.long(), A, B, E), "argument 'M' must be float32 or float64"),
        (lambda: ops.matrix_normal_sample(M, A.float(), B, E), "argument 'A' must have the dtype of 'M'"),
        (lambda: ops.matrix_normal_sample(M, A, B, E * float("nan")), "argument 'E' contains NaN"),
        (lambda: ops.matrix_normal_sample(M, A - torch.diag(A.diagonal()), B, E), "argument 'A' is a Cholesky factor"),
        (lambda: ops.matrix_normal_linear(X, M, A, -B, E2), "argument 'B' is a Cholesky factor"),
        (lambda: ops.matrix_normal_linear(X.T, M, A, B, E2), "argument 'X' must be (N, n)"),
        (lambda: ops.matrix_normal_linear(X, M, A, B, E), "argument 'E' must have shape"),
        (lambda: ops.matrix_normal_linear(X, M, A, B, E2, torch.zeros(3, dtype=torch.float64)), "argument 'bias'"),
        (lambda: ops.matrix_normal_linear(X * float("nan"), M, A, B, E2), "argument 'X' contains NaN"),
    ]
    for fn, needle in cases:
        with pytest.raises(ValueError, match=None) as err:
            fn()
        assert needle in str(err.value), (needle, str(err.value))


def test_value_checks_find_one_bad_entry_in_any_layout():
    # The checks are raw passes on contiguous float32/float64 data (in parallel chunks) and
    # reductions otherwise: one NaN anywhere, in either layout, and the smallest diagonal entry.
    M, A, B, E, X, E2, bias = problem(300, 400, 250, seed=8, junk_upper=False)
    for dtype in (torch.float32, torch.float64):
        Mf, Af, Bf, Ef = (t.to(dtype) for t in (M, A, B, E))
        big = Ef.clone()
        big[-1, -1] = float("nan")  # the last of 10⁵ entries: past the first parallel chunk
        with pytest.raises(ValueError, match="argument 'E' contains NaN"):
            ops.matrix_normal_sample(Mf, Af, Bf, big)
        strided = Mf.T.contiguous().T  # not contiguous: the reduction path
        strided[123, 45] = float("nan")
        with pytest.raises(ValueError, match="argument 'M' contains NaN"):
            ops.matrix_normal_sample(strided, Af, Bf, Ef)
        with pytest.raises(ValueError, match="argument 'M' contains NaN"):
            ops.matrix_normal_linear(X.to(dtype), strided, Af, Bf, E2.to(dtype))
        bad = Af.T.contiguous().T  # a strided factor: the diagonal read with its strides
        bad[200, 200], bad[300, 300] = -0.5, -2.0
        with pytest.raises(ValueError, match="got a diagonal entry -2"):
            ops.matrix_normal_sample(Mf, bad, Bf, Ef)
        ok = Af.T.contiguous().T
        torch.testing.assert_close(ops.matrix_normal_sample(Mf, ok, Bf, Ef), ops.matrix_normal_sample(Mf, Af, Bf, Ef))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nan_check_reads_every_nan_pattern_and_passes_infinities(dtype):
    # The raw check tests bit patterns: a NaN of either sign or any payload is one, ±inf and
    # the largest finite values are not (an infinite mean is the caller's business).
    M, A, B, E, X, E2, bias = problem(4, 40, 30, seed=9, junk_upper=False)
    M, A, B, E = (t.to(dtype) for t in (M, A, B, E))
    int_t, payloads = (torch.int32, [0x7FC00000, 0x7F800001, -0x00400000, -0x007FFFFF]) if dtype == torch.float32 \
        else (torch.int64, [0x7FF8000000000000, 0x7FF0000000000001, -0x0008000000000000, -0x000FFFFFFFFFFFFF])
    for bits in payloads:
        bad = E.clone()
        bad.view(-1)[517] = torch.tensor(bits, dtype=int_t).view(dtype)
        assert torch.isnan(bad.view(-1)[517])
        with pytest.raises(ValueError, match="argument 'E' contains NaN"):
            ops.matrix_normal_sample(M, A, B, bad)
    edge = M.clone()
    edge[0, 0], edge[1, 1], edge[2, 2] = float("inf"), float("-inf"), torch.finfo(dtype).max
    out = ops.matrix_normal_sample(edge, A, B, E)
    assert out[0, 0] == float("inf") and out[1, 1] == float("-inf")
