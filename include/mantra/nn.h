// Layers.
#pragma once

#include <mantra/nn/constrained.h>
#include <mantra/nn/conv.h>
#include <mantra/nn/linear.h>
#include <mantra/nn/recurrent.h>
