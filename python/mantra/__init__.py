"""mantra: manifold-constrained layers, trivializations and Riemannian optimizers for PyTorch.

``import mantra`` loads the C++ extension, which registers the ``torch.ops.mantra.*`` operators.
"""

import torch  # noqa: F401  (loads libtorch before the extension that links it)

from . import _C
from . import manifolds, optim
from .ops import expm, expm_backward
from .parametrize import (
    grassmannian,
    hyperbolic,
    invertible,
    oblique,
    orthogonal,
    positive_definite,
    sample,
    sphere,
    update_base,
)

__version__ = _C.__version__
cuda_enabled = _C.cuda_enabled

__all__ = ["expm", "expm_backward", "manifolds", "optim", "orthogonal", "grassmannian", "sphere", "oblique",
           "positive_definite", "invertible", "hyperbolic", "update_base", "sample", "cuda_enabled", "__version__"]
