"""The ``torch.nn.utils.parametrize`` modules of mantra's constraints.

Each is glue around C++ ``mantra::parametrize::functional``: ``forward`` calls the dispatcher
ops ``torch.ops.mantra.*`` (so ``torch.compile`` and ``torch.export`` trace through it), the
rest (assignment, rebase, sampling, dtype conversion) calls ``mantra._C.functional``. No map,
default or rebase rule is computed here; the C++ constraint classes call the same functions.
"""

import json

import torch
import torch.nn as nn

from .. import _C
from .. import manifolds as mf
from .precision import full_precision, like

F = _C.functional
ops = torch.ops.mantra
DEFAULTS = F.defaults()


class MantraParametrization(nn.Module):
    r"""Common protocol of mantra's parametrizations (what update_base, sample and DynamicTrivialization call).

    .. math:: X = \phi(v_1, \dots, v_m)

    A ``torch.nn.utils.parametrize`` module: ``forward`` maps the unconstrained tensors
    ``originals`` (``original`` or ``original0, original1, …`` of torch's ParametrizationList,
    in the order ``forward`` takes them) to the constrained value; ``update_base(*originals)``
    rebases (a no-op for static trivializations) and ``sample(*originals, init=...)``
    re-initializes in place. ``isinstance(p, MantraParametrization)`` is how mantra finds its
    parametrizations in a module; subclasses are made by the constraint functions.

    Args:
        none: the base class takes no constructor arguments (``atol``, the tolerance of
            assignment checks, is a class attribute, default ``DEFAULTS["atol"]`` = 1e-5).

    Example::

        >>> layer = mantra.orthogonal(nn.Linear(4, 4), "weight")
        >>> p = layer.parametrizations.weight[0]
        >>> isinstance(p, mantra.parametrize.MantraParametrization)
        True
    """

    atol = DEFAULTS["atol"]
    _attaching = False  # True while register_parametrization runs right_inverse

    def update_base(self, *originals):  # static trivializations have no base
        pass

    def sample(self, *originals, init=DEFAULTS["init"]):
        raise NotImplementedError

    def _identity(self):
        """What this parametrization is; a state saved from another one is refused on load."""
        return {}

    def _register_identity(self):
        """The identity as a uint8 buffer (JSON): it travels with state_dict, which stays all
        tensors, and _load_from_state_dict compares it before anything is loaded."""
        text = json.dumps({"constraint": type(self).__name__, **self._identity()}, sort_keys=True)
        self.register_buffer("identity", torch.tensor(list(text.encode()), dtype=torch.uint8))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        saved = state_dict.get(prefix + "identity")
        if saved is not None and not torch.equal(saved.cpu(), self.identity.cpu()):
            error_msgs.append(f"{prefix or 'the parametrization'}: the state was saved from "
                              f"{bytes(saved.tolist()).decode(errors='replace')}, not from this "
                              f"{bytes(self.identity.tolist()).decode()}")
            return
        why = self._check_loaded(state_dict, prefix)
        if why:
            error_msgs.append(f"{prefix or 'the parametrization'}: {why}")
            return
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        self._after_load(state_dict, prefix)

    def _check_loaded(self, state_dict, prefix):
        return ""

    def _after_load(self, state_dict, prefix):
        pass

    def _track_dtype(self, like_t):
        """For parametrizations without a base: a buffer that follows .to()/.double(), so that
        assignment returns the original's dtype (torch requires it)."""
        self.register_buffer("_like", torch.empty(0, dtype=like_t.dtype, device=like_t.device), persistent=False)

    def _as_original(self, t):
        return t.to(self._like.dtype) if hasattr(self, "_like") else t

    def _refuse(self, why, what):
        """Assignment of a non-value: on attach the sampled value stays (C++'s policy),
        otherwise a ValueError with the reason. Returns True when the sampled value stays."""
        if F.keep_on_attach(why):
            return False
        if self._attaching:
            return True
        raise ValueError(f"the assigned tensor is not a point of {what}: {why}")


