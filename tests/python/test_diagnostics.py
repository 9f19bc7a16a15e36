"""mantra.diagnostics: the C++ diagnostics reached from Python models (torch.nn modules,
lambdas, mantra's constrained layers); numbers against dense linear algebra in float64."""

import doctest

import pytest
import torch
import torch.nn as nn

import mantra
import mantra.diagnostics as dg

F64 = torch.float64


def tanh_mlp(widths, seed=0):
    torch.manual_seed(seed)
    layers = []
    for i in range(len(widths) - 1):
        layers += [nn.Linear(widths[i], widths[i + 1]), nn.Tanh()]
    return nn.Sequential(*layers[:-1]).double()


def dense_fisher(model, params, data, cross_entropy):
    """G = 1/N Σ J_iᵀ H_i J_i with J_i from torch.func.jacrev (independent of the C++ code)."""
    names = [n for n, p in model.named_parameters() if any(p is q for q in params)]
    theta = {n: p.detach() for n, p in model.named_parameters()}

    def out(flat_params, x):
        return torch.func.functional_call(model, {**theta, **flat_params}, (x.unsqueeze(0),)).squeeze(0)

    G = 0
    for x in data:
        jac = torch.func.jacrev(out)({n: theta[n] for n in names}, x)
        J = torch.cat([jac[n].reshape(jac[n].shape[0], -1) for n in names], dim=1)
        z = out({}, x)
        H = torch.eye(z.numel(), dtype=F64)
        if cross_entropy:
            p = torch.softmax(z, 0)
            H = torch.diag(p) - torch.outer(p, p)
        G = G + J.T @ H @ J
    return G / data.shape[0]


def test_orthogonal_linear_stack_is_an_isometry():
    torch.manual_seed(0)
    Ws = [torch.linalg.qr(torch.randn(8, 8, dtype=F64))[0] for _ in range(4)]

    def f(x):
        for W in Ws:
            x = x @ W.T
        return x

    s = dg.jacobian_spectrum(f, torch.randn(5, 8, dtype=F64), tolerance=1e-12, full_spectrum=True)
    assert s.converged
    assert torch.allclose(s.s_max, torch.ones(5, dtype=F64), atol=1e-12, rtol=0)
    assert torch.allclose(s.singular_values, torch.ones(5, 8, dtype=F64), atol=1e-12, rtol=0)
    assert torch.allclose(s.chi, torch.ones(5, dtype=F64), atol=1e-12, rtol=0)


def test_diagonal_network_smax_is_the_product():
    d = [torch.tensor([0.5, -2.0, 1.5], dtype=F64), torch.tensor([3.0, 1.0, -0.4], dtype=F64)]
    s = dg.jacobian_spectrum(lambda x: x * d[0] * d[1], torch.ones(1, 3, dtype=F64), tolerance=1e-13,
                             max_iterations=5000)
    assert abs(s.s_max.item() - 2.0) < 1e-10  # |products| = 1.5, 2.0, 0.6


def test_tanh_module_matches_torch_func_jacobian():
    net = tanh_mlp([6, 7, 6])
    x = torch.randn(4, 6, dtype=F64)
    J = dg.jacobian(net, x)
    for b in range(4):
        ref = torch.func.jacrev(net)(x[b])
        assert torch.allclose(J[b], ref, atol=1e-14, rtol=0)
    s = dg.jacobian_spectrum(net, x, tolerance=1e-12, max_iterations=5000)
    ref = torch.linalg.svdvals(J)[:, 0]
    assert torch.allclose(s.s_max, ref, atol=1e-9, rtol=0)
    assert s.iterations == dg.jacobian_spectrum(net, x, tolerance=1e-12, max_iterations=5000).iterations


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_fisher_against_the_dense_matrix(loss):
    net = tanh_mlp([3, 4, 3], seed=1)
    data = torch.randn(6, 3, dtype=F64)
    params = list(net.parameters())
    G = dense_fisher(net, params, data, loss == "cross_entropy")
    Gf = dg.fisher_matrix(net, loss, data)
    assert torch.allclose(Gf, G, atol=1e-12 * G.abs().max().item(), rtol=0)
    v = [torch.randn_like(p) for p in params]
    Gv = torch.cat([t.reshape(-1) for t in dg.fisher_vector_product(net, loss, data, v)])
    assert torch.allclose(Gv, G @ torch.cat([t.reshape(-1) for t in v]), atol=1e-12 * G.abs().max().item(), rtol=0)
    dense = torch.linalg.eigvalsh(G).max().item()
    e = dg.fisher_max_eigenvalue(net, loss, data, tolerance=1e-10, max_iterations=20000)
    assert e.converged
    assert abs(e.lambda_max - dense) <= 1e-9 * dense  # residual 1e-10 (Bauer–Fike), asked 1e-9 relative
    b = dg.fisher_block_bound(net, loss, data, tolerance=1e-10, max_iterations=20000)
    assert len(b.block_lambda_max) == 2
    assert b.lower <= dense * (1 + 1e-9) and dense <= b.upper * (1 + 1e-9)


