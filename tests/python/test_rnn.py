"""torch.ops.mantra.orthogonal_rnn and mantra.nn.OrthogonalRNN / ModReLU from Python."""

import pytest
import torch

import mantra
from mantra.nn import ModReLU, OrthogonalRNN


def random_args(T, N, H, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(T, N, H, generator=g, dtype=torch.float64)
    h0 = torch.randn(N, H, generator=g, dtype=torch.float64)
    B = torch.linalg.qr(torch.randn(H, H, generator=g, dtype=torch.float64))[0]
    b = torch.rand(H, generator=g, dtype=torch.float64) - 0.7  # some units cut to zero
    return [t.to(dtype) for t in (u, h0, B, b)]


def loop(u, h0, B, b):
    h, out = h0, []
    for t in range(u.shape[0]):
        z = u[t] + h @ B.T
        h = torch.sign(z) * torch.relu(torch.abs(z) + b)
        out.append(h)
    return torch.stack(out)


def test_matches_step_by_step_loop_and_its_gradients():
    args = [t.requires_grad_() for t in random_args(15, 4, 7)]
    ref = [t.detach().clone().requires_grad_() for t in args]
    w = torch.randn(15, 4, 7, dtype=torch.float64)
    y = torch.ops.mantra.orthogonal_rnn(*args)
    assert (y == 0).any()  # both branches of modReLU are exercised
    torch.testing.assert_close(y, loop(*ref), rtol=0, atol=1e-12)
    (y * w).sum().backward()
    (loop(*ref) * w).sum().backward()
    for a, r in zip(args, ref):
        torch.testing.assert_close(a.grad, r.grad, rtol=0, atol=1e-11)


def test_gradcheck_float64():
    # Inputs away from modReLU's kink (|z| + b = 0) so finite differences are valid.
    u, h0, B, b = random_args(5, 3, 4, seed=1)
    b = torch.full_like(b, 0.3)
    args = [t.requires_grad_() for t in (u, h0, B, b)]
    assert torch.autograd.gradcheck(torch.ops.mantra.orthogonal_rnn, args, eps=1e-6, atol=1e-7)


def test_opcheck():
    args = random_args(4, 3, 5, dtype=torch.float32, seed=2)
    torch.library.opcheck(torch.ops.mantra.orthogonal_rnn.default, args)
    args = [t.requires_grad_() for t in random_args(4, 3, 5, seed=3)]
    torch.library.opcheck(torch.ops.mantra.orthogonal_rnn.default, args)


def test_float32_agrees_with_float64():
    d = random_args(40, 5, 16)
    f = [t.float() for t in d]
    y = torch.ops.mantra.orthogonal_rnn(*f)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y.double(), torch.ops.mantra.orthogonal_rnn(*d), rtol=0, atol=1e-4)


def test_bad_input_names_the_argument():
    u, h0, B, b = random_args(3, 2, 4)
    with pytest.raises(ValueError, match="'h0'"):
        torch.ops.mantra.orthogonal_rnn(u, h0[:1], B, b)
    with pytest.raises(ValueError, match="'recurrent'"):
        torch.ops.mantra.orthogonal_rnn(u, h0, B[:3], b)
    with pytest.raises(ValueError, match="dtype of 'input'"):
        torch.ops.mantra.orthogonal_rnn(u, h0.float(), B, b)


def modrelu_formula(z, b):
    return torch.sign(z) * torch.relu(torch.abs(z) + b)


