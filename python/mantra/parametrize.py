"""Constraints on any ``torch.nn.Module`` through ``torch.nn.utils.parametrize``.

A constrained weight is ``φ(v) = R_base(P_base(v))``: the manifold's retraction (C++) at a
base point applied to the tangent projection of the unconstrained tensor ``v``, which is what
the optimizer trains (``module.parametrizations.weight.original``). ``update_base`` moves the
base to the current point and zeroes ``v`` (dynamic trivialization). Composite constraints
(low rank ``U diag(f(s)) Vᵀ``, PSD, almost orthogonal, Householder, Cholesky, symmetric/skew)
compute with the C++ maps of ``mantra::parametrize::functional`` (``mantra._C.functional``);
this file is glue. Names and arguments follow geotorch::

    mantra.orthogonal(layer, "weight", triv="cayley")
    layer.weight = Q          # assigns a point; ValueError (with the reason) if Q is off the manifold
    mantra.update_base(layer, "weight")

The maps run in float32 at least: under autocast they are computed with autocast off, and
float16/bfloat16 weights are mapped in float32 and cast back.
"""

import contextlib

import torch
import torch.nn as nn
from torch.nn.utils import parametrize as P

from . import manifolds as mf
from . import _C
from ._C import functional as F

_HALF = (torch.float16, torch.bfloat16)


@contextlib.contextmanager
def _full_precision(t):
    """Autocast off for the map (it is computed in the weight's own dtype, float32 or wider)."""
    if torch.is_autocast_enabled(t.device.type):
        with torch.autocast(device_type=t.device.type, enabled=False):
            yield
    else:
        yield


def _up(t):
    return t.float() if t.dtype in _HALF else t


def _widened(before, after):
    return after.is_floating_point() and after.itemsize > before.itemsize


def _reproject_when_widened(self, fn, recurse=True):
    """nn.Module._apply for parametrizations with a base point on ``self.manifold``: a wider
    dtype re-projects the base (as C++ does), so that a float32 point becomes a point to float64
    accuracy instead of keeping float32's distance from the manifold."""
    before = self.base.dtype
    out = nn.Module._apply(self, fn, recurse)
    if _widened(torch.empty(0, dtype=before), self.base):
        with torch.no_grad():
            self.base.copy_(self.manifold.project(self.base))
    return out


class MantraParametrization(nn.Module):
    """Common protocol of mantra's parametrizations (what update_base/sample/DTRIV call).

    ``originals`` are the tensors torch's ParametrizationList holds (``original`` or
    ``original0, original1, …``), in the order ``forward`` takes them.
    """

    atol = 1e-5

    def update_base(self, *originals):  # static trivializations have no base
        pass

    def sample(self, *originals, init="uniform"):
        raise NotImplementedError

    def _reject(self, why, what):
        raise ValueError(f"the assigned tensor is not a point of {what}: {why}")


