// Layers.
#pragma once

#include <mantra/nn/linear.h>
