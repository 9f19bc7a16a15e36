"""Constraints on any ``torch.nn.Module`` through ``torch.nn.utils.parametrize``.

A constrained weight is ``φ(v)``, e.g. ``R_base(P_base(v))``: the manifold's retraction at a
base point applied to the tangent projection of the unconstrained tensor ``v``, which is what
the optimizer trains (``module.parametrizations.weight.original``). ``update_base`` moves the
base to the current point and zeroes ``v`` (dynamic trivialization). Names, arguments and
defaults follow geotorch; the maps, the policy and the defaults table are C++
(``mantra::parametrize::functional``), shared with the C++ frontend, so both languages give
the same weights. Forwards are ``torch.ops.mantra`` operators: ``torch.compile`` and
``torch.export`` trace through constrained models::

    mantra.orthogonal(layer, "weight", triv="cayley")
    layer.weight = Q          # assigns a point; ValueError (with the reason) if Q is off the manifold
    mantra.update_base(layer, "weight")

The maps run in float32 at least: under autocast they are computed with autocast off, and
float16/bfloat16 weights are mapped in float32 and cast back.
"""

import torch
import torch.nn as nn
from torch.nn.utils import parametrize as P

from .. import manifolds as mf
from .. import _C
from .modules import (DEFAULTS, CallableTrivialization, CholeskyParametrization, CoupledLowRankParametrization, F,
                      HouseholderParametrization, HurwitzParametrization, LinearMapParametrization, ManifoldParametrization,
                      MantraParametrization, SpectralParametrization)
from .pickling import make_picklable

__all__ = ["orthogonal", "grassmannian", "sphere", "oblique", "positive_definite", "positive_definite_cholesky",
           "invertible", "sln", "hyperbolic", "low_rank", "fixed_rank", "positive_semidefinite",
           "positive_semidefinite_low_rank", "positive_semidefinite_fixed_rank", "almost_orthogonal", "symmetric",
           "skew", "update_base", "sample", "originals", "MantraParametrization", "ManifoldParametrization",
           "CallableTrivialization", "SpectralParametrization", "HouseholderParametrization",
           "CholeskyParametrization", "LinearMapParametrization", "DEFAULTS", "low_rank_oblique", "low_rank_sphere",
           "low_rank_stacked_stiefel", "CoupledLowRankParametrization", "alpha_stable",
           "HurwitzParametrization"]

_D = DEFAULTS


# ---------------------------------------------------------------- registration glue

def _tensor(module, tensor_name, fn):
    if not isinstance(module, nn.Module):
        raise TypeError(f"{fn}: argument 'module' must be a torch.nn.Module, got {type(module).__name__}")
    t = getattr(module, tensor_name, None)
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{fn}: argument 'tensor_name': {type(module).__name__} has no tensor {tensor_name!r}")
    return t


def _matrix(module, tensor_name, fn, square=False):
    X = _tensor(module, tensor_name, fn)
    if X.dim() < 2:
        raise ValueError(f"{fn}: {tensor_name!r} must have at least 2 dimensions, got shape {tuple(X.shape)}")
    if square and X.shape[-1] != X.shape[-2]:
        raise ValueError(f"{fn}: {tensor_name!r} must be square (..., n, n), got shape {tuple(X.shape)}")
    return X


def _attach(module, tensor_name, param):
    # The current value is kept when it satisfies the constraint, otherwise the sampled one is used.
    param._attaching = True
    try:
        P.register_parametrization(module, tensor_name, param, unsafe=True)
    finally:
        param._attaching = False
    make_picklable(module)
    return module


def _register(module, tensor_name, manifold, retraction, fn, scale=1.0):
    X = _tensor(module, tensor_name, fn)
    param = ManifoldParametrization(manifold, tuple(X.shape), retraction, dtype=X.dtype, device=X.device, scale=scale)
    return _attach(module, tensor_name, param)