class ManifoldParametrization(MantraParametrization):
    """φ(v) = R_base(P_base(v)) on a mantra manifold (times ``radius`` when given)."""

    reproject_every = 100  # update_base re-projects the base every this many rebases

    def __init__(self, manifold, shape, retraction="default", atol=1e-5, dtype=None, device=None, radius=1.0):
        super().__init__()
        self.manifold = manifold
        self.retraction = retraction
        self.atol = atol
        self.radius = radius
        self.register_buffer("base", manifold.random(*shape, dtype=dtype, device=device))
        self._attaching = False

    def forward(self, v):
        with _full_precision(v):
            base, dtype = self.base, v.dtype
            X = self.manifold.retract(_up(base), self.manifold.proj_tangent(_up(base), _up(v)), method=self.retraction)
            X = X.to(dtype)
        return X if self.radius == 1.0 else self.radius * X

    @torch.no_grad()
    def right_inverse(self, X):
        """Assignment ``module.weight = X``: X becomes the base, v = 0."""
        X = X.detach() if self.radius == 1.0 else X.detach() / self.radius
        why = self.manifold.check_point(X, self.atol)
        if why and self._attaching:
            # Attaching to a weight that is not a point: keep the sampled base.
            return torch.zeros_like(X)
        if why:
            self._reject(why, self.manifold.name)
        self.base.copy_(X)
        return torch.zeros_like(X)

    @torch.no_grad()
    def update_base(self, v):
        X = self.forward(v)
        X = X / self.radius if self.radius != 1.0 else X
        self._rebases = getattr(self, "_rebases", 0) + 1
        if self._rebases % self.reproject_every == 0:  # against rounding drift, as C++ does
            X = self.manifold.project(X)
        self.base.copy_(X)
        v.zero_()

    @torch.no_grad()
    def sample(self, v, init="uniform"):
        """C++'s Parametrization.sample: "uniform", "origin", and on square SO(n) "torus",
        "henaff", "cayley" (the orthogonal RNN inits)."""
        self.base.copy_(_C.sample_point(self.manifold, list(self.base.shape), init, self.base))
        v.zero_()

    @torch.no_grad()
    def sample_in_chart(self, v, init="henaff"):
        """expRNN's static trivialization at the identity: base = I and v = the block-skew log A
        of a rotation init, so the point is exp(A) (C++'s Parametrization.sample_in_chart)."""
        base, log = _C.sample_in_chart(self.manifold, list(self.base.shape), self.retraction, init, self.base)
        self.base.copy_(base)
        v.copy_(log)

    _apply = _reproject_when_widened

    def extra_repr(self):
        return f"{self.manifold.name}, shape={tuple(self.base.shape)}, retraction={self.retraction}"


class CallableTrivialization(MantraParametrization):
    """geotorch's custom ``triv``: X = (B · triv(A))[:, :k] with A = skew(v) and B an orthogonal
    n×n base completing the current point (transposed for wide tensors). ``triv`` maps skew
    matrices to orthogonal ones with triv(0) = I (so that assignment and update_base keep the point)."""

    def __init__(self, shape, triv, special, atol=1e-5, dtype=None, device=None):
        super().__init__()
        n, k = shape[-2], shape[-1]
        self.triv, self.wide, self.k = triv, n < k, min(n, k)
        self.full = max(n, k)
        self.atol = atol
        self.manifold = mf.Stiefel(special=special)
        full_shape = tuple(shape[:-2]) + (self.full, self.full)
        self.register_buffer("base", mf.Stiefel(special=special).random(*full_shape, dtype=dtype, device=device))
        self._attaching = False

    def _point(self, v):
        with _full_precision(v):
            A = F.linear_map(_up(v), True, "lower")
            Q = _up(self.base) @ self.triv(A)
            X = Q[..., : self.k].to(v.dtype)
        return X.mT if self.wide else X

    def forward(self, v):
        return self._point(v)

    @torch.no_grad()
    def right_inverse(self, X):
        X = X.detach()
        why = self.manifold.check_point(X, self.atol)
        zeros = torch.zeros_like(self.base)
        if why and self._attaching:
            return zeros
        if why:
            self._reject(why, self.manifold.name)
        T = X.mT if self.wide else X
        if self.k < self.full:  # complete the frame: Q of [T, G], columns signed so that Q[:, :k] = T
            G = torch.randn(*T.shape[:-1], self.full - self.k, dtype=T.dtype, device=T.device)
            Q, R = torch.linalg.qr(torch.cat([T, G], -1))
            T = Q * torch.sign(R.diagonal(0, -2, -1)).unsqueeze(-2)
        self.base.copy_(T)
        return zeros

    @torch.no_grad()
    def update_base(self, v):
        with _full_precision(v):
            self.base.copy_(self.base @ self.triv(F.linear_map(v, True, "lower")))
        v.zero_()

    _apply = _reproject_when_widened

    @torch.no_grad()
    def sample(self, v, init="uniform"):
        if init != "uniform":
            raise ValueError(f"argument 'init' must be 'uniform', got {init!r}")
        self.base.copy_(self.manifold.random(*self.base.shape, dtype=self.base.dtype, device=self.base.device))
        v.zero_()


