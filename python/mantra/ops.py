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


def modrelu(z: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """modReLU(z) = sign(z)·max(|z| + bias, 0) for ``z`` (..., H) and ``bias`` (H,).

    float32/float64 (float16/bfloat16 computed in float32); NaN in ``z`` or ``bias`` gives NaN.
    Differentiable in both (backward: ``torch.ops.mantra.modrelu_backward``, from the output).

    Example::

        >>> mantra.ops.modrelu(torch.tensor([1.0, -2.0, 0.1]), torch.full((3,), -0.5))
        tensor([ 0.5000, -1.5000,  0.0000])
    """
    return torch.ops.mantra.modrelu(z, bias)
