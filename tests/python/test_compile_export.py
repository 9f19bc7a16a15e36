"""torch.compile(fullgraph=True) with the default inductor backend, and torch.export, trace
through every constraint (their forwards are torch.ops.mantra operators) and match eager."""

import pytest
import torch
import torch.nn as nn

import mantra

# Compile afresh: these tests are about inductor's code, not a replay of a cached one (the
# caches themselves carry mantra's build identity: test_compile_caches_are_keyed_by_the_build).
torch._inductor.config.fx_graph_cache = False
torch._functorch.config.enable_autograd_cache = False

N = 5

# Every constraint, on an N×N (or N-vector) tensor of its own Linear layer.
CONSTRAINTS = [
    ("orthogonal", lambda m: mantra.orthogonal(m, "weight")),
    ("orthogonal_cayley", lambda m: mantra.orthogonal(m, "weight", triv="cayley")),
    ("orthogonal_qr", lambda m: mantra.orthogonal(m, "weight", triv="qr")),
    ("orthogonal_polar", lambda m: mantra.orthogonal(m, "weight", triv="polar")),
    ("orthogonal_householder", lambda m: mantra.orthogonal(m, "weight", triv="householder")),
    ("orthogonal_callable", lambda m: mantra.orthogonal(m, "weight", triv=torch.matrix_exp)),
    ("grassmannian", lambda m: mantra.grassmannian(m, "weight")),
    ("sphere", lambda m: mantra.sphere(m, "weight", radius=2.0)),
    ("sphere_embedded", lambda m: mantra.sphere(m, "weight", embedded=True)),
    ("oblique", lambda m: mantra.oblique(m, "weight")),
    ("positive_definite", lambda m: mantra.positive_definite(m, "weight")),
    ("positive_definite_cholesky", lambda m: mantra.positive_definite_cholesky(m, "weight")),
    ("positive_definite_f", lambda m: mantra.positive_definite(m, "weight", f=torch.nn.functional.softplus)),
    ("invertible", lambda m: mantra.invertible(m, "weight")),
    ("hyperbolic", lambda m: mantra.hyperbolic(m, "weight")),
    ("hyperbolic_poincare", lambda m: mantra.hyperbolic(m, "weight", model="poincare")),
    ("low_rank", lambda m: mantra.low_rank(m, "weight", 2)),
    ("fixed_rank", lambda m: mantra.fixed_rank(m, "weight", 2)),
    ("positive_semidefinite", lambda m: mantra.positive_semidefinite(m, "weight")),
    ("positive_semidefinite_low_rank", lambda m: mantra.positive_semidefinite_low_rank(m, "weight", 2)),
    ("positive_semidefinite_fixed_rank", lambda m: mantra.positive_semidefinite_fixed_rank(m, "weight", 2)),
    ("almost_orthogonal", lambda m: mantra.almost_orthogonal(m, "weight", lam=0.3)),
    ("almost_orthogonal_tanh", lambda m: mantra.almost_orthogonal(m, "weight", f="tanh")),
    ("symmetric", lambda m: mantra.symmetric(m, "weight")),
    ("skew", lambda m: mantra.skew(m, "weight")),
    ("sln", lambda m: mantra.sln(m, "weight")),
    ("alpha_stable", lambda m: mantra.alpha_stable(m, "weight", alpha=0.2)),
]


# Compiled in three graphs. With an empty inductor cache, one graph of all of them gives a wrong
# inductor gradient for the Householder weight (off by 12.6; forward right), while aot_eager on
# the same single graph (the same capture and AOT decompositions, no inductor codegen) matches
# eager, and so does inductor on each smaller graph: an inductor miscompile, not mantra's
# (disabling inductor's buffer reuse does not change it). README: torch.compile.
GROUPS = [CONSTRAINTS[:11], CONSTRAINTS[11:18], CONSTRAINTS[18:]]