def _stiefel_chart(shape, triv, dtype, device):
    """The parametrization of an orthonormal frame of `shape` for the factors U, V."""
    if callable(triv):
        return CallableTrivialization(shape, triv, special=False, dtype=dtype, device=device)
    return ManifoldParametrization(mf.Stiefel(), shape, triv, dtype=dtype, device=device)


class SpectralParametrization(MantraParametrization):
    """X = U diag(f(s)) Vᵀ (U diag(f(s)) Uᵀ when symmetric) with Stiefel U, V (C++ maps).

    ``f`` is a name of the C++ spectrum maps (identity, softplus, square, tanh, sin,
    scaled_sigmoid), a callable, or a pair (f, f_inv); ``check_f`` names the C++ map whose
    constraint assignment checks (rank, range) when ``f`` is a callable."""

    def __init__(self, shape, rank, symmetric, f, lam=0.1, eps=1e-5, triv="exp", check_f=None, atol=1e-5,
                 dtype=None, device=None):
        super().__init__()
        n, k = shape[-2], shape[-1]
        self.shape, self.rank, self.symmetric = tuple(shape), rank, symmetric
        self.lam, self.eps, self.atol = lam, eps, atol
        if isinstance(f, str):
            self.fname, self.f, self.f_inv = f, None, None
        elif isinstance(f, (tuple, list)) and len(f) == 2 and all(callable(g) for g in f):
            self.fname, (self.f, self.f_inv) = check_f, f
        elif callable(f):
            self.fname, self.f, self.f_inv = check_f, f, None
        else:
            raise ValueError(f"argument 'f' must be a name, a callable or a pair of callables, got {f!r}")
        batch = tuple(shape[:-2])
        self.U = _stiefel_chart(batch + (n, rank), triv, dtype, device)
        self.V = None if symmetric else _stiefel_chart(batch + (k, rank), triv, dtype, device)
        self._attaching = False

    def _spectrum(self, s):
        return self.f(s) if self.f is not None else F.spectrum(s, self.fname, self.lam, self.eps)

    def _inverse(self, sigma):
        if self.f is None:
            return F.inverse_spectrum(sigma, self.fname, self.lam, self.eps)
        if self.f_inv is None:
            return None
        return self.f_inv(sigma)

    def forward(self, vU, s, vV=None):
        with _full_precision(s):
            U = self.U(vU)
            V = None if self.symmetric else self.V(vV)
            dtype = s.dtype
            X = F.spectral_compose(_up(U), self._spectrum(_up(s)), None if V is None else _up(V))
        return X.to(dtype)

    def _ones_s(self, like):
        batch = tuple(self.shape[:-2])
        ones = torch.ones(*batch, self.rank, dtype=like.dtype, device=like.device)
        s = self._inverse(ones)
        return torch.zeros_like(ones) if s is None else s

    def _result(self, vU, s, vV):
        return (vU, s) if self.symmetric else (vU, s, vV)

    @torch.no_grad()
    def right_inverse(self, X):
        X = X.detach()
        why = F.spectral_check(X, list(self.shape), self.rank, self.symmetric, self.fname, self.lam, self.eps,
                               self.atol)
        if why and self._attaching:
            # Keep the sampled factors, singular values 1 (as C++'s sample()).
            vU = torch.zeros_like(self.U.base, dtype=X.dtype)
            vV = None if self.symmetric else torch.zeros_like(self.V.base, dtype=X.dtype)
            return self._result(vU, self._ones_s(X), vV)
        if why:
            self._reject(why, "the constraint")
        U, sigma, V = F.spectral_factors(X, self.rank, self.symmetric)
        s = self._inverse(sigma)
        if s is None:
            raise ValueError("cannot assign to a constraint whose 'f' has no inverse: pass f as a pair (f, f_inv)")
        vU = self.U.right_inverse(U)
        vV = None if self.symmetric else self.V.right_inverse(V)
        return self._result(vU, s.to(X.dtype), vV)

    @torch.no_grad()
    def update_base(self, vU, s, vV=None):
        self.U.update_base(vU)
        if not self.symmetric:
            self.V.update_base(vV)

    @torch.no_grad()
    def sample(self, vU, s, vV=None, init="uniform"):
        if init != "uniform":
            raise ValueError(f"argument 'init' must be 'uniform', got {init!r}")
        self.U.sample(vU)
        if not self.symmetric:
            self.V.sample(vV)
        s.copy_(self._ones_s(s))

    def extra_repr(self):
        return f"shape={self.shape}, rank={self.rank}, symmetric={self.symmetric}, f={self.fname or self.f}"