def _retraction(triv, manifold, fn):
    if not isinstance(triv, str):
        raise ValueError(f"{fn}: argument 'triv' must be a name of the manifold's retractions, got {triv!r}")
    return F.triv_retraction(triv, manifold.spec, fn)


def _factor_triv(triv, fn):
    return triv if callable(triv) else _retraction(triv, mf.Stiefel(), fn)


def _rank(X, rank, fn):
    n, k = X.shape[-2], X.shape[-1]
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= min(n, k):
        raise ValueError(f"{fn}: argument 'rank' must be an int in [1, min(n, k) = {min(n, k)}], got {rank!r}")
    return rank


def _custom(f, fn, names):
    """f as (map name, user f, user f_inv): a name of `names`, a callable or a pair."""
    if isinstance(f, str):
        if f not in names:
            raise ValueError(f"{fn}: argument 'f' must be {', '.join(names)}, a callable or a pair of callables, "
                             f"got {f!r}")
        return f, None, None
    if isinstance(f, (tuple, list)) and len(f) == 2 and all(callable(g) for g in f):
        return None, f[0], f[1]
    if callable(f):
        return None, f, None
    raise ValueError(f"{fn}: argument 'f' must be a name, a callable or a pair of callables, got {f!r}")


def _spectral(module, tensor_name, fn, rank, symmetric, f, triv, check_f, lam=_D["lam"], names=None):
    X = _matrix(module, tensor_name, fn, square=symmetric)
    name, f_fn, f_inv = _custom(f, fn, names or (check_f,))
    param = SpectralParametrization(tuple(X.shape), _rank(X, rank, fn), symmetric, name or check_f, lam=lam,
                                    triv=_factor_triv(triv, fn), f_fn=f_fn, f_inv=f_inv, dtype=X.dtype,
                                    device=X.device)
    return _attach(module, tensor_name, param)


# ---------------------------------------------------------------- the constraints

def orthogonal(module, tensor_name="weight", triv=_D["triv"]):
    r"""Orthonormal columns (rows if wide); SO(n) for square tensors (det = +1).

    .. math:: X = \mathrm{triv}_B(v), \quad X^\top X = I \ (XX^\top = I \text{ if wide})

    Args:
        module (nn.Module): the module holding the tensor.
        tensor_name (str): the tensor to constrain. Default: ``"weight"``.
        triv (str or callable): ``"expm"`` (default), ``"cayley"``, ``"qr"``, ``"polar"``,
            ``"newton_schulz"`` (retractions at a base that ``update_base`` moves), ``"householder"`` (a product of
            reflections), or a callable mapping skew matrices to orthogonal ones with
            ``triv(0) = I`` (geotorch's custom triv).

    Example::

        >>> layer = nn.Linear(20, 30)
        >>> mantra.orthogonal(layer, "weight")
        >>> torch.dist(layer.weight.T @ layer.weight, torch.eye(20)) < 1e-5
    """
    X = _matrix(module, tensor_name, "orthogonal")
    square = X.shape[-1] == X.shape[-2]
    if triv == "householder":
        return _attach(module, tensor_name, HouseholderParametrization(tuple(X.shape), square, dtype=X.dtype,
                                                                       device=X.device))
    if callable(triv):
        return _attach(module, tensor_name, CallableTrivialization(tuple(X.shape), triv, square, dtype=X.dtype,
                                                                   device=X.device))
    manifold = mf.Stiefel(special=square)
    return _register(module, tensor_name, manifold, _retraction(triv, manifold, "orthogonal"), "orthogonal")


def grassmannian(module, tensor_name="weight", triv=_D["triv"]):
    r"""Subspaces: an orthonormal frame X (n×k) standing for its column span, Gr(n, k).

    .. math:: X = R_B(P_B(v)), \quad X^\top X = I, \quad X \sim XQ \text{ for } Q \in O(k)

    Args:
        module (nn.Module): the module holding the tensor.
        tensor_name (str): the tensor to constrain. Default: ``"weight"``.
        triv (str): ``"expm"`` (default), ``"qr"`` or ``"polar"`` (the Grassmannian's retractions).

    Example::

        >>> layer = nn.Linear(3, 10)
        >>> mantra.grassmannian(layer, "weight")
    """
    X = _matrix(module, tensor_name, "grassmannian")
    manifold = mf.Grassmannian()
    return _register(module, tensor_name, manifold, _retraction(triv, manifold, "grassmannian"), "grassmannian")