class ManifoldParametrization(MantraParametrization):
    r"""A manifold's retraction at a base point: the dynamic trivialization (C++ ``Parametrization``).

    .. math:: \phi(v) = \mathrm{scale} \cdot R_B(P_B(v))

    with B the ``base`` buffer (a sampled point at construction), P_B the tangent projection
    and R_B the retraction (``torch.ops.mantra.trivialize``, float32 at least). Assigning X
    (``right_inverse``) makes X / scale the base and v = 0 (a ValueError with the reason if X is
    not a point); ``update_base(v)`` moves the base to φ(v) / scale and zeroes v, re-projecting
    the base onto the manifold every ``reproject_every`` (100) rebases; a dtype conversion that
    widens re-projects the base. ``sample(v, init)``: base = a new point ("uniform", "origin",
    and on square SO(n) "torus", "henaff", "cayley"), v = 0.

    Args:
        manifold (mantra.manifolds.Manifold): the manifold.
        shape (tuple of int): the shape of the constrained tensor.
        retraction (str): ``"default"`` (the manifold's first) or a name of
            ``manifold.retractions``. Default: ``"default"``.
        atol (float): tolerance of the point check on assignment. Default: ``1e-5``.
        dtype (torch.dtype, optional): dtype of the base. Default: ``None`` (torch's default).
        device (torch.device, optional): device of the base. Default: ``None``.
        scale (float): the constant factor (the sphere's radius). Default: ``1.0``.

    Example::

        >>> p = mantra.parametrize.ManifoldParametrization(mantra.manifolds.Stiefel(), (5, 3), "cayley")
        >>> X = p(0.1 * torch.randn(5, 3))
        >>> torch.allclose(X.T @ X, torch.eye(3), atol=1e-5)
        True
    """

    def __init__(self, manifold, shape, retraction="default", atol=DEFAULTS["atol"], dtype=None, device=None,
                 scale=1.0):
        super().__init__()
        self.manifold, self.spec = manifold, manifold.spec
        self.retraction, self.atol, self.scale = retraction, atol, float(scale)
        self.reproject_every, self.rebases = DEFAULTS["reproject_every"], 0
        self.register_buffer("base", F.sample_point(self.spec, list(shape), "uniform",
                                                    torch.empty(0, dtype=dtype, device=device)))
        self._register_identity()

    def forward(self, v):
        return full_precision(lambda u: ops.trivialize(self.base, u, self.spec, self.retraction, self.scale), v)

    @torch.no_grad()
    def right_inverse(self, X):
        """Assignment ``module.weight = X``: X (over scale) becomes the base, v = 0.

        Args:
            X (Tensor): a point of the manifold (times scale); otherwise a ValueError with the reason.
        """
        X = X.detach()
        why = F.point_check(self.spec, X, list(self.base.shape), self.atol, self.scale)
        if not self._refuse(why, self.manifold.name):
            self.base.copy_(X / self.scale if self.scale != 1.0 else X)
        return torch.zeros_like(self.base)

    def _chart_point(self, v):
        """The manifold point of v (unscaled): where update_base moves the base."""
        return ops.trivialize(self.base, v, self.spec, self.retraction, 1.0)

    @torch.no_grad()
    def update_base(self, v):
        """Rebase: base = R_B(P_B(v)), pulled back to the manifold (and re-projected every
        ``reproject_every`` rebases), v = 0.

        Args:
            v (Tensor): the unconstrained tensor, zeroed in place.
        """
        point = self._chart_point(v)
        self.rebases += 1
        self.base.copy_(F.rebased_base(self.spec, point, self.rebases, self.reproject_every))
        v.zero_()

    @torch.no_grad()
    def sample(self, v, init=DEFAULTS["init"]):
        """C++'s Parametrization.sample: base = a new point, v = 0.

        Args:
            v (Tensor): the unconstrained tensor, zeroed in place.
            init (str): "uniform" (default), "origin", and on square SO(n) "torus", "henaff",
                "cayley" (the orthogonal RNN inits).
        """
        self.base.copy_(F.sample_point(self.spec, list(self.base.shape), init, self.base))
        v.zero_()

    @torch.no_grad()
    def sample_in_chart(self, v, init="henaff"):
        """expRNN's static trivialization at the identity: base = I and v = the block-skew log A
        of a rotation init, so the point is exp(A) (C++'s Parametrization.sample_in_chart).

        Args:
            v (Tensor): the unconstrained tensor, overwritten with A.
            init (str): "henaff" (default), "cayley" or "torus"; needs the exp retraction.
        """
        base, log = F.sample_in_chart(self.spec, list(self.base.shape), self.retraction, init, self.base)
        self.base.copy_(base)
        v.copy_(log)

    def _identity(self):
        return {"manifold": self.spec, "retraction": self.retraction, "scale": self.scale}

    def _check_loaded(self, state_dict, prefix):
        base = state_dict.get(prefix + "base")
        if base is None:
            return ""
        why = F.point_check(self.spec, base, list(self.base.shape), self.atol, 1.0)
        return f"the saved base is not a point of {self.manifold.name}: {why}" if why else ""

    @torch.no_grad()
    def _after_load(self, state_dict, prefix):
        base = state_dict.get(prefix + "base")
        if base is not None:  # a state saved in a narrower dtype is re-projected, as .double() does
            self.base.copy_(F.converted_base(self.spec, self.base, like(base)))

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
    r"""geotorch's custom ``triv`` on orthogonal frames (C++ ``CallableTrivialization``).

    .. math:: X = (B \, \mathrm{triv}(A))_{:, :k}, \quad A = \mathrm{tril}(v, -1) - \mathrm{tril}(v, -1)^\top

    with v and the orthogonal base B of size max(n, k) × max(n, k) and k = min(n, k); the
    result is transposed for wide tensors (n < k). ``triv`` maps skew matrices to orthogonal
    ones with triv(0) = I. Assignment completes the frame X to an orthogonal base (QR, in C++
    ``complete_frame``) and sets v = 0; ``update_base`` moves B to B·triv(A). ``sample``
    accepts only ``"uniform"``.

    Args:
        shape (tuple of int): the shape (..., n, k) of the constrained tensor.
        triv (callable): skew (..., m, m) -> orthogonal (..., m, m), m = max(n, k).
        special (bool): the base is in SO(m) (det +1) rather than O(m).
        atol (float): tolerance of the point check on assignment. Default: ``1e-5``.
        dtype (torch.dtype, optional): dtype of the base. Default: ``None``.
        device (torch.device, optional): device of the base. Default: ``None``.

    Example::

        >>> layer = mantra.orthogonal(nn.Linear(3, 5), "weight", triv=torch.linalg.matrix_exp)
        >>> type(layer.parametrizations.weight[0]).__name__
        'CallableTrivialization'
    """

    def __init__(self, shape, triv, special, atol=DEFAULTS["atol"], dtype=None, device=None):
        n, k = shape[-2], shape[-1]
        full = max(n, k)
        super().__init__(mf.Stiefel(special=special), tuple(shape[:-2]) + (full, full), atol=atol, dtype=dtype,
                         device=device)
        self.triv, self.wide, self.k, self.shape = triv, n < k, min(n, k), tuple(shape)
        self._register_identity()

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

    def _chart_point(self, v):
        # B · triv(A): the square point update_base moves the base to (C++ retract hook).
        return ops.frame_from_chart(self.base, self.triv(ops.linear_map(v, True, "lower")), self.base.shape[-1], False)

    @torch.no_grad()
    def sample(self, v, init="uniform"):
        if init != "uniform":
            raise ValueError(f"CallableTrivialization.sample: argument 'init' must be 'uniform', got {init!r}")
        super().sample(v, init)

    def sample_in_chart(self, v, init="henaff"):
        raise ValueError("sample_in_chart needs triv 'expm', not a callable triv")