class HouseholderParametrization(MantraParametrization):
    """X = H_1 ⋯ H_k [I; 0] (C++ functional.householder); a static trivialization of Stiefel / SO(n)."""

    def __init__(self, shape, special, atol=1e-5):
        super().__init__()
        self.special, self.wide, self.atol = special, shape[-2] < shape[-1], atol
        self.manifold = mf.Stiefel(special=special)
        self._attaching = False

    def forward(self, v):
        with _full_precision(v):
            return F.householder(_up(v), self.special, self.wide).to(v.dtype)

    @torch.no_grad()
    def right_inverse(self, X):
        X = X.detach()
        why = self.manifold.check_point(X, self.atol)
        if why and self._attaching:
            X = self.manifold.random(*X.shape, dtype=X.dtype, device=X.device)
        elif why:
            self._reject(why, self.manifold.name)
        return F.householder_vectors(_up(X), self.special, self.wide).to(X.dtype)

    @torch.no_grad()
    def sample(self, v, init="uniform"):
        if init != "uniform":
            raise ValueError(f"argument 'init' must be 'uniform', got {init!r}")
        shape = v.shape[:-2] + ((v.shape[-1], v.shape[-2]) if self.wide else tuple(v.shape[-2:]))
        v.copy_(self.right_inverse(self.manifold.random(*shape, dtype=v.dtype, device=v.device)))


class CholeskyParametrization(MantraParametrization):
    """X = L Lᵀ, L = tril(v, −1) + diag(exp(diag v)) (C++ functional.cholesky)."""

    def __init__(self, shape, atol=1e-5):
        super().__init__()
        self.shape, self.atol = tuple(shape), atol
        self._attaching = False

    def forward(self, v):
        with _full_precision(v):
            return F.cholesky(_up(v)).to(v.dtype)

    @torch.no_grad()
    def right_inverse(self, X):
        X = X.detach()
        why = F.positive_definite_check(X, list(self.shape), self.atol)
        if why and self._attaching:
            return 0.1 * torch.randn_like(X)  # near the identity, as C++'s sample()
        if why:
            self._reject(why, "the positive definite matrices")
        return F.cholesky_inverse(_up(X)).to(X.dtype)

    @torch.no_grad()
    def sample(self, v, init="uniform"):
        if init != "uniform":
            raise ValueError(f"argument 'init' must be 'uniform', got {init!r}")
        v.normal_(0.0, 0.1)