class AllConstraints(nn.Module):
    """One Linear per constraint; the output stacks their outputs (one graph per group)."""

    def __init__(self, constraints=None):
        super().__init__()
        self.constraints = CONSTRAINTS if constraints is None else constraints
        self.layers = nn.ModuleDict()
        for name, constrain in self.constraints:
            layer = nn.Linear(N, N, bias=False, dtype=torch.float64)
            constrain(layer)
            self.layers[name] = layer

    def forward(self, x):
        return torch.stack([layer(x) for layer in self.layers.values()])


def model_and_input(constraints=None):
    torch.manual_seed(0)
    model = AllConstraints(constraints)
    with torch.no_grad():  # off the base: v ≠ 0, so every map is exercised away from its identity
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model, torch.randn(3, N, dtype=torch.float64)


@pytest.mark.parametrize("group", range(len(GROUPS)))
def test_compile_fullgraph_inductor_matches_eager_forward_and_backward(group):
    model, x = model_and_input(GROUPS[group])
    eager = model(x)
    eager_grads = torch.autograd.grad(eager.pow(2).sum(), list(model.parameters()))
    compiled = torch.compile(model, fullgraph=True)  # the default backend: inductor
    out = compiled(x)
    grads = torch.autograd.grad(out.pow(2).sum(), list(model.parameters()))
    for i, (name, _) in enumerate(model.constraints):
        assert (out[i] - eager[i]).abs().max().item() <= 1e-10, name
    for (name, _), g, e in zip(model.named_parameters(), grads, eager_grads):
        assert (g - e).abs().max().item() <= 1e-8 * max(1.0, e.abs().max().item()), name


def test_export_matches_eager():
    model, x = model_and_input()
    eager = model(x)
    program = torch.export.export(model, (x,))
    out = program.module()(x)
    for i, (name, _) in enumerate(CONSTRAINTS):
        assert (out[i] - eager[i]).abs().max().item() <= 1e-12, name
    # The exported graph calls mantra's operators (the maps are not opaque Python calls).
    targets = {str(node.target) for node in program.graph.nodes}
    for op in ("mantra.trivialize", "mantra.householder", "mantra.spectral_compose", "mantra.cholesky_map",
               "mantra.linear_map", "mantra.frame_from_chart", "mantra.hurwitz_compose"):
        assert any(t.startswith(op) for t in targets), op


CACHE_PROBE = r"""
import json, sys
import torch, torch.nn as nn
import mantra
from torch._dynamo.utils import counters
torch._inductor.config.fx_graph_cache = True
torch._functorch.config.enable_autograd_cache = True
torch.manual_seed(0)
layer = mantra.orthogonal(nn.Linear(4, 4).double(), "weight")
x = torch.randn(2, 4, dtype=torch.float64)
def run():
    torch._dynamo.reset()
    counters.clear()
    torch.compile(layer, fullgraph=True)(x).sum().backward()
    return {k: counters["aot_autograd"][k] for k in ("autograd_cache_hit", "autograd_cache_miss")}
first, again = run(), run()
torch.compiler.config.cache_key_tag = torch.compiler.config.cache_key_tag.replace(mantra.compile_cache_tag,
                                                                                  "mantra-another-build")
other = run()
print(json.dumps({"first": first, "again": again, "other": other, "tag": torch.compiler.config.cache_key_tag,
                  "own": mantra.compile_cache_tag}))
"""


def test_compile_caches_are_keyed_by_the_build(tmp_path):
    """torch.compile's AOT-autograd cache keys graphs that name mantra's composite ops: the
    import tags the caches with a hash of the loaded libmantra, so another build misses."""
    import json
    import os
    import subprocess
    import sys
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(tmp_path), TORCH_COMPILE_CACHE_KEY_TAG="users-tag")
    out = subprocess.run([sys.executable, "-c", CACHE_PROBE], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["own"].startswith("mantra-") and len(r["own"]) == len("mantra-") + 16
    assert r["first"] == {"autograd_cache_hit": 0, "autograd_cache_miss": 1}, r
    assert r["again"] == {"autograd_cache_hit": 1, "autograd_cache_miss": 0}, r   # the same build hits
    assert r["other"] == {"autograd_cache_hit": 0, "autograd_cache_miss": 1}, r   # another build misses
    assert r["tag"] == "users-tag|mantra-another-build"  # the user's own tag is kept