class CoupledLowRankParametrization(ManifoldParametrization):
    r"""Low rank coupled with oblique / sphere / stacked Stiefel (C++ ``CoupledLowRank``).

    .. math:: X = H V^\top, \quad \begin{bmatrix} H \\ V \end{bmatrix} = R_B(P_B(v)) \in \mathcal{H}_r \times \mathrm{St}(n, r)

    A ManifoldParametrization on a ``mantra.manifolds.LowRankCoupled`` manifold whose chart
    point (the ``base`` and v, of shape (..., m+n, r)) is the factor pair; the value is the
    weight H Vᵀ of shape (..., m, n) (``torch.ops.mantra.low_rank_coupled_compose``).
    Assigning X (rank ≤ r with h(X) = 0 within atol) factors it by a thin SVD
    (``mantra._C.functional.low_rank_coupled_base``); ``update_base`` rebases the factors.
    :meth:`point` gives [H; V] itself, so that a layer can apply the weight in factored form.

    Args:
        manifold (mantra.manifolds.LowRankCoupled): LowRankOblique, LowRankSphere or
            LowRankStackedStiefel of the weight's m, n.
        shape (tuple of int): the shape (..., m, n) of the constrained tensor.
        retraction (str): ``"default"`` (polar) or ``"polar"``, ``"qr"``, ``"exp"``.
        atol (float): tolerance of the check on assignment. Default: ``1e-5``.
        dtype (torch.dtype, optional): dtype of the base. Default: ``None``.
        device (torch.device, optional): device of the base. Default: ``None``.

    Example::

        >>> layer = mantra.low_rank_oblique(nn.Linear(6, 8), "weight", rank=2)
        >>> torch.allclose(layer.weight.norm(dim=1), torch.ones(8), atol=1e-5)
        True
    """

    def __init__(self, manifold, shape, retraction="default", atol=DEFAULTS["atol"], dtype=None, device=None):
        chart = tuple(shape[:-2]) + (manifold.m + manifold.n, manifold.rank)
        super().__init__(manifold, chart, retraction, atol, dtype=dtype, device=device)
        self.shape = tuple(shape)

    def point(self, v):
        """The chart point [H; V] = R_B(P_B(v)) of shape (..., m+n, r) (differentiable in v).

        Args:
            v (Tensor): the unconstrained tensor (``parametrizations.weight.original``).
        """
        return full_precision(lambda u: ops.trivialize(self.base, u, self.spec, self.retraction, 1.0), v)

    def forward(self, v):
        return ops.low_rank_coupled_compose(self.point(v), self.spec)

    @torch.no_grad()
    def right_inverse(self, X):
        """Assignment ``module.weight = X``: the base becomes the factors of X, v = 0.

        Args:
            X (Tensor): rank ≤ r with h(X) = 0 (within atol); otherwise a ValueError with the reason.
        """
        X = X.detach()
        why = F.low_rank_coupled_check(self.spec, X, list(self.shape), self.atol)
        if not self._refuse(why, self.manifold.name):
            self.base.copy_(F.low_rank_coupled_base(self.spec, X.to(self.base.dtype)))
        return torch.zeros_like(self.base)

    def sample_in_chart(self, v, init="henaff"):
        raise ValueError("sample_in_chart needs square SO(n)/O(n), not a coupled low-rank constraint")

    def extra_repr(self):
        return f"{self.spec}, shape={self.shape}"


