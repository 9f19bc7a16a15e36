#include "mantra/parametrize/parametrization.h"

#include <torch/torch.h>

#include <cmath>

#include "mantra/manifolds/stiefel.h"
#include "mantra/ops.h"
#include "mantra/parametrize/parametrize.h"

namespace mantra::parametrize {

namespace fn = functional;

ParametrizationImpl::ParametrizationImpl(manifolds::ManifoldPtr manifold, std::vector<int64_t> shape,
                                         ParametrizationOptions options, const at::TensorOptions& tensor_options)
    : ParametrizationImpl(manifold, shape, shape, options, tensor_options) {}

ParametrizationImpl::ParametrizationImpl(manifolds::ManifoldPtr manifold, std::vector<int64_t> shape,
                                         std::vector<int64_t> chart_shape, ParametrizationOptions options,
                                         const at::TensorOptions& tensor_options)
    : ConstraintImpl(std::move(shape)), manifold_(std::move(manifold)), options_(options) {
  TORCH_CHECK_VALUE(manifold_ != nullptr, "Parametrization: argument 'manifold' is null");
  TORCH_CHECK_VALUE(std::isfinite(options.scale()) && options.scale() > 0,
                    "Parametrization: option 'scale' must be finite and positive, got ", options.scale());
  manifold_->check_shape(chart_shape, "shape");
  base = register_buffer("base", fn::sample_point(*manifold_, chart_shape, "uniform", tensor_options));
  v = register_parameter("v", at::zeros(chart_shape, tensor_options));
}

at::Tensor ParametrizationImpl::retract(const at::Tensor& b, const at::Tensor& u) const {
  return fn::trivialize(*manifold_, b, u, options_.retraction());
}

at::Tensor ParametrizationImpl::output(const at::Tensor& point) const {
  return options_.scale() == 1.0 ? point : point * options_.scale();
}

void ParametrizationImpl::rebase() {
  torch::NoGradGuard no_grad;
  ++rebases_;
  base.copy_(fn::rebased_base(*manifold_, retract(base, v), rebases_, options_.reproject_every()));
  v.zero_();
}

std::string ParametrizationImpl::check(const at::Tensor& X) const {
  return fn::point_check(*manifold_, X, shape(), options_.atol(), options_.scale());
}

void ParametrizationImpl::set(const at::Tensor& X) {
  TORCH_CHECK_VALUE(X.defined() && X.sizes() == at::IntArrayRef(shape()), "Parametrization.set: argument 'X' must have shape ",
                    at::IntArrayRef(shape()), ", got ", X.defined() ? X.sizes() : at::IntArrayRef{});
  const std::string why = check(X);
  TORCH_CHECK_VALUE(why.empty(), "Parametrization.set: argument 'X' is not a point of ", manifold_->name(),
                    options_.scale() != 1.0 ? " (scaled)" : "", ": ", why);
  {
    torch::NoGradGuard no_grad;
    base.copy_(options_.scale() == 1.0 ? X.detach() : X.detach() / options_.scale());
    v.zero_();
  }
  changed();
}

void ParametrizationImpl::sample(const std::string& init) {
  {
    torch::NoGradGuard no_grad;
    base.copy_(fn::sample_point(*manifold_, base.sizes(), init, base.options()));
    v.zero_();
  }
  changed();
}

void ParametrizationImpl::sample_in_chart(const std::string& init) {
  {
    torch::NoGradGuard no_grad;
    auto [b, L] = fn::sample_in_chart(*manifold_, base.sizes(), options_.retraction(), init, base.options());
    base.copy_(b);
    v.copy_(L);
  }
  changed();
}

// ---------------------------------------------------------------- CallableTrivialization

namespace {
std::vector<int64_t> square_chart(std::vector<int64_t> shape) {
  TORCH_CHECK_VALUE(shape.size() >= 2, "CallableTrivialization: argument 'shape' must have at least 2 dimensions, got ",
                    at::IntArrayRef(shape));
  const int64_t n = std::max(shape[shape.size() - 2], shape[shape.size() - 1]);
  shape[shape.size() - 2] = shape[shape.size() - 1] = n;
  return shape;
}
}  // namespace

CallableTrivializationImpl::CallableTrivializationImpl(std::vector<int64_t> shape, TensorFunction triv, bool special,
                                                       ParametrizationOptions options,
                                                       const at::TensorOptions& tensor_options)
    : ParametrizationImpl(std::make_shared<manifolds::Stiefel>(manifolds::StiefelOptions().set_special(special)), shape,
                          square_chart(shape), options, tensor_options),
      triv_(std::move(triv)) {
  TORCH_CHECK_VALUE(static_cast<bool>(triv_), "CallableTrivialization: argument 'triv' is empty");
  TORCH_CHECK_VALUE(!special || shape[shape.size() - 1] == shape[shape.size() - 2],
                    "CallableTrivialization: SO(n) needs square matrices, got shape ", at::IntArrayRef(shape));
  frames_ = manifold_ptr();
  k_ = std::min(shape[shape.size() - 2], shape[shape.size() - 1]);
  wide_ = shape[shape.size() - 2] < shape[shape.size() - 1];
}

at::Tensor CallableTrivializationImpl::retract(const at::Tensor& b, const at::Tensor& u) const {
  return fn::frame_from_chart(b, triv_(fn::chart_skew(u)), b.size(-1), /*wide=*/false);
}

at::Tensor CallableTrivializationImpl::compute() {
  return fn::frame_from_chart(base, triv_(fn::chart_skew(v)), k_, wide_, options().scale());
}

std::string CallableTrivializationImpl::check(const at::Tensor& X) const {
  return fn::point_check(*frames_, X, shape(), options().atol(), options().scale());
}

void CallableTrivializationImpl::set(const at::Tensor& X) {
  const std::string why = check(X);
  TORCH_CHECK_VALUE(why.empty(), "CallableTrivialization.set: argument 'X' is not a point of ", frames_->name(), ": ",
                    why);
  {
    torch::NoGradGuard no_grad;
    const at::Tensor T = (wide_ ? X.detach().mT() : X.detach()) / options().scale();
    base.copy_(fn::complete_frame(T.to(base.scalar_type()), base.size(-1)));
    v.zero_();
  }
  changed();
}

void CallableTrivializationImpl::sample(const std::string& init) {
  TORCH_CHECK_VALUE(init == "uniform", "CallableTrivialization.sample: argument 'init' must be 'uniform', got '", init,
                    "'");
  ParametrizationImpl::sample(init);
}

void CallableTrivializationImpl::pretty_print(std::ostream& stream) const {
  stream << "mantra::CallableTrivialization(" << frames_->name() << ", shape=" << at::IntArrayRef(shape()) << ")";
}

void ParametrizationImpl::to(torch::Device device, torch::Dtype dtype, bool non_blocking) {
  const auto before = base.scalar_type();
  torch::nn::Module::to(device, dtype, non_blocking);
  torch::NoGradGuard no_grad;
  base.copy_(fn::converted_base(*manifold_, base, before));
}

void ParametrizationImpl::to(torch::Dtype dtype, bool non_blocking) {
  to(base.device(), dtype, non_blocking);
}

void ParametrizationImpl::pretty_print(std::ostream& stream) const {
  stream << "mantra::Parametrization(" << manifold_->name() << ", shape=" << at::IntArrayRef(shape())
         << ", retraction=" << manifolds::to_string(options_.retraction());
  if (options_.scale() != 1.0) stream << ", scale=" << options_.scale();
  stream << ")";
}

std::vector<std::pair<std::string, Parametrization>> parametrizations(torch::nn::Module& module) {
  std::vector<std::pair<std::string, Parametrization>> out;
  for (const auto& item : module.named_modules()) {
    if (auto p = std::dynamic_pointer_cast<ParametrizationImpl>(item.value())) {
      out.emplace_back(item.key(), Parametrization(p));
    }
  }
  return out;
}

}  // namespace mantra::parametrize
