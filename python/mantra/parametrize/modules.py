"""The ``torch.nn.utils.parametrize`` modules of mantra's constraints.

Each is glue around C++ ``mantra::parametrize::functional``: ``forward`` calls the dispatcher
ops ``torch.ops.mantra.*`` (so ``torch.compile`` and ``torch.export`` trace through it), the
rest (assignment, rebase, sampling, dtype conversion) calls ``mantra._C.functional``. No map,
default or rebase rule is computed here; the C++ constraint classes call the same functions.
"""

import torch
import torch.nn as nn

from .. import _C
from .. import manifolds as mf
from .precision import full_precision, like

F = _C.functional
ops = torch.ops.mantra
DEFAULTS = F.defaults()


class MantraParametrization(nn.Module):
    """Common protocol of mantra's parametrizations (what update_base/sample/DTRIV call).

    ``originals`` are the tensors torch's ParametrizationList holds (``original`` or
    ``original0, original1, …``), in the order ``forward`` takes them.
    """

    atol = DEFAULTS["atol"]
    _attaching = False  # True while register_parametrization runs right_inverse

    def update_base(self, *originals):  # static trivializations have no base
        pass

    def sample(self, *originals, init=DEFAULTS["init"]):
        raise NotImplementedError

    def _refuse(self, why, what):
        """Assignment of a non-value: on attach the sampled value stays (C++'s policy),
        otherwise a ValueError with the reason. Returns True when the sampled value stays."""
        if F.keep_on_attach(why):
            return False
        if self._attaching:
            return True
        raise ValueError(f"the assigned tensor is not a point of {what}: {why}")


class ManifoldParametrization(MantraParametrization):
    """φ(v) = scale · R_base(P_base(v)) on a mantra manifold (C++ Parametrization)."""

    def __init__(self, manifold, shape, retraction="default", atol=DEFAULTS["atol"], dtype=None, device=None,
                 scale=1.0):
        super().__init__()
        self.manifold, self.spec = manifold, manifold.spec
        self.retraction, self.atol, self.scale = retraction, atol, float(scale)
        self.reproject_every, self.rebases = DEFAULTS["reproject_every"], 0
        self.register_buffer("base", F.sample_point(self.spec, list(shape), "uniform",
                                                    torch.empty(0, dtype=dtype, device=device)))

    def forward(self, v):
        return full_precision(lambda u: ops.trivialize(self.base, u, self.spec, self.retraction, self.scale), v)

    @torch.no_grad()
    def right_inverse(self, X):
        """Assignment ``module.weight = X``: X (over scale) becomes the base, v = 0."""
        X = X.detach()
        why = F.point_check(self.spec, X, list(self.base.shape), self.atol, self.scale)
        if not self._refuse(why, self.manifold.name):
            self.base.copy_(X / self.scale if self.scale != 1.0 else X)
        return torch.zeros_like(self.base)

    @torch.no_grad()
    def update_base(self, v):
        point = ops.trivialize(self.base, v, self.spec, self.retraction, 1.0)
        self.rebases += 1
        self.base.copy_(F.rebased_base(self.spec, point, self.rebases, self.reproject_every))
        v.zero_()

    @torch.no_grad()
    def sample(self, v, init=DEFAULTS["init"]):
        """C++'s Parametrization.sample: "uniform", "origin", and on square SO(n) "torus",
        "henaff", "cayley" (the orthogonal RNN inits)."""
        self.base.copy_(F.sample_point(self.spec, list(self.base.shape), init, self.base))
        v.zero_()

    @torch.no_grad()
    def sample_in_chart(self, v, init="henaff"):
        """expRNN's static trivialization at the identity: base = I and v = the block-skew log A
        of a rotation init, so the point is exp(A) (C++'s Parametrization.sample_in_chart)."""
        base, log = F.sample_in_chart(self.spec, list(self.base.shape), self.retraction, init, self.base)
        self.base.copy_(base)
        v.copy_(log)

    def _apply(self, fn, recurse=True):
        # A dtype conversion re-projects the base when it widens (C++ functional.converted_base).
        before = like(self.base)
        out = super()._apply(fn, recurse)
        with torch.no_grad():
            self.base.copy_(F.converted_base(self.spec, self.base, before))
        return out

    def extra_repr(self):
        s = f"{self.manifold.name}, shape={tuple(self.base.shape)}, retraction={self.retraction}"
        return s + (f", scale={self.scale}" if self.scale != 1.0 else "")


