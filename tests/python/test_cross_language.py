"""The same constraint built in C++ and in Python from the same seed gives the same weights.

C++ side: mantra._C.testing.cpp_constraint builds the constraint with the C++ frontend's
function (mantra::parametrize::orthogonal, …) on a module whose weight is randn(shape) after
manual_seed(seed). Python side: the geotorch-style mantra function on an nn.Module with the
same weight. Both then add the same perturbation to the unconstrained tensors, compare the
weight, rebase (update_base), and compare again. float64, agreement to 1e-12.
"""

import pytest
import torch
import torch.nn as nn

import mantra
from mantra import _C
from mantra.parametrize import originals

SQUARE, TALL, WIDE, BATCHED = (4, 4), (6, 3), (3, 6), (2, 5, 3)
BATCHED_SQUARE = (2, 4, 4)
ALL_SHAPES = (SQUARE, TALL, WIDE, BATCHED)
SQUARE_SHAPES = (SQUARE, BATCHED_SQUARE)

# (function, kwargs, shapes). Callables are named; both sides map the name to the same function.
CASES = [
    ("orthogonal", {}, ALL_SHAPES),
    ("orthogonal", {"triv": "cayley"}, ALL_SHAPES),
    ("orthogonal", {"triv": "qr"}, ALL_SHAPES),
    ("orthogonal", {"triv": "polar"}, ALL_SHAPES),
    ("orthogonal", {"triv": "householder"}, ALL_SHAPES),
    ("orthogonal", {"triv_fn": "matrix_exp"}, ALL_SHAPES),
    ("orthogonal", {"init": "henaff"}, SQUARE_SHAPES),
    ("orthogonal", {"init": "cayley"}, SQUARE_SHAPES),
    ("grassmannian", {}, ALL_SHAPES),
    ("grassmannian", {"triv": "qr"}, ALL_SHAPES),
    ("sphere", {}, ALL_SHAPES),
    ("sphere", {"radius": 2.5}, ALL_SHAPES),
    ("sphere", {"radius": 0.5, "embedded": True}, ALL_SHAPES),
    ("oblique", {}, ALL_SHAPES),
    ("positive_definite", {}, SQUARE_SHAPES),
    ("positive_definite", {"triv": "cholesky"}, SQUARE_SHAPES),
    ("positive_definite", {"f_fn": "softplus", "f_inv": "softplus_inverse"}, SQUARE_SHAPES),
    ("positive_definite_cholesky", {}, SQUARE_SHAPES),
    ("invertible", {}, SQUARE_SHAPES),
    ("sln", {}, SQUARE_SHAPES),
    ("hyperbolic", {}, ALL_SHAPES),
    ("hyperbolic", {"model": "poincare"}, ALL_SHAPES),
    ("low_rank", {"rank": 2}, ALL_SHAPES),
    ("low_rank", {"rank": 2, "triv": "cayley"}, ALL_SHAPES),
    ("fixed_rank", {"rank": 2}, ALL_SHAPES),
    ("fixed_rank", {"rank": 2, "f_fn": "softplus", "f_inv": "softplus_inverse"}, ALL_SHAPES),
    ("positive_semidefinite", {}, SQUARE_SHAPES),
    ("positive_semidefinite_low_rank", {"rank": 2}, SQUARE_SHAPES),
    ("positive_semidefinite_fixed_rank", {"rank": 2}, SQUARE_SHAPES),
    ("almost_orthogonal", {}, ALL_SHAPES),
    ("almost_orthogonal", {"lam": 0.3, "f": "tanh"}, ALL_SHAPES),
    ("almost_orthogonal", {"lam": 0.2, "f": "scaled_sigmoid"}, ALL_SHAPES),
    ("almost_orthogonal", {"lam": 0.2, "f_fn": "tanh", "f_inv": "atanh"}, ALL_SHAPES),
    ("symmetric", {}, SQUARE_SHAPES),
    ("symmetric", {"lower": False}, SQUARE_SHAPES),
    ("skew", {}, SQUARE_SHAPES),
    ("skew", {"lower": False}, SQUARE_SHAPES),
    ("alpha_stable", {}, SQUARE_SHAPES),
    ("alpha_stable", {"alpha": 0.5, "triv": "cholesky"}, SQUARE_SHAPES),
]

