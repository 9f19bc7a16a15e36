"""mantra.nn.MatrixNormalConv2d (bindings of mantra::bayes): the local reparameterization's
per-location marginal against weight samples (Monte Carlo), the KL of the linear layer with the
same matrix view, prune() exactness, gradcheck of the sampled forward, determinism given a
generator, errors; and the SPD covariance option (equal to the Cholesky one, RiemannianAdam)."""

import pytest
import torch
import torch.nn.functional as F

import mantra
from mantra import bayes

FAMILIES = ["mn", "diag", "mn+diag"]
PRIORS = ["normal", "ard", "group_ard"]


def conv(posterior, prior, sampling="local", padding=0, **kw):
    torch.manual_seed(0)
    layer = mantra.nn.MatrixNormalConv2d(2, 3, 3, padding=padding, posterior=posterior, prior=prior,
                                         sampling=sampling, dtype=torch.float64, **kw)
    with torch.no_grad():
        if layer.a_raw is not None:
            layer.a_raw.copy_(0.3 * torch.randn_like(layer.a_raw))
            layer.b_raw.copy_(0.3 * torch.randn_like(layer.b_raw))
        if layer.log_sigma2 is not None:
            layer.log_sigma2.copy_(-2.0 + 0.5 * torch.randn_like(layer.log_sigma2))
    return layer


@pytest.mark.parametrize("posterior", FAMILIES)
def test_local_marginal_matches_weight_samples_at_one_location(posterior):
    S = 40000
    layer = conv(posterior, "ard")
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    i, j = 2, 0
    p = x[0, :, i:i + 3, j:j + 3].reshape(18)
    layer.generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        local = layer(x.expand(S, 2, 5, 5).contiguous())[:, :, i, j]
    # Weight samples and o = Wᵀp.
    torch.manual_seed(8)
    W = layer.mean.detach().expand(S, 18, 3).clone()
    if layer.a_raw is not None:
        A, B = bayes._bayes.cholesky_factor(layer.a_raw.detach()), bayes._bayes.cholesky_factor(layer.b_raw.detach())
        W = W + A @ torch.randn(S, 18, 3, dtype=torch.float64) @ B.T
    if layer.log_sigma2 is not None:
        W = W + (0.5 * layer.log_sigma2.detach()).exp() * torch.randn(S, 18, 3, dtype=torch.float64)
    ref = torch.einsum("sij,i->sj", W, p) + layer.bias.detach()
    mean = layer.mean.detach().T @ p + layer.bias.detach()
    cov = torch.zeros(3, 3, dtype=torch.float64)
    if layer.a_raw is not None:
        cov = cov + (A.T @ p).square().sum() * (B @ B.T)
    if layer.log_sigma2 is not None:
        cov = cov + torch.diag(p.square() @ layer.log_sigma2.detach().exp())
    for samples in (local, ref):
        m_hat, c_hat = samples.mean(0), torch.cov(samples.T)
        se_mean = (cov.diagonal() / S).sqrt()
        se_cov = ((torch.outer(cov.diagonal(), cov.diagonal()) + cov.square()) / S).sqrt()
        assert ((m_hat - mean).abs() < 5 * se_mean).all()
        assert ((c_hat - cov).abs() < 5 * se_cov).all()


