"""Thin Python names for the dispatcher operators (the math is in C++)."""

import torch


def expm(A: torch.Tensor) -> torch.Tensor:
    r"""Matrix exponential of each (n, n) matrix of a batch (``torch.ops.mantra.expm``).

    .. math:: \exp(A) = \sum_{k \ge 0} A^k / k!

    Computed by scaling and squaring with Taylor approximants whose degree and number of
    squarings are chosen per matrix from its 1-norm (Bader, Blanes & Casas 2019), on the CPU
    or CUDA kernel of ``A``'s device. float32/float64; float16/bfloat16 are computed in float32
    and cast back. Differentiable: the backward reuses the forward's intermediates and costs
    about twice the forward.

    Args:
        A (Tensor): matrices of shape (..., n, n), finite.

    Example::

        >>> A = torch.randn(4, 3, 3, dtype=torch.float64)
        >>> torch.allclose(mantra.expm(A), torch.linalg.matrix_exp(A))
        True
    """
    return torch.ops.mantra.expm(A)


def expm_backward(grad: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    r"""Gradient of ``<grad, expm(A)>`` with respect to ``A`` (``torch.ops.mantra.expm_backward``).

    .. math:: \nabla_A \langle G, \exp(A) \rangle = L_{\exp}(A^\top, G)

    with :math:`L_{\exp}` the Fréchet derivative of the exponential; what the autograd of
    :func:`expm` computes, exposed for custom backward passes.

    Args:
        grad (Tensor): the gradient G of the output, of the shape of ``A``.
        A (Tensor): matrices of shape (..., n, n).

    Example::

        >>> A = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
        >>> G = torch.randn(3, 3, dtype=torch.float64)
        >>> (g,) = torch.autograd.grad(torch.linalg.matrix_exp(A), A, G)
        >>> torch.allclose(mantra.expm_backward(G, A.detach()), g)
        True
    """
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
