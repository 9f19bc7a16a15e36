#include "mantra/ops.h"

namespace mantra {

bool cuda_enabled() {
#ifdef MANTRA_WITH_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace mantra