class LinearMapParametrization(MantraParametrization):
    """Symmetric or skew-symmetric matrices from one triangle of v (C++ functional.linear_map)."""

    def __init__(self, shape, skew, lower=True, atol=1e-5):
        super().__init__()
        self.shape, self.skew, self.atol = tuple(shape), skew, atol
        self.triangle = "lower" if lower else "upper"

    def forward(self, v):
        return F.linear_map(v, self.skew, self.triangle)

    @torch.no_grad()
    def right_inverse(self, X):
        X = X.detach()
        if getattr(self, "_attaching", False):
            return X.clone()  # attaching keeps the chosen triangle of the current weight
        why = F.linear_map_check(X, list(self.shape), self.skew, self.atol)
        if why:
            self._reject(why, "the skew-symmetric matrices" if self.skew else "the symmetric matrices")
        return X.clone()

    @torch.no_grad()
    def sample(self, v, init="uniform"):
        if init != "uniform":
            raise ValueError(f"argument 'init' must be 'uniform', got {init!r}")
        v.normal_(0.0, v.shape[-1] ** -0.5)


# ---------------------------------------------------------------- pickling parametrized modules
# torch's parametrized classes are made on the fly and refuse pickling; modules mantra
# constrains pickle as their original class plus their state, and are re-parametrized on load.

def _rebuild_parametrized(cls, state):
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    P._inject_new_class(obj)
    for name in obj.parametrizations:
        P._inject_property(obj, name)
    _make_picklable(obj)
    return obj


def _reduce_parametrized(self, protocol=None):
    return (_rebuild_parametrized, (type(self).__bases__[0], dict(self.__dict__)))


def _make_picklable(module):
    cls = type(module)
    if cls.__name__.startswith("Parametrized") and "__reduce_ex__" not in cls.__dict__:
        cls.__reduce_ex__ = _reduce_parametrized


# ---------------------------------------------------------------- registration

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
    _make_picklable(module)
    return module


def _register(module, tensor_name, manifold, retraction, fn, radius=1.0):
    X = _tensor(module, tensor_name, fn)
    param = ManifoldParametrization(manifold, tuple(X.shape), retraction, dtype=X.dtype, device=X.device,
                                    radius=radius)
    return _attach(module, tensor_name, param)


_TRIVS = ("expm", "cayley", "qr", "polar")


def _retraction(triv, fn, extra=""):
    if triv not in _TRIVS:
        raise ValueError(f"{fn}: argument 'triv' must be one of {', '.join(_TRIVS)}{extra} or a callable, "
                         f"got {triv!r}")
    return "exp" if triv == "expm" else triv


def _factor_triv(triv, fn):
    return triv if callable(triv) else _retraction(triv, fn)


def _rank(X, rank, fn):
    n, k = X.shape[-2], X.shape[-1]
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= min(n, k):
        raise ValueError(f"{fn}: argument 'rank' must be an int in [1, min(n, k) = {min(n, k)}], got {rank!r}")
    return rank


def _spectral(module, tensor_name, fn, rank, symmetric, f, triv, check_f, lam=0.1):
    X = _matrix(module, tensor_name, fn, square=symmetric)
    param = SpectralParametrization(tuple(X.shape), _rank(X, rank, fn), symmetric, f, lam=lam,
                                    triv=_factor_triv(triv, fn), check_f=check_f, dtype=X.dtype, device=X.device)
    return _attach(module, tensor_name, param)


def _positive_f(f, fn):
    if isinstance(f, str) and f != "softplus":
        raise ValueError(f"{fn}: argument 'f' must be 'softplus', a callable or a pair of callables, got {f!r}")
    return f


def orthogonal(module, tensor_name="weight", triv="expm"):
    """Orthonormal columns (rows if wide); SO(n) for square tensors (det = +1).

    triv: "expm" (default), "cayley", "qr", "polar" (retractions of the C++ manifold, at a base
    that update_base moves), "householder" (a product of reflections), or a callable mapping
    skew matrices to orthogonal ones (geotorch's custom triv)."""
    X = _matrix(module, tensor_name, "orthogonal")
    square = X.shape[-1] == X.shape[-2]
    if triv == "householder":
        return _attach(module, tensor_name, HouseholderParametrization(tuple(X.shape), square))
    if callable(triv):
        return _attach(module, tensor_name, CallableTrivialization(tuple(X.shape), triv, square, dtype=X.dtype,
                                                                   device=X.device))
    retraction = _retraction(triv, "orthogonal", ", householder")
    return _register(module, tensor_name, mf.Stiefel(special=square), retraction, "orthogonal")


