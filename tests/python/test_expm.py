"""torch.ops.mantra.expm from Python: accuracy, gradients, dispatcher conformance, errors."""

import numpy as np
import pytest
import torch

import mantra

U64 = torch.finfo(torch.float64).eps / 2
U32 = torch.finfo(torch.float32).eps / 2

# 1-norms slightly below the float64 bound of each Taylor degree (1, 2, 4, 8, 12, 18), then
# norms that need 2, 4, 7, 10 and 13 squarings.
NORMS_EACH_DEGREE = [1e-17, 2e-8, 3e-4, 4.5e-2, 0.29, 1.05]
NORMS_SQUARING = [2.5, 17.0, 130.0, 1000.0, 9000.0]


def random_matrix(n, norm1, skew=False, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    G = torch.randn(n, n, dtype=torch.float64, generator=g)
    if skew:
        G = G - G.T
    if norm1 > 0:
        G = G * (norm1 / G.abs().sum(0).max())
    else:
        G = G * 0
    return G.to(dtype)


def longdouble_expm(A):
    """exp(A) in 80-bit long double: scale to norm <= 1/8, 30 Taylor terms, square back."""
    a = A.detach().double().numpy().astype(np.longdouble)
    n = a.shape[0]
    s = 0
    norm = np.abs(a).sum(axis=0).max() if n else 0
    while norm > 0.125:
        norm /= 2
        s += 1
    a = a / np.longdouble(2) ** s
    result = np.eye(n, dtype=np.longdouble)
    term = np.eye(n, dtype=np.longdouble)
    for k in range(1, 31):
        term = term @ a / k
        result = result + term
    for _ in range(s):
        result = result @ result
    return torch.from_numpy(result.astype(np.float64))


def rel_error(x, ref):
    return ((x.double() - ref).norm() / ref.norm()).item()


@pytest.mark.parametrize("n, skew", [(1, False), (6, False), (6, True), (30, False), (30, True)])
@pytest.mark.parametrize("norm", NORMS_EACH_DEGREE)
def test_every_degree_matches_long_double(n, norm, skew):
    A = random_matrix(n, norm, skew)
    assert rel_error(mantra.expm(A), longdouble_expm(A)) < 4 * n * U64


@pytest.mark.parametrize("n", [3, 30])
@pytest.mark.parametrize("norm", NORMS_SQUARING)
def test_many_squarings_match_long_double(n, norm):
    A = random_matrix(n, norm, skew=True, seed=1)
    err = rel_error(mantra.expm(A), longdouble_expm(A))
    # Each squaring can double the relative error; the skew input keeps exp(A) orthogonal.
    assert err < 1e-10
    err_torch = rel_error(torch.linalg.matrix_exp(A), longdouble_expm(A))
    assert err < 3 * err_torch + 16 * U64


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(5, 5), (3, 8, 8), (2, 2, 17, 17), (40, 40)])
@pytest.mark.parametrize("scale", [0.01, 0.1, 1.0, 10.0])
def test_at_least_as_accurate_as_torch_matrix_exp(dtype, shape, scale):
    g = torch.Generator().manual_seed(2)
    A = torch.randn(*shape, dtype=torch.float64, generator=g) * scale / shape[-1] ** 0.5
    E = mantra.expm(A.to(dtype))
    T = torch.linalg.matrix_exp(A.to(dtype))
    assert E.dtype == dtype and E.shape == A.shape
    u = U32 if dtype == torch.float32 else U64
    n = shape[-1]
    flat, E, T = A.reshape(-1, n, n), E.reshape(-1, n, n), T.reshape(-1, n, n)
    for i in range(flat.shape[0]):
        ref = longdouble_expm(flat[i])
        # torch's own error is the bar (it is sometimes far above n·u: ~1e-12 in float64 for
        # norms near 0.05, where its degree-8 polynomial is used).
        assert rel_error(E[i], ref) < 2 * rel_error(T[i], ref) + 32 * n * u


def test_mixed_norm_batch_equals_each_matrix_alone():
    norms = [300.0, 1e-9, 0.2, 2.5, 3e-4, 0.0, 40.0, 1.0, 0.04, 300.0, 1e-6]
    mats = [random_matrix(9, v, seed=i) * 0.5 for i, v in enumerate(norms)]
    batch = torch.stack(mats).view(1, len(mats), 9, 9)
    E = mantra.expm(batch)
    for i, M in enumerate(mats):
        assert rel_error(E[0, i], mantra.expm(M)) < 1e-14
        assert rel_error(E[0, i], longdouble_expm(M)) < 1e-11


