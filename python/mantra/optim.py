"""Optimizers on constrained models.

``DynamicTrivialization(optimizer, model, K)`` wraps any ``torch.optim`` optimizer built on
the model's parameters (SGD, Adam, RMSprop, Adagrad, …): every K steps each mantra
parametrization of the model is rebased (``update_base``), so the optimizer always works in
a chart around the current point. K = 1 is Riemannian gradient descent with that retraction,
K = 0 never rebases (a static trivialization).
"""

import torch
from torch.nn.utils import parametrize as P

from .parametrize import ManifoldParametrization


class DynamicTrivialization:
    def __init__(self, optimizer, model, K=100):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"DynamicTrivialization: argument 'optimizer' must be a torch.optim.Optimizer, "
                            f"got {type(optimizer).__name__}")
        if not isinstance(K, int) or K < 0:
            raise ValueError(f"DynamicTrivialization: argument 'K' must be an int >= 0 (0: never rebase), got {K!r}")
        owned = {id(p) for group in optimizer.param_groups for p in group["params"]}
        self._pairs = []  # (parametrization, its unconstrained tensor v)
        for module in model.modules():
            if not P.is_parametrized(module):
                continue
            for name, plist in module.parametrizations.items():
                for p in plist:
                    if isinstance(p, ManifoldParametrization):
                        if id(plist.original) not in owned:
                            raise ValueError(f"DynamicTrivialization: the optimizer does not own the tensor of "
                                             f"the parametrization of {name!r} (build it from model.parameters() "
                                             f"after adding the constraints)")
                        self._pairs.append((p, plist.original))
        if not self._pairs:
            raise ValueError("DynamicTrivialization: argument 'model' has no mantra constraints")
        self.optimizer = optimizer
        self.K = K
        self.steps = 0

    def step(self, closure=None):
        loss = self.optimizer.step(closure)
        self.steps += 1
        if self.K > 0 and self.steps % self.K == 0:
            for p, v in self._pairs:
                p.update_base(v)
        return loss

    def zero_grad(self, set_to_none=True):
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    def state_dict(self):
        return {"optimizer": self.optimizer.state_dict(), "steps": self.steps, "K": self.K}

    def load_state_dict(self, state):
        self.optimizer.load_state_dict(state["optimizer"])
        self.steps = state["steps"]
