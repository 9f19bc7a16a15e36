"""Layers: ``torch.nn.Module``s with constrained weights (the Python side of ``mantra::nn``)."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import parametrize as _pz
from ._C import functional as _functional

_LINEAR_CONSTRAINTS = {
    "orthogonal": lambda m, o: _pz.orthogonal(m, "weight", triv=o["triv"]),
    "grassmannian": lambda m, o: _pz.grassmannian(m, "weight", triv=o["triv"]),
    "sphere": lambda m, o: _pz.sphere(m, "weight"),
    "oblique": lambda m, o: _pz.oblique(m, "weight"),
    "low_rank": lambda m, o: _pz.low_rank(m, "weight", o["rank"]),
    "fixed_rank": lambda m, o: _pz.fixed_rank(m, "weight", o["rank"]),
    # C++'s almost_orthogonal map: 1 + λ tanh(s).
    "almost_orthogonal": lambda m, o: _pz.almost_orthogonal(m, "weight", o["lam"], f="tanh"),
    "invertible": lambda m, o: _pz.invertible(m, "weight"),
    "positive_definite": lambda m, o: _pz.positive_definite(m, "weight"),
    "positive_definite_cholesky": lambda m, o: _pz.positive_definite(m, "weight", triv="cholesky"),
    "positive_semidefinite": lambda m, o: _pz.positive_semidefinite(m, "weight"),
    "symmetric": lambda m, o: _pz.symmetric(m, "weight"),
    "skew": lambda m, o: _pz.skew(m, "weight"),
}


class Linear(nn.Linear):
    """A drop-in for ``torch.nn.Linear`` (same arguments, initialization and forward) whose
    weight carries a constraint — the options of C++ ``mantra::nn::Linear``:

    - ``constraint``: "none" (exactly ``torch.nn.Linear``) or one of orthogonal, grassmannian,
      sphere, oblique, low_rank, fixed_rank, almost_orthogonal, invertible, positive_definite,
      positive_definite_cholesky, positive_semidefinite, symmetric, skew;
    - ``triv`` (orthogonal: expm, cayley, qr, polar, householder or a callable; grassmannian:
      the first four), ``rank`` (low_rank, fixed_rank), ``lam`` (almost_orthogonal, C++'s
      ``lambda``: singular values 1 + lam·tanh(s));
    - ``scale``: "none", "isotropic" (W = g·Q with one learnable g) or "per_row" (one g per
      output feature);
    - ``orthogonality_penalty``: λ of ``penalty()`` = λ/2·‖WᵀW − I‖² (WWᵀ for wide W).
    """

    def __init__(self, in_features, out_features, bias=True, constraint="orthogonal", triv="expm", rank=1, lam=0.1,
                 scale="none", orthogonality_penalty=0.0, device=None, dtype=None):
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"mantra.nn.Linear: arguments 'in_features' and 'out_features' must be positive, got "
                             f"{in_features} and {out_features}")
        if scale not in ("none", "isotropic", "per_row"):
            raise ValueError(f"mantra.nn.Linear: argument 'scale' must be none, isotropic or per_row, got {scale!r}")
        if not orthogonality_penalty >= 0:
            raise ValueError(f"mantra.nn.Linear: argument 'orthogonality_penalty' must be >= 0, got "
                             f"{orthogonality_penalty}")
        if constraint != "none" and constraint not in _LINEAR_CONSTRAINTS:
            raise ValueError(f"mantra.nn.Linear: argument 'constraint' must be none, {', '.join(_LINEAR_CONSTRAINTS)}; "
                             f"got {constraint!r}")
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self.constraint, self.triv, self.rank, self.lam = constraint, triv, rank, lam
        self.scale_mode, self.orthogonality_penalty = scale, orthogonality_penalty
        if constraint != "none":
            _LINEAR_CONSTRAINTS[constraint](self, dict(triv=triv, rank=rank, lam=lam))
        factory = dict(device=device, dtype=dtype)
        if scale == "isotropic":
            self.scale = nn.Parameter(torch.ones(1, **factory))
        elif scale == "per_row":
            self.scale = nn.Parameter(torch.ones(out_features, 1, **factory))
        else:
            self.register_parameter("scale", None)

    def effective_weight(self):
        """The weight the forward uses: g·Q (Q the constrained weight)."""
        W = self.weight
        return W if self.scale is None else W * self.scale

    def forward(self, input):
        return F.linear(input, self.effective_weight(), self.bias)

    def penalty(self):
        """λ/2·‖WᵀW − I‖² of the effective weight (a scalar; zero when orthogonality_penalty is 0)."""
        if self.orthogonality_penalty == 0:
            return torch.zeros((), dtype=self.bias.dtype if self.bias is not None else None,
                               device=self.bias.device if self.bias is not None else None)
        return _functional.orthogonality_penalty(self.effective_weight(), self.orthogonality_penalty)

    def extra_repr(self):
        s = super().extra_repr() + f", constraint={self.constraint}"
        if self.scale_mode != "none":
            s += f", scale={self.scale_mode}"
        if self.orthogonality_penalty != 0:
            s += f", orthogonality_penalty={self.orthogonality_penalty}"
        return s


__all__ = ["Linear"]