def test_scalar_empty_and_zero_sizes():
    a = torch.tensor([-3.0, 0.0, 0.5, 7.0], dtype=torch.float64).view(4, 1, 1)
    assert torch.allclose(mantra.expm(a), a.exp(), rtol=16 * U64, atol=0)
    assert mantra.expm(torch.zeros(0, 3, 3)).shape == (0, 3, 3)
    assert mantra.expm(torch.zeros(2, 0, 0)).shape == (2, 0, 0)
    assert torch.equal(mantra.expm(torch.zeros(3, 3)), torch.eye(3))
    A = random_matrix(7, 3.0)
    assert rel_error(mantra.expm(A.T), longdouble_expm(A.T.contiguous())) < 1e-13


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_types_compute_in_float32(dtype):
    A = random_matrix(8, 2.0, skew=True).to(dtype)
    E = mantra.expm(A)
    assert E.dtype == dtype
    assert torch.equal(E, mantra.expm(A.float()).to(dtype))


@pytest.mark.parametrize("norm", [1e-3, 0.04, 0.25, 1.0, 6.0, 60.0])
def test_gradcheck_float64(norm):
    A = random_matrix(5, norm, seed=3).requires_grad_(True)
    assert torch.autograd.gradcheck(torch.ops.mantra.expm, (A,), eps=1e-6 * max(1.0, norm),
                                     atol=1e-7 * max(1.0, norm), rtol=1e-6)


