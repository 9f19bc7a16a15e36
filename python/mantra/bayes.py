r"""Bayesian layers with matrix-normal posteriors (the Python side of ``mantra::bayes`` and
``mantra::nn::MatrixNormalLinear``). Binds; the math is in C++ (``mantra._C.bayes``, ``torch.ops.mantra``).

The convention, once: a weight :math:`W \in \mathbb{R}^{n\times m}` is (in × out), a layer computes
:math:`XW`; :math:`W \sim \mathcal{MN}(M, U, V)` with :math:`U = AA^\top` among rows and :math:`V = BB^\top`
among columns (A, B lower triangular, positive diagonals), :math:`W = M + AEB^\top`, and
:math:`\operatorname{Cov}(\operatorname{vec}_r W) = U \otimes V` for the row-stacking vec
(``W.reshape(-1)``; ``torch.kron(U, V)``).

``MatrixNormalConv2d`` applies the same posterior to the matrix view (C_in·k·k) × C_out of a conv
kernel (rows: input-channel taps, columns: output channels). ``covariance="spd"`` keeps U and V
themselves as parameters (``u``, ``v``) on the SPD manifold, for ``mantra.optim.RiemannianAdam``
with ``mantra.manifolds.SPD`` (``spd_parameters()``); the layer takes their Cholesky factors.
"""

import contextlib
import threading

import torch
import torch.nn as nn

from ._C import bayes as _bayes

__all__ = ["matrix_normal_sample", "matrix_normal_linear", "MatrixNormalLinear", "MatrixNormalConv2d",
           "sample_in_eval", "predictive_probabilities", "kl_sum", "split_spd_parameters", "negative_elbo",
           "kl_warmup"]

_PARAM_NAMES = ("mean", "a_raw", "b_raw", "log_sigma2", "bias", "log_tau", "log_gamma")
_SPD_NAMES = ("mean", "u", "v", "log_sigma2", "bias", "log_tau", "log_gamma")
_state = threading.local()


def matrix_normal_sample(M, A, B, E):
    r"""A sample of :math:`\mathcal{MN}(M, AA^\top, BB^\top)` from the standard normal noise ``E``.

    .. math:: W = M + \operatorname{tril}(A)\, E\, \operatorname{tril}(B)^\top

    Only the lower triangles of A and B are read (their upper triangles get zero gradient).

    Args:
        M (Tensor): mean, (n, m).
        A (Tensor): row factor, (n, n), positive diagonal.
        B (Tensor): column factor, (m, m), positive diagonal.
        E (Tensor): standard normal noise, (n, m).

    Example::

        >>> W = mantra.bayes.matrix_normal_sample(torch.zeros(3, 2), torch.eye(3), torch.eye(2), torch.ones(3, 2))
        >>> W.shape
        torch.Size([3, 2])
    """
    return torch.ops.mantra.matrix_normal_sample(M, A, B, E)


def matrix_normal_linear(X, M, A, B, E, bias=None):
    r"""The local reparameterization of :math:`XW`, :math:`W \sim \mathcal{MN}(M, AA^\top, BB^\top)`, one W per row.

    .. math:: O = XM + \sqrt{\operatorname{rowsum}((X\operatorname{tril}(A))^2)} \odot (E\operatorname{tril}(B)^\top) + b

    Args:
        X (Tensor): inputs, (N, n).
        M (Tensor): mean, (n, m).
        A (Tensor): row factor, (n, n).
        B (Tensor): column factor, (m, m).
        E (Tensor): standard normal noise, (N, m).
        bias (Tensor, optional): (m,).

    Example::

        >>> O = mantra.bayes.matrix_normal_linear(torch.ones(4, 3), torch.zeros(3, 2), torch.eye(3), torch.eye(2),
        ...                                       torch.zeros(4, 2))
        >>> O.abs().max().item()
        0.0
    """
    return torch.ops.mantra.matrix_normal_linear(X, M, A, B, E, bias)