def sphere(module, tensor_name="weight", radius=_D["radius"], embedded=False):
    r"""Vectors of norm ``radius`` along the last dimension.

    .. math:: X = r \cdot R_B(P_B(v)), \quad \lVert X_{i,:} \rVert = r

    Args:
        module (nn.Module): the module holding the tensor.
        tensor_name (str): the tensor to constrain. Default: ``"weight"``.
        radius (float): the radius r > 0. Default: 1.
        embedded (bool): retract by projection x/‖x‖ instead of the exponential map.

    Example::

        >>> layer = nn.Linear(5, 4)
        >>> mantra.sphere(layer, "bias", radius=2.0)
    """
    if not (isinstance(radius, (int, float)) and 0 < radius < float("inf")):
        raise ValueError(f"sphere: argument 'radius' must be finite and positive, got {radius!r}")
    return _register(module, tensor_name, mf.Sphere(), "projection" if embedded else "default", "sphere",
                     scale=float(radius))


def oblique(module, tensor_name="weight"):
    r"""Matrices with unit-norm columns (a product of spheres), Ob(n, k).

    .. math:: X = R_B(P_B(v)), \quad \mathrm{diag}(X^\top X) = 1

    Args:
        module (nn.Module): the module holding the tensor.
        tensor_name (str): the tensor to constrain. Default: ``"weight"``.

    Example::

        >>> layer = nn.Linear(8, 6)
        >>> mantra.oblique(layer, "weight")
        >>> layer.weight.norm(dim=0)   # ones
    """
    _matrix(module, tensor_name, "oblique")
    return _register(module, tensor_name, mf.Oblique(), "default", "oblique")


def positive_definite(module, tensor_name="weight", f=_D["positive_f"], triv=_D["positive_definite_triv"]):
    r"""Symmetric positive definite matrices.

    .. math:: X = B^{1/2} \exp(\mathrm{sym}\,v) B^{1/2} \ (\text{SPD, affine-invariant exp}), \quad
              X = LL^\top \ (\text{cholesky}),
              \quad X = Q\,\mathrm{diag}(f(s))\,Q^\top \ (\text{callable } f)

    Args:
        module (nn.Module): the module holding the tensor.
        tensor_name (str): the tensor to constrain. Default: ``"weight"``.
        f: ``"softplus"`` (default: the SPD manifold), or a callable R → (0, ∞) (or a pair
            ``(f, f_inv)``) for geotorch's eigenvalue form.
        triv (str): ``"expm"`` (default) or ``"cholesky"``.

    Example::

        >>> layer = nn.Linear(4, 4)
        >>> mantra.positive_definite(layer, "weight", triv="cholesky")
    """
    X = _matrix(module, tensor_name, "positive_definite", square=True)
    if not isinstance(f, str):
        return _spectral(module, tensor_name, "positive_definite", X.shape[-1], True, f,
                         _D["triv"] if triv == "cholesky" else triv, "softplus")
    if f != "softplus":
        raise ValueError(f"positive_definite: argument 'f' must be 'softplus', a callable or a pair of callables, "
                         f"got {f!r}")
    if triv == "cholesky":
        return _attach(module, tensor_name, CholeskyParametrization(tuple(X.shape), dtype=X.dtype, device=X.device))
    if triv != "expm":
        raise ValueError(f"positive_definite: argument 'triv' must be 'expm' or 'cholesky', got {triv!r}")
    return _register(module, tensor_name, mf.SPD(), "default", "positive_definite")


