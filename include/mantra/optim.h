// Optimizers on manifolds.
#pragma once

#include <mantra/optim/dynamic_trivialization.h>
