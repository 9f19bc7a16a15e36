// Precompiled header for files that use the C++ frontend. Op and kernel files do not use it:
// they include only ATen and torch/library.h.
#pragma once
#include <torch/torch.h>