def test_float32_model():
    net = tanh_mlp([5, 5, 5]).float()
    e = dg.fisher_max_eigenvalue(net, "cross_entropy", torch.randn(10, 5), tolerance=1e-5, max_iterations=5000)
    G = dg.fisher_matrix(net.double(), "cross_entropy", torch.randn(10, 5, dtype=F64))  # just runs in float64 too
    assert e.converged and e.lambda_max > 0 and G.shape == (sum(p.numel() for p in net.parameters()),) * 2


def test_mantra_constrained_layer():
    # mantra.nn.Linear (a parametrized orthogonal weight): the linear stack has s_max = 1.
    lin = mantra.nn.Linear(6, 6, bias=False).double()
    s = dg.jacobian_spectrum(lambda x: lin(lin(x)), torch.randn(3, 6, dtype=F64), tolerance=1e-12)
    assert torch.allclose(s.s_max, torch.ones(3, dtype=F64), atol=1e-10, rtol=0)


def test_critical_point_fixed_point_and_chi():
    for q in [9e-4, 1 / 64, 0.1, 0.5]:
        p = dg.critical_point("tanh", q)
        assert abs(dg.q_map("tanh", p.sigma_w, p.sigma_b, q) - q) < 1e-10
        assert abs(dg.chi("tanh", p.sigma_w, q) - 1) < 1e-10
        assert abs(dg.fixed_point_q("tanh", p.sigma_w, p.sigma_b) - q) < 1e-10
    small = dg.critical_point("tanh", 1e-6)
    assert abs(small.sigma_w - 1) < 2e-6 and small.sigma_b < 1e-8
    r = dg.critical_point("relu", 0.3)
    assert r.sigma_w == pytest.approx(2 ** 0.5, abs=1e-15) and r.sigma_b == 0


def test_inits():
    W = torch.empty(5, 3, dtype=F64)
    dg.orthogonal_init_(W, 1.5, torch.Generator().manual_seed(1))
    assert torch.allclose(W.T @ W, 2.25 * torch.eye(3, dtype=F64), atol=1e-13)
    W2 = torch.empty(5, 3, dtype=F64)
    dg.orthogonal_init_(W2, 1.5, torch.Generator().manual_seed(1))
    assert torch.equal(W, W2)
    p = nn.Parameter(torch.empty(3))
    dg.bias_init_(p, 0.1)  # a leaf that requires grad is filled in place
    assert p.requires_grad and p.abs().max() > 0


def test_bad_input_names_the_argument():
    net = tanh_mlp([3, 4, 2])
    data = torch.randn(5, 3, dtype=F64)
    with pytest.raises(ValueError, match="'parameters'.*model without parameters"):
        dg.fisher_max_eigenvalue(nn.Tanh(), "mse", data)
    with pytest.raises(ValueError, match="'loss'"):
        dg.fisher_max_eigenvalue(net, "hinge", data)
    with pytest.raises(ValueError, match="'data'"):
        dg.fisher_max_eigenvalue(net, "mse", torch.randn(3, dtype=F64))
    with pytest.raises(ValueError, match="'x'"):
        dg.jacobian_spectrum(net, torch.randn(3, dtype=F64))
    with pytest.raises(ValueError, match="'q_star'"):
        dg.critical_point("tanh", 0.0)
    with pytest.raises(ValueError, match="'activation'"):
        dg.critical_point("gelu", 0.1)


def test_python_errors_in_the_model_propagate():
    def broken(x):
        raise KeyError("inside the model")

    with pytest.raises(KeyError, match="inside the model"):
        dg.jacobian_spectrum(broken, torch.randn(2, 3))


@pytest.mark.parametrize("name", dg.__all__)
def test_docstrings(name):
    obj = getattr(dg, name)
    if name[0].isupper():
        return  # the bound result classes
    doc = obj.__doc__
    assert "Args:" in doc and "Example" in doc and ".. math::" in doc
    torch.manual_seed(0)
    tests = doctest.DocTestFinder(recurse=False).find(obj, name=name, module=False,
                                                      globs={"torch": torch, "mantra": mantra})
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for t in tests:
        runner.run(t)
    assert runner.summarize(verbose=False).failed == 0