def positive_definite_cholesky(module, tensor_name="weight"):
    r"""Positive definite matrices through a Cholesky factor with a log diagonal.

    .. math:: X = LL^\top, \quad L = \mathrm{tril}(v, -1) + \mathrm{diag}(e^{\mathrm{diag}\, v})

    Args:
        module (nn.Module): the module holding the tensor.
        tensor_name (str): the tensor to constrain. Default: ``"weight"``.

    Example::

        >>> layer = nn.Linear(4, 4)
        >>> mantra.positive_definite_cholesky(layer, "weight")
    """
    return positive_definite(module, tensor_name, triv="cholesky")


def invertible(module, tensor_name="weight", f=_D["positive_f"], triv=_D["triv"]):
    r"""Invertible matrices with det > 0 (the GL+(n) manifold).

    .. math:: X = R_B(P_B(v)), \quad \det X > 0

    Args:
        module (nn.Module): the module holding the tensor.
        tensor_name (str): the tensor to constrain. Default: ``"weight"``.
        f, triv: geotorch's defaults only (``"softplus"``, ``"expm"``).

    Example::

        >>> layer = nn.Linear(6, 6)
        >>> mantra.invertible(layer, "weight")
    """
    return _determinant_group(module, tensor_name, f, triv, "invertible", "GL+", mf.GLPlus)


def sln(module, tensor_name="weight", f=_D["positive_f"], triv=_D["triv"]):
    r"""Matrices of determinant one (the special linear group SL(n)).

    .. math:: X = R_B(v) = \frac{B + v}{\det(B + v)^{1/n}}, \quad \det X = 1

    Args:
        module (nn.Module): the module holding the tensor.
        tensor_name (str): the tensor to constrain. Default: ``"weight"``.
        f, triv: geotorch's defaults only (``"softplus"``, ``"expm"``).

    Example::

        >>> layer = nn.Linear(6, 6)
        >>> mantra.sln(layer, "weight")
        >>> mantra.manifolds.SL(6).check_point(layer.weight.detach())  # determinant 1
        ''
    """
    return _determinant_group(module, tensor_name, f, triv, "sln", "SL", mf.SL)


def _determinant_group(module, tensor_name, f, triv, fn, group, manifold):
    """invertible / sln: a square tensor on the group ``manifold(n)``; f and triv accept geotorch's
    defaults only (these groups have no spectrum map)."""
    X = _matrix(module, tensor_name, fn, square=True)
    if f != "softplus":
        raise ValueError(f"{fn}: argument 'f' must be 'softplus' (mantra's {group} manifold has no spectrum map), "
                         f"got {f!r}")
    if triv != "expm":
        raise ValueError(f"{fn}: argument 'triv' must be 'expm', got {triv!r}")
    return _register(module, tensor_name, manifold(X.shape[-1]), "default", fn)


def hyperbolic(module, tensor_name="weight", model=_D["hyperbolic_model"]):
    r"""Points of hyperbolic space along the last dimension.

    .. math:: \text{lorentz: } -x_0^2 + \textstyle\sum_i x_i^2 = -1,\ x_0 > 0; \quad
              \text{poincare: } \lVert x \rVert < 1

    Args:
        module (nn.Module): the module holding the tensor.
        tensor_name (str): the tensor to constrain. Default: ``"weight"``.
        model (str): ``"lorentz"`` (default, the hyperboloid) or ``"poincare"`` (the ball).

    Example::

        >>> emb = nn.Embedding(100, 3)
        >>> mantra.hyperbolic(emb, "weight", model="poincare")
    """
    if model not in ("lorentz", "poincare"):
        raise ValueError(f"hyperbolic: argument 'model' must be 'lorentz' or 'poincare', got {model!r}")
    return _register(module, tensor_name, mf.Lorentz() if model == "lorentz" else mf.PoincareBall(), "default",
                     "hyperbolic")


