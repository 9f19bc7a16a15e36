"""mantra.nn.Conv2d: a drop-in for torch.nn.Conv2d whose kernel's matrix view
(out × in/groups·kh·kw) carries a constraint, and the factored weight-normalized low-rank
forward (torch.ops.mantra.low_rank_coupled_conv2d) that never forms the kernel (torch.compile
and torch.export trace through it); the C++ mantra::nn::Conv2d gives the same kernel and output
from the same seed."""

import copy
import pickle

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import mantra
from mantra import _C

D = torch.float64
COUPLED = ("low_rank_oblique", "low_rank_sphere")
RANKED = COUPLED + ("low_rank", "fixed_rank")


def max_abs(t):
    return t.detach().abs().max().item()


def dense(layer, x):
    """torch's convolution of the layer's effective kernel (the reference of the factored forward)."""
    return layer._conv_forward(x, layer.effective_weight(), layer.bias)


# ---------------------------------------------------------------- constraint="none" is torch.nn.Conv2d

@pytest.mark.parametrize("kwargs", [dict(), dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
                                    dict(padding="same", padding_mode="reflect"), dict(groups=2, bias=False),
                                    dict(padding=1, padding_mode="circular")])
def test_none_is_torch_conv2d(kwargs):
    torch.manual_seed(0)
    reference = nn.Conv2d(4, 6, (3, 2), **kwargs)
    torch.manual_seed(0)
    ours = mantra.nn.Conv2d(4, 6, (3, 2), constraint="none", **kwargs)
    assert torch.equal(reference.weight, ours.weight)
    assert list(reference.state_dict()) == list(ours.state_dict())
    x = torch.randn(2, 4, 9, 8)
    assert torch.equal(reference(x), ours(x))
    ours.load_state_dict(reference.state_dict())
    assert torch.equal(reference(x), ours(x))


# ---------------------------------------------------------------- every constraint holds

def violation(constraint, W, rank):
    """How far the matrix W (float64) is from the constraint's set (0 when on it)."""
    m, n = W.shape
    s = torch.linalg.svdvals(W)
    eye = torch.eye(min(m, n), dtype=W.dtype)
    gram = W @ W.T if m <= n else W.T @ W
    if constraint in ("orthogonal", "grassmannian"):
        return max_abs(gram - eye)
    if constraint == "sphere":  # unit vectors along the last dimension
        return max_abs(W.norm(dim=-1) - 1)
    if constraint == "oblique":  # unit columns
        return max_abs(W.norm(dim=-2) - 1)
    if constraint in ("low_rank", "fixed_rank"):
        return s[rank:].max().item() if rank < len(s) else 0.0
    if constraint == "almost_orthogonal":
        return max(0.0, max_abs(s - 1) - 0.1)
    if constraint == "invertible":
        return 0.0 if torch.linalg.det(W) > 0 else 1.0
    if constraint in ("positive_definite", "positive_definite_cholesky"):
        return max(max_abs(W - W.T), 0.0 if torch.linalg.eigvalsh(W).min() > 0 else 1.0)
    if constraint == "positive_semidefinite":
        return max(max_abs(W - W.T), max(0.0, -torch.linalg.eigvalsh(W).min().item()))
    if constraint == "symmetric":
        return max_abs(W - W.T)
    if constraint == "skew":
        return max_abs(W + W.T)
    if constraint == "low_rank_oblique":
        return max(s[rank:].max().item(), max_abs(W.norm(dim=1) - 1))
    if constraint == "low_rank_sphere":
        return max(s[rank:].max().item(), abs(W.norm().item() - 1))
    raise AssertionError(constraint)


SQUARE = ["orthogonal", "invertible", "positive_definite", "positive_definite_cholesky", "positive_semidefinite",
          "symmetric", "skew"]
WIDE = ["orthogonal", "grassmannian", "sphere", "oblique", "low_rank", "fixed_rank", "almost_orthogonal",
        "low_rank_oblique", "low_rank_sphere"]


@pytest.mark.parametrize("constraint,square", [(c, True) for c in SQUARE] + [(c, False) for c in WIDE])
def test_every_constraint_holds_after_construction_and_training(constraint, square):
    torch.manual_seed(1)
    # Matrix views 8 × 2·2·2 (square) or 6 × 3·2·3 (wide).
    cin, cout, k = (2, 8, (2, 2)) if square else (3, 6, (2, 3))
    rank = 2 if constraint in RANKED else 1
    layer = mantra.nn.Conv2d(cin, cout, k, padding=1, constraint=constraint, rank=rank, dtype=D)
    assert tuple(layer.weight.shape) == (cout, cin) + k
    assert violation(constraint, layer.weight.detach().reshape(cout, -1), rank) < 1e-10
    opt = mantra.optim.DynamicTrivialization(torch.optim.Adam(layer.parameters(), lr=0.02), layer, K=5)
    x = torch.randn(4, cin, 6, 5, dtype=D)
    target = torch.randn_like(layer(x))
    first = (layer(x) - target).pow(2).mean().item()
    for _ in range(30):
        opt.zero_grad()
        (layer(x) - target).pow(2).mean().backward()
        opt.step()
    W = layer.weight.detach().reshape(cout, -1)
    assert violation(constraint, W, rank) < 1e-10
    assert (layer(x) - target).pow(2).mean().item() < first  # it trained
    assert max_abs(layer(x) - dense(layer, x)) < 1e-12