def grassmannian(module, tensor_name="weight", triv="expm"):
    _matrix(module, tensor_name, "grassmannian")
    return _register(module, tensor_name, mf.Grassmannian(), _retraction(triv, "grassmannian"), "grassmannian")


def sphere(module, tensor_name="weight", radius=1.0, embedded=False):
    """Unit vectors along the last dimension, times ``radius``; embedded=True retracts by projection."""
    if not radius > 0:
        raise ValueError(f"sphere: argument 'radius' must be positive, got {radius!r}")
    return _register(module, tensor_name, mf.Sphere(), "projection" if embedded else "default", "sphere",
                     radius=float(radius))


def oblique(module, tensor_name="weight"):
    return _register(module, tensor_name, mf.Oblique(), "default", "oblique")


def positive_definite(module, tensor_name="weight", f="softplus", triv="expm"):
    """Symmetric positive definite matrices.

    triv="expm" (default): the SPD manifold with the affine-invariant exponential map;
    triv="cholesky": L Lᵀ with a log-parametrized diagonal (C++ positive_definite_cholesky).
    With a callable f (or a pair (f, f_inv)) mapping R → (0, ∞): geotorch's Q diag(f(s)) Qᵀ."""
    X = _matrix(module, tensor_name, "positive_definite", square=True)
    f = _positive_f(f, "positive_definite")
    if not isinstance(f, str):
        return _spectral(module, tensor_name, "positive_definite", X.shape[-1], True, f,
                         "expm" if triv in ("cholesky",) else triv, "softplus")
    if triv == "cholesky":
        return _attach(module, tensor_name, CholeskyParametrization(tuple(X.shape)))
    if triv != "expm":
        raise ValueError(f"positive_definite: argument 'triv' must be 'expm' or 'cholesky', got {triv!r}")
    return _register(module, tensor_name, mf.SPD(), "default", "positive_definite")


def positive_definite_cholesky(module, tensor_name="weight"):
    """Positive definite matrices as L Lᵀ (same as positive_definite(..., triv="cholesky"))."""
    return positive_definite(module, tensor_name, triv="cholesky")


def invertible(module, tensor_name="weight", f="softplus", triv="expm"):
    """Invertible matrices with det > 0 (the GL+(n) manifold; f and triv take geotorch's defaults only)."""
    X = _matrix(module, tensor_name, "invertible", square=True)
    if f != "softplus":
        raise ValueError(f"invertible: argument 'f' must be 'softplus' (mantra's GL+ manifold has no spectrum map), "
                         f"got {f!r}")
    if triv != "expm":
        raise ValueError(f"invertible: argument 'triv' must be 'expm', got {triv!r}")
    return _register(module, tensor_name, mf.GLPlus(X.shape[-1]), "default", "invertible")


def hyperbolic(module, tensor_name="weight", model="lorentz"):
    if model not in ("lorentz", "poincare"):
        raise ValueError(f"hyperbolic: argument 'model' must be 'lorentz' or 'poincare', got {model!r}")
    return _register(module, tensor_name, mf.Lorentz() if model == "lorentz" else mf.PoincareBall(), "default",
                     "hyperbolic")


def low_rank(module, tensor_name, rank, triv="expm"):
    """Rank at most ``rank``: U diag(s) Vᵀ."""
    return _spectral(module, tensor_name, "low_rank", rank, False, "identity", triv, "identity")


def fixed_rank(module, tensor_name, rank, f="softplus", triv="expm"):
    """Rank exactly ``rank``: U diag(f(s)) Vᵀ, f = softplus(s) + ε or a callable (pair) into (0, ∞)."""
    return _spectral(module, tensor_name, "fixed_rank", rank, False, _positive_f(f, "fixed_rank"), triv, "softplus")


