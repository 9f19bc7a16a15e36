"""Isometry diagnostics and critical initialization (the C++ ``mantra::diagnostics``).

The largest singular value ``s_max`` of a network's input–output Jacobian and the largest
eigenvalue ``λ_max`` of its Fisher information, by power iteration on Jacobian-vector and
vector-Jacobian products in C++ (never forming J or G); the mean-field critical
initialization (q* fixed point, χ = 1) by Gauss–Hermite quadrature. A model is any callable
``x -> y``, e.g. a ``torch.nn.Module``; its parameters default to those that require grad.
This module only collects arguments: every computation is the C++ one.
"""

import torch

from ._C import diagnostics as _dg
from ._C import functional as _fn

JacobianSpectrum = _dg.JacobianSpectrum
FisherEigen = _dg.FisherEigen
FisherBlockBound = _dg.FisherBlockBound
CriticalPoint = _dg.CriticalPoint

__all__ = ["jacobian_spectrum", "jacobian", "fisher_max_eigenvalue", "fisher_vector_product", "fisher_matrix",
           "fisher_block_bound", "gauss_hermite", "q_map", "chi", "fixed_point_q", "critical_point",
           "orthogonal_init_", "gaussian_init_", "bias_init_", "JacobianSpectrum", "FisherEigen",
           "FisherBlockBound", "CriticalPoint", "spectral_abscissa"]


def spectral_abscissa(X):
    r"""The largest real part of the eigenvalues of each square matrix of ``X`` (the C++
    ``mantra::parametrize::functional::spectral_abscissa``): solutions of dx/dt = Xx decay at
    least like :math:`e^{-a t}` for every :math:`a < -\text{spectral\_abscissa}(X)`, and
    ``mantra.alpha_stable`` keeps it below −α.

    .. math:: \operatorname{sa}(X) = \max_i \operatorname{Re} \lambda_i(X)

    Args:
        X (Tensor): real matrices (..., n, n).

    Returns:
        Tensor: float64, of shape (...).

    Example::

        >>> float(mantra.diagnostics.spectral_abscissa(torch.tensor([[-1.0, 5.0], [0.0, -2.0]])))
        -1.0
    """
    return _fn.spectral_abscissa(X)


def _parameters(model, parameters):
    if parameters is not None:
        return list(parameters)
    if isinstance(model, torch.nn.Module):
        return [p for p in model.parameters() if p.requires_grad]
    return []  # the C++ check names the missing argument


def jacobian_spectrum(model, x, *, max_iterations=500, tolerance=1e-6, seed=0, chi_probes=16, full_spectrum=False):
    r"""Largest singular value and mean squared singular value of the input–output Jacobian.

    .. math:: s_{\max}(J_b)^2 = \lambda_{\max}(J_b^\top J_b), \quad \chi_b = \|J_b\|_F^2 / \min(m, n),
        \quad J_b = \partial f(x)_b / \partial x_b

    Power iteration on :math:`J_b^\top J_b` for every row b of the batch at once, with
    Jacobian-vector products by the double-backward trick and vector-Jacobian products by
    backward, never forming J. ``model`` must act on rows independently (a feed-forward stack
    without batch coupling) and be twice differentiable along x. χ is Hutchinson's estimate
    with ``chi_probes`` Rademacher probes, or exact from the explicit Jacobian with
    ``full_spectrum``. Deterministic in ``seed``.

    Args:
        model (callable): x (B, n) -> y (B, m), e.g. a ``torch.nn.Module``.
        x (Tensor): the inputs, shape (B, n), floating point.
        max_iterations (int): power-iteration limit.
        tolerance (float): stop when every residual ‖Av − λv‖/λ is below it.
        seed (int): seed of the start vectors and probes.
        chi_probes (int): Hutchinson probes for χ (0: none, χ is NaN).
        full_spectrum (bool): also form each J_b (``jacobian``) and return all
            singular values and the exact χ.

    Returns:
        JacobianSpectrum: ``s_max``, ``chi``, ``chi_stderr`` (B,), ``singular_values``
        (B, min(m, n)) or None, ``iterations``, ``residual``, ``converged``.

    Example::

        >>> W = mantra.manifolds.Stiefel().random(6, 6, dtype=torch.float64)  # orthogonal: an isometry
        >>> s = mantra.diagnostics.jacobian_spectrum(lambda x: x @ W.T @ W.T, torch.randn(3, 6, dtype=torch.float64))
        >>> bool(torch.allclose(s.s_max, torch.ones(3, dtype=torch.float64)))
        True
    """
    return _dg.jacobian_spectrum(model, x, max_iterations=max_iterations, tolerance=tolerance, seed=seed,
                                 chi_probes=chi_probes, full_spectrum=full_spectrum)