# ---------------------------------------------------------------- the factored forward (WN+LR)

@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("constraint", COUPLED)
@pytest.mark.parametrize("scale", ["none", "isotropic", "per_row"])
@pytest.mark.parametrize("kwargs", [dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2)), dict(groups=2, padding=1),
                                    dict(padding="same", padding_mode="reflect"), dict(padding="valid")])
def test_factored_forward_equals_dense_convolution(dtype, tol, constraint, scale, kwargs):
    torch.manual_seed(2)
    layer = mantra.nn.Conv2d(4, 6, 3, constraint=constraint, rank=3, scale=scale, dtype=dtype, **kwargs)
    if layer.scale is not None:
        with torch.no_grad():
            layer.scale.copy_(torch.rand_like(layer.scale) + 0.5)
    x = torch.randn(3, 4, 9, 10, dtype=dtype)
    y, reference = layer(x), dense(layer, x)
    assert y.shape == reference.shape
    assert max_abs(y - reference) < tol
    assert max_abs(layer(x[0]) - reference[0]) < tol  # unbatched input


def test_weight_normalized_low_rank_conv():
    torch.manual_seed(3)
    layer = mantra.nn.Conv2d(3, 8, 3, padding=1, constraint="low_rank_oblique", rank=2, scale="per_row", dtype=D)
    with torch.no_grad():
        layer.scale.copy_(torch.rand(8, 1, dtype=D) + 0.5)
    W = layer.effective_weight().reshape(8, -1)
    # W = diag(g) X, X of rank ≤ 2 with unit rows: the row norms are g.
    assert max_abs(W.norm(dim=1, keepdim=True) - layer.scale) < 1e-12
    assert torch.linalg.matrix_rank(W.detach()).item() == 2
    # Parameters: v of the factors (m+n)·r, g (m), bias (m).
    assert sum(t.numel() for t in layer.parameters()) == (8 + 27) * 2 + 8 + 8


def test_factored_gradients_equal_dense_and_pass_gradcheck():
    torch.manual_seed(4)
    layer = mantra.nn.Conv2d(3, 4, (2, 3), padding=1, constraint="low_rank_oblique", rank=2, scale="per_row",
                             dtype=D)
    with torch.no_grad():
        layer.scale.copy_(torch.rand_like(layer.scale) + 0.5)
        layer.parametrizations.weight.original.add_(0.1 * torch.randn_like(layer.parametrizations.weight.original))
    x = torch.randn(2, 3, 5, 6, dtype=D)
    w = torch.randn_like(layer(x))
    grads = []
    for f in (layer, lambda t: dense(layer, t)):
        layer.zero_grad()
        (f(x) * w).sum().backward()
        grads.append([p.grad.clone() for p in layer.parameters()])
    assert len(grads[0]) == 3  # bias, the chart v, g
    for a, b in zip(*grads):
        assert max_abs(a - b) < 1e-12 * max(1.0, max_abs(b)) and max_abs(a) > 0
    # The op against finite differences, in every differentiable argument.
    p = layer._coupled()
    P = p.point(layer.parametrizations.weight.original).detach().requires_grad_()
    g = layer.scale.detach().clone().requires_grad_()
    b = layer.bias.detach().clone().requires_grad_()
    xs = torch.randn(1, 3, 5, 7, dtype=D, requires_grad=True)

    def op(x_, P_, g_, b_):
        return torch.ops.mantra.low_rank_coupled_conv2d(x_, P_, p.spec, [2, 3], [2, 1], [1, 0], [1, 2], 1, g_, b_)

    assert torch.autograd.gradcheck(op, (xs, P, g, b))
    torch.library.opcheck(torch.ops.mantra.low_rank_coupled_conv2d, (xs, P, p.spec, [2, 3], [1, 1], [1, 1], [1, 1], 1,
                                                                     g, b))


# ---------------------------------------------------------------- C++ and Python agree

@pytest.mark.parametrize("constraint,rank,scale,groups", [("none", 1, "none", 1), ("orthogonal", 1, "none", 1),
                                                         ("low_rank", 2, "isotropic", 1),
                                                         ("low_rank_oblique", 3, "per_row", 1),
                                                         ("low_rank_oblique", 2, "per_row", 2),
                                                         ("low_rank_sphere", 2, "none", 1)])
