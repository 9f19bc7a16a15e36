#include "mantra/nn/recurrent.h"

#include <torch/torch.h>

#include <unordered_set>

#include "mantra/ops.h"
#include "mantra/parametrize/constraints.h"
#include "mantra/parametrize/parametrization.h"

namespace mantra::nn {

// ---------------------------------------------------------------- modReLU

ModReLUImpl::ModReLUImpl(const ModReLUOptions& options_) : options(options_) { reset(); }

void ModReLUImpl::reset() {
  TORCH_CHECK_VALUE(options.features() > 0, "mantra::nn::ModReLU: argument 'features' must be positive, got ",
                    options.features());
  bias = register_parameter("bias", torch::empty({options.features()}));
  reset_parameters();
}

void ModReLUImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  bias.uniform_(-0.01, 0.01);
}

torch::Tensor ModReLUImpl::forward(const torch::Tensor& z) { return mantra::modrelu(z, bias); }

void ModReLUImpl::pretty_print(std::ostream& stream) const {
  stream << "mantra::nn::ModReLU(features=" << options.features() << ")";
}

// ---------------------------------------------------------------- OrthogonalRNN

namespace {
std::unordered_set<const void*> constrained_impls(torch::nn::Module& model) {
  std::unordered_set<const void*> out;
  for (const auto& m : model.modules()) {
    if (dynamic_cast<parametrize::ConstraintImpl*>(m.get()) == nullptr) continue;
    for (const auto& p : m->parameters()) out.insert(p.unsafeGetTensorImpl());
  }
  return out;
}
}  // namespace

std::vector<torch::Tensor> OrthogonalRNNImpl::constrained_parameters() {
  const auto ids = constrained_impls(*this);
  std::vector<torch::Tensor> out;
  for (const auto& p : parameters())
    if (ids.count(p.unsafeGetTensorImpl())) out.push_back(p);
  return out;
}

std::vector<torch::Tensor> OrthogonalRNNImpl::unconstrained_parameters() {
  const auto ids = constrained_impls(*this);
  std::vector<torch::Tensor> out;
  for (const auto& p : parameters())
    if (!ids.count(p.unsafeGetTensorImpl())) out.push_back(p);
  return out;
}

void check_recurrent_sizes(int64_t input_size, int64_t hidden_size, int64_t output_size, const char* who) {
  TORCH_CHECK_VALUE(input_size > 0, who, ": argument 'input_size' must be positive, got ", input_size);
  TORCH_CHECK_VALUE(hidden_size > 0, who, ": argument 'hidden_size' must be positive, got ", hidden_size);
  TORCH_CHECK_VALUE(output_size >= 0, who, ": argument 'output_size' must be >= 0, got ", output_size);
}
void check_sequence_input(const torch::Tensor& x, int64_t input_size, const char* who) {
  TORCH_CHECK_VALUE(x.dim() == 3 && x.size(2) == input_size, who, ": argument 'x' must have shape (T, N, ", input_size,
                    "), got ", x.sizes());
}

OrthogonalRNNImpl::OrthogonalRNNImpl(const OrthogonalRNNOptions& options_) : options(options_) {
  const char* who = "mantra::nn::OrthogonalRNN";
  check_recurrent_sizes(options.input_size(), options.hidden_size(), options.output_size(), who);
  const std::string& init = options.init();
  TORCH_CHECK_VALUE(init == "henaff" || init == "cayley" || init == "torus" || init == "uniform" || init == "origin", who,
                    ": argument 'init' must be henaff, cayley, torus, uniform or origin; got '", init, "'");
  TORCH_CHECK_VALUE(!options.chart_at_identity() || (options.triv() == "expm" && init != "uniform" && init != "origin"),
                    who, ": chart_at_identity needs triv 'expm' and init henaff, cayley or torus; got triv '",
                    options.triv(), "' and init '", init, "'");
  const int64_t H = options.hidden_size();
  input_kernel = register_module(
      "input_kernel", torch::nn::Linear(torch::nn::LinearOptions(options.input_size(), H).bias(options.input_bias())));
  // B is the module tensor "recurrent_kernel", trivialized like any other (parametrize.h).
  register_parameter("recurrent_kernel", torch::empty({H, H}));
  recurrent = parametrize::orthogonal(*this, "recurrent_kernel", options.triv());
  modrelu = register_module("modrelu", ModReLU(H));
  if (options.output_size() > 0) {
    output_layer = register_module("output_layer", torch::nn::Linear(H, options.output_size()));
  }
  reset_parameters();
}

void OrthogonalRNNImpl::reset_parameters() {
  {
    torch::NoGradGuard no_grad;
    // expRNN: He initialization of W_in for the ReLU-like modReLU.
    torch::nn::init::kaiming_normal_(input_kernel->weight, 0.0, torch::kFanIn, torch::kReLU);
    if (options.input_bias()) input_kernel->bias.zero_();
  }
  if (options.chart_at_identity()) {
    auto p = std::dynamic_pointer_cast<parametrize::ParametrizationImpl>(recurrent.ptr());
    TORCH_CHECK(p != nullptr, "mantra::nn::OrthogonalRNN: chart_at_identity needs a manifold trivialization");
    p->sample_in_chart(options.init());
  } else {
    recurrent->sample(options.init());
  }
  modrelu->reset_parameters();
  if (output_layer) output_layer->reset_parameters();
}

torch::Tensor OrthogonalRNNImpl::recurrent_matrix() { return recurrent->forward(); }

torch::Tensor OrthogonalRNNImpl::hidden_states(const torch::Tensor& x, const torch::Tensor& h0) {
  check_sequence_input(x, options.input_size(), "mantra::nn::OrthogonalRNN");
  const int64_t N = x.size(1), H = options.hidden_size();
  const torch::Tensor u = input_kernel->forward(x);
  torch::Tensor h = h0;
  if (h.defined()) {
    TORCH_CHECK_VALUE(h.dim() == 2 && h.size(0) == N && h.size(1) == H,
                      "mantra::nn::OrthogonalRNN: argument 'h0' must have shape (", N, ", ", H, "), got ", h.sizes());
  } else {
    h = torch::zeros({N, H}, u.options());
  }
  return mantra::orthogonal_rnn(u, h, recurrent_matrix(), modrelu->bias);
}

torch::Tensor OrthogonalRNNImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = hidden_states(x);
  return output_layer ? output_layer->forward(h) : h;
}

int64_t OrthogonalRNNImpl::degrees_of_freedom() {
  int64_t n = 0;
  for (const auto& p : unconstrained_parameters()) n += p.numel();
  const int64_t H = options.hidden_size();
  return n + H * (H - 1) / 2;  // dim SO(H)
}

void OrthogonalRNNImpl::pretty_print(std::ostream& stream) const {
  stream << "mantra::nn::OrthogonalRNN(input_size=" << options.input_size() << ", hidden_size=" << options.hidden_size()
         << ", output_size=" << options.output_size() << ", triv=" << options.triv() << ", init=" << options.init()
         << (options.chart_at_identity() ? ", chart_at_identity" : "") << ")";
}

}  // namespace mantra::nn
