"""Layers: ``torch.nn.Module``s with constrained weights (the Python side of ``mantra::nn``)."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import parametrize as _pz
from ._C import functional as _functional
from .bayes import MatrixNormalLinear  # noqa: F401,E402  (mantra.nn.MatrixNormalLinear; defined in bayes.py)
from .bayes import MatrixNormalConv2d  # noqa: F401,E402  (mantra.nn.MatrixNormalConv2d; defined in bayes.py)

_LINEAR_CONSTRAINTS = {
    "orthogonal": lambda m, o: _pz.orthogonal(m, "weight", triv=o["triv"]),
    "grassmannian": lambda m, o: _pz.grassmannian(m, "weight", triv=o["triv"]),
    "sphere": lambda m, o: _pz.sphere(m, "weight"),
    "oblique": lambda m, o: _pz.oblique(m, "weight"),
    "low_rank": lambda m, o: _pz.low_rank(m, "weight", o["rank"]),
    "fixed_rank": lambda m, o: _pz.fixed_rank(m, "weight", o["rank"]),
    "almost_orthogonal": lambda m, o: _pz.almost_orthogonal(m, "weight", o["lam"]),
    "invertible": lambda m, o: _pz.invertible(m, "weight"),
    "positive_definite": lambda m, o: _pz.positive_definite(m, "weight"),
    "positive_definite_cholesky": lambda m, o: _pz.positive_definite(m, "weight", triv="cholesky"),
    "positive_semidefinite": lambda m, o: _pz.positive_semidefinite(m, "weight"),
    "symmetric": lambda m, o: _pz.symmetric(m, "weight"),
    "skew": lambda m, o: _pz.skew(m, "weight"),
    "low_rank_oblique": lambda m, o: _pz.low_rank_oblique(m, "weight", o["rank"]),
    "low_rank_sphere": lambda m, o: _pz.low_rank_sphere(m, "weight", o["rank"]),
}

_COUPLED = ("low_rank_oblique", "low_rank_sphere")  # applied in factored form by Linear and Conv2d


def _check_weight_options(fn, constraint, triv, rank, lam, scale):
    """The constraint / triv / rank / lam / scale options of a constrained weight matrix (Linear's,
    Conv2d's kernel matrix view), as C++'s nn::detail checks them."""
    if scale not in ("none", "isotropic", "per_row"):
        raise ValueError(f"{fn}: argument 'scale' must be none, isotropic or per_row, got {scale!r}")
    if constraint != "none" and constraint not in _LINEAR_CONSTRAINTS:
        raise ValueError(f"{fn}: argument 'constraint' must be none, {', '.join(_LINEAR_CONSTRAINTS)}; "
                         f"got {constraint!r}")
    # An option the chosen constraint does not use must keep its default (C++ refuses it too).
    for arg, value, default, users in (("triv", triv, _pz.DEFAULTS["triv"], ("orthogonal", "grassmannian")),
                                       ("rank", rank, 1, _COUPLED + ("low_rank", "fixed_rank")),
                                       ("lam", lam, _pz.DEFAULTS["lam"], ("almost_orthogonal",))):
        if constraint not in users and value != default:
            raise ValueError(f"{fn}: argument '{arg}' has no effect with constraint {constraint!r} "
                             f"(it must stay {default!r}), got {value!r}")


def _register_scale(module, scale, rows, factory):
    """g: one learnable scalar ("isotropic"), one per row ("per_row", shape (rows, 1)) or None."""
    if scale == "isotropic":
        module.scale = nn.Parameter(torch.ones(1, **factory))
    elif scale == "per_row":
        module.scale = nn.Parameter(torch.ones(rows, 1, **factory))
    else:
        module.register_parameter("scale", None)


class Linear(nn.Linear):
    r"""A drop-in for ``torch.nn.Linear`` whose weight carries a constraint (C++ ``mantra::nn::Linear``).

    .. math:: y = x (g \cdot W)^\top + b, \quad W \in \mathcal{M}_{\text{constraint}}

    Same arguments, initialization and forward as ``torch.nn.Linear``; the weight (shape
    ``(out_features, in_features)``) is then constrained by the mantra function of that name
    (e.g. ``mantra.orthogonal(layer, "weight", triv)``), attached as that function attaches it.
    ``g`` is the optional learnable scale (1 when ``scale="none"``).

    Args:
        in_features (int): size of each input sample, > 0.
        out_features (int): size of each output sample, > 0.
        bias (bool): learn an additive bias. Default: ``True``.
        constraint (str): ``"none"`` (exactly ``torch.nn.Linear``) or one of ``"orthogonal"``,
            ``"grassmannian"``, ``"sphere"``, ``"oblique"``, ``"low_rank"``, ``"fixed_rank"``,
            ``"almost_orthogonal"``, ``"invertible"``, ``"positive_definite"``,
            ``"positive_definite_cholesky"`` (positive_definite with triv ``"cholesky"``),
            ``"positive_semidefinite"``, ``"symmetric"``, ``"skew"``, ``"low_rank_oblique"``,
            ``"low_rank_sphere"``. Default: ``"orthogonal"``. Weight-normalized low rank
            W = diag(g)·X, X of rank ≤ r with unit rows, is ``constraint="low_rank_oblique"``
            with ``scale="per_row"``; the coupled low-rank constraints apply the weight in
            factored form ((x V) (diag(g) H)ᵀ + b, (m+n)·r multiply-adds per sample, C++
            ``low_rank_coupled_linear``).
        triv (str or callable): the orthogonal trivialization (``"expm"``, ``"cayley"``,
            ``"qr"``, ``"polar"``, ``"householder"`` or a callable) or the grassmannian one
            (the first four); ignored by the other constraints. Default: ``"expm"``.
        rank (int): the rank of ``low_rank`` / ``fixed_rank`` / ``low_rank_oblique`` /
            ``low_rank_sphere``. Default: ``1``.
        lam (float): λ of ``almost_orthogonal`` (C++'s ``lambda``): singular values 1 + λ·sin(s).
            Default: ``0.1``.
        scale (str): ``"none"``, ``"isotropic"`` (W_eff = g·W with one learnable g, initialized
            to 1) or ``"per_row"`` (one g per output feature). Default: ``"none"``.
        orthogonality_penalty (float): λ >= 0 of :meth:`penalty`. Default: ``0.0``.
        device (torch.device, optional): as in ``torch.nn.Linear``. Default: ``None``.
        dtype (torch.dtype, optional): as in ``torch.nn.Linear``. Default: ``None``.

    Example::

        >>> layer = mantra.nn.Linear(20, 30, constraint="orthogonal", scale="isotropic")
        >>> y = layer(torch.randn(8, 20))
        >>> torch.allclose(layer.weight.T @ layer.weight, torch.eye(20), atol=1e-5)
        True
    """

    def __init__(self, in_features, out_features, bias=True, constraint="orthogonal", triv="expm", rank=1, lam=0.1,
                 scale="none", orthogonality_penalty=0.0, device=None, dtype=None):
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"mantra.nn.Linear: arguments 'in_features' and 'out_features' must be positive, got "
                             f"{in_features} and {out_features}")
        if not orthogonality_penalty >= 0:
            raise ValueError(f"mantra.nn.Linear: argument 'orthogonality_penalty' must be >= 0, got "
                             f"{orthogonality_penalty}")
        _check_weight_options("mantra.nn.Linear", constraint, triv, rank, lam, scale)
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self.constraint, self.triv, self.rank, self.lam = constraint, triv, rank, lam
        self.scale_mode, self.orthogonality_penalty = scale, orthogonality_penalty
        if constraint != "none":
            _LINEAR_CONSTRAINTS[constraint](self, dict(triv=triv, rank=rank, lam=lam))
        _register_scale(self, scale, out_features, dict(device=device, dtype=dtype))

    def effective_weight(self):
        """The weight the forward uses: ``g · W`` with W the constrained weight (W when scale is "none").

        Example::

            >>> layer = mantra.nn.Linear(4, 4, scale="per_row")
            >>> layer.effective_weight().shape
            torch.Size([4, 4])
        """
        W = self.weight
        return W if self.scale is None else W * self.scale

    def _coupled(self):
        """The coupled low-rank parametrization of the weight, or None."""
        if self.constraint not in _COUPLED:
            return None
        return self.parametrizations.weight[0]

    def forward(self, input):
        """``F.linear(input, effective_weight(), bias)``: input (..., in_features) -> (..., out_features).

        With a coupled low-rank constraint, the same map from the factors (C++
        ``low_rank_coupled_linear``) without forming the weight.
        """
        p = self._coupled()
        if p is not None:
            P = p.point(self.parametrizations.weight.original)
            return torch.ops.mantra.low_rank_coupled_linear(input, P, p.spec, self.scale, self.bias)
        return F.linear(input, self.effective_weight(), self.bias)

    def penalty(self):
        r"""The soft orthogonality penalty of the effective weight W (C++ ``orthogonality_penalty``).

        .. math:: \frac{\lambda}{2} \| W^\top W - I \|_F^2 \quad (W W^\top \text{ for wide } W)

        λ is ``orthogonality_penalty``; a 0-dim tensor, zero when λ is 0. Add it to the loss.

        Example::

            >>> layer = mantra.nn.Linear(4, 3, constraint="none", orthogonality_penalty=0.1)
            >>> loss = layer(torch.randn(2, 4)).sum() + layer.penalty()
        """
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


class _KernelView(nn.Module):
    """The last parametrization of a constrained Conv2d's weight: the constrained matrix view
    (out, in/groups·kh·kw) as the kernel (out, in/groups, kh, kw); assignment flattens back."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, W):
        return W.reshape(self.shape)

    def right_inverse(self, K):
        if tuple(K.shape) != self.shape:
            raise ValueError(f"mantra.nn.Conv2d: the assigned kernel must have shape {self.shape}, got {tuple(K.shape)}")
        return K.reshape(self.shape[0], -1)


def _pair(value, fn, arg, least):
    v = (value, value) if isinstance(value, int) and not isinstance(value, bool) else tuple(value)
    if len(v) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) and x >= least for x in v):
        raise ValueError(f"{fn}: argument {arg!r} must be an int or two ints >= {least}, got {value!r}")
    return v