def factor_chart(shape, triv, dtype, device):
    """The parametrization of a factor U or V (C++ Spectral's factors)."""
    if callable(triv):
        return CallableTrivialization(shape, triv, special=False, dtype=dtype, device=device)
    return ManifoldParametrization(mf.Stiefel(), shape, triv, dtype=dtype, device=device)


class SpectralParametrization(MantraParametrization):
    r"""A matrix from its factors and spectrum (C++ ``Spectral``): low rank, fixed rank, PSD, invertible, …

    .. math:: X = U \operatorname{diag}(f(s)) V^\top \quad (U \operatorname{diag}(f(s)) U^\top \text{ when symmetric})

    with U (n×r) and V (k×r) orthonormal frames, each its own Stiefel parametrization of
    ``triv`` (rebased by ``update_base``), and s the r-vector of the spectrum. ``f`` names the
    C++ spectrum map: identity f(s) = s, softplus f(s) = softplus(s) + eps, square f(s) = s²,
    tanh / sin / scaled_sigmoid f(s) = 1 + lam·g(s) (g = tanh, sin, 2σ(s) − 1); it also decides
    what assignment accepts. ``f_fn`` replaces the map by a user's function (σ = 1 + lam·f_fn(s)
    for the near-one maps, f_fn(s) otherwise) and ``f_inv`` is its inverse (needed for
    assignment). Takes (vU, s, vV), or (vU, s) when symmetric.

    Args:
        shape (tuple of int): the shape (..., n, k) of the constrained tensor (n = k if symmetric).
        rank (int): r, 1 <= r <= min(n, k).
        symmetric (bool): V = U (the PSD constraints).
        f (str): the spectrum map: ``"identity"``, ``"softplus"``, ``"square"``, ``"tanh"``,
            ``"sin"`` or ``"scaled_sigmoid"``.
        lam (float): λ of the near-one maps. Default: ``0.1``.
        eps (float): the floor of softplus. Default: ``1e-5``.
        triv (str or callable): the factors' retraction or a callable triv. Default: ``"exp"``.
        f_fn (callable, optional): a user's spectrum function. Default: ``None``.
        f_inv (callable, optional): its inverse. Default: ``None``.
        atol (float): tolerance of the check on assignment. Default: ``1e-5``.
        dtype (torch.dtype, optional): dtype of the factors' bases. Default: ``None``.
        device (torch.device, optional): their device. Default: ``None``.

    Example::

        >>> layer = mantra.fixed_rank(nn.Linear(6, 8), "weight", rank=2)
        >>> mantra.manifolds.FixedRank(2).check_point(layer.weight.detach())  # rank 2: no complaint
        ''
    """

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
        self._register_identity()

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

    def _identity(self):
        return {"shape": self.shape, "rank": self.rank, "symmetric": self.symmetric, "f": self.f,
                "lam": self.lam, "eps": self.eps}

    def extra_repr(self):
        return (f"shape={self.shape}, rank={self.rank}, symmetric={self.symmetric}, "
                f"f={self.f if self.f_fn is None else self.f_fn}")


