// Everything mantra offers to C++ users.
#pragma once

#include <mantra/diagnostics.h>
#include <mantra/manifolds.h>
#include <mantra/manifolds/low_rank_coupled.h>
#include <mantra/nn.h>
#include <mantra/nn/matrix_normal.h>
#include <mantra/ops.h>
#include <mantra/optim.h>
#include <mantra/parametrize.h>
#include <mantra/version.h>