class CallableTrivialization(ManifoldParametrization):
    """geotorch's custom ``triv`` (C++ CallableTrivialization): X = (B · triv(A))[:, :k] with
    A the skew matrix of v's strictly lower triangle and B an orthogonal n×n base (transposed
    for wide tensors). ``triv`` maps skew matrices to orthogonal ones with triv(0) = I."""

    def __init__(self, shape, triv, special, atol=DEFAULTS["atol"], dtype=None, device=None):
        n, k = shape[-2], shape[-1]
        full = max(n, k)
        super().__init__(mf.Stiefel(special=special), tuple(shape[:-2]) + (full, full), atol=atol, dtype=dtype,
                         device=device)
        self.triv, self.wide, self.k, self.shape = triv, n < k, min(n, k), tuple(shape)

    def forward(self, v):
        return full_precision(
            lambda u: ops.frame_from_chart(self.base, self.triv(ops.linear_map(u, True, "lower")), self.k, self.wide),
            v)

    @torch.no_grad()
    def right_inverse(self, X):
        X = X.detach()
        why = F.point_check(self.spec, X, list(self.shape), self.atol, 1.0)
        if not self._refuse(why, self.manifold.name):
            T = X.mT if self.wide else X
            self.base.copy_(F.complete_frame(T.to(self.base.dtype), self.base.shape[-1]))
        return torch.zeros_like(self.base)

    @torch.no_grad()
    def update_base(self, v):
        point = ops.frame_from_chart(self.base, self.triv(ops.linear_map(v, True, "lower")), self.base.shape[-1],
                                     False)
        self.rebases += 1
        self.base.copy_(F.rebased_base(self.spec, point, self.rebases, self.reproject_every))
        v.zero_()

    @torch.no_grad()
    def sample(self, v, init="uniform"):
        if init != "uniform":
            raise ValueError(f"CallableTrivialization.sample: argument 'init' must be 'uniform', got {init!r}")
        super().sample(v, init)

    def sample_in_chart(self, v, init="henaff"):
        raise ValueError("sample_in_chart needs triv 'expm', not a callable triv")


def factor_chart(shape, triv, dtype, device):
    """The parametrization of a factor U or V (C++ Spectral's factors)."""
    if callable(triv):
        return CallableTrivialization(shape, triv, special=False, dtype=dtype, device=device)
    return ManifoldParametrization(mf.Stiefel(), shape, triv, dtype=dtype, device=device)


class SpectralParametrization(MantraParametrization):
    """X = U diag(σ) Vᵀ (U diag(σ) Uᵀ when symmetric) with Stiefel U, V (C++ Spectral).

    ``f`` names the C++ spectrum map (identity, softplus, square, tanh, sin, scaled_sigmoid),
    which also decides what assignment accepts; ``f_fn`` / ``f_inv`` a user's function in its
    place (σ = 1 + lam·f_fn(s) for the near-one maps, f_fn(s) otherwise) and its inverse."""

    def __init__(self, shape, rank, symmetric, f, lam=DEFAULTS["lam"], eps=DEFAULTS["eps"], triv="exp", f_fn=None,
                 f_inv=None, atol=DEFAULTS["atol"], dtype=None, device=None):
        super().__init__()
        n, k = shape[-2], shape[-1]
        self.shape, self.rank, self.symmetric = tuple(shape), rank, symmetric
        self.f, self.f_fn, self.f_inv = f, f_fn, f_inv
        self.lam, self.eps, self.atol = lam, eps, atol
        batch = tuple(shape[:-2])
        self.U = factor_chart(batch + (n, rank), triv, dtype, device)
        self.V = None if symmetric else factor_chart(batch + (k, rank), triv, dtype, device)

    def _compose(self, s, vU, vV):
        U = self.U(vU)
        V = None if self.symmetric else self.V(vV)
        if self.f_fn is None:
            sigma = ops.spectrum(s, self.f, self.lam, self.eps)
        else:
            sigma = ops.spectrum_of(self.f_fn(s), self.f, self.lam)
        return ops.spectral_compose(U, sigma, V)

    def forward(self, vU, s, vV=None):
        return full_precision(self._compose, s, vU, vV)

    def _initial_s(self, like_t):
        return F.spectral_initial_s(list(self.shape[:-2]) + [self.rank], self.f, self.lam, self.eps, like_t,
                                    self.f_fn, self.f_inv)

    def _result(self, vU, s, vV):
        return (vU, s) if self.symmetric else (vU, s, vV)

    @torch.no_grad()
    def right_inverse(self, X):
        X = X.detach()
        why = F.spectral_check(X, list(self.shape), self.rank, self.symmetric, self.f, self.lam, self.atol)
        if self._refuse(why, "the constraint"):
            vU = torch.zeros_like(self.U.base)
            vV = None if self.symmetric else torch.zeros_like(self.V.base)
            return self._result(vU, self._initial_s(X), vV)
        U, sigma, V = F.spectral_factors(X.to(self.U.base.dtype), self.rank, self.symmetric)
        if self.f_fn is None:
            s = F.inverse_spectrum(sigma, self.f, self.lam, self.eps)
        elif self.f_inv is None:
            raise ValueError("cannot assign to a constraint whose 'f' has no inverse: pass f as a pair (f, f_inv)")
        else:
            s = self.f_inv(F.inverse_spectrum_of(sigma, self.f, self.lam))
        vU = self.U.right_inverse(U)
        vV = None if self.symmetric else self.V.right_inverse(V)
        return self._result(vU, s, vV)

    @torch.no_grad()
    def update_base(self, vU, s, vV=None):
        self.U.update_base(vU)
        if not self.symmetric:
            self.V.update_base(vV)

    @torch.no_grad()
    def sample(self, vU, s, vV=None, init="uniform"):
        if init != "uniform":
            raise ValueError(f"Spectral.sample: argument 'init' must be 'uniform', got {init!r}")
        self.U.sample(vU)
        if not self.symmetric:
            self.V.sample(vV)
        s.copy_(self._initial_s(s))

    def extra_repr(self):
        return (f"shape={self.shape}, rank={self.rank}, symmetric={self.symmetric}, "
                f"f={self.f if self.f_fn is None else self.f_fn}")