@contextlib.contextmanager
def sample_in_eval():
    r"""Within it, MatrixNormalLinear layers sample in eval mode too (Bayesian model averaging).

    .. math:: \text{forward} = \text{a sample, whatever } \texttt{training} \text{ is}

    Args:
        (none)

    Example::

        >>> layer = mantra.nn.MatrixNormalLinear(3, 2).eval()
        >>> with mantra.bayes.sample_in_eval():
        ...     y = layer(torch.ones(1, 3))
    """
    previous = getattr(_state, "sample", False)
    _state.sample = True
    try:
        yield
    finally:
        _state.sample = previous


class _MatrixNormalLayer(nn.Module):
    """What MatrixNormalLinear and MatrixNormalConv2d share: the parameters and the C++ calls on them."""

    def _init_params(self, n, m, bias, posterior, prior, sampling, covariance, prior_variance, init_log_variance,
                     eval_samples, threshold, generator, device, dtype):
        _bayes.check_options(posterior, prior, sampling)
        _bayes.check_covariance(covariance)
        if eval_samples < 0:
            raise ValueError(f"mantra.nn.{type(self).__name__}: argument 'eval_samples' must be >= 0, got {eval_samples}")
        self.posterior, self.prior, self.sampling, self.covariance = posterior, prior, sampling, covariance
        self.prior_variance, self.eval_samples, self.threshold = prior_variance, eval_samples, threshold
        self.generator = generator
        like = torch.empty(0, device=device, dtype=dtype or torch.get_default_dtype())
        tensors = _bayes.initial_params(n, m, posterior, prior, bias, init_log_variance, like, None, covariance)
        for name, t in zip(self._names(), tensors):
            self.register_parameter(name, nn.Parameter(t) if t is not None else None)

    def _names(self):
        return _SPD_NAMES if self.covariance == "spd" else _PARAM_NAMES

    def params(self):
        """The seven parameter tensors (None where absent) and the covariance, in the order of ``mantra._C.bayes``."""
        return tuple(getattr(self, n) for n in self._names()) + (self.covariance,)

    def spd_parameters(self):
        """[U, V] under ``covariance="spd"`` (a RiemannianAdam group on ``mantra.manifolds.SPD``), else []."""
        return [self.u, self.v] if self.covariance == "spd" and self.u is not None else []

    @staticmethod
    def _filled(layer, W, b):
        """``layer`` (a fresh torch layer on the kept units) holding the pruned weight W and bias b."""
        with torch.no_grad():
            layer.weight.copy_(W)
            if b is not None:
                layer.bias.copy_(b)
        return layer

    def _forward_mode(self, sample, mean):
        if self.training or getattr(_state, "sample", False):
            return sample()
        if self.eval_samples > 0:
            return sum(sample() for _ in range(self.eval_samples)) / self.eval_samples
        return mean(None if self.threshold is None else self.mask(self.threshold))

    def kl(self):
        """The KL term of this layer to its prior (a scalar tensor, differentiable)."""
        return _bayes.kl(self.params(), self.posterior, self.prior, self.prior_variance)

    def log_alpha(self):
        """log α = log Var(W_ij) − log M_ij² per weight of the matrix view, (n, m)."""
        return _bayes.log_alpha(self.params(), self.posterior)

    def marginal_variance(self):
        """Var(W_ij) of the matrix view, (n, m)."""
        return _bayes.marginal_variance(self.params(), self.posterior)

    def mask(self, threshold):
        """The kept weights (n, m, bool) at a log-α threshold (rows × columns under group ARD)."""
        return _bayes.mask(self.params(), self.posterior, self.prior, threshold)

    def group_masks(self, threshold):
        """(rows (n,), columns (m,)) kept by their group log α."""
        return _bayes.group_masks(self.params(), self.posterior, threshold)