def low_rank(module, tensor_name, rank, triv=_D["triv"]):
    r"""Rank at most ``rank``.

    .. math:: X = U\,\mathrm{diag}(s)\,V^\top, \quad U \in St(n, r),\ V \in St(k, r)

    Args:
        module (nn.Module): the module holding the tensor.
        tensor_name (str): the tensor to constrain.
        rank (int): r, 1 ≤ r ≤ min(n, k).
        triv (str or callable): the factors' trivialization (as ``orthogonal``).

    Example::

        >>> layer = nn.Linear(20, 30)
        >>> mantra.low_rank(layer, "weight", 5)
    """
    return _spectral(module, tensor_name, "low_rank", rank, False, "identity", triv, "identity")


def fixed_rank(module, tensor_name, rank, f=_D["positive_f"], triv=_D["triv"]):
    r"""Rank exactly ``rank``.

    .. math:: X = U\,\mathrm{diag}(f(s))\,V^\top, \quad f(s) = \mathrm{softplus}(s) + \varepsilon

    Args:
        module (nn.Module): the module holding the tensor.
        tensor_name (str): the tensor to constrain.
        rank (int): r, 1 ≤ r ≤ min(n, k).
        f: ``"softplus"`` (default), a callable R → (0, ∞) or a pair ``(f, f_inv)``.
        triv (str or callable): the factors' trivialization.

    Example::

        >>> layer = nn.Linear(20, 30)
        >>> mantra.fixed_rank(layer, "weight", 5)
    """
    return _spectral(module, tensor_name, "fixed_rank", rank, False, f, triv, "softplus")


def positive_semidefinite(module, tensor_name="weight", triv=_D["triv"]):
    r"""Symmetric with non-negative eigenvalues.

    .. math:: X = U\,\mathrm{diag}(s^2)\,U^\top

    Args:
        module (nn.Module): the module holding the tensor.
        tensor_name (str): the tensor to constrain. Default: ``"weight"``.
        triv (str or callable): the factor's trivialization.

    Example::

        >>> layer = nn.Linear(5, 5)
        >>> mantra.positive_semidefinite(layer, "weight")
    """
    X = _matrix(module, tensor_name, "positive_semidefinite", square=True)
    return _spectral(module, tensor_name, "positive_semidefinite", X.shape[-1], True, "square", triv, "square")


def positive_semidefinite_low_rank(module, tensor_name, rank, triv=_D["triv"]):
    r"""PSD of rank at most ``rank``.

    .. math:: X = U\,\mathrm{diag}(s^2)\,U^\top, \quad U \in St(n, r)

    Args:
        module (nn.Module): the module holding the tensor.
        tensor_name (str): the tensor to constrain.
        rank (int): r.
        triv (str or callable): the factor's trivialization.

    Example::

        >>> layer = nn.Linear(6, 6)
        >>> mantra.positive_semidefinite_low_rank(layer, "weight", 2)
    """
    _matrix(module, tensor_name, "positive_semidefinite_low_rank", square=True)
    return _spectral(module, tensor_name, "positive_semidefinite_low_rank", rank, True, "square", triv, "square")


def positive_semidefinite_fixed_rank(module, tensor_name, rank, f=_D["positive_f"], triv=_D["triv"]):
    r"""PSD of rank exactly ``rank``.

    .. math:: X = U\,\mathrm{diag}(f(s))\,U^\top, \quad f(s) = \mathrm{softplus}(s) + \varepsilon

    Args:
        module (nn.Module): the module holding the tensor.
        tensor_name (str): the tensor to constrain.
        rank (int): r.
        f: ``"softplus"`` (default), a callable R → (0, ∞) or a pair ``(f, f_inv)``.
        triv (str or callable): the factor's trivialization.

    Example::

        >>> layer = nn.Linear(6, 6)
        >>> mantra.positive_semidefinite_fixed_rank(layer, "weight", 2)
    """
    _matrix(module, tensor_name, "positive_semidefinite_fixed_rank", square=True)
    return _spectral(module, tensor_name, "positive_semidefinite_fixed_rank", rank, True, f, triv, "softplus")


