// Isometry diagnostics: Jacobian spectrum, Fisher eigenvalue, critical initialization.
#pragma once

#include <mantra/diagnostics/critical_init.h>
#include <mantra/diagnostics/spectrum.h>