def test_gradcheck_mixed_batch_and_leading_dims():
    mats = [random_matrix(4, v, seed=i) for i, v in enumerate([0.01, 5.0, 0.5, 0.0, 2.0, 0.08])]
    A = torch.stack(mats).view(2, 3, 4, 4).requires_grad_(True)
    assert torch.autograd.gradcheck(torch.ops.mantra.expm, (A,), eps=1e-6, atol=1e-5, rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_autograd_equals_expm_backward_op(dtype):
    A = random_matrix(20, 30.0, seed=4).to(dtype).requires_grad_(True)
    G = torch.randn(20, 20, dtype=dtype)
    (mantra.expm(A) * G).sum().backward()
    expected = mantra.expm_backward(G, A.detach())
    assert torch.allclose(A.grad, expected, rtol=1e-12 if dtype == torch.float64 else 1e-5, atol=0)
    # And both agree with torch's own derivative of matrix_exp.
    A64 = A.detach().double().requires_grad_(True)
    (torch.linalg.matrix_exp(A64) * G.double()).sum().backward()
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    assert rel_error(A.grad, A64.grad) < tol


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck(requires_grad, dtype):
    A = random_matrix(6, 5.0, seed=5).to(dtype).view(1, 6, 6).expand(2, 6, 6).clone()
    A.requires_grad_(requires_grad)
    torch.library.opcheck(torch.ops.mantra.expm, (A,))
    G = torch.randn(2, 6, 6, dtype=dtype)
    torch.library.opcheck(torch.ops.mantra.expm_backward, (G, A.detach()))


def test_torch_compile_matches_eager():
    def loss(S):
        W = torch.ops.mantra.expm(S - S.mT)
        return (W @ W).sum()

    S = random_matrix(10, 4.0, seed=6).requires_grad_(True)
    eager = torch.autograd.grad(loss(S), S)[0]
    compiled_loss = torch.compile(loss, backend="aot_eager", fullgraph=True)
    compiled = torch.autograd.grad(compiled_loss(S), S)[0]
    assert torch.allclose(compiled, eager, rtol=1e-12, atol=1e-12)


def test_double_backward_matches_torch_and_gradgradcheck():
    # create_graph=True (e.g. Gauss–Newton / Fisher products): the backward is differentiable.
    torch.manual_seed(3)
    A = (0.7 * torch.randn(2, 4, 4, dtype=torch.float64)).requires_grad_(True)
    G = torch.randn(2, 4, 4, dtype=torch.float64)
    torch.autograd.gradgradcheck(mantra.expm, (A,), atol=1e-7)
    (g,) = torch.autograd.grad((mantra.expm(A) * G).sum(), A, create_graph=True)
    (gt,) = torch.autograd.grad((torch.linalg.matrix_exp(A) * G).sum(), A, create_graph=True)
    torch.testing.assert_close(g, gt, rtol=1e-12, atol=1e-12)
    H = torch.randn(2, 4, 4, dtype=torch.float64)
    (hh,) = torch.autograd.grad((g * H).sum(), A)
    (ht,) = torch.autograd.grad((gt * H).sum(), A)
    torch.testing.assert_close(hh, ht, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("bad, message", [
    (torch.zeros(3), "argument 'A' must have at least 2 dimensions"),
    (torch.zeros(2, 3), "argument 'A' must be square in its last two dimensions.*got shape \\[2, 3\\]"),
    (torch.zeros(3, 3, dtype=torch.int64), "argument 'A' must be float32 or float64.*got Long"),
    (torch.tensor([[0.0, float("nan")], [0.0, 0.0]]), "argument 'A' contains NaN or Inf"),
    (torch.tensor([[float("inf"), 0.0], [0.0, 0.0]]), "argument 'A' contains NaN or Inf"),
])
def test_bad_input_names_the_argument(bad, message):
    with pytest.raises(ValueError, match=message):
        mantra.expm(bad)


def test_bad_gradient_shape():
    with pytest.raises(ValueError, match="argument 'grad' must have the shape of 'A'"):
        mantra.expm_backward(torch.zeros(2, 2), torch.zeros(3, 3))


def test_dtype_mismatch_in_backward_names_both_arguments():
    with pytest.raises(ValueError, match="argument 'grad' must have the dtype of 'A' \\(Double\\), got Float"):
        mantra.expm_backward(torch.zeros(3, 3), torch.zeros(3, 3, dtype=torch.float64))


@pytest.mark.parametrize("norm", [0.01, 0.5, 30.0])
def test_in_place_change_of_the_input_before_backward_raises(norm):
    # As for torch's own operators: the saved input is version-checked (issue 17, item 3).
    A = random_matrix(5, norm, seed=7).requires_grad_(True)
    B = A * 1
    E = mantra.expm(B)
    B.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        E.sum().backward()
    # Without the in-place change the same graph gives torch's gradient.
    A.grad = None
    B = A * 1
    mantra.expm(B).sum().backward()
    A64 = A.detach().clone().requires_grad_(True)
    torch.linalg.matrix_exp(A64).sum().backward()
    assert rel_error(A.grad, A64.grad) < 1e-10


def kernel_calls(*names):
    return [torch.ops.mantra._kernel_calls(n) for n in names]


KERNELS = ["expm.CPU", "expm_backward.CPU", "_expm_traced.CPU", "_expm_traced_backward.CPU"]


def test_autograd_reaches_the_cpu_kernels_below_autograd():
    # Issue 10: expm under autograd redispatches to the kernels registered for the device.
    A = random_matrix(6, 3.0, seed=8).requires_grad_(True)
    before = kernel_calls(*KERNELS)
    E = mantra.expm(A)
    (E * E).sum().backward()
    after = kernel_calls(*KERNELS)
    assert [a - b for a, b in zip(after, before)] == [0, 0, 1, 1]
    # Without autograd: the plain forward kernel, no trace.
    before = after
    with torch.no_grad():
        mantra.expm(A)
    assert [a - b for a, b in zip(kernel_calls(*KERNELS), before)] == [1, 0, 0, 0]
    assert torch.ops.mantra._kernel_calls("no_such_kernel.CPU") == 0


def test_profiler_shows_the_private_ops_under_autograd():
    A = random_matrix(6, 3.0, seed=9).requires_grad_(True)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        mantra.expm(A).sum().backward()
    names = {e.name for e in prof.events()}
    assert {"mantra::expm", "mantra::_expm_traced", "mantra::_expm_traced_backward"} <= names, names
    assert "mantra::expm_backward" not in names


def test_traced_ops_schema_and_fake_backward():
    A = random_matrix(6, 5.0, seed=10).view(1, 6, 6).expand(2, 6, 6).clone()
    torch.library.opcheck(torch.ops.mantra._expm_traced.default, (A,), test_utils=("test_schema",))
    E, trace = torch.ops.mantra._expm_traced(A)
    assert torch.equal(E, mantra.expm(A))
    assert trace[0].dtype == torch.int64 and trace[0].shape == (2, 2)
    G = torch.randn(2, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(torch.ops.mantra._expm_traced_backward(G, A, trace), mantra.expm_backward(G, A),
                               rtol=1e-13, atol=0)
    torch.library.opcheck(torch.ops.mantra._expm_traced_backward.default, (G, A, trace))
    with pytest.raises(NotImplementedError, match="depend on the values of 'A'"):
        torch.ops.mantra._expm_traced(A.to("meta"))


def test_torch_compile_inductor_fullgraph_matches_eager():
    def loss(S):
        W = torch.ops.mantra.expm(S - S.mT)
        return (W @ W).sum()

    S = random_matrix(10, 4.0, seed=11).requires_grad_(True)
    eager_value = loss(S)
    eager = torch.autograd.grad(eager_value, S)[0]
    compiled_loss = torch.compile(loss, fullgraph=True)  # the default backend: inductor
    value = compiled_loss(S)
    compiled = torch.autograd.grad(value, S)[0]
    torch.testing.assert_close(value, eager_value, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(compiled, eager, rtol=1e-12, atol=1e-12)


# The tiny-matrix CPU path (n <= 32, csrc/ops/cpu/tiny_expm.h) on batches: gradcheck across
# degrees and squarings, and agreement with torch.linalg.matrix_exp (the C++ test
# test_expm_qr_tiny.cpp checks it equals the general path to ulp-scale tolerances).
@pytest.mark.parametrize("n", [2, 3, 8, 16])
def test_tiny_batch_gradcheck(n):
    mats = [random_matrix(n, v, skew=(i % 2 == 1), seed=10 + i) for i, v in enumerate([0.02, 0.4, 1.5, 20.0])]
    A = torch.stack(mats).requires_grad_(True)
    assert torch.autograd.gradcheck(torch.ops.mantra.expm, (A,), eps=1e-6, atol=1e-5, rtol=1e-6)


@pytest.mark.parametrize("dtype, u", [(torch.float32, U32), (torch.float64, U64)])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 8, 11, 16, 32])
def test_tiny_batch_matches_torch_matrix_exp(n, dtype, u):
    g = torch.Generator().manual_seed(n)
    A = (torch.randn(64, n, n, dtype=torch.float64, generator=g) * 0.7).to(dtype)
    E, ref = torch.ops.mantra.expm(A), torch.linalg.matrix_exp(A.double())
    err = ((E.double() - ref).flatten(1).norm(dim=1) / ref.flatten(1).norm(dim=1)).max().item()
    norm = A.double().abs().sum(-2).amax(-1).max().item()
    # Both are backward stable: a forward error of about κ·u, κ >= ‖A‖₁.
    assert err < 20 * n * u * max(1.0, norm)
    G = torch.randn(A.shape, dtype=dtype, generator=g)
    grad = torch.ops.mantra.expm_backward(G, A)
    leaf = A.double().clone().requires_grad_(True)
    (torch.linalg.matrix_exp(leaf) * G.double()).sum().backward()
    gerr = ((grad.double() - leaf.grad).flatten(1).norm(dim=1) / leaf.grad.flatten(1).norm(dim=1)).max().item()
    assert gerr < 40 * n * u * max(1.0, norm)


# The eigendecomposition route for exactly skew input on the CPU (csrc/ops/expm_skew.h):
# exp(A) = (V diag(cos√λ) + A V diag(sin√λ/√λ)) Vᵀ with AᵀA = V diag(λ) Vᵀ. The private op
# mantra::_expm_skew_route(mode) forces it (1) or switches it off (-1) so that small matrices
# (n > 32: the tiny path serves n <= 32) exercise it; 0 is the rule. The counters
# "expm_skew.CPU" / "expm_skew_reverse.CPU" count matrices (not calls) on the route.
SKEW_COUNTERS = ["expm_skew.CPU", "expm_skew_reverse.CPU"]


class skew_route:
    def __init__(self, mode):
        self.mode = mode

    def __enter__(self):
        self.old = torch.ops.mantra._expm_skew_route(self.mode)

    def __exit__(self, *exc):
        torch.ops.mantra._expm_skew_route(self.old)


def skew_calls():
    return kernel_calls(*SKEW_COUNTERS)


def calls_since(before):
    return [a - b for a, b in zip(skew_calls(), before)]


def rotation_blocks(n, angles, generator):
    """Exactly skew, with the given angles on 2x2 blocks (cycled), rows/columns permuted."""
    A = torch.zeros(n, n, dtype=torch.float64)
    for k in range(n // 2):
        t = angles[k % len(angles)]
        A[2 * k, 2 * k + 1], A[2 * k + 1, 2 * k] = t, -t
    p = torch.randperm(n, generator=generator)
    return A[p][:, p]


def skew_cases(n, seed=0):
    """Exactly skew inputs (B - Bᵀ)/2: dense, exactly repeated angles, rank-deficient (zero
    angles; odd n adds one), near-equal angles (relative gaps 1e-7), and a tiny norm."""
    g = torch.Generator().manual_seed(seed)
    cases = {}
    G = torch.randn(n, n, dtype=torch.float64, generator=g)
    cases["dense"] = (G - G.T) * 1.5
    cases["repeated"] = rotation_blocks(n, [2.0, 2.0, 2.0, 7.5, 7.5, 0.5, 11.0], g)
    X, Y = torch.randn(n, 3, dtype=torch.float64, generator=g), torch.randn(n, 3, dtype=torch.float64, generator=g)
    B = 2 * X @ Y.T
    cases["rank6"] = (B - B.T) / 2
    Q = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64, generator=g))[0]
    B = Q @ rotation_blocks(n, [5.0, 5.0 * (1 + 1e-7), 5.0 * (1 + 2e-7)], g) @ Q.T
    cases["near_equal"] = (B - B.T) / 2
    G = torch.randn(n, n, dtype=torch.float64, generator=g)
    cases["tiny"] = (G - G.T) * 1e-4
    for A in cases.values():
        assert torch.equal(A, -A.T)
    return cases


@pytest.mark.parametrize("n", [40, 41])
@pytest.mark.parametrize("dtype, u", [(torch.float32, U32), (torch.float64, U64)])
def test_skew_route_forward_matches_long_double(n, dtype, u):
    for name, A in skew_cases(n).items():
        ref = longdouble_expm(A)
        lam_max = torch.linalg.eigvalsh(A.T @ A)[-1].item()
        before = skew_calls()
        with skew_route(1):
            E = mantra.expm(A.to(dtype))
        assert calls_since(before) == [1, 0], name
        # Eigenvalues of AᵀA carry an absolute error of about u·λ_max; the eigenvectors (and
        # V f(λ) Vᵀ) about n·u. Measured at most 1.05 u·max(n, λ_max) on these cases.
        assert rel_error(E, ref) < 4 * u * max(n, lam_max), name
        assert E.dtype == dtype
        with skew_route(-1):
            before = skew_calls()
            E_sq = mantra.expm(A.to(dtype))
            assert calls_since(before) == [0, 0]
        assert rel_error(E_sq, ref) < 64 * n * u, name  # scaling and squaring: measured <= 16 n u
        # exp of a skew matrix is orthogonal (Frobenius norms: ‖I‖_F = √n).
        Ed = E.double()
        assert (Ed.T @ Ed - torch.eye(n, dtype=torch.float64)).norm().item() < 8 * u * max(n, lam_max) * n ** 0.5, name


@pytest.mark.parametrize("name", ["dense", "repeated", "rank6", "near_equal"])
def test_skew_route_gradcheck(name):
    # n = 35 (odd: a zero angle). The finite differences perturb A off the skew matrices, so
    # they are taken on scaling and squaring: they check the general-direction adjoint.
    A = skew_cases(35, seed=1)[name].clone()
    if name == "dense":
        A = A / 4
    A.requires_grad_(True)
    before = skew_calls()
    with skew_route(1):
        assert torch.autograd.gradcheck(torch.ops.mantra.expm, (A,), eps=1e-6, atol=1e-6, rtol=1e-6)
    assert calls_since(before)[1] >= 1  # the analytical Jacobian came from the route's reverse


@pytest.mark.parametrize("n", [40, 41])
@pytest.mark.parametrize("dtype, u", [(torch.float32, U32), (torch.float64, U64)])
def test_skew_route_gradient_of_a_general_cotangent_matches_squaring(n, dtype, u):
    g = torch.Generator().manual_seed(n)
    for name, A in skew_cases(n, seed=2).items():
        G = torch.randn(n, n, dtype=torch.float64, generator=g).to(dtype)  # not skew
        grads = {}
        for mode in (1, -1):
            leaf = A.to(dtype).clone().requires_grad_(True)
            before = skew_calls()
            with skew_route(mode):
                (mantra.expm(leaf) * G).sum().backward()
                assert calls_since(before) == ([1, 1] if mode == 1 else [0, 0]), name
                # expm_backward (which recomputes the forward) takes the same route.
                assert torch.allclose(mantra.expm_backward(G, A.to(dtype)), leaf.grad, rtol=0,
                                      atol=(1e-12 if dtype == torch.float64 else 1e-5) * leaf.grad.abs().max().item())
            grads[mode] = leaf.grad.double()
        A64 = A.clone().requires_grad_(True)
        (torch.linalg.matrix_exp(A64) * G.double()).sum().backward()
        lam_max = torch.linalg.eigvalsh(A.T @ A)[-1].item()
        tol = 8 * u * max(n, lam_max)  # measured at most 2.5 u·max(n, λ_max)
        assert rel_error(grads[1], A64.grad) < tol, name
        assert rel_error(grads[1], grads[-1]) < tol, name
        assert rel_error(grads[-1], A64.grad) < 64 * n * u, name


def test_skew_route_is_never_taken_by_a_non_skew_input():
    g = torch.Generator().manual_seed(5)
    G = torch.randn(40, 40, dtype=torch.float64, generator=g)
    A = (G - G.T) / 2
    almost = A.clone()
    almost[3, 7] += 1e-15  # off by one ulp-scale entry: not exactly skew
    diag = A.clone()
    diag[4, 4] = 1e-300
    before = skew_calls()
    with skew_route(1):
        for M in (G, almost, diag):
            mantra.expm(M)
            leaf = M.clone().requires_grad_(True)
            mantra.expm(leaf).sum().backward()
            mantra.expm_backward(torch.ones_like(M), M)
    assert calls_since(before) == [0, 0]


def test_skew_route_mixed_batch_is_split_per_matrix():
    g = torch.Generator().manual_seed(6)
    mats = []
    for i in range(5):
        G = torch.randn(36, 36, dtype=torch.float64, generator=g) * 2
        mats.append(G - G.T if i % 2 == 0 else G)  # skew, general, skew, general, skew
    A = torch.stack(mats).view(5, 36, 36)
    W = torch.randn(5, 36, 36, dtype=torch.float64, generator=g)
    leaf = A.clone().requires_grad_(True)
    before = skew_calls()
    with skew_route(1):
        E, trace = torch.ops.mantra._expm_traced(A)
        assert trace[0].shape == (3, 5) and trace[0][2].tolist() == [1, 0, 1, 0, 1]
        assert calls_since(before) == [3, 0]
        (mantra.expm(leaf) * W).sum().backward()
        torch.testing.assert_close(torch.ops.mantra._expm_traced_backward(W, A, trace), leaf.grad,
                                   rtol=1e-13, atol=1e-13)
        for i in range(5):
            one = A[i].clone().requires_grad_(True)
            (mantra.expm(one) * W[i]).sum().backward()
            torch.testing.assert_close(leaf.grad[i], one.grad, rtol=1e-13, atol=1e-13)
    assert calls_since(before) == [3 + 3 + 3, 3 + 3 + 3]
    for i in range(5):
        ref = longdouble_expm(A[i])
        assert rel_error(E[i], ref) < 1e-12


THETA18 = {torch.float32: 3.010066362817634, torch.float64: 1.090863719290036}


def scaled_to_squarings(A, s, dtype=torch.float64):
    """A scaled so that its plan in `dtype` (1-norm / θ18) has exactly s squarings."""
    return A * (0.75 * THETA18[dtype] * 2 ** s / A.abs().sum(0).max())


def test_skew_route_rule():
    # The rule (expm_skew.cpp): exactly skew; with a gradient n >= 192 and s >= 3, for the value
    # alone n >= 320 and s >= 5; and λ_max/2 <= 8·2^s (λ_max estimated by power iteration).
    g = torch.Generator().manual_seed(7)
    G = torch.randn(200, 200, dtype=torch.float64, generator=g)
    dense = G - G.T

    def routes(A):
        before = skew_calls()
        leaf = A.clone().requires_grad_(True)
        mantra.expm(leaf).sum().backward()
        traced = calls_since(before)
        before = skew_calls()
        with torch.no_grad():
            mantra.expm(A)
        return traced, calls_since(before)

    with skew_route(0):
        assert routes(scaled_to_squarings(dense, 3)) == ([1, 1], [0, 0])  # n < 320: value by squaring
        assert routes(scaled_to_squarings(dense, 2)) == ([0, 0], [0, 0])  # s < 3
        assert routes(scaled_to_squarings(dense, 6)[:190, :190].contiguous()) == ([0, 0], [0, 0])  # n < 192
        assert routes(scaled_to_squarings(G, 6)) == ([0, 0], [0, 0])  # not skew
        # All angles equal to ω: λ_max = ω² = ‖A‖₁²: ω = 10 (s = 4) passes 50 <= 8·16, ω = 200
        # (s = 8) fails 20000 <= 8·256.
        assert routes(rotation_blocks(200, [10.0], g)) == ([1, 1], [0, 0])
        assert routes(rotation_blocks(200, [200.0], g)) == ([0, 0], [0, 0])
        G3 = torch.randn(320, 320, dtype=torch.float64, generator=g)
        assert routes(scaled_to_squarings(G3 - G3.T, 5)) == ([1, 1], [1, 0])
        assert routes(scaled_to_squarings(G3 - G3.T, 4)) == ([1, 1], [0, 0])
    with skew_route(-1):
        assert routes(scaled_to_squarings(dense, 6)) == ([0, 0], [0, 0])


def test_skew_route_edge_of_the_rule_is_accurate():
    # Just above the thresholds (s = 3 at n = 192 with a gradient), both dtypes: the route's
    # value and gradient against torch in float64.
    n = 192
    g = torch.Generator().manual_seed(8)
    G = torch.randn(n, n, dtype=torch.float64, generator=g)
    W = torch.randn(n, n, dtype=torch.float64, generator=g)
    for dtype, u in [(torch.float32, U32), (torch.float64, U64)]:
        A = scaled_to_squarings(G - G.T, 3, dtype).to(dtype).double()
        ref = A.clone().requires_grad_(True)
        E_ref = torch.linalg.matrix_exp(ref)
        (E_ref * W).sum().backward()
        lam_max = torch.linalg.eigvalsh(A.T @ A)[-1].item()
        leaf = A.to(dtype).clone().requires_grad_(True)
        before = skew_calls()
        E = mantra.expm(leaf)
        (E * W.to(dtype)).sum().backward()
        assert calls_since(before) == [1, 1]
        assert rel_error(E, E_ref.detach()) < 4 * u * max(n, lam_max)
        assert rel_error(leaf.grad, ref.grad) < 8 * u * max(n, lam_max)


def test_skew_route_opcheck_and_half_input():
    A = skew_cases(34, seed=9)["dense"].view(1, 34, 34).expand(2, 34, 34).clone()
    with skew_route(1):
        torch.library.opcheck(torch.ops.mantra.expm, (A.requires_grad_(True),))
        torch.library.opcheck(torch.ops.mantra._expm_traced.default, (A.detach(),), test_utils=("test_schema",))
        before = skew_calls()
        H = mantra.expm(A.detach().to(torch.bfloat16))
        assert calls_since(before) == [2, 0] and H.dtype == torch.bfloat16
        torch.testing.assert_close(H, mantra.expm(A.detach().to(torch.bfloat16).float()).to(torch.bfloat16),
                                   rtol=0, atol=0)


def test_skew_route_mode_argument():
    with pytest.raises(ValueError, match="argument 'mode' must be -1 \\(never\\), 0 \\(the rule\\) or 1.*got 2"):
        torch.ops.mantra._expm_skew_route(2)
    assert torch.ops.mantra._expm_skew_route(0) == 0


# The tiny path's trace (csrc/ops/cpu/tiny_expm.h): under autograd the forward keeps the
# products and powers its reverse sweep reads, and the traced backward is that sweep alone. It
# does exactly the arithmetic of the untraced expm_backward (which recomputes the forward), so
# the two agree bit for bit, at every size, plan and batch composition.
TINY_SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 11, 16, 32]
TINY_KEPT = [0, 0, 1, 2, 3, 4]  # products the trace keeps, per Taylor degree 1 … 18