def almost_orthogonal(module, tensor_name="weight", lam=_D["lam"], f=_D["almost_orthogonal_f"], triv=_D["triv"]):
    r"""Singular values in [1 − lam, 1 + lam].

    .. math:: X = U\,\mathrm{diag}(1 + \lambda f(s))\,V^\top

    Args:
        module (nn.Module): the module holding the tensor.
        tensor_name (str): the tensor to constrain. Default: ``"weight"``.
        lam (float): λ in [0, 1] (geotorch's range; 0 gives orthogonal weights). Default: 0.1.
        f: ``"sin"`` (default), ``"tanh"``, ``"scaled_sigmoid"``, a callable into [−1, 1] or a
            pair ``(f, f_inv)``.
        triv (str or callable): the factors' trivialization.

    Example::

        >>> layer = nn.Linear(10, 10)
        >>> mantra.almost_orthogonal(layer, "weight", lam=0.2)
    """
    X = _matrix(module, tensor_name, "almost_orthogonal")
    if isinstance(lam, bool) or not (isinstance(lam, (int, float)) and 0 <= lam <= 1):
        raise ValueError(f"almost_orthogonal: argument 'lam' must be in [0, 1], got {lam!r}")
    return _spectral(module, tensor_name, "almost_orthogonal", min(X.shape[-2:]), False, f, triv, "sin",
                     lam=float(lam), names=("sin", "tanh", "scaled_sigmoid"))


def symmetric(module, tensor_name="weight", lower=_D["lower"]):
    r"""Symmetric matrices from one triangle of the tensor.

    .. math:: X = \mathrm{tril}(v) + \mathrm{tril}(v, -1)^\top \quad (\text{upper: the same with triu})

    Args:
        module (nn.Module): the module holding the tensor.
        tensor_name (str): the tensor to constrain. Default: ``"weight"``.
        lower (bool): read the lower (default) or upper triangle.

    Example::

        >>> layer = nn.Linear(5, 5)
        >>> mantra.symmetric(layer, "weight")
    """
    X = _matrix(module, tensor_name, "symmetric", square=True)
    return _attach(module, tensor_name, LinearMapParametrization(tuple(X.shape), False, lower, dtype=X.dtype,
                                                                     device=X.device))


def skew(module, tensor_name="weight", lower=_D["lower"]):
    r"""Skew-symmetric matrices from one strict triangle of the tensor.

    .. math:: X = \mathrm{tril}(v, -1) - \mathrm{tril}(v, -1)^\top

    Args:
        module (nn.Module): the module holding the tensor.
        tensor_name (str): the tensor to constrain. Default: ``"weight"``.
        lower (bool): read the strictly lower (default) or upper triangle.

    Example::

        >>> layer = nn.Linear(5, 5)
        >>> mantra.skew(layer, "weight")
    """
    X = _matrix(module, tensor_name, "skew", square=True)
    return _attach(module, tensor_name, LinearMapParametrization(tuple(X.shape), True, lower, dtype=X.dtype,
                                                                     device=X.device))


def alpha_stable(module, tensor_name="weight", alpha=_D["alpha_stable_alpha"], triv=_D["positive_definite_triv"]):
    r"""α-stable (Hurwitz) matrices: every eigenvalue has real part below −alpha (stable linear dynamics).

    .. math:: X = P\,(S - Q/2) - \alpha I, \quad P \succ 0,\ Q \succ 0,\ S^\top = -S

    The set is open, and every α-stable X is of this form (with Y = P⁻¹, B = X + αI:
    BᵀY + YB = −Q ≺ 0, Lyapunov's theorem). ``dx/dt = Xx`` then decays at least like e^{−αt}.
    Assigning an α-stable X factors it (a Lyapunov solve with Q = I); see HurwitzParametrization.

    Args:
        module (nn.Module): the module holding the tensor.
        tensor_name (str): the tensor to constrain (square, (..., n, n)). Default: ``"weight"``.
        alpha (float): the decay rate α, finite (negative α allows growth up to e^{|α|t}). Default: ``0.0``.
        triv (str): ``"expm"`` (default: P and Q on the SPD manifold, rebased by update_base) or
            ``"cholesky"`` (P and Q through Cholesky factors).

    Example::

        >>> layer = mantra.alpha_stable(nn.Linear(6, 6), "weight", alpha=0.1)
        >>> bool(mantra.diagnostics.spectral_abscissa(layer.weight.detach()) < -0.1)
        True
    """
    X = _matrix(module, tensor_name, "alpha_stable", square=True)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not abs(alpha) < float("inf"):
        raise ValueError(f"alpha_stable: argument 'alpha' must be a finite float, got {alpha!r}")
    param = HurwitzParametrization(tuple(X.shape), float(alpha), triv, dtype=X.dtype, device=X.device)
    return _attach(module, tensor_name, param)