CALLABLES = {"matrix_exp": torch.matrix_exp, "tanh": torch.tanh, "atanh": torch.atanh,
             "softplus": torch.nn.functional.softplus, "softplus_inverse": lambda y: y + torch.log(-torch.expm1(-y))}


def python_kwargs(kwargs):
    out = {k: v for k, v in kwargs.items() if k not in ("triv_fn", "f_fn", "f_inv", "init")}
    if "triv_fn" in kwargs:
        out["triv"] = CALLABLES[kwargs["triv_fn"]]
    if "f_fn" in kwargs:
        f = CALLABLES[kwargs["f_fn"]]
        out["f"] = (f, CALLABLES[kwargs["f_inv"]]) if "f_inv" in kwargs else f
    return out


def cpp_names(plist):
    """The C++ constraint's parameter names of the Python originals, in their order."""
    p = plist[0]
    if isinstance(p, mantra.parametrize.SpectralParametrization):
        return ["U.v", "s"] + ([] if p.symmetric else ["V.v"])
    if isinstance(p, mantra.parametrize.HurwitzParametrization):
        return ["P.v", "Q.v", "S.v"]
    return ["v"]


def ids():
    for fn, kwargs, shapes in CASES:
        for shape in shapes:
            yield pytest.param(fn, kwargs, shape, id=f"{fn}-{'-'.join(f'{k}={v}' for k, v in kwargs.items())}-"
                                                     f"{'x'.join(map(str, shape))}")


@pytest.mark.parametrize("fn, kwargs, shape", list(ids()))
def test_cpp_and_python_give_the_same_weights(fn, kwargs, shape):
    dtype, seed = torch.float64, 1234
    torch.manual_seed(seed)
    module = nn.Module()
    module.weight = nn.Parameter(torch.randn(shape, dtype=dtype))
    getattr(mantra, fn)(module, "weight", **python_kwargs(kwargs))
    if "init" in kwargs:
        mantra.sample(module, "weight", init=kwargs["init"])
    plist = module.parametrizations.weight
    tensors = originals(plist)
    torch.manual_seed(seed + 1)
    deltas = {name: 0.1 * torch.randn_like(t) for name, t in zip(cpp_names(plist), tensors)}
    with torch.no_grad():
        for name, t in zip(cpp_names(plist), tensors):
            t.add_(deltas[name])
        value = module.weight.detach().clone()
        mantra.update_base(module, "weight")
        rebased = module.weight.detach().clone()

    cpp_value, cpp_rebased = _C.testing.cpp_constraint(fn, list(shape), torch.empty(0, dtype=dtype), seed, kwargs,
                                                       deltas)
    assert value.shape == cpp_value.shape == shape
    assert (value - cpp_value).abs().max().item() <= 1e-12
    assert (rebased - cpp_rebased).abs().max().item() <= 1e-12
    # Rebasing does not move the weight.
    assert (rebased - value).abs().max().item() <= 1e-10


def test_defaults_table_is_the_cpp_one():
    d = _C.functional.defaults()
    assert (d["triv"], d["almost_orthogonal_f"], d["lam"], d["atol"], d["reproject_every"]) == ("expm", "sin", 0.1,
                                                                                               1e-5, 100)
    import inspect
    assert inspect.signature(mantra.almost_orthogonal).parameters["f"].default == d["almost_orthogonal_f"]
    assert inspect.signature(mantra.almost_orthogonal).parameters["lam"].default == d["lam"]
    assert inspect.signature(mantra.orthogonal).parameters["triv"].default == d["triv"]
