// All manifolds.
#pragma once

#include <mantra/manifolds/euclidean.h>
#include <mantra/manifolds/fixed_rank.h>
#include <mantra/manifolds/gl_plus.h>
#include <mantra/manifolds/grassmannian.h>
#include <mantra/manifolds/hyperbolic.h>
#include <mantra/manifolds/low_rank_coupled.h>
#include <mantra/manifolds/manifold.h>
#include <mantra/manifolds/psd.h>
#include <mantra/manifolds/sphere.h>
#include <mantra/manifolds/spd.h>
#include <mantra/manifolds/stiefel.h>
