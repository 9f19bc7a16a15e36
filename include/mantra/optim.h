// Optimizers on manifolds.
#pragma once

#include <mantra/optim/dynamic_trivialization.h>
#include <mantra/optim/riemannian_adam.h>
#include <mantra/optim/riemannian_sgd.h>