class HouseholderParametrization(MantraParametrization):
    """X = H_1 ⋯ H_k [I; 0] (C++ Householder); a static trivialization of Stiefel / SO(n)."""

    def __init__(self, shape, special, atol=DEFAULTS["atol"]):
        super().__init__()
        self.shape, self.special, self.wide, self.atol = tuple(shape), special, shape[-2] < shape[-1], atol
        self.manifold = mf.Stiefel(special=special)
        self.spec = self.manifold.spec

    def forward(self, v):
        return full_precision(lambda u: ops.householder(u, self.special, self.wide), v)

    def _vectors(self, X):
        return F.householder_vectors(X, self.special, self.wide)

    @torch.no_grad()
    def right_inverse(self, X):
        X = X.detach()
        if self._refuse(F.point_check(self.spec, X, list(self.shape), self.atol, 1.0), self.manifold.name):
            X = F.sample_point(self.spec, list(self.shape), "uniform", X)
        return self._vectors(X)

    @torch.no_grad()
    def sample(self, v, init="uniform"):
        if init != "uniform":
            raise ValueError(f"Householder.sample: argument 'init' must be 'uniform', got {init!r}")
        v.copy_(self._vectors(F.sample_point(self.spec, list(self.shape), "uniform", v)))


class CholeskyParametrization(MantraParametrization):
    """X = L Lᵀ, L = tril(v, −1) + diag(exp(diag v)) (C++ Cholesky)."""

    def __init__(self, shape, atol=DEFAULTS["atol"]):
        super().__init__()
        self.shape, self.atol = tuple(shape), atol

    def forward(self, v):
        return full_precision(ops.cholesky_map, v)

    @torch.no_grad()
    def right_inverse(self, X):
        X = X.detach()
        if self._refuse(F.positive_definite_check(X, list(self.shape), self.atol), "the positive definite matrices"):
            return F.cholesky_sample(list(self.shape), X)
        return F.cholesky_inverse(X)

    @torch.no_grad()
    def sample(self, v, init="uniform"):
        if init != "uniform":
            raise ValueError(f"Cholesky.sample: argument 'init' must be 'uniform', got {init!r}")
        v.copy_(F.cholesky_sample(list(self.shape), v))


class LinearMapParametrization(MantraParametrization):
    """Symmetric or skew-symmetric matrices from one triangle of v (C++ LinearMap)."""

    def __init__(self, shape, skew, lower=DEFAULTS["lower"], atol=DEFAULTS["atol"]):
        super().__init__()
        self.shape, self.skew, self.atol = tuple(shape), skew, atol
        self.triangle = "lower" if lower else "upper"

    def forward(self, v):
        return ops.linear_map(v, self.skew, self.triangle)

    @torch.no_grad()
    def right_inverse(self, X):
        X = X.detach()
        if self._attaching:
            return X.clone()  # geotorch's: attaching reads the chosen triangle of the current weight
        what = "the skew-symmetric matrices" if self.skew else "the symmetric matrices"
        self._refuse(F.linear_map_check(X, list(self.shape), self.skew, self.atol), what)
        return X.clone()

    @torch.no_grad()
    def sample(self, v, init="uniform"):
        if init != "uniform":
            raise ValueError(f"LinearMap.sample: argument 'init' must be 'uniform', got {init!r}")
        v.copy_(F.linear_map_sample(list(self.shape), v))
