"""PyTorch conventions on constrained models: pickle/deepcopy, .double(), autocast, torch.compile."""

import copy
import io
import pickle

import pytest
import torch
import torch.nn as nn

import mantra


def model():
    torch.manual_seed(0)
    m = nn.Sequential(mantra.nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 5))
    mantra.orthogonal(m[2], "weight", triv="cayley")
    mantra.low_rank(m[4], "weight", 2)
    return m


def test_pickle_and_deepcopy_of_a_whole_model():
    m = model()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.01)
    x = torch.randn(3, 6)
    for clone in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
        assert torch.equal(clone(x), m(x))
        assert type(clone[0]).__name__ == "ParametrizedLinear" and isinstance(clone[0], mantra.nn.Linear)
        mantra.update_base(clone[2], "weight")  # still a working mantra constraint
        assert torch.allclose(clone(x), m(x), atol=1e-6)
    buf = io.BytesIO()
    torch.save(m, buf)
    buf.seek(0)
    assert torch.equal(torch.load(buf, weights_only=False)(x), m(x))
    for M in (mantra.manifolds.Stiefel(special=True, retraction="cayley"), mantra.manifolds.FixedRank(3),
              mantra.manifolds.SPD(min_eigenvalue=0.5), mantra.manifolds.Lorentz()):
        M2 = pickle.loads(pickle.dumps(M))
        assert type(M2) is type(M) and M2.name == M.name and M2.retractions == M.retractions


def test_double_keeps_the_weight_on_the_manifold():
    torch.manual_seed(1)
    lin = mantra.orthogonal(nn.Linear(8, 8), "weight")
    with torch.no_grad():
        lin.parametrizations.weight.original.normal_(std=0.1)
    mantra.update_base(lin, "weight")
    err32 = (lin.weight.double().T @ lin.weight.double() - torch.eye(8, dtype=torch.float64)).abs().max().item()
    assert 1e-9 < err32 < 1e-5
    lin.double()
    W = lin.weight
    assert W.dtype == torch.float64
    assert (W.T @ W - torch.eye(8, dtype=torch.float64)).abs().max().item() < 1e-13
    assert torch.linalg.det(W).item() > 0
    low = mantra.low_rank(nn.Linear(6, 5), "weight", 2).to(torch.float64)  # composite: U, V re-projected
    U = low.parametrizations.weight[0].U.base
    assert (U.T @ U - torch.eye(2, dtype=torch.float64)).abs().max().item() < 1e-13


def test_autocast_computes_the_maps_in_float32():
    torch.manual_seed(2)
    lin = mantra.nn.Linear(16, 16)  # orthogonal
    ref = mantra.low_rank(nn.Linear(16, 16), "weight", 3)
    x = torch.randn(4, 16)
    W32 = lin.weight.detach().clone()
    R32 = ref.weight.detach().clone()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        W = lin.weight
        y = lin(x)
        R = ref.weight
    assert W.dtype == torch.float32 and torch.equal(W, W32)  # the map itself ran in float32
    assert R.dtype == torch.float32 and torch.equal(R, R32)
    assert y.dtype == torch.bfloat16  # the layer's matmul is autocast's
    assert torch.allclose(y.float(), x @ W32.T + lin.bias, atol=0.05, rtol=0.02)
    # A bfloat16 model maps in float32 and casts back: bf16-rounded orthogonal weight.
    half = mantra.orthogonal(nn.Linear(8, 8), "weight").to(torch.bfloat16)
    Wh = half.weight
    assert Wh.dtype == torch.bfloat16
    assert (Wh.float().T @ Wh.float() - torch.eye(8)).abs().max().item() < 0.03


def test_torch_compile_matches_eager():
    torch.manual_seed(3)
    m = nn.Sequential(mantra.nn.Linear(8, 8, dtype=torch.float64), nn.Tanh(),
                      mantra.nn.Linear(8, 4, triv="cayley", dtype=torch.float64))
    x = torch.randn(5, 8, dtype=torch.float64)

    def loss_of(f):
        m.zero_grad()
        out = f(x).pow(2).sum()
        out.backward()
        return out.detach(), [p.grad.clone() for p in m.parameters()]

    eager_loss, eager_grads = loss_of(m)
    compiled = torch.compile(m, backend="aot_eager")
    c_loss, c_grads = loss_of(compiled)
    assert torch.allclose(c_loss, eager_loss, rtol=1e-12, atol=1e-12)
    for a, b in zip(c_grads, eager_grads):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def test_double_reprojects_callable_triv_and_spectral_bases():
    torch.manual_seed(4)
    cay = lambda A: torch.linalg.solve(torch.eye(A.shape[-1], dtype=A.dtype) - A / 2,
                                       torch.eye(A.shape[-1], dtype=A.dtype) + A / 2)
    lin = mantra.orthogonal(nn.Linear(4, 7), "weight", triv=cay).double()
    W = lin.weight
    assert (W.T @ W - torch.eye(4, dtype=torch.float64)).abs().max().item() < 1e-13
