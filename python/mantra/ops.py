"""Thin Python names for the dispatcher operators (the math is in C++)."""

import torch


def expm(A: torch.Tensor) -> torch.Tensor:
    """Matrix exponential of each (n, n) matrix in ``A`` of shape (..., n, n).

    float32/float64 (float16/bfloat16 computed in float32). Differentiable; its backward
    reuses the forward's intermediates and costs about twice the forward.
    """
    return torch.ops.mantra.expm(A)


def expm_backward(grad: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """Gradient of ``<grad, expm(A)>`` with respect to ``A`` (the Fréchet derivative L(Aᵀ, grad))."""
    return torch.ops.mantra.expm_backward(grad, A)