def tiny_mixed_batch(n, dtype, count=21, seed=0):
    # 1-norms from 1e-9 to 60 (float32: 20): every Taylor degree and 0 … 5 squarings, with
    # plans shared by a few matrices (groups of 8 lanes, partly filled) and a non-multiple of 8.
    g = torch.Generator().manual_seed(seed)
    top = 60.0 if dtype == torch.float64 else 20.0
    norms = torch.logspace(-9, float(np.log10(top)), count, dtype=torch.float64)
    G = torch.randn(count, n, n, dtype=torch.float64, generator=g)
    G = G * (norms / G.abs().sum(-2).amax(-1)).view(-1, 1, 1)
    return G.to(dtype)


def tiny_trace_size(plan, n):
    lanes = 8 if n <= 8 else 1
    size = 0
    for (d, s), c in zip(*torch.unique(plan.T, dim=0, return_counts=True)):
        groups = -(-int(c) // lanes)
        size += groups * (TINY_KEPT[int(d)] + int(s)) * n * n * lanes
    return size


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", TINY_SIZES)
def test_tiny_traced_backward_equals_expm_backward_bit_for_bit(n, dtype):
    A = tiny_mixed_batch(n, dtype, seed=n)
    W = torch.randn(A.shape, dtype=dtype, generator=torch.Generator().manual_seed(100 + n))
    E, trace = torch.ops.mantra._expm_traced(A)
    plan = trace[0]
    assert len(trace) == 2 and plan.shape == (2, A.shape[0])
    # A mixed batch: at least four different plans (degree, squarings), some with squarings.
    assert len(set(map(tuple, plan.T.tolist()))) >= 4 and plan[1].max() >= 2
    # The intermediates: (kept + s)·n² per matrix, in groups of 8 lanes for n <= 8.
    assert trace[1].dtype == dtype and trace[1].dim() == 1
    assert trace[1].numel() == tiny_trace_size(plan, n)
    assert torch.equal(E, mantra.expm(A))
    untraced = mantra.expm_backward(W, A)
    assert torch.equal(torch.ops.mantra._expm_traced_backward(W, A, trace), untraced)
    # Through autograd (the traced pair), the same gradient.
    leaf = A.clone().requires_grad_(True)
    before = kernel_calls("_expm_traced_backward.CPU")[0]
    (mantra.expm(leaf) * W).sum().backward()
    assert kernel_calls("_expm_traced_backward.CPU")[0] == before + 1
    assert torch.equal(leaf.grad, untraced)


@pytest.mark.parametrize("n", [3, 16])
def test_tiny_traced_backward_does_not_depend_on_the_batch(n):
    # Each matrix alone (a group of one in 8 lanes for n <= 8) gives the bits it gets in the
    # mixed batch, forward and traced backward.
    A = tiny_mixed_batch(n, torch.float64, count=11, seed=3)
    W = torch.randn(A.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    E, trace = torch.ops.mantra._expm_traced(A)
    grad = torch.ops.mantra._expm_traced_backward(W, A, trace)
    for i in range(A.shape[0]):
        Ei, ti = torch.ops.mantra._expm_traced(A[i:i + 1])
        assert torch.equal(Ei, E[i:i + 1])
        assert torch.equal(torch.ops.mantra._expm_traced_backward(W[i:i + 1], A[i:i + 1], ti), grad[i:i + 1])


def test_tiny_traced_backward_rejects_a_wrong_trace():
    A = tiny_mixed_batch(4, torch.float64, count=5)
    W = torch.ones_like(A)
    E, trace = torch.ops.mantra._expm_traced(A)
    with pytest.raises(ValueError, match="for 4x4 CPU matrices: \\[plan, intermediates\\]\\), got a list of 1"):
        torch.ops.mantra._expm_traced_backward(W, A, trace[:1])
    with pytest.raises(ValueError, match=f"1-D Double CPU tensor of {trace[1].numel()} elements for its plan"):
        torch.ops.mantra._expm_traced_backward(W, A, [trace[0], trace[1][1:]])
    with pytest.raises(ValueError, match="got a Float tensor"):
        torch.ops.mantra._expm_traced_backward(W, A, [trace[0], trace[1].float()])
    # Another matrix's plan: its trace has another size.
    _, other = torch.ops.mantra._expm_traced(A * 100)
    with pytest.raises(ValueError, match="argument 'trace' must hold the intermediates of 'A'"):
        torch.ops.mantra._expm_traced_backward(W, A, [other[0], trace[1]])
    # A plan with more squarings than any finite input needs (2^1024 / θ₁₈), or negative ones.
    for squarings in (1101, -1):
        forged = trace[0].clone()
        forged[1, 2] = squarings
        with pytest.raises(ValueError, match="argument 'trace' holds an invalid plan \\(matrix 2\\)"):
            torch.ops.mantra._expm_traced_backward(W, A, [forged, trace[1]])


@pytest.mark.parametrize("n", [3, 16])
def test_tiny_in_place_change_of_the_input_before_backward_raises(n):
    A = tiny_mixed_batch(n, torch.float64, count=9).requires_grad_(True)
    B = A * 1
    E = mantra.expm(B)
    B.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        E.sum().backward()


@pytest.mark.parametrize("n", [1, 5, 11, 32])
def test_tiny_gradcheck_through_the_traced_path(n):
    # Mixed plans in one batch (norms 1e-3 … 20: degrees 4 … 18, 0 … 5 squarings).
    A = tiny_mixed_batch(n, torch.float64, count=4, seed=7)
    A = A * (torch.tensor([1e-3, 0.2, 2.0, 20.0], dtype=torch.float64) / A.abs().sum(-2).amax(-1)).view(-1, 1, 1)
    A.requires_grad_(True)
    before = kernel_calls("_expm_traced.CPU", "_expm_traced_backward.CPU")
    assert torch.autograd.gradcheck(mantra.expm, (A,), eps=1e-6, atol=1e-6, rtol=1e-6)
    after = kernel_calls("_expm_traced.CPU", "_expm_traced_backward.CPU")
    assert after[0] > before[0] and after[1] > before[1]