class MatrixNormalLinear(_MatrixNormalLayer):
    r"""A variational Bayesian linear layer with a matrix-normal weight posterior (C++ ``mantra::nn::MatrixNormalLinear``).

    .. math:: y = xW + b, \quad W \sim q = \mathcal{MN}(M, AA^\top, BB^\top) \;(\text{mn}),\;
              \mathcal{N}(M, \operatorname{diag}\sigma^2) \;(\text{diag}),\; \text{or their sum (mn+diag)}

    Training mode draws one sample (``sampling="local"``: an independent W per row through the
    local reparameterization; ``"weights"``: one W per batch) from ``generator``. Eval mode uses
    the mean (masked at ``threshold`` when given) or averages ``eval_samples`` samples.
    ``kl()`` is the KL term to the prior: ``"normal"`` N(0, prior_variance·I), ``"ard"`` (the
    optimal α substituted), ``"group_ard"`` MN(0, diag(τ)⁻¹, diag(γ)⁻¹) with learnable τ, γ.
    Initialization: mean as ``torch.nn.Linear``; Var(W_ij) = exp(init_log_variance).

    Args:
        in_features (int): n.
        out_features (int): m.
        bias (bool): a deterministic bias. Default: ``True``.
        posterior (str): ``"mn"``, ``"diag"`` or ``"mn+diag"``.
        prior (str): ``"normal"``, ``"ard"`` or ``"group_ard"``.
        sampling (str): ``"local"`` or ``"weights"``.
        covariance (str): ``"cholesky"`` (A, B through raw parameters) or ``"spd"`` (U, V on the SPD manifold).
        prior_variance (float): σ² of the normal prior.
        init_log_variance (float): initial log Var(W_ij). Default: -10.
        eval_samples (int): 0 (the mean) or K samples averaged in eval mode.
        threshold (float, optional): eval mode zeroes the weights the masks drop at this log α.
        generator (torch.Generator, optional): the noise's generator.

    Example::

        >>> layer = mantra.nn.MatrixNormalLinear(784, 300, posterior="mn", prior="ard")
        >>> loss = layer(torch.randn(8, 784)).square().mean() + layer.kl() / 60000
    """

    def __init__(self, in_features, out_features, bias=True, posterior="mn", prior="ard", sampling="local",
                 prior_variance=1.0, init_log_variance=-10.0, eval_samples=0, threshold=None, generator=None,
                 device=None, dtype=None, covariance="cholesky"):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._init_params(in_features, out_features, bias, posterior, prior, sampling, covariance, prior_variance,
                          init_log_variance, eval_samples, threshold, generator, device, dtype)

    def forward(self, input):
        X = input.reshape(-1, self.in_features)
        p = self.params()
        out = self._forward_mode(lambda: _bayes.sampled_forward(X, p, self.posterior, self.sampling, self.generator),
                                 lambda mask: _bayes.mean_forward(X, p, mask))
        return out.reshape(*input.shape[:-1], self.out_features)

    def kept_units(self, threshold):
        """(kept input indices, kept output indices) of ``mask(threshold)``."""
        m = self.mask(threshold)
        return m.any(1).nonzero().flatten(), m.any(0).nonzero().flatten()

    def prune(self, threshold, keep_in=None, keep_out=None):
        """An ordinary ``torch.nn.Linear`` on the kept units, equal to the masked mean layer there."""
        W, b, rows, cols = _bayes.pruned(self.params(), self.posterior, self.prior, threshold, keep_in, keep_out)
        return self._filled(nn.Linear(rows.numel(), cols.numel(), bias=b is not None, device=W.device, dtype=W.dtype),
                            W, b)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, posterior={self.posterior}, "
                f"prior={self.prior}, sampling={self.sampling}, covariance={self.covariance}")


