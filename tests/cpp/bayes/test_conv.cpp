// mantra::nn::MatrixNormalConv2d: the local reparameterization's per-location marginal against
// weight samples (Monte Carlo), the KL of the linear layer with the same matrix view, prune()
// exactness, determinism given a generator, bad input; and the SPD covariance option.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mantra/mantra.h>

#include "../test_util.h"

namespace {

using mantra::nn::MatrixNormalConv2d;
using mantra::nn::MatrixNormalConv2dOptions;
namespace mb = mantra::bayes;

// C_in 2, k 3, C_out 3: W is 18 × 3. Random lower factors and variances of moderate size.
MatrixNormalConv2d make(const std::string& posterior, const std::string& prior, const std::string& sampling = "local",
                        int64_t padding = 0) {
  torch::manual_seed(0);
  MatrixNormalConv2d layer(
      MatrixNormalConv2dOptions(2, 3, 3).padding(padding).posterior(posterior).prior(prior).sampling(sampling));
  layer->to(torch::kFloat64);
  torch::NoGradGuard ng;
  if (layer->a_raw.defined()) {
    layer->a_raw.copy_(0.3 * torch::randn_like(layer->a_raw));
    layer->b_raw.copy_(0.3 * torch::randn_like(layer->b_raw));
  }
  if (layer->log_sigma2.defined()) layer->log_sigma2.copy_(-2.0 + 0.5 * torch::randn_like(layer->log_sigma2));
  return layer;
}

TEST(MatrixNormalConv2dLayer, LocalMarginalMatchesWeightSamplesAtOneLocation) {
  const int64_t S = 40000;
  for (const char* post : {"mn", "diag", "mn+diag"}) {
    auto layer = make(post, "ard");
    auto x = torch::randn({1, 2, 5, 5}, torch::kFloat64);
    const int64_t i = 1, j = 2;  // an output location of the 3 × 3 output
    auto p = x.index({0, torch::indexing::Slice(), torch::indexing::Slice(i, i + 3), torch::indexing::Slice(j, j + 3)})
                 .reshape({18});  // the patch, channel-major as the matrix view's rows
    // The local reparameterization: S copies of x, one independent sample per row.
    layer->set_generator(at::make_generator<at::CPUGeneratorImpl>(11));
    torch::Tensor local;
    {
      torch::NoGradGuard ng;
      local = layer->forward(x.expand({S, 2, 5, 5}).contiguous()).index({torch::indexing::Slice(), torch::indexing::Slice(), i, j});
    }
    // Weight samples W_s and o_s = W_sᵀp (the exact distribution of the pre-activation).
    torch::manual_seed(5);
    auto prm = layer->params();
    auto W = prm.mean.unsqueeze(0).expand({S, 18, 3}).clone();
    if (prm.a_raw.defined()) {
      auto A = mb::cholesky_factor(prm.a_raw), B = mb::cholesky_factor(prm.b_raw);
      W = W + A.matmul(torch::randn({S, 18, 3}, torch::kFloat64)).matmul(B.t());
    }
    if (prm.log_sigma2.defined()) W = W + (0.5 * prm.log_sigma2).exp() * torch::randn({S, 18, 3}, torch::kFloat64);
    auto ref = torch::einsum("sij,i->sj", {W, p}) + prm.bias;
    // The analytic marginal: mean Mᵀp + b, covariance (pᵀUp)·V + diag(Σ_i p_i² σ_ij²).
    auto mean = prm.mean.t().mv(p) + prm.bias;
    auto cov = torch::zeros({3, 3}, torch::kFloat64);
    if (prm.a_raw.defined()) {
      auto A = mb::cholesky_factor(prm.a_raw), B = mb::cholesky_factor(prm.b_raw);
      cov = cov + A.t().mv(p).square().sum() * B.mm(B.t());
    }
    if (prm.log_sigma2.defined()) cov = cov + torch::diag(p.square().matmul(prm.log_sigma2.exp()));
    for (const auto& samples : {local, ref}) {
      auto m_hat = samples.mean(0);
      auto c = samples - m_hat;
      auto c_hat = c.t().mm(c) / double(S - 1);
      auto se_mean = (cov.diagonal() / double(S)).sqrt();
      auto se_cov = ((torch::outer(cov.diagonal(), cov.diagonal()) + cov.square()) / double(S)).sqrt();
      EXPECT_TRUE(((m_hat - mean).abs() < 5 * se_mean).all().item<bool>()) << post << "\n" << m_hat << mean;
      EXPECT_TRUE(((c_hat - cov).abs() < 5 * se_cov).all().item<bool>()) << post << "\n" << c_hat << cov;
    }
  }
}

TEST(MatrixNormalConv2dLayer, KlAndLogAlphaEqualTheLinearLayerOfTheSameMatrixShape) {
  for (const char* prior : {"normal", "ard", "group_ard"})
    for (const char* post : {"mn", "diag", "mn+diag"}) {
      auto conv = make(post, prior);
      mantra::nn::MatrixNormalLinear lin(mantra::nn::MatrixNormalLinearOptions(18, 3).posterior(post).prior(prior));
      lin->to(torch::kFloat64);
      {
        torch::NoGradGuard ng;
        auto cp = conv->named_parameters();
        for (auto& kv : lin->named_parameters()) kv.value().copy_(cp[kv.key()]);
      }
      const double a = conv->kl().item<double>(), b = lin->kl().item<double>();
      EXPECT_NEAR(a, b, 1e-12 * std::max(1.0, std::abs(b))) << post << " " << prior;
      EXPECT_TRUE(torch::allclose(conv->log_alpha(), lin->log_alpha(), 0.0, 1e-12));
      // The mean forward is the linear layer on the patches.
      conv->eval();
      lin->eval();
      auto x = torch::randn({2, 2, 6, 5}, torch::kFloat64);
      auto rows = mb::conv_patches(x, conv->geometry());
      auto ref = lin->forward(rows).reshape({2, 4, 3, 3}).permute({0, 3, 1, 2});
      EXPECT_TRUE(torch::allclose(conv->forward(x), ref, 0.0, 1e-12)) << post << " " << prior;
    }
}

TEST(MatrixNormalConv2dLayer, PruneEqualsTheMaskedLayerOnTheKeptChannels) {
  for (const char* prior : {"ard", "group_ard"})
    for (const char* post : {"mn", "diag", "mn+diag"})
      for (int64_t padding : {0, 1}) {
        auto layer = make(post, prior, "local", padding);
        {
          torch::NoGradGuard ng;
          // Small variances (log α < 3 wherever the mean is not near zero).
          if (layer->a_raw.defined()) {
            layer->a_raw.mul_(0.1).fill_diagonal_(-3.0);
            layer->b_raw.mul_(0.1).fill_diagonal_(-3.0);
          }
          if (layer->log_sigma2.defined()) layer->log_sigma2.fill_(-12.0);
          // Input channel 0: all 9 taps zero (removed); output channel 1 zero (removed); one
          // single tap of channel 1 zero (kept as a zero in the kernel under ARD).
          layer->mean.index_put_({torch::indexing::Slice(0, 9)}, 0.0);
          layer->mean.index_put_({torch::indexing::Slice(), 1}, 0.0);
          layer->mean.index_put_({12, 0}, 1e-9);
        }
        const double t = 3.0;
        auto [chans, cols] = layer->kept_units(t);
        ASSERT_EQ(chans.numel(), 1) << post << " " << prior;
        EXPECT_EQ(chans[0].item<int64_t>(), 1);
        ASSERT_EQ(cols.numel(), 2);
        auto conv = layer->prune(t);
        EXPECT_EQ(conv->weight.sizes(), torch::IntArrayRef({2, 1, 3, 3}));
        if (std::string(prior) == "ard") EXPECT_EQ(conv->weight[0][0][1][0].item<double>(), 0.0);  // tap 12 = (1, 1, 0)
        layer->eval();
        layer->options.threshold(t);
        auto x = torch::randn({3, 2, 6, 7}, torch::kFloat64);
        auto full = layer->forward(x).index_select(1, cols);
        auto pruned = conv->forward(x.index_select(1, chans));
        EXPECT_TRUE(torch::allclose(pruned, full, 0.0, 1e-13)) << post << " " << prior << " padding " << padding;
      }
}

TEST(MatrixNormalConv2dLayer, SamplesAreDeterministicGivenAGenerator) {
  for (const char* post : {"mn", "diag", "mn+diag"})
    for (const char* samp : {"local", "weights"}) {
      auto layer = make(post, "ard", samp, 1);
      auto x = torch::randn({2, 2, 5, 4}, torch::kFloat64);
      auto run = [&](uint64_t seed) {
        layer->set_generator(at::make_generator<at::CPUGeneratorImpl>(seed));
        return layer->forward(x);
      };
      auto a = run(3), b = run(3), c = run(4);
      EXPECT_EQ(a.sizes(), torch::IntArrayRef({2, 3, 5, 4}));
      EXPECT_TRUE(torch::equal(a, b)) << post << " " << samp;
      EXPECT_GT((a - c).abs().max().item<double>(), 1e-3) << post << " " << samp;
      layer->eval();
      auto mean = torch::conv2d(x, layer->mean.t().reshape({3, 2, 3, 3}), layer->bias, 1, 1);
      EXPECT_TRUE(torch::allclose(layer->forward(x), mean, 1e-14, 1e-14)) << "eval uses the mean";
    }
}

TEST(MatrixNormalConv2dLayer, BadInputNamesTheArgument) {
  using mantra::test::expect_error;
  expect_error([] { MatrixNormalConv2d(2, 3, 3)->forward(torch::randn({1, 4, 5, 5})); },
               "argument 'input' must be (N, 2, H, W), got shape [1, 4, 5, 5]");
  expect_error([] { MatrixNormalConv2d(2, 3, 3)->forward(torch::randn({2, 5, 5})); }, "argument 'input' must be (N, 2, H, W)");
  expect_error([] { MatrixNormalConv2d(2, 3, 3)->forward(torch::randn({1, 2, 2, 5})); },
               "smaller than the kernel's span 3");
  expect_error([] { MatrixNormalConv2d(2, 3, 0); }, "kernel_size=0");
  expect_error([] { MatrixNormalConv2d(MatrixNormalConv2dOptions(2, 3, 3).stride(0)); }, "stride=0");
  expect_error([] { MatrixNormalConv2d(2, 0, 3); }, "argument 'out_channels' must be positive, got 0");
  expect_error([] { MatrixNormalConv2d(MatrixNormalConv2dOptions(2, 3, 3).posterior("full")); }, "argument 'posterior'");
  expect_error([] { MatrixNormalConv2d(MatrixNormalConv2dOptions(2, 3, 3).covariance("logm")); },
               "argument 'covariance' must be cholesky or spd, got 'logm'");
  expect_error([] { mb::conv_kernel(torch::zeros({17, 3}), mb::ConvGeometry{2, 3}); },
               "argument 'W' must be (18, out_channels)");
  // kl_sum sees both layer types.
  torch::nn::Sequential seq(MatrixNormalConv2d(1, 2, 3), mantra::nn::MatrixNormalLinear(3, 2));
  auto c0 = seq[0]->as<mantra::nn::MatrixNormalConv2dImpl>();
  auto l1 = seq[1]->as<mantra::nn::MatrixNormalLinearImpl>();
  EXPECT_NEAR(mantra::nn::kl_sum(*seq).item<double>(), (c0->kl() + l1->kl()).item<double>(), 1e-3);
}

// covariance "spd": U, V are the parameters; with U = AAᵀ, V = BBᵀ of a Cholesky layer the two
// layers are the same distribution (same samples from the same generator, same KL).
TEST(MatrixNormalSpdCovariance, EqualsTheCholeskyLayerAndStaysOnTheManifoldUnderRiemannianAdam) {
  for (const char* post : {"mn", "mn+diag"}) {
    auto chol = make(post, "group_ard");
    torch::manual_seed(0);
    MatrixNormalConv2d spd(MatrixNormalConv2dOptions(2, 3, 3).posterior(post).prior("group_ard").covariance("spd"));
    spd->to(torch::kFloat64);
    EXPECT_TRUE(spd->named_parameters().contains("u") && spd->named_parameters().contains("v"));
    {
      torch::NoGradGuard ng;
      auto A = mb::cholesky_factor(chol->a_raw), B = mb::cholesky_factor(chol->b_raw);
      for (auto& kv : chol->named_parameters())
        if (spd->named_parameters().contains(kv.key())) spd->named_parameters()[kv.key()].copy_(kv.value());
      spd->a_raw.copy_(A.mm(A.t()));
      spd->b_raw.copy_(B.mm(B.t()));
    }
    EXPECT_NEAR(spd->kl().item<double>(), chol->kl().item<double>(), 1e-10 * std::abs(chol->kl().item<double>()));
    auto x = torch::randn({2, 2, 5, 5}, torch::kFloat64);
    chol->set_generator(at::make_generator<at::CPUGeneratorImpl>(9));
    spd->set_generator(at::make_generator<at::CPUGeneratorImpl>(9));
    EXPECT_TRUE(torch::allclose(spd->forward(x), chol->forward(x), 1e-10, 1e-10)) << post;
    // RiemannianAdam on the SPD group: U stays SPD and the loss goes down.
    auto [spd_params, rest] = mantra::nn::split_spd_parameters(*spd);
    ASSERT_EQ(spd_params.size(), 2u);
    EXPECT_EQ(rest.size() + 2, spd->parameters().size());
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(spd_params, std::make_unique<mantra::optim::RiemannianAdamOptions>(
                                        mantra::optim::RiemannianAdamOptions(1e-2).manifold(
                                            std::make_shared<mantra::manifolds::SPD>())));
    groups.emplace_back(rest);
    mantra::optim::RiemannianAdam opt(groups, mantra::optim::RiemannianAdamOptions(1e-2));
    const double kl0 = spd->kl().item<double>();
    for (int s = 0; s < 20; ++s) {
      opt.zero_grad();
      spd->kl().backward();
      opt.step();
    }
    EXPECT_LT(spd->kl().item<double>(), kl0 - 1.0);
    mantra::manifolds::SPD M;
    EXPECT_EQ(M.check_point(spd->a_raw.detach(), 1e-10), "");
    EXPECT_EQ(M.check_point(spd->b_raw.detach(), 1e-10), "");
  }
}

// The options Linear and Conv2d share (mantra::nn::MatrixNormalOptions) keep their defaults on
// both, and builder chains mix shared and own fields in either order.
TEST(MatrixNormalOptions, SharedDefaultsAndMixedBuilderChains) {
  auto expect_defaults = [](const auto& o, const char* what) {
    EXPECT_TRUE(o.bias()) << what;
    EXPECT_EQ(o.posterior(), "mn") << what;
    EXPECT_EQ(o.prior(), "ard") << what;
    EXPECT_EQ(o.sampling(), "local") << what;
    EXPECT_EQ(o.covariance(), "cholesky") << what;
    EXPECT_EQ(o.prior_variance(), 1.0) << what;
    EXPECT_EQ(o.init_log_variance(), -10.0) << what;
    EXPECT_EQ(o.eval_samples(), 0) << what;
    EXPECT_FALSE(o.threshold().has_value()) << what;
  };
  expect_defaults(mantra::nn::MatrixNormalLinearOptions(3, 2), "linear");
  expect_defaults(MatrixNormalConv2dOptions(2, 3, 3), "conv");
  auto conv = MatrixNormalConv2dOptions(2, 3, 3).posterior("diag").stride(2).threshold(1.5).padding(1).bias(false);
  EXPECT_EQ(conv.posterior(), "diag");
  EXPECT_EQ(conv.stride(), 2);
  EXPECT_EQ(conv.padding(), 1);
  EXPECT_EQ(conv.dilation(), 1);
  EXPECT_EQ(conv.threshold(), 1.5);
  EXPECT_FALSE(conv.bias());
  auto lin = mantra::nn::MatrixNormalLinearOptions(3, 2).eval_samples(4).out_features(5).prior("group_ard");
  EXPECT_EQ(lin.eval_samples(), 4);
  EXPECT_EQ(lin.in_features(), 3);
  EXPECT_EQ(lin.out_features(), 5);
  EXPECT_EQ(lin.prior(), "group_ard");
  mantra::nn::MatrixNormalLinear layer(lin);
  EXPECT_EQ(layer->mean.sizes(), (std::vector<int64_t>{3, 5}));
}

}  // namespace
