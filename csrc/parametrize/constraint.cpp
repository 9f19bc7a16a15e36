#include "mantra/parametrize/constraint.h"

#include <torch/torch.h>

#include <mutex>

#include "mantra/parametrize/functional.h"
#include "mantra/parametrize/parametrize.h"

namespace mantra::parametrize {

namespace {
thread_local int64_t scope_depth = 0;
thread_local int64_t scope_id = 0;
std::mutex scope_mutex;
int64_t next_scope_id = 1;
}  // namespace

std::vector<std::pair<const void*, uint32_t>> ConstraintImpl::versions() {
  std::vector<std::pair<const void*, uint32_t>> out;
  for (const auto& t : parameters()) out.emplace_back(t.unsafeGetTensorImpl(), t._version());
  for (const auto& t : buffers()) out.emplace_back(t.unsafeGetTensorImpl(), t._version());
  return out;
}

at::Tensor ConstraintImpl::forward() {
  if (!ParametrizationScope::active()) return compute();
  const int64_t id = ParametrizationScope::current_id();
  auto now = versions();
  // A value computed without gradient tracking is not reused where gradients are wanted.
  const bool usable = cached_grad_mode_ || !at::GradMode::is_enabled();
  if (cached_.defined() && cached_scope_ == id && cached_versions_ == now && usable) return cached_;
  cached_ = compute();
  cached_scope_ = id;
  cached_grad_mode_ = at::GradMode::is_enabled();
  cached_versions_ = std::move(now);
  return cached_;
}

void ConstraintImpl::attach_from(const at::Tensor& current) {
  if (functional::keep_on_attach(check(current))) set(current);
}

void ConstraintImpl::changed() {
  cached_ = at::Tensor();
  at::AutoGradMode enable_grad(true);  // the installed tensor must carry its history
  refresh_target(*this);
}

ParametrizationScope::ParametrizationScope() {
  if (scope_depth++ == 0) {
    std::lock_guard<std::mutex> lock(scope_mutex);
    scope_id = next_scope_id++;
  }
}

ParametrizationScope::ParametrizationScope(torch::nn::Module& module) : ParametrizationScope() { refresh(module); }

ParametrizationScope::~ParametrizationScope() { --scope_depth; }

bool ParametrizationScope::active() { return scope_depth > 0; }
int64_t ParametrizationScope::current_id() { return scope_id; }

}  // namespace mantra::parametrize
