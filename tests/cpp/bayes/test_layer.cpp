// mantra::nn::MatrixNormalLinear: determinism given a generator, train/eval behaviour, KL of
// every family and prior, masks, prune() against the masked layer, ELBO helpers, bad options.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mantra/mantra.h>

#include "../test_util.h"

namespace {

using mantra::nn::MatrixNormalLinear;
using mantra::nn::MatrixNormalLinearOptions;

MatrixNormalLinear make(const std::string& posterior, const std::string& prior, const std::string& sampling = "local") {
  torch::manual_seed(0);
  MatrixNormalLinear layer(MatrixNormalLinearOptions(6, 4).posterior(posterior).prior(prior).sampling(sampling));
  layer->to(torch::kFloat64);
  return layer;
}

TEST(MatrixNormalLinearLayer, SamplesAreDeterministicGivenAGenerator) {
  for (const char* post : {"mn", "diag", "mn+diag"})
    for (const char* samp : {"local", "weights"}) {
      auto layer = make(post, "ard", samp);
      {
        torch::NoGradGuard ng;
        layer->a_raw.defined() ? layer->a_raw.fill_diagonal_(-0.5) : layer->log_sigma2.fill_(-1.0);
      }
      auto x = torch::randn({5, 6}, torch::kFloat64);
      auto run = [&](uint64_t seed) {
        layer->set_generator(at::make_generator<at::CPUGeneratorImpl>(seed));
        return layer->forward(x);
      };
      auto a = run(3), b = run(3), c = run(4);
      EXPECT_TRUE(torch::equal(a, b)) << post << " " << samp;
      EXPECT_GT((a - c).abs().max().item<double>(), 1e-3) << post << " " << samp;
      layer->eval();
      auto mean = x.mm(layer->mean) + layer->bias;
      EXPECT_TRUE(torch::allclose(layer->forward(x), mean, 1e-14, 1e-14)) << "eval uses the mean";
      {
        mantra::nn::SampleInEval guard;
        EXPECT_GT((layer->forward(x) - mean).abs().max().item<double>(), 1e-3) << "SampleInEval samples";
      }
    }
}

TEST(MatrixNormalLinearLayer, KlMatchesTheClosedFormsAndIsDifferentiable) {
  namespace mb = mantra::bayes;
  for (const char* prior : {"normal", "ard", "group_ard"})
    for (const char* post : {"mn", "diag", "mn+diag"}) {
      auto layer = make(post, prior);
      auto kl = layer->kl();
      auto p = layer->params();
      double ref;
      auto A = p.a_raw.defined() ? mb::cholesky_factor(p.a_raw) : torch::Tensor();
      auto B = p.b_raw.defined() ? mb::cholesky_factor(p.b_raw) : torch::Tensor();
      if (std::string(post) == "mn") {
        ref = std::string(prior) == "normal" ? mb::kl_mn_normal(p.mean, A, B, 1.0).item<double>()
              : std::string(prior) == "ard"  ? mb::kl_mn_ard(p.mean, A, B).item<double>()
                                             : mb::kl_mn_group_ard(p.mean, A, B, p.log_tau, p.log_gamma).item<double>();
      } else if (std::string(post) == "diag") {
        ref = std::string(prior) == "normal" ? mb::kl_diag_normal(p.mean, p.log_sigma2, 1.0).item<double>()
              : std::string(prior) == "ard"  ? mb::kl_diag_ard(p.mean, p.log_sigma2).item<double>()
                                             : mb::kl_diag_group_ard(p.mean, p.log_sigma2, p.log_tau, p.log_gamma).item<double>();
      } else {
        // The sum family's KL (Minkowski bound of the log-determinant) is at least the exact KL,
        // formed densely with S = U⊗V + diag σ².
        auto S = torch::kron(A.mm(A.t()), B.mm(B.t())) + torch::diag(p.log_sigma2.exp().reshape(-1));
        const double K = 24;
        auto mu = p.mean.reshape({-1, 1});
        torch::Tensor P;
        if (std::string(prior) == "normal") P = torch::eye(24, torch::kFloat64);
        else if (std::string(prior) == "ard") P = torch::diag(S.diagonal() + mu.flatten().square());
        else P = torch::kron(torch::diag((-p.log_tau).exp()), torch::diag((-p.log_gamma).exp()));
        auto Pi = torch::linalg_inv(P);
        ref = 0.5 * (torch::trace(Pi.mm(S)).item<double>() + mu.t().mm(Pi).mm(mu).item<double>() - K +
                     torch::logdet(P).item<double>() - torch::logdet(S).item<double>());
        EXPECT_GE(kl.item<double>(), ref - 1e-9) << post << " " << prior;
        continue;
      }
      EXPECT_NEAR(kl.item<double>(), ref, 1e-9 * std::max(1.0, std::abs(ref))) << post << " " << prior;
      kl.backward();
      EXPECT_TRUE(layer->mean.grad().defined());
      EXPECT_TRUE(std::isfinite(layer->mean.grad().abs().sum().item<double>()));
    }
}

TEST(MatrixNormalLinearLayer, PruneEqualsTheMaskedLayerOnTheKeptUnits) {
  for (const char* prior : {"ard", "group_ard"})
    for (const char* post : {"mn", "diag", "mn+diag"}) {
      auto layer = make(post, prior);
      {
        torch::NoGradGuard ng;
        // Drive input 1, input 4 and output 2 to zero mean (log α large) and a few single weights.
        layer->mean.index_put_({1}, 0.0);
        layer->mean.index_put_({4}, 1e-9);
        layer->mean.index_put_({torch::indexing::Slice(), 2}, 0.0);
        layer->mean.index_put_({0, 0}, 1e-8);
      }
      const double t = 3.0;
      auto [rows, cols] = layer->kept_units(t);
      EXPECT_EQ(rows.numel(), 4) << post << " " << prior;
      EXPECT_EQ(cols.numel(), 3) << post << " " << prior;
      auto lin = layer->prune(t);
      EXPECT_EQ(lin->weight.size(0), 3);
      EXPECT_EQ(lin->weight.size(1), 4);
      layer->eval();
      layer->options.threshold(t);
      auto x = torch::randn({7, 6}, torch::kFloat64);
      auto full = layer->forward(x).index_select(1, cols);
      auto pruned = lin->forward(x.index_select(1, rows));
      EXPECT_TRUE(torch::allclose(pruned, full, 0.0, 1e-13)) << post << " " << prior;
      const bool weight_level = std::string(prior) == "ard";
      EXPECT_EQ(layer->mask(t).logical_not().any().item<bool>(), true);
      if (weight_level) EXPECT_FALSE(layer->mask(t)[0][0].item<bool>());
    }
}

TEST(MatrixNormalLinearLayer, ElboHelpersAndBadOptions) {
  auto nll = torch::tensor(0.5, torch::kFloat64), kl = torch::tensor(30.0, torch::kFloat64);
  EXPECT_DOUBLE_EQ(mantra::bayes::negative_elbo(nll, kl, 1000, 0.5).item<double>(), 515.0);
  EXPECT_DOUBLE_EQ(mantra::bayes::kl_warmup(5, 20), 0.25);
  EXPECT_DOUBLE_EQ(mantra::bayes::kl_warmup(50, 20), 1.0);
  EXPECT_DOUBLE_EQ(mantra::bayes::kl_warmup(0, 0), 1.0);
  using mantra::test::expect_error;
  expect_error([] { MatrixNormalLinear(MatrixNormalLinearOptions(3, 2).posterior("full")); }, "argument 'posterior' must be mn, diag or mn+diag, got 'full'");
  expect_error([] { MatrixNormalLinear(MatrixNormalLinearOptions(3, 2).prior("laplace")); }, "argument 'prior'");
  expect_error([] { MatrixNormalLinear(MatrixNormalLinearOptions(3, 2).sampling("exact")); }, "argument 'sampling'");
  expect_error([] { MatrixNormalLinear(MatrixNormalLinearOptions(0, 2)); }, "must be positive");
  expect_error([] { MatrixNormalLinear(3, 2)->forward(torch::randn({4, 5})); }, "argument 'input' must be (..., 3)");
  // kl_sum over a container.
  torch::nn::Sequential seq(MatrixNormalLinear(3, 4), torch::nn::ReLU(), MatrixNormalLinear(4, 2));
  auto total = mantra::nn::kl_sum(*seq);
  auto l0 = seq[0]->as<mantra::nn::MatrixNormalLinearImpl>(), l2 = seq[2]->as<mantra::nn::MatrixNormalLinearImpl>();
  EXPECT_NEAR(total.item<double>(), (l0->kl() + l2->kl()).item<double>(), 1e-3);
}

}  // namespace
