"""float16/bfloat16 weights can carry every constraint: the maps run in float32 (C++
functional) and are rounded once, so the weight is the float32 one rounded to half precision."""

import pytest
import torch
import torch.nn as nn

import mantra
from test_compile_export import CONSTRAINTS, N

EPS = {torch.float16: 2.0 ** -10, torch.bfloat16: 2.0 ** -7}


def constrained(constrain, dtype, seed):
    torch.manual_seed(seed)
    layer = nn.Linear(N, N, bias=False).to(dtype)  # the float32 init, rounded
    constrain(layer)
    return layer


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
@pytest.mark.parametrize("name, constrain", CONSTRAINTS, ids=[c[0] for c in CONSTRAINTS])
def test_half_weights_are_the_float32_weights_rounded(name, constrain, dtype):
    half, full = constrained(constrain, dtype, 3), constrained(constrain, torch.float32, 3)
    W = half.weight
    assert W.dtype == dtype
    ref = full.weight.detach()
    scale = max(1.0, ref.abs().max().item())
    # Inputs (base, v) rounded to half, the map in float32, the result rounded: a few ulps.
    assert (W.float() - ref).abs().max().item() <= 16 * EPS[dtype] * scale, name
    W.float().pow(2).sum().backward()
    grads = [p.grad for p in half.parameters() if p.requires_grad]
    assert grads and all(g is not None and g.dtype == dtype and torch.isfinite(g).all() for g in grads), name


def test_mantra_linear_in_float16():
    layer = mantra.nn.Linear(4, 4, dtype=torch.float16)
    W = layer.weight.float()
    assert (W.T @ W - torch.eye(4)).abs().max().item() <= 8 * EPS[torch.float16]
    assert layer(torch.randn(2, 4, dtype=torch.float16)).dtype == torch.float16