class Conv2d(nn.Conv2d):
    r"""A drop-in for ``torch.nn.Conv2d`` whose kernel carries a constraint (C++ ``mantra::nn::Conv2d``).

    .. math:: y = \operatorname{conv2d}(x, \operatorname{view}(g \cdot W), b), \quad
              W \in \mathcal{M}_{\text{constraint}} \subset \mathbb{R}^{C_{out} \times (C_{in}/\text{groups}) k_h k_w}

    Same arguments, initialization and forward as ``torch.nn.Conv2d``; the constrained matrix is
    the kernel's matrix view W (rows = output channels, as ``Linear``'s out × in), constrained
    by the mantra function of that name; ``layer.weight`` is the kernel (out, in/groups, kh, kw)
    of W, ``layer.parametrizations.weight.original`` what the optimizer trains. ``g`` scales the
    rows of W. The coupled low-rank constraints (weight-normalized low rank W = diag(g)·X,
    X ∈ low_rank_oblique(r), is ``constraint="low_rank_oblique", scale="per_row"``) never form
    the kernel: the forward is a conv by Vᵀ (r output channels) followed by a 1×1 conv by
    diag(g)·H (``torch.ops.mantra.low_rank_coupled_conv2d``, C++ ``low_rank_coupled_conv2d``).

    Args:
        in_channels (int): channels of the input, > 0.
        out_channels (int): channels of the output, > 0.
        kernel_size (int or tuple): (kh, kw), each >= 1.
        stride, padding, dilation, groups, bias, padding_mode: as in ``torch.nn.Conv2d``
            (C++ takes numeric zero padding only).
        constraint (str): ``"none"`` (exactly ``torch.nn.Conv2d``) or a constraint of
            :class:`Linear` for the matrix view. Default: ``"orthogonal"``.
        triv (str): the orthogonal / grassmannian trivialization. Default: ``"expm"``.
        rank (int): the rank of ``low_rank`` / ``fixed_rank`` / ``low_rank_oblique`` /
            ``low_rank_sphere``, at most min(out, in/groups·kh·kw). Default: ``1``.
        lam (float): λ of ``almost_orthogonal``. Default: ``0.1``.
        scale (str): ``"none"``, ``"isotropic"`` or ``"per_row"`` (one g per output channel,
            shape (out, 1)). Default: ``"none"``.
        device (torch.device, optional): as in ``torch.nn.Conv2d``. Default: ``None``.
        dtype (torch.dtype, optional): as in ``torch.nn.Conv2d``. Default: ``None``.

    Example::

        >>> layer = mantra.nn.Conv2d(3, 8, 3, padding=1, constraint="low_rank_oblique", rank=2, scale="per_row")
        >>> layer(torch.randn(2, 3, 5, 5)).shape
        torch.Size([2, 8, 5, 5])
        >>> W = layer.weight.detach().reshape(8, -1)
        >>> mantra.manifolds.LowRankOblique(8, 27, 2).check_matrix(W)  # rank <= 2, unit rows
        ''
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", constraint="orthogonal", triv="expm", rank=1, lam=0.1, scale="none",
                 device=None, dtype=None):
        fn = "mantra.nn.Conv2d"
        if in_channels <= 0 or out_channels <= 0:
            raise ValueError(f"{fn}: arguments 'in_channels' and 'out_channels' must be positive, got {in_channels} "
                             f"and {out_channels}")
        _pair(kernel_size, fn, "kernel_size", 1)
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or in_channels % groups \
                or out_channels % groups:
            raise ValueError(f"{fn}: argument 'groups' must be >= 1 and divide in_channels ({in_channels}) and "
                             f"out_channels ({out_channels}), got {groups!r}")
        _check_weight_options(fn, constraint, triv, rank, lam, scale)
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                         device=device, dtype=dtype)
        self.constraint, self.triv, self.rank, self.lam, self.scale_mode = constraint, triv, rank, lam, scale
        if constraint != "none":
            # Constrain the matrix view (torch's initial kernel is kept when it satisfies the
            # constraint), then show it as the kernel again.
            shape = tuple(self.weight.shape)
            self.weight = nn.Parameter(self.weight.detach().reshape(out_channels, -1).clone())
            _LINEAR_CONSTRAINTS[constraint](self, dict(triv=triv, rank=rank, lam=lam))
            torch.nn.utils.parametrize.register_parametrization(self, "weight", _KernelView(shape), unsafe=True)
        _register_scale(self, scale, out_channels, dict(device=device, dtype=dtype))

    def effective_weight(self):
        """The kernel the forward uses: g · W (rows of the matrix view scaled), shape (out, in/groups, kh, kw).

        Example::

            >>> layer = mantra.nn.Conv2d(2, 4, 3, scale="per_row")
            >>> layer.effective_weight().shape
            torch.Size([4, 2, 3, 3])
        """
        K = self.weight
        if self.scale is None:
            return K
        return (K.reshape(K.shape[0], -1) * self.scale).reshape(K.shape)

    def _coupled(self):
        """The coupled low-rank parametrization of the matrix view, or None."""
        if self.constraint not in _COUPLED:
            return None
        return self.parametrizations.weight[0]

    def forward(self, input):
        """``torch.nn.Conv2d``'s forward with ``effective_weight()``: (N, C_in, H, W) -> (N, C_out, H', W').

        With a coupled low-rank constraint, the same map from the factors (a conv by Vᵀ, then a
        1×1 conv by diag(g)·H; C++ ``low_rank_coupled_conv2d``) without forming the kernel.
        """
        p = self._coupled()
        if p is None:
            return self._conv_forward(input, self.effective_weight(), self.bias)
        padding = self.padding
        if self.padding_mode != "zeros" or isinstance(padding, str):
            # torch's own padding (its 'same' split and non-zero modes), then an unpadded conv.
            mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
            input = F.pad(input, self._reversed_padding_repeated_twice, mode=mode)
            padding = (0, 0)
        P = p.point(self.parametrizations.weight.original)
        return torch.ops.mantra.low_rank_coupled_conv2d(input, P, p.spec, list(self.kernel_size), list(self.stride),
                                                        list(padding), list(self.dilation), self.groups, self.scale,
                                                        self.bias)

    def extra_repr(self):
        s = super().extra_repr() + f", constraint={self.constraint}"
        if self.constraint in _COUPLED + ("low_rank", "fixed_rank"):
            s += f", rank={self.rank}"
        if self.scale_mode != "none":
            s += f", scale={self.scale_mode}"
        return s


__all__ = ["Linear", "Conv2d", "ModReLU", "OrthogonalRNN", "MatrixNormalLinear", "MatrixNormalConv2d"]

# ---------------------------------------------------------------- recurrent layers
# The orthogonal RNN of expRNN / dynamic trivialization (mirrors C++ mantra::nn::OrthogonalRNN):
#     h_t = modReLU(W_in x_t + B h_{t-1}),   y_t = W_out h_t + c,   B ∈ SO(n)
# The recurrence (forward and backpropagation through time) is the C++ operator
# torch.ops.mantra.orthogonal_rnn; B is a mantra.orthogonal constraint, so
# mantra.optim.DynamicTrivialization rebases it like any other constrained weight.

_INITS = ("henaff", "cayley", "torus", "uniform", "origin")


class ModReLU(nn.Module):
    r"""modReLU, the nonlinearity of unitary and orthogonal RNNs, with a learnable bias per feature.

    .. math::

        \operatorname{modReLU}(z) = \operatorname{sign}(z)\,\max(|z| + b, 0)

    It keeps the sign of each feature and thresholds its size; NaN in ``z`` or ``b`` gives NaN,
    as torch's own formula does. The map is the C++ operator ``torch.ops.mantra.modrelu`` (the
    one definition, shared with ``mantra::nn::ModReLU`` and the recurrence
    ``torch.ops.mantra.orthogonal_rnn``).

    Args:
        features (int): size H of the last dimension of the input; the bias has H entries,
            initialized U(−0.01, 0.01) as in expRNN.

    Example::

        >>> m = mantra.nn.ModReLU(4)
        >>> y = m(torch.randn(8, 4))  # (..., 4) -> (..., 4)
    """

    def __init__(self, features):
        super().__init__()
        if features <= 0:
            raise ValueError(f"ModReLU: argument 'features' must be positive, got {features}")
        self.bias = nn.Parameter(torch.empty(features))
        self.reset_parameters()

    def reset_parameters(self):
        with torch.no_grad():
            self.bias.uniform_(-0.01, 0.01)

    def forward(self, z):
        return torch.ops.mantra.modrelu(z, self.bias)

    def extra_repr(self):
        return f"features={self.bias.shape[0]}"


class OrthogonalRNN(nn.Module):
    r"""Orthogonal RNN on time-major sequences x (T, N, input_size) (C++ ``mantra::nn::OrthogonalRNN``).

    .. math::

        h_t = \operatorname{modReLU}(W_{in} x_t + B h_{t-1}),\quad y_t = W_{out} h_t + c,\quad B \in SO(n)

    B is a ``mantra.orthogonal`` constraint (``DynamicTrivialization`` rebases it); the
    recurrence and its backward are one call of ``torch.ops.mantra.orthogonal_rnn``.

    Args:
        input_size (int): features of x_t.
        hidden_size (int): n, the size of h_t and of B.
        output_size (int): size of the linear read-out (0, the default: ``forward`` returns the
            hidden states).
        triv (str): trivialization of B: "expm" (default), "cayley", "qr", "polar", "newton_schulz", "householder".
        init (str): "henaff" (default), "cayley", "torus", "uniform" (Haar) or "origin" (B = I).
        chart_at_identity (bool): expRNN's static trivialization B = exp(A) with A trained
            directly (base = I; needs triv "expm" and a rotation init). Otherwise (default) the
            base is the initial B and v starts at 0.
        input_bias (bool): a bias in W_in x_t (default False: expRNN has none, modReLU's bias
            acts as one).

    Example::

        >>> rnn = mantra.nn.OrthogonalRNN(3, 8, output_size=2)
        >>> rnn(torch.randn(5, 4, 3)).shape
        torch.Size([5, 4, 2])
    """

    def __init__(self, input_size, hidden_size, output_size=0, triv="expm", init="henaff", chart_at_identity=False,
                 input_bias=False):
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if value <= 0:
                raise ValueError(f"OrthogonalRNN: argument '{name}' must be positive, got {value}")
        if output_size < 0:
            raise ValueError(f"OrthogonalRNN: argument 'output_size' must be >= 0, got {output_size}")
        if init not in _INITS:
            raise ValueError(f"OrthogonalRNN: argument 'init' must be one of {', '.join(_INITS)}; got '{init}'")
        if chart_at_identity and (triv != "expm" or init in ("uniform", "origin")):
            raise ValueError("OrthogonalRNN: chart_at_identity needs triv 'expm' and init henaff, cayley or torus; "
                             f"got triv '{triv}' and init '{init}'")
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, output_size
        self.init, self.chart_at_identity = init, chart_at_identity
        self.input_kernel = nn.Linear(input_size, hidden_size, bias=input_bias)
        self.recurrent_kernel = nn.Parameter(torch.empty(hidden_size, hidden_size))
        _pz.orthogonal(self, "recurrent_kernel", triv=triv)
        self.modrelu = ModReLU(hidden_size)
        self.output_layer = nn.Linear(hidden_size, output_size) if output_size > 0 else None
        self.reset_parameters()

    def reset_parameters(self):
        with torch.no_grad():
            # He initialization of W_in for the ReLU-like modReLU (as expRNN).
            nn.init.kaiming_normal_(self.input_kernel.weight, nonlinearity="relu")
            if self.input_kernel.bias is not None:
                self.input_kernel.bias.zero_()
        if self.chart_at_identity:
            p, (v,) = _pz._parametrization(self, "recurrent_kernel", "OrthogonalRNN")
            p.sample_in_chart(v, init=self.init)
        else:
            _pz.sample(self, "recurrent_kernel", init=self.init)
        self.modrelu.reset_parameters()
        if self.output_layer is not None:
            self.output_layer.reset_parameters()

    def hidden_states(self, x, h0=None):
        """The hidden states (T, N, hidden_size) from h0 (N, hidden_size), zeros if None."""
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"OrthogonalRNN: argument 'x' must have shape (T, N, {self.input_size}), "
                             f"got {tuple(x.shape)}")
        u = self.input_kernel(x)
        if h0 is None:
            h0 = u.new_zeros(x.shape[1], self.hidden_size)
        elif tuple(h0.shape) != (x.shape[1], self.hidden_size):
            raise ValueError(f"OrthogonalRNN: argument 'h0' must have shape ({x.shape[1]}, {self.hidden_size}), "
                             f"got {tuple(h0.shape)}")
        return torch.ops.mantra.orthogonal_rnn(u, h0, self.recurrent_kernel, self.modrelu.bias)

    def forward(self, x, h0=None):
        h = self.hidden_states(x, h0)
        return self.output_layer(h) if self.output_layer is not None else h

    def extra_repr(self):
        return (f"input_size={self.input_size}, hidden_size={self.hidden_size}, output_size={self.output_size}, "
                f"init={self.init}" + (", chart_at_identity" if self.chart_at_identity else ""))
