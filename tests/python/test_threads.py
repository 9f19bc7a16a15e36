"""The CPU kernels' own parallel loops (at::parallel_for, built with OpenMP) give the 1-thread
results at 2 threads: per-matrix and per-row work bit for bit, reductions to rounding. The rest
of the suite runs at one thread (scripts/test.sh), so this is where the parallel paths run."""

import pytest
import torch

import mantra

ops = torch.ops.mantra


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def at_threads(n, fn):
    torch.set_num_threads(n)
    return fn()


def expm_value_and_grad(A, G):
    A = A.clone().requires_grad_()
    E = mantra.expm(A)
    (g,) = torch.autograd.grad(E, A, G)
    return E.detach(), g


def qr_value_and_grad(X, G):
    X = X.clone().requires_grad_()
    Q = mantra.qr_retraction(X)
    (g,) = torch.autograd.grad(Q, X, G)
    return Q.detach(), g


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(10000, 2, 2), (1024, 8, 8), (300, 16, 16), (64, 32, 32), (40, 11, 11)])
def test_tiny_expm_is_bitwise_the_same_at_two_threads(two_threads, dtype, shape):
    g = torch.Generator().manual_seed(1)
    # Norms spread over several plans (degrees and squarings) in one batch.
    A = torch.randn(shape, generator=g, dtype=dtype) * torch.logspace(-3, 1, shape[0], dtype=dtype)[:, None, None]
    G = torch.randn(shape, generator=g, dtype=dtype)
    one = at_threads(1, lambda: expm_value_and_grad(A, G))
    two = at_threads(2, lambda: expm_value_and_grad(A, G))
    for a, b in zip(one, two):
        assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(512, 16, 16), (64, 32, 32), (16, 80, 40)])
def test_qr_retraction_is_bitwise_the_same_at_two_threads(two_threads, dtype, shape):
    g = torch.Generator().manual_seed(2)
    X = torch.randn(shape, generator=g, dtype=dtype)
    G = torch.randn(shape, generator=g, dtype=dtype)
    one = at_threads(1, lambda: qr_value_and_grad(X, G))
    two = at_threads(2, lambda: qr_value_and_grad(X, G))
    for a, b in zip(one, two):
        assert torch.equal(a, b)


def test_orthogonal_rnn_at_two_threads(two_threads):
    g = torch.Generator().manual_seed(3)
    T, N, H = 30, 64, 48
    u = torch.randn(T, N, H, generator=g, dtype=torch.float64)
    h0 = torch.randn(N, H, generator=g, dtype=torch.float64)
    B = torch.linalg.qr(torch.randn(H, H, generator=g, dtype=torch.float64))[0]
    b = torch.randn(H, generator=g, dtype=torch.float64) * 0.1
    G = torch.randn(T, N, H, generator=g, dtype=torch.float64)

    def run():
        leaves = [t.clone().requires_grad_() for t in (u, h0, B, b)]
        out = ops.orthogonal_rnn(*leaves)
        return [out.detach()] + list(torch.autograd.grad(out, leaves, G))

    one, two = at_threads(1, run), at_threads(2, run)
    # The hidden states and the input gradient are per row: bit for bit. dL/dh0, dL/dB go
    # through BLAS and dL/db through per-thread partial sums: equal to rounding.
    assert torch.equal(one[0], two[0]) and torch.equal(one[1], two[1])
    for a, c in zip(one[2:], two[2:]):
        torch.testing.assert_close(a, c, rtol=1e-12, atol=1e-12)


def test_matrix_normal_linear_and_checks_at_two_threads(two_threads):
    g = torch.Generator().manual_seed(4)
    N, n, m = 700, 300, 200
    X = torch.randn(N, n, generator=g, dtype=torch.float64)
    M = torch.randn(n, m, generator=g, dtype=torch.float64)
    A = torch.randn(n, n, generator=g, dtype=torch.float64).tril(-1) * 0.1 + torch.eye(n, dtype=torch.float64)
    B = torch.randn(m, m, generator=g, dtype=torch.float64).tril(-1) * 0.1 + torch.eye(m, dtype=torch.float64)
    E = torch.randn(N, m, generator=g, dtype=torch.float64)

    def run():
        leaves = [t.clone().requires_grad_() for t in (X, M, A, B)]
        out = ops.matrix_normal_linear(leaves[0], leaves[1], leaves[2], leaves[3], E)
        return [out.detach()] + list(torch.autograd.grad(out.square().sum(), leaves))

    one, two = at_threads(1, run), at_threads(2, run)
    for a, c in zip(one, two):
        torch.testing.assert_close(a, c, rtol=1e-12, atol=1e-10)
    # The NaN check splits these 140,000 entries between the 2 threads (grain 65,536): a NaN in
    # the second thread's part is found.
    bad = E.clone()
    bad[-1, -1] = float("nan")
    torch.set_num_threads(2)
    with pytest.raises(ValueError, match="argument 'E' contains NaN"):
        ops.matrix_normal_linear(X, M, A, B, bad)


@pytest.mark.parametrize("n", [2, 3, 5, 40])
def test_expm_names_the_first_non_finite_matrix_at_two_threads(two_threads, n):
    # The plan pass is split across threads; the error names the first bad matrix of the
    # flattened batch whichever thread meets it (here one in each half, and NaN and Inf).
    batch = 6000 if n <= 5 else 40
    A = torch.zeros(batch, n, n, dtype=torch.float64)
    A[batch - 1, 0, 1] = float("nan")
    A[batch // 2 + 1, 1, 0] = float("inf")
    A[batch // 2 - 2, 0, 0] = float("nan")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        with pytest.raises(ValueError, match=f"contains NaN or Inf \\(matrix {batch // 2 - 2} of the flattened "
                                             f"batch of {batch}\\)"):
            mantra.expm(A)