def test_modrelu():
    m = ModReLU(3).double()
    with torch.no_grad():
        m.bias.copy_(torch.tensor([-0.5, 0.0, 0.25]))
    z = torch.tensor([[1.0, -2.0, -0.1], [-0.3, 0.0, 0.0]], dtype=torch.float64)
    expected = torch.tensor([[0.5, -2.0, -0.35], [0.0, 0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(m(z), expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("triv", ["expm", "cayley", "qr", "polar", "householder"])  # default init: henaff
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_orthogonal_rnn_module(triv, dtype):
    torch.manual_seed(0)
    rnn = OrthogonalRNN(5, 12, output_size=3, triv=triv).to(dtype)
    B = rnn.recurrent_kernel.detach()
    eye = torch.eye(12, dtype=dtype)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert (B.T @ B - eye).abs().max() < tol
    assert abs(torch.linalg.det(B.double()).item() - 1) < tol  # SO(n)
    x = torch.randn(9, 4, 5, dtype=dtype)
    h = torch.zeros(4, 12, dtype=dtype)
    ys = []
    for t in range(9):
        h = rnn.modrelu(rnn.input_kernel(x[t]) + h @ B.T)
        ys.append(rnn.output_layer(h))
    torch.testing.assert_close(rnn(x), torch.stack(ys), rtol=0, atol=10 * tol)


def test_dynamic_trivialization_trains_the_rnn_and_keeps_it_orthogonal():
    # RMSprop on the constraint, Adam on the rest, rebase every 10 steps: learn a one-step delay.
    torch.manual_seed(4)
    rnn = OrthogonalRNN(3, 16, output_size=3)
    constrained = list(rnn.parametrizations.parameters())
    ids = {id(p) for p in constrained}
    others = [p for p in rnn.parameters() if id(p) not in ids]
    dtriv = mantra.optim.DynamicTrivialization(torch.optim.RMSprop(constrained, lr=1e-3), rnn, K=10)
    adam = torch.optim.Adam(others, lr=1e-2)
    x = torch.randn(20, 16, 3)
    y = torch.cat([torch.zeros(1, 16, 3), x[:-1]])
    first = ((rnn(x) - y) ** 2).mean().item()
    for _ in range(300):
        dtriv.zero_grad()
        adam.zero_grad()
        ((rnn(x) - y) ** 2).mean().backward()
        dtriv.step()
        adam.step()
    last = ((rnn(x) - y) ** 2).mean().item()
    assert last < 0.2 * first, (first, last)
    B = rnn.recurrent_kernel.detach()
    assert (B.T @ B - torch.eye(16)).abs().max() < 1e-5


def test_householder_rnn_refuses_the_identity_init_naming_it():
    with pytest.raises(ValueError, match="argument 'init' cannot be 'origin'"):
        OrthogonalRNN(3, 4, triv="householder", init="origin")


def test_state_dict_round_trip_and_errors():
    torch.manual_seed(5)
    a, b = OrthogonalRNN(4, 8, output_size=2), OrthogonalRNN(4, 8, output_size=2)
    b.load_state_dict(a.state_dict())
    x = torch.randn(5, 2, 4)
    assert torch.equal(a(x), b(x))
    with pytest.raises(ValueError, match="'x'"):
        a(torch.randn(5, 2, 3))
    with pytest.raises(ValueError, match="'init'"):
        OrthogonalRNN(4, 8, init="zeros")


def test_chart_at_identity_is_exprnns_static_trivialization():
    torch.manual_seed(6)
    rnn = OrthogonalRNN(3, 8, init="cayley", chart_at_identity=True).double()
    p = rnn.parametrizations.recurrent_kernel[0]
    A = rnn.parametrizations.recurrent_kernel.original
    assert torch.equal(p.base, torch.eye(8, dtype=torch.float64))
    assert (A + A.T).abs().max() < 1e-15 and A.abs().max() > 0  # v = A, skew
    torch.testing.assert_close(rnn.recurrent_kernel, torch.linalg.matrix_exp(A), rtol=0, atol=1e-13)
    with pytest.raises(ValueError, match="chart_at_identity"):
        OrthogonalRNN(3, 8, triv="cayley", chart_at_identity=True)


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_modrelu_op_is_torchs_formula_including_nan_and_inf(dtype):
    z = torch.tensor([[1.0, -2.0, -0.1, 0.0, NAN, INF, -INF, 0.3, 0.0]], dtype=dtype).repeat(2, 1)
    b = torch.tensor([-0.5, 0.0, 0.25, 0.1, 0.1, -1.0, -INF, NAN, INF], dtype=dtype)
    got = torch.ops.mantra.modrelu(z, b)
    want = modrelu_formula(z, b)
    assert torch.equal(got.isnan(), want.isnan()) and got.isnan().any()
    torch.testing.assert_close(got, want, rtol=0, atol=0, equal_nan=True)
    # The module is the op.
    m = ModReLU(9).to(dtype)
    with torch.no_grad():
        m.bias.copy_(b)
    torch.testing.assert_close(m(z), want, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_modrelu_half_types_compute_in_float32(dtype):
    g = torch.Generator().manual_seed(12)
    z, b = torch.randn(5, 7, generator=g), torch.randn(7, generator=g) * 0.5
    got = torch.ops.mantra.modrelu(z.to(dtype), b.to(dtype))
    assert got.dtype == dtype
    want = torch.ops.mantra.modrelu(z.to(dtype).float(), b.to(dtype).float()).to(dtype)
    assert torch.equal(got, want)


def test_modrelu_gradcheck_and_opcheck():
    g = torch.Generator().manual_seed(13)
    z = torch.randn(4, 3, 6, generator=g, dtype=torch.float64)
    b = torch.full((6,), 0.2, dtype=torch.float64)
    b[::2] = -0.2
    # Away from the kinks |z| + b = 0 and z = 0, so finite differences are valid.
    z = torch.where((z.abs() + b).abs() < 0.05, z + 0.1, z)
    z, b = z.requires_grad_(), b.requires_grad_()
    assert torch.autograd.gradcheck(torch.ops.mantra.modrelu, (z, b), eps=1e-6, atol=1e-8)
    torch.library.opcheck(torch.ops.mantra.modrelu.default, (z, b))
    torch.library.opcheck(torch.ops.mantra.modrelu.default, (z.detach().float(), b.detach().float()))
    h = torch.ops.mantra.modrelu(z, b).detach()
    torch.library.opcheck(torch.ops.mantra.modrelu_backward.default, (torch.randn_like(h), h))
    # Gradients equal autograd of torch's formula.
    zr, br = z.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    w = torch.randn(4, 3, 6, dtype=torch.float64, generator=g)
    (torch.ops.mantra.modrelu(z, b) * w).sum().backward()
    (modrelu_formula(zr, br) * w).sum().backward()
    torch.testing.assert_close(z.grad, zr.grad, rtol=0, atol=1e-14)
    torch.testing.assert_close(b.grad, br.grad, rtol=0, atol=1e-13)


def test_modrelu_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="mantra::modrelu: arguments 'z' and 'bias' disagree on the number of features"):
        ModReLU(3)(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="argument 'bias' must have the dtype of 'z'"):
        torch.ops.mantra.modrelu(torch.zeros(2, 3), torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="argument 'z' must be float32 or float64"):
        torch.ops.mantra.modrelu(torch.zeros(2, 3, dtype=torch.int64), torch.zeros(3, dtype=torch.int64))


@pytest.mark.parametrize("where", ["input", "h0", "recurrent", "bias", "inf_recurrent"])
def test_nan_propagates_through_the_recurrence(where):
    # Issue 17, item 1: NaN in any argument (and Inf in the recurrent matrix) gives NaN.
    u, h0, B, b = random_args(3, 2, 4, seed=14)
    if where == "input":
        u[0, 0, 0] = NAN
    elif where == "h0":
        h0[1, 2] = NAN
    elif where == "recurrent":
        B[2, 1] = NAN
    elif where == "bias":
        b[3] = NAN
    else:
        B[0, 0] = INF
    args = [t.requires_grad_() for t in (u, h0, B, b)]
    y = torch.ops.mantra.orthogonal_rnn(*args)
    ref = loop(*[t.detach() for t in args])
    assert y.isnan().any()
    assert torch.equal(y.isnan(), ref.isnan())
    torch.testing.assert_close(y, ref, rtol=0, atol=1e-12, equal_nan=True)
    y.sum().backward()
    # modReLU's derivative at a NaN state is NaN: the gradient does not hide it either.
    assert args[0].grad[y.isnan()].isnan().all()
    assert args[2].grad.isnan().any() and args[3].grad.isnan().any()


def test_issue_example_nan_input_gives_nan():
    u = torch.randn(3, 2, 4)
    u[0, 0, 0] = NAN
    y = torch.ops.mantra.orthogonal_rnn(u, torch.zeros(2, 4), torch.eye(4), torch.zeros(4))
    assert y[0, 0, 0].isnan() and y[:, 0, 0].isnan().all()
    assert not y[:, 1].isnan().any()  # the other sequence of the batch is untouched


def test_backward_bad_hidden_names_hidden():
    u, h0, B, b = random_args(3, 2, 4)
    h = torch.ops.mantra.orthogonal_rnn(u, h0, B, b)
    with pytest.raises(ValueError, match="mantra::orthogonal_rnn_backward: argument 'hidden' must have shape"):
        torch.ops.mantra.orthogonal_rnn_backward(h[0], h[0], h0, B, b)
    with pytest.raises(ValueError, match="argument 'grad_hidden' must have the dtype of 'hidden'"):
        torch.ops.mantra.orthogonal_rnn_backward(h.float(), h, h0, B, b)
