"""Constraints on any ``torch.nn.Module`` through ``torch.nn.utils.parametrize``.

A constrained weight is ``φ(v) = R_base(P_base(v))``: the manifold's retraction (C++) at a
base point applied to the tangent projection of the unconstrained tensor ``v``, which is what
the optimizer trains (``module.parametrizations.weight.original``). ``update_base`` moves the
base to the current point and zeroes ``v`` (dynamic trivialization). Names and arguments follow
geotorch::

    mantra.orthogonal(layer, "weight", triv="cayley")
    layer.weight = Q          # assigns a point; ValueError (with the reason) if Q is off the manifold
    mantra.update_base(layer, "weight")
"""

import torch
import torch.nn as nn
from torch.nn.utils import parametrize as P

from . import manifolds as mf


class ManifoldParametrization(nn.Module):
    """φ(v) = R_base(P_base(v)) on a mantra manifold."""

    def __init__(self, manifold, shape, retraction="default", atol=1e-5, dtype=None, device=None):
        super().__init__()
        self.manifold = manifold
        self.retraction = retraction
        self.atol = atol
        self.register_buffer("base", manifold.random(*shape, dtype=dtype, device=device))
        self._attaching = False

    def forward(self, v):
        return self.manifold.retract(self.base, self.manifold.proj_tangent(self.base, v), method=self.retraction)

    @torch.no_grad()
    def right_inverse(self, X):
        """Assignment ``module.weight = X``: X becomes the base, v = 0."""
        why = self.manifold.check_point(X.detach(), self.atol)
        if why and self._attaching:
            # Attaching to a weight that is not a point: keep the sampled base.
            return torch.zeros_like(X)
        if why:
            raise ValueError(f"the assigned tensor is not a point of {self.manifold.name}: {why}")
        self.base.copy_(X)
        return torch.zeros_like(X)

    @torch.no_grad()
    def update_base(self, v):
        self.base.copy_(self.forward(v))
        v.zero_()

    @torch.no_grad()
    def sample(self, v, init="uniform"):
        if init not in ("uniform", "origin"):
            raise ValueError(f"argument 'init' must be 'uniform' or 'origin', got {init!r}")
        make = self.manifold.random if init == "uniform" else self.manifold.origin
        self.base.copy_(make(*self.base.shape, dtype=self.base.dtype, device=self.base.device))
        v.zero_()

    def extra_repr(self):
        return f"{self.manifold.name}, shape={tuple(self.base.shape)}, retraction={self.retraction}"


def _tensor(module, tensor_name, fn):
    if not isinstance(module, nn.Module):
        raise TypeError(f"{fn}: argument 'module' must be a torch.nn.Module, got {type(module).__name__}")
    t = getattr(module, tensor_name, None)
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{fn}: argument 'tensor_name': {type(module).__name__} has no tensor {tensor_name!r}")
    return t


def _register(module, tensor_name, manifold, retraction, fn):
    X = _tensor(module, tensor_name, fn)
    param = ManifoldParametrization(manifold, tuple(X.shape), retraction, dtype=X.dtype, device=X.device)
    # The current value is kept when it is a point, otherwise the sampled base is used.
    param._attaching = True
    try:
        P.register_parametrization(module, tensor_name, param, unsafe=True)
    finally:
        param._attaching = False
    return module


_TRIVS = ("expm", "cayley", "qr", "polar")


def _retraction(triv, fn):
    if triv not in _TRIVS:
        raise ValueError(f"{fn}: argument 'triv' must be one of {', '.join(_TRIVS)}, got {triv!r}")
    return "exp" if triv == "expm" else triv


def orthogonal(module, tensor_name="weight", triv="expm"):
    """Orthonormal columns (rows if wide); SO(n) for square tensors (det = +1)."""
    X = _tensor(module, tensor_name, "orthogonal")
    if X.dim() < 2:
        raise ValueError(f"orthogonal: {tensor_name!r} must have at least 2 dimensions, got shape {tuple(X.shape)}")
    square = X.shape[-1] == X.shape[-2]
    return _register(module, tensor_name, mf.Stiefel(special=square), _retraction(triv, "orthogonal"), "orthogonal")


def grassmannian(module, tensor_name="weight", triv="expm"):
    return _register(module, tensor_name, mf.Grassmannian(), _retraction(triv, "grassmannian"), "grassmannian")


def sphere(module, tensor_name="weight"):
    return _register(module, tensor_name, mf.Sphere(), "default", "sphere")


def oblique(module, tensor_name="weight"):
    return _register(module, tensor_name, mf.Oblique(), "default", "oblique")


def positive_definite(module, tensor_name="weight"):
    return _register(module, tensor_name, mf.SPD(), "default", "positive_definite")


def invertible(module, tensor_name="weight"):
    X = _tensor(module, tensor_name, "invertible")
    return _register(module, tensor_name, mf.GLPlus(X.shape[-1]), "default", "invertible")


def hyperbolic(module, tensor_name="weight", model="lorentz"):
    if model not in ("lorentz", "poincare"):
        raise ValueError(f"hyperbolic: argument 'model' must be 'lorentz' or 'poincare', got {model!r}")
    return _register(module, tensor_name, mf.Lorentz() if model == "lorentz" else mf.PoincareBall(), "default",
                     "hyperbolic")


def _parametrization(module, tensor_name, fn):
    if not P.is_parametrized(module, tensor_name):
        raise ValueError(f"{fn}: {tensor_name!r} of {type(module).__name__} is not parametrized")
    plist = getattr(module.parametrizations, tensor_name)
    for p in plist:
        if isinstance(p, ManifoldParametrization):
            return p, plist.original
    raise ValueError(f"{fn}: {tensor_name!r} of {type(module).__name__} has no mantra parametrization")


def update_base(module, tensor_name="weight"):
    """Dynamic trivialization: the base moves to the current point, v becomes 0 (the weight stays)."""
    p, original = _parametrization(module, tensor_name, "update_base")
    p.update_base(original)


def sample(module, tensor_name="weight", init="uniform"):
    """Re-initializes the constrained tensor ("uniform": Haar/uniform, "origin")."""
    p, original = _parametrization(module, tensor_name, "sample")
    p.sample(original, init)
