// What mantra::nn::Linear and mantra::nn::Conv2d share: the constraint / triv / rank / lambda /
// scale options of a weight matrix (Conv2d's is its kernel's matrix view, out × in·kh·kw), their
// validation, the attaching of the named constraint, and the learnable scale g.
#pragma once

#include <torch/nn/module.h>

#include <mantra/parametrize/constraint.h>
#include <mantra/parametrize/constraints.h>

#include <memory>
#include <string>

namespace mantra::nn::detail {

// `layer` names the caller in messages ("mantra::nn::Linear").
void check_scale(const char* layer, const std::string& scale);
// Attaches `constraint` (a name of LinearOptions::constraint; "none": an empty holder) to the
// matrix `name` of `module`, then refuses options the constraint does not use.
parametrize::Constraint attach_weight_constraint(torch::nn::Module& module, const std::string& name, const char* layer,
                                                 const std::string& constraint, const std::string& triv, int64_t rank,
                                                 double lambda);
// g as the parameter "scale": (1) for "isotropic", (rows, 1) for "per_row", undefined for "none".
torch::Tensor register_scale(torch::nn::Module& module, const std::string& scale, int64_t rows);
// The coupled low-rank constraint (low_rank_oblique, low_rank_sphere) of a weight, or null: layers
// apply it in factored form.
std::shared_ptr<parametrize::CoupledLowRankImpl> coupled_of(const parametrize::Constraint& constraint);

}  // namespace mantra::nn::detail