# ---------------------------------------------------------------- low rank coupled with h

_COUPLED_TRIV = F.low_rank_coupled_triv()


def _coupled(module, tensor_name, fn, rank, triv, make):
    X = _matrix(module, tensor_name, fn)
    manifold = make(X.shape[-2], X.shape[-1], _rank(X, rank, fn))
    param = CoupledLowRankParametrization(manifold, tuple(X.shape), _retraction(triv, manifold, fn), dtype=X.dtype,
                                          device=X.device)
    return _attach(module, tensor_name, param)


def low_rank_oblique(module, tensor_name, rank, triv=_COUPLED_TRIV):
    r"""Rank at most r and rows of unit norm, as X = H Vᵀ with H ∈ Ob(m, r) (unit rows) and V ∈ St(n, r).

    .. math:: \{X \in \mathbb{R}^{m \times n} : \operatorname{rank} X \le r,\ \operatorname{diag}(X X^\top) = 1\}

    The space-decoupling parametrization (rows of X have unit norm iff rows of H do, as
    V has orthonormal columns): a CoupledLowRankParametrization of ``mantra.manifolds.LowRankOblique``;
    DynamicTrivialization rebases it, and ``mantra.nn.Linear(..., constraint="low_rank_oblique",
    scale="per_row")`` is weight-normalized low rank diag(g)·X.

    Args:
        module (nn.Module): the module holding the tensor.
        tensor_name (str): the name of a matrix (..., m, n).
        rank (int): r, 1 <= r <= min(m, n).
        triv (str): the retraction of both factors: ``"polar"`` (default), ``"qr"`` or ``"expm"``.

    Example::

        >>> layer = mantra.low_rank_oblique(nn.Linear(6, 8), "weight", rank=2)
        >>> mantra.manifolds.LowRankOblique(8, 6, 2).check_matrix(layer.weight.detach())  # rank <= 2, unit rows
        ''
    """
    return _coupled(module, tensor_name, "low_rank_oblique", rank, triv, _C.manifolds.LowRankOblique)


def low_rank_sphere(module, tensor_name, rank, triv=_COUPLED_TRIV):
    r"""Rank at most r and unit Frobenius norm, as X = H Vᵀ with ‖H‖_F = 1 and V ∈ St(n, r).

    .. math:: \{X \in \mathbb{R}^{m \times n} : \operatorname{rank} X \le r,\ \|X\|_F = 1\}

    A CoupledLowRankParametrization of ``mantra.manifolds.LowRankSphere``.

    Args:
        module (nn.Module): the module holding the tensor.
        tensor_name (str): the name of a matrix (..., m, n).
        rank (int): r, 1 <= r <= min(m, n).
        triv (str): the retraction of both factors: ``"polar"`` (default), ``"qr"`` or ``"expm"``.

    Example::

        >>> layer = mantra.low_rank_sphere(nn.Linear(6, 8), "weight", rank=1)
        >>> round(float(layer.weight.detach().norm()), 5)
        1.0
    """
    return _coupled(module, tensor_name, "low_rank_sphere", rank, triv, _C.manifolds.LowRankSphere)