class HurwitzParametrization(MantraParametrization):
    r"""α-stable (Hurwitz) matrices (C++ ``Hurwitz``): every eigenvalue has real part below −α.

    .. math:: X = P\,(S - Q/2) - \alpha I, \quad P \succ 0,\ Q \succ 0,\ S^\top = -S

    P and Q are positive definite parametrizations: the SPD manifold for ``triv="expm"``
    (rebased by ``update_base``), a Cholesky factor for ``"cholesky"``; S is the skew map of
    the strictly lower triangle of its original. Takes (vP, vQ, vS). Assigning an α-stable X
    solves the Lyapunov equation BᵀY + YB = −I (B = X + αI) in C++ and sets Q = I, P = Y⁻¹,
    S = skew(YB); any other X is a ValueError with the reason.

    Args:
        shape (tuple of int): the shape (..., n, n) of the constrained tensor.
        alpha (float): the decay rate α (finite). Default: ``0.0``.
        triv (str): ``"expm"`` (default) or ``"cholesky"``, the factors' parametrization.
        dtype (torch.dtype, optional): dtype of the factors. Default: ``None``.
        device (torch.device, optional): their device. Default: ``None``.

    Example::

        >>> layer = mantra.alpha_stable(nn.Linear(5, 5), "weight", alpha=0.5)
        >>> bool(mantra.diagnostics.spectral_abscissa(layer.weight.detach()) < -0.5)
        True
    """

    def __init__(self, shape, alpha=DEFAULTS["alpha_stable_alpha"], triv=DEFAULTS["positive_definite_triv"],
                 dtype=None, device=None):
        super().__init__()
        if triv not in ("expm", "cholesky"):
            raise ValueError(f"alpha_stable: argument 'triv' must be 'expm' or 'cholesky', got {triv!r}")
        self.shape, self.alpha, self.triv = tuple(shape), float(alpha), triv
        like_t = torch.empty(0, dtype=dtype, device=device)
        # The initial originals, drawn in C++ Hurwitz's order (P, Q, then S); attaching keeps
        # them unless the current weight is α-stable.
        self.P, vP = self._factor(like_t)
        self.Q, vQ = self._factor(like_t)
        self._initial = (vP, vQ, F.linear_map_sample(list(shape), like_t))
        self._track_dtype(like_t)
        self._register_identity()

    def _factor(self, like_t):
        if self.triv == "cholesky":
            return (CholeskyParametrization(self.shape, dtype=like_t.dtype, device=like_t.device),
                    F.cholesky_sample(list(self.shape), like_t))
        p = ManifoldParametrization(mf.SPD(), self.shape, "default", dtype=like_t.dtype, device=like_t.device)
        return p, torch.zeros_like(p.base)

    def _draw(self, factor):
        """A fresh original of a factor: a Cholesky draw, or v = 0 at the factor's base."""
        if self.triv == "cholesky":
            return F.cholesky_sample(list(self.shape), self._like)
        return torch.zeros_like(factor.base)

    def _identity(self):
        return {"shape": self.shape, "alpha": self.alpha, "triv": self.triv}

    def _compose(self, vP, vQ, vS):
        return ops.hurwitz_compose(self.P(vP), self.Q(vQ), ops.linear_map(vS, True, "lower"), self.alpha)

    def forward(self, vP, vQ, vS):
        return full_precision(self._compose, vP, vQ, vS)

    @torch.no_grad()
    def right_inverse(self, X):
        """Assignment ``module.weight = X``: the factors of an α-stable X (C++ functional.hurwitz_factors).

        Args:
            X (Tensor): every eigenvalue with real part below −alpha; otherwise a ValueError with the reason.
        """
        X = X.detach()
        if self._refuse(F.hurwitz_check(X, list(self.shape), self.alpha), "the α-stable matrices"):
            initial, self._initial = self._initial, None  # kept until attached, then dropped
            if initial is None:
                initial = (self._draw(self.P), self._draw(self.Q), F.linear_map_sample(list(self.shape), self._like))
            return initial
        P, Q, S = F.hurwitz_factors(X, self.alpha)  # raises before anything changes
        self._initial = None
        return self.P.right_inverse(P), self.Q.right_inverse(Q), self._as_original(S)

    @torch.no_grad()
    def update_base(self, vP, vQ, vS):
        self.P.update_base(vP)
        self.Q.update_base(vQ)

    @torch.no_grad()
    def sample(self, vP, vQ, vS, init="uniform"):
        if init != "uniform":
            raise ValueError(f"Hurwitz.sample: argument 'init' must be 'uniform', got {init!r}")
        self.P.sample(vP)
        self.Q.sample(vQ)
        vS.copy_(F.linear_map_sample(list(self.shape), vS))

    def extra_repr(self):
        return f"shape={self.shape}, alpha={self.alpha}, triv={self.triv}"


