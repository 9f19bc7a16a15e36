"""Every public callable of mantra has a docstring in geotorch's manner: a summary, the map in
one line of maths, an ``Args:`` section and an ``Example::`` section (issue 10, "Layout")."""

import doctest

import pytest
import torch
import torch.nn as nn

import mantra
import mantra.manifolds
import mantra.nn
import mantra.optim
import mantra.parametrize

MODULES = [mantra, mantra.nn, mantra.optim, mantra.manifolds, mantra.parametrize]

# Names exempt from the check (none).
LATER = set()

# The methods of the manifold protocol a user calls directly.
MANIFOLD_METHODS = ["proj_tangent", "egrad_to_rgrad", "retract", "transport", "retract_transport", "inner", "norm",
                    "project", "random", "origin", "check_point"]


def public_names(module):
    """``__all__``, or (mantra.optim has none) the public names the module itself defines."""
    if hasattr(module, "__all__"):
        return module.__all__
    return [n for n, obj in vars(module).items()
            if not n.startswith("_") and getattr(obj, "__module__", None) == module.__name__]


def public_callables():
    names = []
    for module in MODULES:
        for name in public_names(module):
            obj = getattr(module, name)
            if callable(obj) and (module.__name__, name) not in LATER:
                names.append((f"{module.__name__}.{name}", obj))
    return names


PUBLIC = public_callables()


def test_the_public_names_are_found():
    found = {name for name, _ in PUBLIC}
    # One known name of each module and kind (a test that finds nothing cannot fail).
    for name in ["mantra.expm", "mantra.cuda_enabled", "mantra.orthogonal", "mantra.nn.Linear",
                 "mantra.optim.RiemannianAdam", "mantra.optim.DynamicTrivialization", "mantra.manifolds.Stiefel", "mantra.manifolds.PoincareBall",
                 "mantra.parametrize.SpectralParametrization", "mantra.parametrize.originals"]:
        assert name in found
    assert len(PUBLIC) >= 50


def check_doc(name, obj):
    doc = obj.__doc__ or ""
    assert doc.strip(), f"{name} has no docstring"
    assert "Args:" in doc, f"{name}: its docstring has no 'Args:' section"
    assert "Example" in doc, f"{name}: its docstring has no 'Example' section"
    assert ">>> " in doc, f"{name}: its example has no '>>> ' line"


@pytest.mark.parametrize("name,obj", PUBLIC, ids=[n for n, _ in PUBLIC])
def test_public_callable_has_args_and_example(name, obj):
    check_doc(name, obj)
    assert ".. math::" in obj.__doc__, f"{name}: its docstring has no '.. math::' line"


@pytest.mark.parametrize("method", MANIFOLD_METHODS)
def test_manifold_methods_have_args_and_example(method):
    check_doc(f"Manifold.{method}", getattr(mantra.manifolds.Manifold, method))


# The examples whose outputs are exact (or checks that print True/''): run them as doctests.
EXACT = [mantra.expm, mantra.expm_backward, mantra.manifolds.Manifold, mantra.manifolds.Euclidean,
         mantra.manifolds.Stiefel, mantra.manifolds.Grassmannian, mantra.manifolds.Sphere, mantra.manifolds.Oblique,
         mantra.manifolds.FixedRank, mantra.manifolds.PSD, mantra.manifolds.GLPlus, mantra.manifolds.SL, mantra.manifolds.SPD,
         mantra.manifolds.Hyperbolic, mantra.manifolds.Lorentz, mantra.manifolds.PoincareBall,
         mantra.optim.RiemannianSGD, mantra.optim.RiemannianAdam, mantra.nn.Linear,
         mantra.parametrize.MantraParametrization, mantra.parametrize.ManifoldParametrization,
         mantra.parametrize.CallableTrivialization, mantra.parametrize.SpectralParametrization,
         mantra.parametrize.HouseholderParametrization, mantra.parametrize.CholeskyParametrization,
         mantra.parametrize.LinearMapParametrization, mantra.parametrize.originals,
         mantra.parametrize.HurwitzParametrization, mantra.alpha_stable,
         mantra.manifolds.SPD.distance, mantra.manifolds.SPD.log, mantra.manifolds.Hyperbolic.distance,
         mantra.nn.Linear.effective_weight, mantra.nn.Linear.penalty, mantra.nn.Conv2d, mantra.nn.Conv2d.effective_weight, mantra.optim.DynamicTrivialization,
         mantra.cuda_enabled, mantra.diagnostics.spectral_abscissa] + [getattr(mantra.manifolds.Manifold, m) for m in MANIFOLD_METHODS]


def example_id(obj):
    # pybind methods' __qualname__ names pybind's function record: use their __name__.
    q = obj.__qualname__
    return obj.__name__ if "pybind11" in q else q


@pytest.mark.parametrize("obj", EXACT, ids=[example_id(o) for o in EXACT])
def test_examples_run(obj):
    torch.manual_seed(0)
    finder = doctest.DocTestFinder(recurse=False)
    globs = {"torch": torch, "nn": nn, "mantra": mantra}
    tests = finder.find(obj, name=example_id(obj), module=False, globs=globs)
    assert tests and tests[0].examples, "no example found"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} example lines failed"
