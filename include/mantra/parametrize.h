// Parametrizations (trivializations) and attaching them to modules.
#pragma once

#include <mantra/parametrize/constraint.h>
#include <mantra/parametrize/constraints.h>
#include <mantra/parametrize/functional.h>
#include <mantra/parametrize/parametrization.h>
#include <mantra/parametrize/parametrize.h>