class HouseholderParametrization(MantraParametrization):
    r"""A product of Householder reflections (C++ ``Householder``): a static trivialization of Stiefel / SO(n).

    .. math:: X = H_1 \cdots H_k \begin{bmatrix} I_k \\ 0 \end{bmatrix}, \quad H_i = I - \tau_i u_i u_i^\top

    with u_i the i-th column of v below the diagonal and a one on it (transposed for wide
    tensors); ``special`` gives det = +1 on square tensors. Assignment computes the vectors of
    X; there is no base, so ``update_base`` does nothing. ``sample`` draws a point (``"uniform"``,
    or a rotation init ``"henaff"``, ``"cayley"``, ``"torus"``) and takes its vectors; ``"origin"``
    is refused: the identity is not a product of reflections of this map.

    Args:
        shape (tuple of int): the shape (..., n, k) of the constrained tensor.
        special (bool): SO(n) (square tensors).
        atol (float): tolerance of the point check on assignment. Default: ``1e-5``.

    Example::

        >>> layer = mantra.orthogonal(nn.Linear(4, 4), "weight", triv="householder")
        >>> mantra.manifolds.Stiefel(special=True).check_point(layer.weight.detach())  # in SO(4)
        ''
    """

    def __init__(self, shape, special, atol=DEFAULTS["atol"], dtype=None, device=None):
        super().__init__()
        self.shape, self.special, self.wide, self.atol = tuple(shape), special, shape[-2] < shape[-1], atol
        self._track_dtype(torch.empty(0, dtype=dtype, device=device))
        self._register_identity()
        self.manifold = mf.Stiefel(special=special)
        self.spec = self.manifold.spec

    def _identity(self):
        return {"shape": self.shape, "special": self.special}

    def forward(self, v):
        return full_precision(lambda u: ops.householder(u, self.special, self.wide), v)

    def _vectors(self, X):
        return F.householder_vectors(X, self.special, self.wide)

    @torch.no_grad()
    def right_inverse(self, X):
        X = X.detach()
        if self._refuse(F.point_check(self.spec, X, list(self.shape), self.atol, 1.0), self.manifold.name):
            X = F.sample_point(self.spec, list(self.shape), "uniform", self._like)
        return self._vectors(self._as_original(X))

    @torch.no_grad()
    def sample(self, v, init="uniform"):
        if init == "origin":
            raise ValueError("Householder.sample: argument 'init' cannot be 'origin' (the identity is not a product of "
                             "reflections of this map); use uniform, henaff, cayley or torus")
        v.copy_(self._vectors(F.sample_point(self.spec, list(self.shape), init, v)))