def test_cpp_and_python_agree(constraint, rank, scale, groups):
    args = dict(stride=(1, 2), padding=(1, 1), dilation=(2, 1))
    x = torch.randn(2, 4, 9, 9, dtype=D)
    kernel, y = _C.testing.cpp_conv2d(5, 4, 6, [3, 2], list(args["stride"]), list(args["padding"]),
                                      list(args["dilation"]), groups, True, constraint, "expm", rank, scale, x)
    torch.manual_seed(5)
    layer = mantra.nn.Conv2d(4, 6, (3, 2), groups=groups, constraint=constraint, rank=rank, scale=scale,
                             **args).to(D)
    with torch.no_grad():
        assert max_abs(layer.effective_weight() - kernel) < 1e-12
        assert max_abs(layer(x) - y) < 1e-12


# ---------------------------------------------------------------- state, assignment, errors

@pytest.mark.parametrize("constraint", ["orthogonal", "low_rank", "low_rank_oblique"])
def test_state_dict_pickle_and_deepcopy_round_trip(constraint):
    torch.manual_seed(6)

    def make():
        return mantra.nn.Conv2d(3, 4, 3, padding=1, constraint=constraint, rank=2 if constraint in RANKED else 1,
                                scale="per_row", dtype=D)

    layer = make()
    with torch.no_grad():
        for t in layer.parameters():
            t.add_(0.1 * torch.randn_like(t))
    x = torch.randn(2, 3, 5, 5, dtype=D)
    fresh = make()
    fresh.load_state_dict(layer.state_dict())
    for other in (fresh, pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
        assert max_abs(other(x) - layer(x)) == 0


def test_assigning_a_kernel():
    torch.manual_seed(7)
    layer = mantra.nn.Conv2d(2, 8, 2, constraint="orthogonal", dtype=D)
    Q = torch.linalg.qr(torch.randn(8, 8, dtype=D))[0]
    Q = Q * torch.linalg.det(Q).sign()  # SO(8)
    Q[:, 0] *= torch.linalg.det(Q).sign()
    layer.weight = Q.reshape(8, 2, 2, 2)
    assert max_abs(layer.weight.reshape(8, -1) - Q) < 1e-12
    with pytest.raises(ValueError, match="not a point"):
        layer.weight = 2 * Q.reshape(8, 2, 2, 2)
    with pytest.raises(ValueError, match="the assigned kernel must have shape"):
        layer.weight = Q


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="argument 'kernel_size' must be an int or two ints >= 1"):
        mantra.nn.Conv2d(3, 4, (0, 3))
    with pytest.raises(ValueError, match="argument 'groups' must be >= 1 and divide"):
        mantra.nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="must be positive"):
        mantra.nn.Conv2d(0, 4, 3)
    with pytest.raises(ValueError, match="argument 'constraint' must be"):
        mantra.nn.Conv2d(3, 4, 3, constraint="unitary")
    with pytest.raises(ValueError, match="argument 'scale'"):
        mantra.nn.Conv2d(3, 4, 3, scale="columns")
    with pytest.raises(ValueError, match="argument 'triv' has no effect with constraint 'sphere'"):
        mantra.nn.Conv2d(3, 4, 3, constraint="sphere", triv="cayley")
    # The matrix view is 4 × 27: rank ≤ 4.
    with pytest.raises(ValueError, match=r"low_rank_oblique: argument 'rank' must be an int in \[1, min\(n, k\) = 4\]"):
        mantra.nn.Conv2d(3, 4, 3, constraint="low_rank_oblique", rank=5)
    M = mantra.manifolds.LowRankOblique(4, 27, 2)
    P = M.random(31, 2)
    with pytest.raises(ValueError, match=r"low_rank_coupled_conv2d: argument 'input' must be \(N, C, H, W\)"):
        torch.ops.mantra.low_rank_coupled_conv2d(torch.randn(1, 2, 5, 5), P, M.spec, [3, 3])
    with pytest.raises(ValueError, match="low_rank_coupled_conv2d: argument 'manifold' must be LowRankOblique"):
        torch.ops.mantra.low_rank_coupled_conv2d(torch.randn(1, 3, 5, 5), P, "Sphere(retraction=exp)", [3, 3])
    with pytest.raises(ValueError, match="low_rank_coupled_conv2d: argument 'kernel_size' must be two ints >= 1"):
        torch.ops.mantra.low_rank_coupled_conv2d(torch.randn(1, 3, 5, 5), P, M.spec, [0, 3])


def test_compile_fullgraph_and_export_trace_through():
    torch.manual_seed(8)
    net = nn.Sequential(mantra.nn.Conv2d(3, 8, 3, padding=1, constraint="low_rank_oblique", rank=2, scale="per_row",
                                         dtype=D), nn.ReLU(), mantra.nn.Conv2d(8, 4, 3, constraint="orthogonal", dtype=D))
    x = torch.randn(2, 3, 6, 6, dtype=D)
    eager = net(x)
    eager.sum().backward()
    grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    out = torch.compile(net, fullgraph=True, backend="aot_eager")(x)
    out.sum().backward()
    assert max_abs(out - eager) < 1e-12
    assert all(max_abs(p.grad - g) < 1e-12 for p, g in zip(net.parameters(), grads))
    assert max_abs(torch.export.export(net, (x,)).module()(x) - eager) < 1e-12
