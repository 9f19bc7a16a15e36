"""mantra.nn.MatrixNormalLinear (bindings of mantra::bayes): determinism given a generator, eval
mode, KL against the brute-force Gaussian KL, prune() against the masked layer, ELBO helpers,
the known-optimum regression, and errors."""

import math

import pytest
import torch
import torch.nn as nn

import mantra
from mantra import bayes

FAMILIES = ["mn", "diag", "mn+diag"]
PRIORS = ["normal", "ard", "group_ard"]


def layer(posterior, prior, sampling="local", n=6, m=4, **kw):
    torch.manual_seed(0)
    return mantra.nn.MatrixNormalLinear(n, m, posterior=posterior, prior=prior, sampling=sampling,
                                        dtype=torch.float64, **kw)


def dense_kl(mu1, S1, P):
    """KL(N(mu1, S1) ‖ N(0, P)) on vec_r."""
    Pi = torch.linalg.inv(P)
    d = mu1.reshape(-1, 1)
    return 0.5 * (torch.trace(Pi @ S1) + (d.T @ Pi @ d).item() - mu1.numel() + torch.logdet(P) - torch.logdet(S1))


@pytest.mark.parametrize("posterior", FAMILIES)
@pytest.mark.parametrize("sampling", ["local", "weights"])
def test_generator_determinism_and_eval_mean(posterior, sampling):
    lay = layer(posterior, "ard", sampling, init_log_variance=-1.0)
    x = torch.randn(5, 6, dtype=torch.float64)
    lay.generator = torch.Generator().manual_seed(3)
    a = lay(x)
    lay.generator = torch.Generator().manual_seed(3)
    b = lay(x)
    lay.generator = torch.Generator().manual_seed(4)
    c = lay(x)
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3
    lay.eval()
    torch.testing.assert_close(lay(x), x @ lay.mean + lay.bias, rtol=1e-14, atol=1e-14)
    with bayes.sample_in_eval():
        assert (lay(x) - (x @ lay.mean + lay.bias)).abs().max() > 1e-3
    # Leading dimensions are kept.
    assert lay(torch.randn(2, 3, 6, dtype=torch.float64)).shape == (2, 3, 4)


@pytest.mark.parametrize("posterior", FAMILIES)
@pytest.mark.parametrize("prior", PRIORS)
def test_kl_against_brute_force(posterior, prior):
    lay = layer(posterior, prior, n=3, m=2, init_log_variance=-2.0)
    with torch.no_grad():
        if lay.a_raw is not None:
            lay.a_raw.add_(0.3 * torch.randn(3, 3, dtype=torch.float64).tril())
            lay.b_raw.add_(0.3 * torch.randn(2, 2, dtype=torch.float64).tril())
    S = torch.zeros(6, 6, dtype=torch.float64)
    if lay.a_raw is not None:
        A, B = bayes._bayes.cholesky_factor(lay.a_raw), bayes._bayes.cholesky_factor(lay.b_raw)
        S = S + torch.kron(A @ A.T, B @ B.T)
    if lay.log_sigma2 is not None:
        S = S + torch.diag(lay.log_sigma2.exp().reshape(-1))
    mu = lay.mean.detach()
    if prior == "normal":
        P = torch.eye(6, dtype=torch.float64)
    elif prior == "ard":
        P = torch.diag(S.diagonal() + mu.reshape(-1) ** 2)
    else:
        P = torch.kron(torch.diag((-lay.log_tau).exp()), torch.diag((-lay.log_gamma).exp())).detach()
    ref = dense_kl(mu, S.detach(), P).item()
    kl = lay.kl()
    if posterior == "mn+diag":
        assert kl.item() >= ref - 1e-10  # Minkowski bound of log|U⊗V + D|: an upper bound
    else:
        assert kl.item() == pytest.approx(ref, rel=1e-10, abs=1e-10)
    kl.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in lay.parameters() if p is not lay.bias)


def test_upper_triangles_of_the_factors_get_zero_gradient():
    lay = layer("mn", "ard")
    x = torch.randn(8, 6, dtype=torch.float64)
    (lay(x).square().sum() + lay.kl()).backward()
    assert lay.a_raw.grad.triu(1).abs().max() == 0 and lay.b_raw.grad.triu(1).abs().max() == 0
    assert lay.a_raw.grad.tril().abs().max() > 0


@pytest.mark.parametrize("posterior", FAMILIES)
@pytest.mark.parametrize("prior", ["ard", "group_ard"])
def test_prune_equals_the_masked_layer(posterior, prior):
    lay = layer(posterior, prior)
    with torch.no_grad():
        lay.mean[1] = 0
        lay.mean[4] = 1e-9
        lay.mean[:, 2] = 0
    rows, cols = lay.kept_units(3.0)
    assert rows.tolist() == [0, 2, 3, 5] and cols.tolist() == [0, 1, 3]
    lin = lay.prune(3.0)
    assert isinstance(lin, nn.Linear) and lin.weight.shape == (3, 4)
    lay.eval()
    lay.threshold = 3.0
    x = torch.randn(7, 6, dtype=torch.float64)
    torch.testing.assert_close(lin(x[:, rows]), lay(x)[:, cols], rtol=0, atol=1e-13)


