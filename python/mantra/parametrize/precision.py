"""Precision glue: constraint maps run with autocast off.

The maps themselves (C++) compute float16/bfloat16 in float32 and cast back; autocast would
instead lower their matrix products to half precision, so it is switched off around them.
"""

import torch


def full_precision(fn, t, *args):
    """fn(t, *args) with autocast off on t's device type (traceable by torch.compile)."""
    if torch.is_autocast_enabled(t.device.type):
        with torch.autocast(device_type=t.device.type, enabled=False):
            return fn(t, *args)
    return fn(t, *args)


def like(t, dtype=None):
    """An empty tensor with t's device and (given or t's) dtype: how the C++ sampling
    functions are told the dtype and device."""
    return torch.empty(0, dtype=t.dtype if dtype is None else dtype, device=t.device)