class MatrixNormalConv2d(_MatrixNormalLayer):
    r"""A variational Bayesian Conv2d with a matrix-normal posterior on its kernel's matrix view (C++ ``mantra::nn::MatrixNormalConv2d``).

    .. math:: W \in \mathbb{R}^{(C_	ext{in} k^2) 	imes C_	ext{out}}, \quad
              o_{\ell} = W^	op p_\ell \sim \mathcal{N}(M^	op p_\ell,\; (p_\ell^	op U p_\ell)\, V) 	ext{ per location } \ell

    Rows of the matrix view are input-channel taps (channel-major, as ``torch.nn.functional.unfold``),
    columns output channels; posteriors, priors, KL and masks are those of ``MatrixNormalLinear``.
    ``sampling="local"`` draws every output location's pre-activation from its marginal, independently
    of the other locations (the usual local reparameterization for conv ignores their correlation);
    :math:`p^	op U p = \lVert A^	op p
Vert^2` is computed on the unfolded patches by the fused
    ``matrix_normal_linear`` op. ``"weights"`` draws one kernel per batch. ``prune()`` keeps an
    input channel when any of its k·k taps keeps a weight (its masked taps stay as zeros).

    Args:
        in_channels (int): C_in.
        out_channels (int): C_out.
        kernel_size (int): k (square).
        stride (int): Default 1.
        padding (int): zero padding. Default 0.
        dilation (int): Default 1.
        bias, posterior, prior, sampling, covariance, prior_variance, init_log_variance, eval_samples,
        threshold, generator: as ``MatrixNormalLinear``.

    Example::

        >>> conv = mantra.nn.MatrixNormalConv2d(1, 4, 3, posterior="mn", prior="group_ard")
        >>> conv(torch.randn(2, 1, 8, 8)).shape
        torch.Size([2, 4, 6, 6])
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True,
                 posterior="mn", prior="ard", sampling="local", prior_variance=1.0, init_log_variance=-10.0,
                 eval_samples=0, threshold=None, generator=None, device=None, dtype=None, covariance="cholesky"):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding, self.dilation = stride, padding, dilation
        _bayes.check_geometry(self.geometry())
        if out_channels <= 0:
            raise ValueError(f"mantra.nn.MatrixNormalConv2d: argument 'out_channels' must be positive, got {out_channels}")
        self._init_params(in_channels * kernel_size * kernel_size, out_channels, bias, posterior, prior, sampling,
                          covariance, prior_variance, init_log_variance, eval_samples, threshold, generator, device,
                          dtype)

    def geometry(self):
        """(in_channels, kernel_size, stride, padding, dilation), as ``mantra._C.bayes`` takes it."""
        return (self.in_channels, self.kernel_size, self.stride, self.padding, self.dilation)

    def forward(self, input):
        p, g = self.params(), self.geometry()
        return self._forward_mode(
            lambda: _bayes.conv_sampled_forward(input, p, self.posterior, self.sampling, g, self.generator),
            lambda mask: _bayes.conv_mean_forward(input, p, mask, g))

    def kept_units(self, threshold):
        """(kept input channels, kept output channels) of ``mask(threshold)``."""
        m = self.mask(threshold)
        return _bayes.kept_input_channels(m, self.geometry()).nonzero().flatten(), m.any(0).nonzero().flatten()

    def prune(self, threshold, keep_in=None, keep_out=None):
        """An ordinary ``torch.nn.Conv2d`` on the kept channels, equal to the masked mean layer there."""
        W, b, chans, cols = _bayes.pruned_conv(self.params(), self.posterior, self.prior, threshold, self.geometry(),
                                               keep_in, keep_out)
        return self._filled(nn.Conv2d(chans.numel(), cols.numel(), self.kernel_size, stride=self.stride,
                                      padding=self.padding, dilation=self.dilation, bias=b is not None,
                                      device=W.device, dtype=W.dtype), W, b)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, posterior={self.posterior}, prior={self.prior}, sampling={self.sampling}, "
                f"covariance={self.covariance}")


def predictive_probabilities(logits, K):
    r"""Bayesian model averaging: the mean predictive probabilities of K sampled forwards.

    .. math:: p(y \mid x) \approx \frac{1}{K} \sum_{k=1}^K \operatorname{softmax}(f_{W_k}(x))

    Args:
        logits (callable): returns the logits of one forward (called K times, sampling).
        K (int): samples, > 0.

    Example::

        >>> net = mantra.nn.MatrixNormalLinear(4, 3).eval()
        >>> p = mantra.bayes.predictive_probabilities(lambda: net(torch.randn(2, 4)), 8)
        >>> p.shape
        torch.Size([2, 3])
    """
    if K <= 0:
        raise ValueError(f"mantra.bayes.predictive_probabilities: argument 'K' must be positive, got {K}")
    with torch.no_grad(), sample_in_eval():
        return sum(torch.softmax(logits(), -1) for _ in range(K)) / K


def kl_sum(module):
    r"""The sum of the KL terms of the MatrixNormalLinear and MatrixNormalConv2d layers of ``module``.

    .. math:: \sum_{\text{layers}} \mathrm{KL}(q_\ell \,\|\, p_\ell)

    Args:
        module (nn.Module): any module.

    Example::

        >>> net = nn.Sequential(mantra.nn.MatrixNormalLinear(4, 3), nn.ReLU(), mantra.nn.MatrixNormalLinear(3, 2))
        >>> total = mantra.bayes.kl_sum(net)
    """
    terms = [m.kl() for m in module.modules() if isinstance(m, _MatrixNormalLayer)]
    return sum(terms) if terms else torch.zeros(())


def split_spd_parameters(module):
    r"""(the U, V parameters of the ``covariance="spd"`` layers of ``module``, all its other parameters).

    .. math:: U, V \in \mathrm{SPD} \;	ext{(RiemannianAdam on mantra.manifolds.SPD)}; 	ext{the rest Euclidean}

    Args:
        module (nn.Module): any module.

    Example::

        >>> net = mantra.nn.MatrixNormalLinear(4, 3, covariance="spd")
        >>> spd, rest = mantra.bayes.split_spd_parameters(net)
        >>> opt = mantra.optim.RiemannianAdam([{"params": spd, "manifold": mantra.manifolds.SPD()},
        ...                                    {"params": rest}], lr=1e-3)
    """
    spd = [t for m in module.modules() if isinstance(m, _MatrixNormalLayer) for t in m.spd_parameters()]
    ids = {id(t) for t in spd}
    return spd, [t for t in module.parameters() if id(t) not in ids]


def negative_elbo(mean_nll, kl, dataset_size, kl_weight=1.0):
    r"""The negative ELBO of a minibatch: the data term scaled to the dataset plus the (weighted) KL.

    .. math:: -\mathcal{L} = N \cdot \overline{\mathrm{NLL}}_{\text{batch}} + \beta\, \mathrm{KL}

    Args:
        mean_nll (Tensor): mean negative log-likelihood of the batch.
        kl (Tensor): the sum of the layers' KL terms.
        dataset_size (int): N.
        kl_weight (float): β (warm-up: ``kl_warmup``).

    Example::

        >>> mantra.bayes.negative_elbo(torch.tensor(0.5), torch.tensor(30.0), 1000, 0.5).item()
        515.0
    """
    return _bayes.negative_elbo(mean_nll, kl, dataset_size, kl_weight)


def kl_warmup(step, warmup_steps):
    r"""The KL weight of a linear warm-up.

    .. math:: \beta = \min(1, \text{step} / \text{warmup\_steps})

    Args:
        step (int): the current step.
        warmup_steps (int): steps to reach 1 (<= 0: always 1).

    Example::

        >>> mantra.bayes.kl_warmup(5, 20)
        0.25
    """
    return _bayes.kl_warmup(step, warmup_steps)