class CholeskyParametrization(MantraParametrization):
    r"""Positive definite matrices from a Cholesky factor (C++ ``Cholesky``), a static trivialization.

    .. math:: X = L L^\top, \quad L = \mathrm{tril}(v, -1) + \operatorname{diag}(\exp(\operatorname{diag} v))

    Assignment takes the Cholesky factor of X (a ValueError if X is not positive definite);
    ``sample("uniform")`` draws v with i.i.d. Gaussian entries (a small standard deviation).

    Args:
        shape (tuple of int): the shape (..., n, n) of the constrained tensor.
        atol (float): tolerance of the symmetry check on assignment. Default: ``1e-5``.

    Example::

        >>> layer = mantra.positive_definite_cholesky(nn.Linear(4, 4), "weight")
        >>> mantra.manifolds.SPD().check_point(layer.weight.detach())  # symmetric positive definite
        ''
    """

    def __init__(self, shape, atol=DEFAULTS["atol"], dtype=None, device=None):
        super().__init__()
        self.shape, self.atol = tuple(shape), atol
        self._track_dtype(torch.empty(0, dtype=dtype, device=device))
        self._register_identity()

    def _identity(self):
        return {"shape": self.shape}

    def forward(self, v):
        return full_precision(ops.cholesky_map, v)

    @torch.no_grad()
    def right_inverse(self, X):
        X = X.detach()
        if self._refuse(F.positive_definite_check(X, list(self.shape), self.atol), "the positive definite matrices"):
            return F.cholesky_sample(list(self.shape), self._like)
        return self._as_original(F.cholesky_inverse(X))

    @torch.no_grad()
    def sample(self, v, init="uniform"):
        if init != "uniform":
            raise ValueError(f"Cholesky.sample: argument 'init' must be 'uniform', got {init!r}")
        v.copy_(F.cholesky_sample(list(self.shape), v))


class LinearMapParametrization(MantraParametrization):
    r"""Symmetric or skew-symmetric matrices from one triangle of v (C++ ``LinearMap``).

    .. math:: X = T + T^\top + \operatorname{diag}(v) \ \text{(symmetric)}, \quad X = T - T^\top \ \text{(skew)}, \quad T = \mathrm{tril}(v, -1)

    (``triu(v, 1)`` when ``lower=False``). Attaching reads the chosen triangle of the current
    weight; a later assignment must be (skew-)symmetric within ``atol``.

    Args:
        shape (tuple of int): the shape (..., n, n) of the constrained tensor.
        skew (bool): skew-symmetric instead of symmetric.
        lower (bool): read the lower triangle (else the upper). Default: ``True``.
        atol (float): tolerance of the check on assignment. Default: ``1e-5``.

    Example::

        >>> layer = mantra.symmetric(nn.Linear(5, 5), "weight")
        >>> torch.equal(layer.weight, layer.weight.T)
        True
    """

    def __init__(self, shape, skew, lower=DEFAULTS["lower"], atol=DEFAULTS["atol"], dtype=None, device=None):
        super().__init__()
        self.shape, self.skew, self.atol = tuple(shape), skew, atol
        self.triangle = "lower" if lower else "upper"
        self._track_dtype(torch.empty(0, dtype=dtype, device=device))
        self._register_identity()

    def _identity(self):
        return {"shape": self.shape, "skew": self.skew, "triangle": self.triangle}

    def forward(self, v):
        return ops.linear_map(v, self.skew, self.triangle)

    @torch.no_grad()
    def right_inverse(self, X):
        X = X.detach()
        if self._attaching:
            return self._as_original(X).clone()  # geotorch's: attaching reads the triangle of the current weight
        what = "the skew-symmetric matrices" if self.skew else "the symmetric matrices"
        self._refuse(F.linear_map_check(X, list(self.shape), self.skew, self.atol), what)
        return self._as_original(X).clone()

    @torch.no_grad()
    def sample(self, v, init="uniform"):
        if init != "uniform":
            raise ValueError(f"LinearMap.sample: argument 'init' must be 'uniform', got {init!r}")
        v.copy_(F.linear_map_sample(list(self.shape), v))