@pytest.mark.parametrize("posterior", FAMILIES)
@pytest.mark.parametrize("prior", PRIORS)
def test_kl_equals_the_linear_layer_of_the_same_matrix_shape(posterior, prior):
    c = conv(posterior, prior)
    lin = mantra.nn.MatrixNormalLinear(18, 3, posterior=posterior, prior=prior, dtype=torch.float64)
    lin.load_state_dict(c.state_dict())
    assert abs(c.kl().item() - lin.kl().item()) <= 1e-12 * max(1.0, abs(lin.kl().item()))
    torch.testing.assert_close(c.log_alpha(), lin.log_alpha(), rtol=0, atol=1e-12)
    c.eval()
    lin.eval()
    x = torch.randn(2, 2, 6, 5, dtype=torch.float64)
    rows = F.unfold(x, 3).transpose(1, 2).reshape(-1, 18)  # the same patch order as the matrix view
    ref = lin(rows).reshape(2, 4, 3, 3).permute(0, 3, 1, 2)
    torch.testing.assert_close(c(x), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("posterior", FAMILIES)
@pytest.mark.parametrize("prior", ["ard", "group_ard"])
@pytest.mark.parametrize("padding", [0, 1])
def test_prune_equals_the_masked_layer(posterior, prior, padding):
    c = conv(posterior, prior, padding=padding)
    with torch.no_grad():
        if c.a_raw is not None:  # small variances: log α < 3 wherever the mean is not near zero
            c.a_raw.mul_(0.1).fill_diagonal_(-3.0)
            c.b_raw.mul_(0.1).fill_diagonal_(-3.0)
        if c.log_sigma2 is not None:
            c.log_sigma2.fill_(-12.0)
        c.mean[0:9] = 0.0      # input channel 0: every tap -> removed
        c.mean[:, 1] = 0.0     # output channel 1 -> removed
        c.mean[12, 0] = 1e-9   # one tap of channel 1 -> a zero in the kept kernel (ARD)
    t = 3.0
    chans, cols = c.kept_units(t)
    assert chans.tolist() == [1] and cols.tolist() == [0, 2]
    pruned = c.prune(t)
    assert isinstance(pruned, torch.nn.Conv2d) and pruned.weight.shape == (2, 1, 3, 3)
    if prior == "ard":
        assert pruned.weight[0, 0, 1, 0].item() == 0.0
    c.eval()
    c.threshold = t
    x = torch.randn(3, 2, 6, 7, dtype=torch.float64)
    torch.testing.assert_close(pruned(x[:, chans]), c(x)[:, cols], rtol=0, atol=1e-13)


@pytest.mark.parametrize("posterior", FAMILIES)
@pytest.mark.parametrize("sampling", ["local", "weights"])
def test_gradcheck_of_the_sampled_forward(posterior, sampling):
    c = conv(posterior, "ard", sampling=sampling, padding=1)
    names = [n for n in ("mean", "a_raw", "b_raw", "log_sigma2", "bias") if getattr(c, n) is not None]
    x = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)

    def f(x, *ts):
        p = dict(zip(names, ts))
        params = tuple(p.get(n) for n in ("mean", "a_raw", "b_raw", "log_sigma2", "bias", "log_tau", "log_gamma"))
        gen = torch.Generator().manual_seed(5)  # the same noise at every call
        return bayes._bayes.conv_sampled_forward(x, params + ("cholesky",), posterior, sampling, c.geometry(), gen)

    ts = [getattr(c, n).detach().clone().requires_grad_() for n in names]
    assert torch.autograd.gradcheck(f, (x, *ts), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("posterior", FAMILIES)
@pytest.mark.parametrize("sampling", ["local", "weights"])
def test_determinism_with_a_generator_and_eval_mean(posterior, sampling):
    c = conv(posterior, "ard", sampling=sampling, padding=1)
    x = torch.randn(2, 2, 5, 4, dtype=torch.float64)

    def run(seed):
        c.generator = torch.Generator().manual_seed(seed)
        return c(x)

    a, b, d = run(3), run(3), run(4)
    assert a.shape == (2, 3, 5, 4)
    assert torch.equal(a, b)
    assert (a - d).abs().max() > 1e-3
    c.eval()
    torch.testing.assert_close(c(x), F.conv2d(x, c.mean.T.reshape(3, 2, 3, 3), c.bias, padding=1), rtol=0, atol=1e-14)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"argument 'input' must be \(N, 2, H, W\), got shape \[1, 4, 5, 5\]"):
        mantra.nn.MatrixNormalConv2d(2, 3, 3)(torch.randn(1, 4, 5, 5))
    with pytest.raises(ValueError, match="smaller than the kernel's span 3"):
        mantra.nn.MatrixNormalConv2d(2, 3, 3)(torch.randn(1, 2, 2, 5))
    with pytest.raises(ValueError, match="kernel_size=0"):
        mantra.nn.MatrixNormalConv2d(2, 3, 0)
    with pytest.raises(ValueError, match="argument 'out_channels' must be positive, got 0"):
        mantra.nn.MatrixNormalConv2d(2, 0, 3)
    with pytest.raises(ValueError, match="argument 'covariance' must be cholesky or spd, got 'logm'"):
        mantra.nn.MatrixNormalConv2d(2, 3, 3, covariance="logm")
    with pytest.raises(ValueError, match="argument 'prior'"):
        mantra.nn.MatrixNormalConv2d(2, 3, 3, prior="laplace")
    assert "MatrixNormalConv2d" in mantra.nn.__all__
    net = torch.nn.Sequential(mantra.nn.MatrixNormalConv2d(1, 2, 3), mantra.nn.MatrixNormalLinear(3, 2))
    torch.testing.assert_close(bayes.kl_sum(net), net[0].kl() + net[1].kl())


