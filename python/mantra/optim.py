"""Optimizers on constrained models.

``DynamicTrivialization(optimizer, model, K)`` wraps any ``torch.optim`` optimizer built on
the model's parameters (SGD, Adam, RMSprop, Adagrad, …): every K steps each mantra
parametrization of the model is rebased (``update_base``), so the optimizer always works in
a chart around the current point. K = 1 is Riemannian gradient descent with that retraction,
K = 0 never rebases (a static trivialization).

``RiemannianSGD`` and ``RiemannianAdam`` are ``torch.optim.Optimizer``s whose param groups
carry a ``manifold`` (a ``mantra.manifolds`` object, default Euclidean) and a ``retraction``.
Each parameter's update is the C++ step function (``mantra::optim::riemannian_sgd_step`` /
``riemannian_adam_step``, also used by the C++ optimizers); on Euclidean groups they are
``torch.optim.SGD`` / ``torch.optim.Adam`` bit for bit.
"""

import torch
from torch.nn.utils import parametrize as P

from . import manifolds as mf
from ._C import optim as _steps
from .parametrize import MantraParametrization, originals


class DynamicTrivialization:
    def __init__(self, optimizer, model, K=100):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"DynamicTrivialization: argument 'optimizer' must be a torch.optim.Optimizer, "
                            f"got {type(optimizer).__name__}")
        if not isinstance(K, int) or K < 0:
            raise ValueError(f"DynamicTrivialization: argument 'K' must be an int >= 0 (0: never rebase), got {K!r}")
        owned = {id(p) for group in optimizer.param_groups for p in group["params"]}
        self._pairs = []  # (parametrization, its unconstrained tensors)
        for module in model.modules():
            if not P.is_parametrized(module):
                continue
            for name, plist in module.parametrizations.items():
                for p in plist:
                    if isinstance(p, MantraParametrization):
                        tensors = originals(plist)
                        if any(id(t) not in owned for t in tensors if t.requires_grad):
                            raise ValueError(f"DynamicTrivialization: the optimizer does not own the tensor of "
                                             f"the parametrization of {name!r} (build it from model.parameters() "
                                             f"after adding the constraints)")
                        self._pairs.append((p, tensors))
        if not self._pairs:
            raise ValueError("DynamicTrivialization: argument 'model' has no mantra constraints")
        self.optimizer = optimizer
        self.K = K
        self.steps = 0

    def step(self, closure=None):
        loss = self.optimizer.step(closure)
        self.steps += 1
        if self.K > 0 and self.steps % self.K == 0:
            for p, tensors in self._pairs:
                p.update_base(*tensors)
        return loss

    def zero_grad(self, set_to_none=True):
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    @property
    def state(self):
        return self.optimizer.state

    def state_dict(self):
        return {"optimizer": self.optimizer.state_dict(), "steps": self.steps, "K": self.K}

    def load_state_dict(self, state):
        self.optimizer.load_state_dict(state["optimizer"])
        self.steps = state["steps"]
        self.K = state.get("K", self.K)  # the rebase period is part of the state, as torch's hyperparameters are


class _RiemannianOptimizer(torch.optim.Optimizer):
    """Param groups with a manifold; state_dict stores the manifold's name (structure, not state)."""

    _name = "RiemannianOptimizer"

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        g, group = len(self.param_groups) - 1, self.param_groups[-1]
        M = group["manifold"]
        if M is None:
            M = group["manifold"] = mf.Euclidean()
        if not isinstance(M, mf.Manifold):
            raise TypeError(f"{self._name}: param group {g}: 'manifold' must be a mantra.manifolds object, "
                            f"got {type(M).__name__}")
        if not isinstance(group["retraction"], str):
            raise ValueError(f"{self._name}: param group {g}: 'retraction' must be a string")
        for i, p in enumerate(group["params"]):
            why = M.check_point(p.detach(), 1e-4)
            if why:
                raise ValueError(f"{self._name}: parameter {i} of param group {g} is not a point of {M.name}: {why}")

    def state_dict(self):
        sd = super().state_dict()
        for group in sd["param_groups"]:
            group["manifold"] = group["manifold"].name
        return sd

    def load_state_dict(self, state_dict):
        saved = [g["manifold"] for g in state_dict["param_groups"]]
        current = [g["manifold"] for g in self.param_groups]
        if len(saved) != len(current):
            raise ValueError(f"{self._name}: the state has {len(saved)} param groups, this optimizer {len(current)}")
        for g, (s, M) in enumerate(zip(saved, current)):
            name = s if isinstance(s, str) else s.name
            if name != M.name:
                raise ValueError(f"{self._name}: param group {g} was saved on {name} but this optimizer's group is "
                                 f"on {M.name}")
        super().load_state_dict(state_dict)
        for group, M in zip(self.param_groups, current):
            group["manifold"] = M  # the manifold is structure: the current object stays


