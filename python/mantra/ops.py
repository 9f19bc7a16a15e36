"""Thin Python names for the dispatcher operators (the math is in C++)."""

import torch


def _tensors(op, **named):
    # A TypeError naming the argument (the dispatcher's own message for None is "tensor does not
    # have a device").
    for name, value in named.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"mantra.{op}: argument '{name}' must be a torch.Tensor, got {type(value).__name__}")


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
    _tensors("expm", A=A)
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
    _tensors("expm_backward", grad=grad, A=A)
    return torch.ops.mantra.expm_backward(grad, A)


def modrelu(z: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """modReLU(z) = sign(z)·max(|z| + bias, 0) for ``z`` (..., H) and ``bias`` (H,).

    float32/float64 (float16/bfloat16 computed in float32); NaN in ``z`` or ``bias`` gives NaN.
    Differentiable in both (backward: ``torch.ops.mantra.modrelu_backward``, from the output).

    Example::

        >>> mantra.ops.modrelu(torch.tensor([1.0, -2.0, 0.1]), torch.full((3,), -0.5))
        tensor([ 0.5000, -1.5000,  0.0000])
    """
    _tensors("modrelu", z=z, bias=bias)
    return torch.ops.mantra.modrelu(z, bias)


def orthogonal_rnn(input: torch.Tensor, h0: torch.Tensor, recurrent: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    r"""The orthogonal-RNN recurrence over a whole sequence (``torch.ops.mantra.orthogonal_rnn``):
    every hidden state, (T, N, H). NaN/Inf in any argument propagate; differentiable in all four.

    .. math:: h_t = \mathrm{modReLU}(u_t + h_{t-1} W^\top, b), \quad t = 1, \dots, T, \quad h_0 = \text{h0}

    Args:
        input (Tensor): the input projections u, (T, N, H).
        h0 (Tensor): the initial state, (N, H).
        recurrent (Tensor): W, (H, H) (orthogonal in an orthogonal RNN).
        bias (Tensor): the modReLU bias, (H,).

    Example::

        >>> u = torch.randn(5, 2, 4, dtype=torch.float64)
        >>> h = mantra.ops.orthogonal_rnn(u, torch.zeros(2, 4, dtype=torch.float64),
        ...                               torch.eye(4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64))
        >>> h.shape
        torch.Size([5, 2, 4])
    """
    _tensors("orthogonal_rnn", input=input, h0=h0, recurrent=recurrent, bias=bias)
    return torch.ops.mantra.orthogonal_rnn(input, h0, recurrent, bias)


def qr_retraction(X: torch.Tensor) -> torch.Tensor:
    r"""The Q factor of X = QR with diag(R) > 0, for (..., n, k) with n >= k (``torch.ops.mantra.qr_retraction``).

    .. math:: X = QR, \quad Q^\top Q = I, \quad \mathrm{diag}(R) > 0

    CholeskyQR2 where the Gram matrix is well conditioned (estimated κ up to about 1e3 in
    float32, 3e7 in float64), a sign-fixed Householder QR per matrix otherwise; differentiable
    (``torch.ops.mantra.qr_retraction_backward``). Stiefel's ``"qr"`` retraction calls it.

    Args:
        X (Tensor): tall matrices (..., n, k), n >= k, float32/float64.

    Example::

        >>> X = torch.randn(6, 3, dtype=torch.float64)
        >>> Q = mantra.ops.qr_retraction(X)
        >>> torch.allclose(Q.T @ Q, torch.eye(3, dtype=torch.float64))
        True
    """
    _tensors("qr_retraction", X=X)
    return torch.ops.mantra.qr_retraction(X)