def test_elbo_helpers_and_predictive():
    assert bayes.negative_elbo(torch.tensor(0.5), torch.tensor(30.0), 1000, 0.5).item() == 515.0
    assert bayes.kl_warmup(5, 20) == 0.25 and bayes.kl_warmup(50, 20) == 1.0
    net = nn.Sequential(mantra.nn.MatrixNormalLinear(4, 3), nn.ReLU(), mantra.nn.MatrixNormalLinear(3, 2))
    assert bayes.kl_sum(net).item() == pytest.approx((net[0].kl() + net[2].kl()).item(), rel=1e-6)
    net.eval()
    p = bayes.predictive_probabilities(lambda: net(torch.randn(5, 4)), 4)
    torch.testing.assert_close(p.sum(-1), torch.ones(5))


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="argument 'posterior' must be mn, diag or mn\\+diag, got 'full'"):
        mantra.nn.MatrixNormalLinear(3, 2, posterior="full")
    with pytest.raises(ValueError, match="argument 'prior'"):
        mantra.nn.MatrixNormalLinear(3, 2, prior="laplace")
    with pytest.raises(ValueError, match="argument 'sampling'"):
        mantra.nn.MatrixNormalLinear(3, 2, sampling="exact")
    with pytest.raises(ValueError, match="must be positive"):
        mantra.nn.MatrixNormalLinear(0, 2)


def test_known_optimum_regression():
    """y = Wᵀx + noise, prior MN(0, diag(α)⁻¹, I): the exact posterior MN(M*, U*, I), U* = (βXᵀX + diag α)⁻¹,
    M* = βU*XᵀY, is reached by the MN layer (KL < 0.02); DIAG stays at its gap m/2(Σ log Λ_ii − log|Λ|)."""
    g = torch.Generator().manual_seed(7)
    N, n, m, beta = 40, 3, 2, 4.0
    L = torch.tensor([[1.0, 0, 0], [0.9, 0.45, 0], [-0.7, 0.3, 0.5]], dtype=torch.float64)
    X = torch.randn(N, n, generator=g, dtype=torch.float64) @ L.T
    Y = X @ torch.randn(n, m, generator=g, dtype=torch.float64) + torch.randn(N, m, generator=g, dtype=torch.float64) / 2
    alpha = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    Lam = beta * X.T @ X + torch.diag(alpha)
    U = torch.linalg.inv(Lam).contiguous()
    Mstar, Sstar = beta * U @ X.T @ Y, torch.kron(U, torch.eye(m, dtype=torch.float64))
    gap = 0.5 * m * (Lam.diagonal().log().sum() - torch.logdet(Lam)).item()

    def fit(posterior, steps=2000, R=64):
        lay = layer(posterior, "group_ard", n=n, m=m, bias=False, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            lay.log_tau.copy_(alpha.log())
            lay.log_gamma.zero_()
        lay.log_tau.requires_grad_(False)
        lay.log_gamma.requires_grad_(False)
        opt = torch.optim.Adam([p for p in lay.parameters() if p.requires_grad], lr=0.02)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, [1000, 1500], 0.2)
        Xr, Yr = X.repeat(R, 1), Y.repeat(R, 1)
        M_avg, S_avg, k = 0, 0, 0
        for step in range(steps):
            opt.zero_grad()
            loss = 0.5 * beta * (Yr - lay(Xr)).square().sum() / R + lay.kl()
            loss.backward()
            opt.step()
            sched.step()
            if step >= steps - 400:
                with torch.no_grad():
                    if posterior == "mn":
                        A, B = bayes._bayes.cholesky_factor(lay.a_raw), bayes._bayes.cholesky_factor(lay.b_raw)
                        S = torch.kron(A @ A.T, B @ B.T)
                    else:
                        S = torch.diag(lay.log_sigma2.exp().reshape(-1))
                    M_avg, S_avg, k = M_avg + lay.mean.detach(), S_avg + S, k + 1
        return M_avg / k, S_avg / k

    def kl_to_exact(M, S):
        P = torch.linalg.inv(Sstar)
        d = (M - Mstar).reshape(-1, 1)
        return 0.5 * (torch.trace(P @ S) + (d.T @ P @ d).item() - n * m + torch.logdet(Sstar) - torch.logdet(S)).item()

    M_mn, S_mn = fit("mn")
    assert (M_mn - Mstar).abs().max() < 0.1 * U.diagonal().sqrt().min()
    assert (S_mn - Sstar).norm() / Sstar.norm() < 0.1
    kl_mn = kl_to_exact(M_mn, S_mn)
    assert kl_mn < 0.02
    M_d, S_d = fit("diag")
    kl_d = kl_to_exact(M_d, S_d)
    assert gap > 0.5 and gap - 1e-9 <= kl_d < gap + 0.05
    assert kl_d > 20 * kl_mn
    assert math.isfinite(kl_d)
