"""mantra: manifold-constrained layers, trivializations and Riemannian optimizers for PyTorch.

``import mantra`` loads the C++ extension, which registers the ``torch.ops.mantra.*`` operators.
"""

import torch  # noqa: F401  (loads libtorch before the extension that links it)

from . import _C
from . import manifolds
from .ops import expm, expm_backward

__version__ = _C.__version__
cuda_enabled = _C.cuda_enabled

__all__ = ["expm", "expm_backward", "manifolds", "cuda_enabled", "__version__"]