def jacobian(model, x):
    r"""Per-row Jacobians of a row-wise model, by batched vector-Jacobian products.

    .. math:: J[b, i, j] = \partial f(x)_{b,i} / \partial x_{b,j}

    The rows of x are repeated and each copy gets one unit cotangent, so one backward pass
    (of at most 1024 rows) gives many output rows of every J_b.

    Args:
        model (callable): x (B, n) -> y (B, m), acting on rows independently.
        x (Tensor): the inputs, shape (B, n).

    Returns:
        Tensor: (B, m, n).

    Example::

        >>> J = mantra.diagnostics.jacobian(lambda x: 2 * x, torch.ones(1, 3))
        >>> torch.equal(J[0], 2 * torch.eye(3))
        True
    """
    return _dg.jacobian(model, x)


def fisher_vector_product(model, loss, data, v, *, parameters=None):
    r"""Gauss–Newton Fisher-vector product.

    .. math:: G v = \frac{1}{N}\sum_i J_i^\top H_i J_i v, \quad J_i = \partial z_i/\partial\theta,
        \quad H_i = I \ (\text{mse}), \ \operatorname{diag}(p_i) - p_i p_i^\top \ (\text{cross\_entropy})

    Args:
        model (callable): data (N, ...) -> outputs z (N, k).
        loss (str): ``"mse"`` (½‖z − t‖² per row) or ``"cross_entropy"`` (softmax).
        data (Tensor): the inputs, (N, ...).
        v (list of Tensor): one tensor shaped like each parameter.
        parameters (list of Tensor): the θ of G (default: ``model.parameters()`` that require grad).

    Returns:
        list of Tensor: G·v, shaped like the parameters.

    Example::

        >>> lin = torch.nn.Linear(2, 1, bias=False)
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> mantra.diagnostics.fisher_vector_product(lin, "mse", x, [torch.ones(1, 2)])[0]
        tensor([[0.5000, 0.5000]])
    """
    return _dg.fisher_vector_product(model, _parameters(model, parameters), loss, data, list(v))


def fisher_max_eigenvalue(model, loss, data, *, parameters=None, max_iterations=500, tolerance=1e-6, seed=0):
    r"""Largest eigenvalue of the Gauss–Newton Fisher information, by power iteration.

    .. math:: \lambda_{\max}(G), \quad G = \frac{1}{N}\sum_i J_i^\top H_i J_i

    Each iteration is one Fisher-vector product (a double-backward JVP and a backward), so G is
    never formed; the residual ‖Gv − λv‖/λ bounds the relative distance to an eigenvalue.

    Args:
        model (callable): data (N, ...) -> outputs (N, k), e.g. a ``torch.nn.Module``.
        loss (str): ``"mse"`` or ``"cross_entropy"``.
        data (Tensor): the inputs, (N, ...).
        parameters (list of Tensor): default ``model.parameters()`` that require grad.
        max_iterations (int): power-iteration limit.
        tolerance (float): residual at which to stop.
        seed (int): seed of the start vector.

    Returns:
        FisherEigen: ``lambda_max``, ``vector``, ``iterations``, ``residual``, ``converged``.

    Example::

        >>> lin = torch.nn.Linear(2, 1, bias=False)
        >>> x = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
        >>> round(mantra.diagnostics.fisher_max_eigenvalue(lin, "mse", x, tolerance=1e-9).lambda_max, 6)
        2.0
    """
    return _dg.fisher_max_eigenvalue(model, _parameters(model, parameters), loss, data, max_iterations=max_iterations,
                                     tolerance=tolerance, seed=seed)