@pytest.mark.parametrize("layer_type", ["linear", "conv"])
def test_spd_covariance_equals_cholesky_and_riemannian_adam_keeps_it_spd(layer_type):
    torch.manual_seed(0)
    if layer_type == "conv":
        chol = conv("mn", "group_ard")
        spd = mantra.nn.MatrixNormalConv2d(2, 3, 3, posterior="mn", prior="group_ard", covariance="spd",
                                           dtype=torch.float64)
        x = torch.randn(2, 2, 5, 5, dtype=torch.float64)
    else:
        chol = mantra.nn.MatrixNormalLinear(6, 4, posterior="mn", prior="group_ard", dtype=torch.float64)
        with torch.no_grad():
            chol.a_raw.copy_(0.3 * torch.randn(6, 6))
            chol.b_raw.copy_(0.3 * torch.randn(4, 4))
        spd = mantra.nn.MatrixNormalLinear(6, 4, posterior="mn", prior="group_ard", covariance="spd",
                                           dtype=torch.float64)
        x = torch.randn(5, 6, dtype=torch.float64)
    names = dict(spd.named_parameters())
    assert "u" in names and "v" in names and "a_raw" not in names
    with torch.no_grad():
        for n, t in chol.named_parameters():
            if n in names:
                names[n].copy_(t)
        A, B = bayes._bayes.cholesky_factor(chol.a_raw), bayes._bayes.cholesky_factor(chol.b_raw)
        spd.u.copy_(A @ A.T)
        spd.v.copy_(B @ B.T)
    torch.testing.assert_close(spd.kl(), chol.kl(), rtol=1e-10, atol=0)
    chol.generator, spd.generator = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    torch.testing.assert_close(spd(x), chol(x), rtol=1e-10, atol=1e-10)
    U, rest = bayes.split_spd_parameters(spd)
    assert len(U) == 2 and len(rest) + 2 == len(list(spd.parameters()))
    opt = mantra.optim.RiemannianAdam([{"params": U, "manifold": mantra.manifolds.SPD()}, {"params": rest}], lr=1e-2)
    kl0 = spd.kl().item()
    for _ in range(20):
        opt.zero_grad()
        spd.kl().backward()
        opt.step()
    assert spd.kl().item() < kl0 - 1.0
    for t in U:
        assert mantra.manifolds.SPD().check_point(t.detach()) == ""


def test_spd_factors_may_be_kept_in_float64():
    # float32 eigh does not converge on U = c·I plus a low-rank step (the SPD retraction's first
    # step on MNIST); U, V may live in float64 while the layer computes in the mean's dtype.
    torch.manual_seed(0)
    layer = mantra.nn.MatrixNormalLinear(6, 4, covariance="spd")
    x = torch.randn(5, 6)
    layer.generator = torch.Generator().manual_seed(2)
    ref = layer(x)
    with torch.no_grad():
        for t in layer.spd_parameters():
            t.data = t.data.double()
    layer.generator = torch.Generator().manual_seed(2)
    out = layer(x)
    assert out.dtype == torch.float32 and layer.u.dtype == torch.float64
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
    layer.kl().backward()
    assert layer.u.grad.dtype == torch.float64 and torch.isfinite(layer.u.grad).all()