def low_rank_stacked_stiefel(module, tensor_name, rank, p, triv=_COUPLED_TRIV):
    r"""Rank at most r, X = (X_1; …; X_k) of p×n blocks with orthonormal rows, as X = H Vᵀ.

    .. math:: \{X \in \mathbb{R}^{kp \times n} : \operatorname{rank} X \le r,\ X_j X_j^\top = I_p\}

    Each p×r block of H has orthonormal rows and V ∈ St(n, r) (the synchronization
    constraint); a CoupledLowRankParametrization of ``mantra.manifolds.LowRankStackedStiefel``.

    Args:
        module (nn.Module): the module holding the tensor.
        tensor_name (str): the name of a matrix (..., m, n), m a multiple of p.
        rank (int): r, p <= r <= min(m, n).
        p (int): rows of one block.
        triv (str): the retraction of both factors: ``"polar"`` (default), ``"qr"`` or ``"expm"``.

    Example::

        >>> layer = mantra.low_rank_stacked_stiefel(nn.Linear(5, 6), "weight", rank=3, p=2)
        >>> W = layer.weight[:2]; torch.allclose(W @ W.T, torch.eye(2), atol=1e-5)
        True
    """
    return _coupled(module, tensor_name, "low_rank_stacked_stiefel", rank, triv,
                    lambda m, n, r: _C.manifolds.LowRankStackedStiefel(m, n, r, p))


# ---------------------------------------------------------------- base moves and sampling

def originals(plist):
    r"""The unconstrained tensors of a ParametrizationList, in the order its forward takes them.

    .. math:: [v] \ \text{(one tensor)}, \quad [v_0, \dots, v_{m-1}] \ \text{(several)}

    Args:
        plist (torch.nn.utils.parametrize.ParametrizationList): e.g.
            ``module.parametrizations.weight``.

    Example::

        >>> layer = mantra.low_rank(nn.Linear(6, 8), "weight", 2)
        >>> [tuple(t.shape) for t in mantra.parametrize.originals(layer.parametrizations.weight)]
        [(8, 2), (2,), (6, 2)]
    """
    if plist.is_tensor:
        return [plist.original]
    return [getattr(plist, f"original{i}") for i in range(plist.ntensors)]


def _parametrization(module, tensor_name, fn):
    if not P.is_parametrized(module, tensor_name):
        raise ValueError(f"{fn}: {tensor_name!r} of {type(module).__name__} is not parametrized")
    plist = getattr(module.parametrizations, tensor_name)
    for p in plist:
        if isinstance(p, MantraParametrization):
            return p, originals(plist)
    raise ValueError(f"{fn}: {tensor_name!r} of {type(module).__name__} has no mantra parametrization")


def update_base(module, tensor_name="weight"):
    r"""Dynamic trivialization: the base moves to the current point, v becomes 0 (the weight stays).

    .. math:: B' = R_B(P_B(v)), \quad v' = 0, \quad \text{so } \phi_{B'}(v') = \phi_B(v)

    (A no-op for static trivializations; spectral constraints rebase their factors.)

    Args:
        module (nn.Module): the module holding the constrained tensor.
        tensor_name (str): its name. Default: ``"weight"``.

    Example::

        >>> mantra.orthogonal(layer, "weight"); opt.step()
        >>> mantra.update_base(layer, "weight")
    """
    p, tensors = _parametrization(module, tensor_name, "update_base")
    p.update_base(*tensors)


def sample(module, tensor_name="weight", init=_D["init"]):
    r"""Re-initializes the constrained tensor.

    .. math:: X \leftarrow X_0 \sim \text{init} \quad (\text{base} = X_0, \ v = 0 \text{ for the manifold constraints})

    Args:
        module (nn.Module): the module holding the constrained tensor.
        tensor_name (str): its name. Default: ``"weight"``.
        init (str): ``"uniform"`` (Haar/uniform, default), ``"origin"``, and on square SO(n)
            ``"torus"``, ``"henaff"``, ``"cayley"``.

    Example::

        >>> mantra.sample(rnn, "recurrent_kernel", init="henaff")
    """
    p, tensors = _parametrization(module, tensor_name, "sample")
    p.sample(*tensors, init=init)