def fisher_matrix(model, loss, data, *, parameters=None):
    r"""The dense Gauss–Newton Fisher (P × P) by P Fisher-vector products: tiny models only.

    .. math:: G = \frac{1}{N}\sum_i J_i^\top H_i J_i \in \mathbb{R}^{P\times P}

    Args:
        model (callable): data -> outputs (N, k).
        loss (str): ``"mse"`` or ``"cross_entropy"``.
        data (Tensor): the inputs.
        parameters (list of Tensor): default ``model.parameters()`` that require grad.

    Example::

        >>> lin = torch.nn.Linear(2, 1, bias=False)
        >>> mantra.diagnostics.fisher_matrix(lin, "mse", torch.tensor([[1.0, 1.0]]))
        tensor([[1., 1.],
                [1., 1.]])
    """
    return _dg.fisher_matrix(model, _parameters(model, parameters), loss, data)


def fisher_block_bound(model, loss, data, *, blocks=None, max_iterations=500, tolerance=1e-6, seed=0):
    r"""Per-layer block bounds of the Fisher's largest eigenvalue (block Gershgorin).

    .. math:: \max_l \lambda_l \le \lambda_{\max}(G) \le
        \min\Big(\sqrt{\max_l \lambda_l}\sum_k \sqrt{\lambda_k},\ \sum_l \lambda_l\Big),
        \quad \lambda_l = \lambda_{\max}(G_{ll})

    Args:
        model (callable): data -> outputs (N, k).
        loss (str): ``"mse"`` or ``"cross_entropy"``.
        data (Tensor): the inputs.
        blocks (list of list of Tensor): the parameter blocks (default: one block per
            submodule of ``model`` that owns parameters, e.g. a layer's weight and bias).
        max_iterations, tolerance, seed: of each block's power iteration.

    Returns:
        FisherBlockBound: ``block_lambda_max``, ``lower``, ``gershgorin``, ``sum``, ``upper``.

    Example::

        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
        >>> b = mantra.diagnostics.fisher_block_bound(net, "cross_entropy", torch.randn(8, 3))
        >>> len(b.block_lambda_max), b.lower <= b.upper
        (2, True)
    """
    if blocks is None:
        blocks = []
        if isinstance(model, torch.nn.Module):
            for module in model.modules():
                own = [p for p in module.parameters(recurse=False) if p.requires_grad]
                if own:
                    blocks.append(own)
    return _dg.fisher_block_bound(model, [list(b) for b in blocks], loss, data, max_iterations=max_iterations,
                                  tolerance=tolerance, seed=seed)


def gauss_hermite(n=201):
    r"""Nodes and weights of the n-point Gauss–Hermite rule for the standard normal measure.

    .. math:: \sum_i w_i f(x_i) \approx \mathbb{E}\, f(h), \quad h \sim \mathcal{N}(0, 1)

    Exact for polynomials of degree ≤ 2n − 1 (Golub–Welsch, float64).

    Args:
        n (int): number of nodes, in [2, 1000].

    Example::

        >>> x, w = mantra.diagnostics.gauss_hermite(10)
        >>> round(float((w * x**4).sum()), 12)
        3.0
    """
    return _dg.gauss_hermite(n)


def q_map(activation, sigma_w, sigma_b, q, nodes=201):
    r"""The mean-field variance map (the paper's eq. 4).

    .. math:: \mathcal{V}(q) = \sigma_w^2 \int \phi(\sqrt{q} h)^2 d\mu(h) + \sigma_b^2

    Args:
        activation (str): ``"tanh"``, ``"relu"`` or ``"linear"``.
        sigma_w (float), sigma_b (float): weight and bias scales.
        q (float): the pre-activation variance, > 0.
        nodes (int): Gauss–Hermite nodes (201: error < 1e-14 for q ≤ 1 with tanh).

    Example::

        >>> mantra.diagnostics.q_map("relu", 2 ** 0.5, 0.0, 0.3)
        0.3...
    """
    return _dg.q_map(activation, sigma_w, sigma_b, q, nodes)


def chi(activation, sigma_w, q, nodes=201):
    r"""The mean squared singular value of one layer's Jacobian (the paper's eq. 5).

    .. math:: \chi = \sigma_w^2 \int \phi'(\sqrt{q} h)^2 d\mu(h)

    Args:
        activation (str): ``"tanh"``, ``"relu"`` or ``"linear"``.
        sigma_w (float): the weight scale.
        q (float): the pre-activation variance, > 0.
        nodes (int): Gauss–Hermite nodes.

    Example::

        >>> mantra.diagnostics.chi("linear", 1.0, 0.5)
        1.0
    """
    return _dg.chi(activation, sigma_w, q, nodes)


