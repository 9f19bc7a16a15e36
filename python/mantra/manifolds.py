"""Manifolds: the C++ classes of ``mantra::manifolds``, bound with pybind11.

Every method acts on batches over leading dimensions and is differentiable (autograd runs
through the C++ ATen operations)::

    St = mantra.manifolds.Stiefel()
    X = St.random(100, 10, dtype=torch.float64)
    V = St.proj_tangent(X, torch.randn_like(X))
    Y = St.retract(X, 0.1 * V, method="cayley")
    assert St.check_point(Y) == ""
"""

import functools

import torch

from ._C import manifolds as _m

Manifold = _m.Manifold
Euclidean = _m.Euclidean
Stiefel = _m.Stiefel
Grassmannian = _m.Grassmannian
Sphere = _m.Sphere
Oblique = _m.Oblique
FixedRank = _m.FixedRank
FixedRankPSD = _m.FixedRankPSD
PSD = FixedRankPSD  # the old name (fixed rank; the positive definite matrices are SPD)
GLPlus = _m.GLPlus
SL = _m.SL
# Low rank coupled with a second constraint, points packed as [H; V] (pickled by spec, their own __reduce__).
LowRankCoupled = _m.LowRankCoupled
LowRankOblique = _m.LowRankOblique
LowRankSphere = _m.LowRankSphere
LowRankStackedStiefel = _m.LowRankStackedStiefel
SPD = _m.SPD
Hyperbolic = _m.Hyperbolic
Lorentz = _m.Lorentz
PoincareBall = _m.PoincareBall


def _shape(shape):
    return list(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list, torch.Size)) else list(shape)


def _random(self, *shape, dtype=None, device=None):
    r"""A random point of the given full shape (Haar / uniform where it exists).

    .. math:: X \sim \mathrm{Haar}(\mathcal{M}) \ \text{(or the manifold's sampling law)}, \quad X \in \mathcal{M}

    Args:
        *shape (int or tuple of int): the full shape, batch dimensions first, e.g.
            ``random(8, 5, 3)`` or ``random((8, 5, 3))``.
        dtype (torch.dtype, optional): Default: ``None`` (torch's default dtype).
        device (torch.device, optional): Default: ``None`` (the CPU).

    Example::

        >>> X = mantra.manifolds.Stiefel().random(8, 5, 3, dtype=torch.float64)
        >>> X.shape
        torch.Size([8, 5, 3])
    """
    return self._random(_shape(shape), torch.empty(0, dtype=dtype, device=device))


def _origin(self, *shape, dtype=None, device=None):
    r"""A deterministic point of the given full shape (e.g. eye(n, k) on Stiefel, I on SPD, 0 on the ball).

    .. math:: X_0 \in \mathcal{M}

    Args:
        *shape (int or tuple of int): the full shape, batch dimensions first.
        dtype (torch.dtype, optional): Default: ``None`` (torch's default dtype).
        device (torch.device, optional): Default: ``None`` (the CPU).

    Example::

        >>> mantra.manifolds.Stiefel().origin(3, 2)
        tensor([[1., 0.],
                [0., 1.],
                [0., 0.]])
    """
    return self._origin(_shape(shape), torch.empty(0, dtype=dtype, device=device))


def _record_arguments(cls):
    """Pickling: each manifold remembers its constructor arguments (manifolds are immutable)."""
    init = cls.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self._init_args = (args, kwargs)

    __init__.__doc__ = init.__doc__
    cls.__init__ = __init__


def _rebuild(cls, args, kwargs):
    return cls(*args, **kwargs)


def _reduce(self):
    args, kwargs = getattr(self, "_init_args", ((), {}))
    return (_rebuild, (type(self), args, kwargs))


# The tensor arguments of each method, in order: a call with anything else is a TypeError that
# names the argument (pybind11 alone answers with a dump of the signature).
_TENSOR_ARGS = {
    Manifold: {"proj_tangent": ("X", "G"), "egrad_to_rgrad": ("X", "G"), "retract": ("X", "V"),
               "retract_transport": ("X", "V", "U"), "transport": ("X", "Y", "V"), "inner": ("X", "U", "V"),
               "norm": ("X", "U"), "project": ("X",), "check_point": ("X",)},
    SPD: {"distance": ("X", "Y"), "log": ("X", "Y")},
    Hyperbolic: {"distance": ("X", "Y")},
}


def _checked(method, names):
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        for i, name in enumerate(names):
            value = args[i] if i < len(args) else kwargs.get(name, torch.empty(0))
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"{type(self).__name__}.{method.__name__}: argument '{name}' must be a torch.Tensor, "
                                f"got {type(value).__name__}")
        return method(self, *args, **kwargs)
    return call


for _cls, _methods in _TENSOR_ARGS.items():
    for _name, _names in _methods.items():
        setattr(_cls, _name, _checked(getattr(_cls, _name), _names))

for _cls in (Euclidean, Stiefel, Grassmannian, Sphere, Oblique, FixedRank, FixedRankPSD, GLPlus, SL, SPD, Lorentz,
             PoincareBall):
    _record_arguments(_cls)
Manifold.__reduce__ = _reduce
Manifold.random = _random
Manifold.origin = _origin
# Manifolds are immutable: copies (copy.deepcopy of a model) share them.
Manifold.__copy__ = lambda self: self
Manifold.__deepcopy__ = lambda self, memo: self

__all__ = ["Manifold", "Euclidean", "Stiefel", "Grassmannian", "Sphere", "Oblique", "FixedRank", "FixedRankPSD", "PSD", "GLPlus",
           "SL", "SPD", "LowRankCoupled", "LowRankOblique", "LowRankSphere", "LowRankStackedStiefel", "Hyperbolic", "Lorentz", "PoincareBall"]