def positive_semidefinite(module, tensor_name="weight", triv="expm"):
    """Symmetric with non-negative eigenvalues: U diag(s²) Uᵀ."""
    X = _matrix(module, tensor_name, "positive_semidefinite", square=True)
    return _spectral(module, tensor_name, "positive_semidefinite", X.shape[-1], True, "square", triv, "square")


def positive_semidefinite_low_rank(module, tensor_name, rank, triv="expm"):
    """PSD of rank at most ``rank``: U diag(s²) Uᵀ."""
    _matrix(module, tensor_name, "positive_semidefinite_low_rank", square=True)
    return _spectral(module, tensor_name, "positive_semidefinite_low_rank", rank, True, "square", triv, "square")


def positive_semidefinite_fixed_rank(module, tensor_name, rank, f="softplus", triv="expm"):
    """PSD of rank exactly ``rank``: U diag(f(s)) Uᵀ."""
    _matrix(module, tensor_name, "positive_semidefinite_fixed_rank", square=True)
    return _spectral(module, tensor_name, "positive_semidefinite_fixed_rank", rank, True,
                     _positive_f(f, "positive_semidefinite_fixed_rank"), triv, "softplus")


def almost_orthogonal(module, tensor_name="weight", lam=0.1, f="sin", triv="expm"):
    """Singular values in [1 − lam, 1 + lam]: U diag(1 + lam·f(s)) Vᵀ, f one of "sin" (default),
    "tanh", "scaled_sigmoid", a callable into [−1, 1] or a pair (f, f_inv)."""
    X = _matrix(module, tensor_name, "almost_orthogonal")
    if not (isinstance(lam, (int, float)) and 0 < lam < 1):
        raise ValueError(f"almost_orthogonal: argument 'lam' must be in (0, 1), got {lam!r}")
    if isinstance(f, str):
        if f not in ("sin", "tanh", "scaled_sigmoid"):
            raise ValueError(f"almost_orthogonal: argument 'f' must be sin, tanh, scaled_sigmoid, a callable or a pair "
                             f"of callables, got {f!r}")
    elif isinstance(f, (tuple, list)):
        g, g_inv = f
        f = (lambda s, g=g, lam=lam: 1 + lam * g(s), lambda x, g_inv=g_inv, lam=lam: g_inv((x - 1) / lam))
    elif callable(f):
        f = (lambda s, g=f, lam=lam: 1 + lam * g(s))
    return _spectral(module, tensor_name, "almost_orthogonal", min(X.shape[-2:]), False, f, triv, "sin", lam=lam)


def symmetric(module, tensor_name="weight", lower=True):
    """Xᵀ = X, from the lower (or upper) triangle of the tensor."""
    X = _matrix(module, tensor_name, "symmetric", square=True)
    return _attach(module, tensor_name, LinearMapParametrization(tuple(X.shape), False, lower))


def skew(module, tensor_name="weight", lower=True):
    """Xᵀ = −X, from the strictly lower (or upper) triangle of the tensor."""
    X = _matrix(module, tensor_name, "skew", square=True)
    return _attach(module, tensor_name, LinearMapParametrization(tuple(X.shape), True, lower))


# ---------------------------------------------------------------- base moves and sampling

def originals(plist):
    """The unconstrained tensors of a ParametrizationList, in the order its forward takes them."""
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
    """Dynamic trivialization: the base moves to the current point, v becomes 0 (the weight stays)."""
    p, tensors = _parametrization(module, tensor_name, "update_base")
    p.update_base(*tensors)


def sample(module, tensor_name="weight", init="uniform"):
    """Re-initializes the constrained tensor ("uniform": Haar/uniform, "origin" where the manifold has one)."""
    p, tensors = _parametrization(module, tensor_name, "sample")
    p.sample(*tensors, init=init)