def fixed_point_q(activation, sigma_w, sigma_b, nodes=201, q_max=1e6):
    r"""The fixed point q* of the variance map for (σ_w, σ_b).

    .. math:: q^* = \sigma_w^2 \int \phi(\sqrt{q^*} h)^2 d\mu(h) + \sigma_b^2

    Args:
        activation (str): ``"tanh"``, ``"relu"`` or ``"linear"``.
        sigma_w (float), sigma_b (float): weight and bias scales.
        nodes (int): Gauss–Hermite nodes.
        q_max (float): search limit.

    Example::

        >>> p = mantra.diagnostics.critical_point("tanh", 1 / 64)
        >>> abs(mantra.diagnostics.fixed_point_q("tanh", p.sigma_w, p.sigma_b) - 1 / 64) < 1e-10
        True
    """
    return _dg.fixed_point_q(activation, sigma_w, sigma_b, nodes, q_max)


def critical_point(activation, q_star, nodes=201):
    r"""(σ_w, σ_b) on the critical line χ = 1 whose variance fixed point is q*.

    .. math:: \sigma_w^2 = 1 \Big/ \int \phi'(\sqrt{q^*} h)^2 d\mu, \quad
        \sigma_b^2 = q^* - \sigma_w^2 \int \phi(\sqrt{q^*} h)^2 d\mu

    Args:
        activation (str): ``"tanh"``, ``"relu"`` or ``"linear"``.
        q_star (float): the fixed point, > 0.
        nodes (int): Gauss–Hermite nodes.

    Returns:
        CriticalPoint: ``sigma_w``, ``sigma_b``, ``q_star``, ``chi``.

    Example::

        >>> p = mantra.diagnostics.critical_point("tanh", 9e-4)
        >>> round(p.sigma_w, 4), abs(p.chi - 1) < 1e-10
        (1.0009, True)
    """
    return _dg.critical_point(activation, q_star, nodes)


def orthogonal_init_(weight, sigma_w, generator=None):
    r"""In place: a Haar orthogonal matrix scaled by σ_w.

    .. math:: W \leftarrow \sigma_w Q, \quad Q^\top Q = I \text{ (or } QQ^\top = I \text{ when wide)}

    Args:
        weight (Tensor): a matrix.
        sigma_w (float): the scale, > 0.
        generator (torch.Generator): CPU generator (default: torch's).

    Example::

        >>> W = torch.empty(4, 4, dtype=torch.float64)
        >>> mantra.diagnostics.orthogonal_init_(W, 2.0)
        >>> torch.allclose(W.T @ W, 4 * torch.eye(4, dtype=torch.float64))
        True
    """
    with torch.no_grad():
        _dg.orthogonal_init_(weight, sigma_w, generator)


def gaussian_init_(weight, sigma_w, generator=None):
    r"""In place: i.i.d. Gaussian entries of variance σ_w²/fan_in (the comparison init).

    .. math:: W_{ij} \sim \mathcal{N}(0, \sigma_w^2 / n_{\mathrm{in}})

    Args:
        weight (Tensor): a matrix (out, in).
        sigma_w (float): the scale, > 0.
        generator (torch.Generator): CPU generator (default: torch's).

    Example::

        >>> W = torch.empty(100, 400)
        >>> mantra.diagnostics.gaussian_init_(W, 1.0)
        >>> abs(float(W.std()) - 0.05) < 0.002
        True
    """
    with torch.no_grad():
        _dg.gaussian_init_(weight, sigma_w, generator)


def bias_init_(bias, sigma_b, generator=None):
    r"""In place: i.i.d. N(0, σ_b²) biases.

    .. math:: b_i \sim \mathcal{N}(0, \sigma_b^2)

    Args:
        bias (Tensor): the bias.
        sigma_b (float): the standard deviation, ≥ 0.
        generator (torch.Generator): CPU generator (default: torch's).

    Example::

        >>> b = torch.empty(3)
        >>> mantra.diagnostics.bias_init_(b, 0.0)
        >>> b
        tensor([0., 0., 0.])
    """
    with torch.no_grad():
        _dg.bias_init_(bias, sigma_b, generator)
