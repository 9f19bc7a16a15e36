"""mantra: manifold-constrained layers, trivializations and Riemannian optimizers for PyTorch.

``import mantra`` loads the C++ extension, which registers the ``torch.ops.mantra.*`` operators.
"""

import torch  # noqa: F401  (loads libtorch before the extension that links it)

from . import _C
from ._build_identity import tag_compile_caches

# torch.compile's caches key graphs that name mantra's composite ops: tag them with this build.
compile_cache_tag = tag_compile_caches(_C.__file__)

from . import diagnostics, manifolds, nn, optim
from . import bayes  # noqa: E402  (mantra.bayes: matrix-normal ops and Bayesian-layer helpers)
from .ops import expm, expm_backward, qr_retraction
from .parametrize import (
    almost_orthogonal,
    alpha_stable,
    fixed_rank,
    grassmannian,
    hyperbolic,
    invertible,
    low_rank,
    oblique,
    orthogonal,
    positive_definite,
    positive_definite_cholesky,
    positive_semidefinite,
    positive_semidefinite_fixed_rank,
    positive_semidefinite_low_rank,
    sample,
    skew,
    sln,
    sphere,
    symmetric,
    update_base,
)

__version__ = _C.__version__
cuda_enabled = _C.cuda_enabled

__all__ = ["expm", "expm_backward", "qr_retraction", "manifolds", "nn", "optim", "orthogonal", "grassmannian", "sphere", "oblique",
           "positive_definite", "positive_definite_cholesky", "invertible", "sln", "hyperbolic", "low_rank", "fixed_rank",
           "positive_semidefinite", "positive_semidefinite_low_rank", "positive_semidefinite_fixed_rank",
           "almost_orthogonal", "alpha_stable", "symmetric", "skew", "update_base", "sample", "cuda_enabled", "__version__"]
from .parametrize import low_rank_oblique, low_rank_sphere, low_rank_stacked_stiefel  # noqa: E402 (issue 13)
__all__ += ["low_rank_oblique", "low_rank_sphere", "low_rank_stacked_stiefel", "bayes", "diagnostics"]