class RiemannianSGD(_RiemannianOptimizer):
    """Riemannian SGD: momentum transported along each step, Nesterov, dampening, weight decay
    (``torch.optim.SGD``'s arguments), per param group ``manifold`` and ``retraction``;
    ``stabilize``: every N steps project parameters and momenta back (0: never)."""

    _name = "RiemannianSGD"

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *,
                 manifold=None, retraction="default", stabilize=100):
        if not lr >= 0:
            raise ValueError(f"RiemannianSGD: argument 'lr' must be >= 0, got {lr}")
        if not momentum >= 0:
            raise ValueError(f"RiemannianSGD: argument 'momentum' must be >= 0, got {momentum}")
        if not weight_decay >= 0:
            raise ValueError(f"RiemannianSGD: argument 'weight_decay' must be >= 0, got {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("RiemannianSGD: argument 'nesterov' requires momentum > 0 and dampening = 0")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                        manifold=manifold, retraction=retraction, stabilize=stabilize)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                state["step"] = state.get("step", 0) + 1
                buf = _steps.riemannian_sgd_step(
                    p, p.grad, state.get("momentum_buffer"), state["step"], lr=group["lr"],
                    momentum=group["momentum"], dampening=group["dampening"], weight_decay=group["weight_decay"],
                    nesterov=group["nesterov"], manifold=group["manifold"], retraction=group["retraction"],
                    stabilize=group["stabilize"])
                if buf is not None:
                    state["momentum_buffer"] = buf
        return loss


class RiemannianAdam(_RiemannianOptimizer):
    """Riemannian Adam (Bécigneul & Ganea): the first moment is transported along each step, the
    second moment is one scalar per manifold point; ``torch.optim.Adam``'s arguments, per param
    group ``manifold`` and ``retraction``; ``stabilize`` as in RiemannianSGD."""

    _name = "RiemannianAdam"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, *,
                 manifold=None, retraction="default", stabilize=100):
        if not lr >= 0:
            raise ValueError(f"RiemannianAdam: argument 'lr' must be >= 0, got {lr}")
        if not eps >= 0:
            raise ValueError(f"RiemannianAdam: argument 'eps' must be >= 0, got {eps}")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"RiemannianAdam: argument 'betas' must lie in [0, 1), got {tuple(betas)}")
        if not weight_decay >= 0:
            raise ValueError(f"RiemannianAdam: argument 'weight_decay' must be >= 0, got {weight_decay}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        manifold=manifold, retraction=retraction, stabilize=stabilize)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("RiemannianAdam does not support sparse gradients")
                state = self.state[p]
                if "exp_avg" not in state:
                    exp_avg, exp_avg_sq, max_sq = _steps.riemannian_adam_init(p, manifold=group["manifold"],
                                                                              amsgrad=group["amsgrad"])
                    state["step"] = 0
                    state["exp_avg"], state["exp_avg_sq"] = exp_avg, exp_avg_sq
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = max_sq
                state["step"] += 1
                _steps.riemannian_adam_step(
                    p, p.grad, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq"), state["step"],
                    lr=group["lr"], betas=group["betas"], eps=group["eps"], weight_decay=group["weight_decay"],
                    amsgrad=group["amsgrad"], manifold=group["manifold"], retraction=group["retraction"],
                    stabilize=group["stabilize"])
        return loss
