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
    r"""Dynamic trivialization (Lezcano-Casado 2019): any torch optimizer, rebased every K steps.

    .. math:: v \leftarrow \mathrm{step}(v); \quad \text{every } K \text{ steps: } B \leftarrow \phi_B(v),\ v \leftarrow 0

    Each step is the wrapped optimizer's step on the unconstrained tensors ``v``; every ``K``
    steps every mantra parametrization of ``model`` moves its base to the current point
    (``update_base``, the weight does not change), so the optimizer works in a chart around
    the current point. K = 1 is Riemannian gradient descent with the constraint's retraction,
    K = 0 never rebases (a static trivialization). ``zero_grad``, ``param_groups``, ``state``,
    ``state_dict`` and ``load_state_dict`` forward to the optimizer (the state also keeps the
    step count).

    Args:
        optimizer (torch.optim.Optimizer): built on ``model.parameters()`` after the
            constraints were added (it must own every parametrization's tensors).
        model (nn.Module): a module with at least one mantra constraint.
        K (int): steps between rebases, >= 0 (0: never). Default: ``100``.

    Example::

        >>> model = mantra.orthogonal(nn.Linear(8, 8), "weight")
        >>> opt = mantra.optim.DynamicTrivialization(torch.optim.Adam(model.parameters(), lr=1e-2), model, K=10)
        >>> model(torch.randn(4, 8)).sum().backward()
        >>> opt.step(); opt.zero_grad()
    """

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
        """One step of the wrapped optimizer, then the rebase when the step count is a multiple of K.

        Args:
            closure (callable, optional): passed to the optimizer's ``step``. Default: ``None``.

        Returns the optimizer's return value (the closure's loss).
        """
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

    def __init__(self, params, defaults, manifold, retraction, stabilize):
        # The geometry of every group, after the optimizer's own hyperparameters.
        super().__init__(params, dict(defaults, manifold=manifold, retraction=retraction, stabilize=stabilize))

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

    @torch.no_grad()
    def step(self, closure=None):
        """One step on every parameter that has a gradient.

        Args:
            closure (callable, optional): re-evaluates the model and returns the loss. Default: ``None``.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(group, p)
        return loss

    def _update(self, group, p):
        """The optimizer's update of parameter ``p`` of ``group`` (its gradient is set)."""
        raise NotImplementedError

    @staticmethod
    def _geometry(group):
        """The geometry keywords of the C++ step functions, from a param group."""
        return dict(manifold=group["manifold"], retraction=group["retraction"], stabilize=group["stabilize"])

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
    r"""Riemannian SGD with ``torch.optim.SGD``'s arguments, on the manifold of each param group.

    .. math:: g = \mathrm{rgrad}_X(\nabla f + \lambda X), \quad m \leftarrow \mu\, \Gamma(m) + (1 - \tau) g, \quad X \leftarrow R_X(-\eta\, m)

    ``rgrad`` is the manifold's ``egrad_to_rgrad`` (λ the weight decay, τ the dampening), Γ the
    transport of the momentum buffer along the previous step, R the retraction; ``nesterov``
    steps along ``g + μ m``. Each parameter's update is the C++ step
    ``mantra::optim::riemannian_sgd_step`` (the C++ optimizer's too); on Euclidean groups it is
    ``torch.optim.SGD`` bit for bit. Every parameter must be a point of its group's manifold
    (within 1e-4) when added. ``state_dict`` stores each group's manifold by name.

    Args:
        params (iterable): parameters or param-group dicts; a group may set its own ``manifold``,
            ``retraction``, ``stabilize`` and the hyperparameters below.
        lr (float): learning rate η >= 0. Default: ``1e-3``.
        momentum (float): momentum μ >= 0. Default: ``0.0``.
        dampening (float): dampening τ of the momentum. Default: ``0.0``.
        weight_decay (float): λ >= 0, added to the Euclidean gradient. Default: ``0.0``.
        nesterov (bool): Nesterov momentum (needs momentum > 0 and dampening = 0). Default: ``False``.
        manifold (mantra.manifolds.Manifold, optional): keyword only; ``None`` is
            ``Euclidean()``. Default: ``None``.
        retraction (str): keyword only; ``"default"`` (the manifold's first retraction) or a name
            of ``manifold.retractions``. Default: ``"default"``.
        stabilize (int): keyword only; every N steps the parameters are projected back onto the
            manifold and the momenta onto its tangent spaces (0: never). Default: ``100``.

    Example::

        >>> St = mantra.manifolds.Stiefel()
        >>> X = nn.Parameter(St.random(5, 3))
        >>> opt = mantra.optim.RiemannianSGD([X], lr=0.1, momentum=0.9, manifold=St)
        >>> (X ** 3).sum().backward(); opt.step()
        >>> St.check_point(X.detach())
        ''
    """

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
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, defaults, manifold, retraction, stabilize)

    def _update(self, group, p):
        state = self.state[p]
        state["step"] = state.get("step", 0) + 1
        buf = _steps.riemannian_sgd_step(
            p, p.grad, state.get("momentum_buffer"), state["step"], lr=group["lr"], momentum=group["momentum"],
            dampening=group["dampening"], weight_decay=group["weight_decay"], nesterov=group["nesterov"],
            **self._geometry(group))
        if buf is not None:
            state["momentum_buffer"] = buf


class RiemannianAdam(_RiemannianOptimizer):
    r"""Riemannian Adam (Bécigneul & Ganea 2019) with ``torch.optim.Adam``'s arguments, per param group manifold.

    .. math:: m \leftarrow \beta_1 \Gamma(m) + (1 - \beta_1) g, \quad v \leftarrow \beta_2 v + (1 - \beta_2) \|g\|_X^2, \quad X \leftarrow R_X\Big(-\eta \frac{\hat m}{\sqrt{\hat v} + \epsilon}\Big)

    with g the Riemannian gradient (``egrad_to_rgrad`` of the Euclidean gradient plus weight
    decay), Γ the transport of the first moment along the previous step, v one scalar per
    manifold point (the squared norm of g in the manifold's metric; entrywise on Euclidean),
    hats the bias corrections, R the retraction. Each parameter's update is the C++ step
    ``mantra::optim::riemannian_adam_step``; on Euclidean groups it is ``torch.optim.Adam``
    bit for bit. Every parameter must be a point of its group's manifold (within 1e-4); sparse
    gradients are refused.

    Args:
        params (iterable): parameters or param-group dicts (a group may set its own options).
        lr (float): learning rate η >= 0. Default: ``1e-3``.
        betas (tuple of float): (β₁, β₂) in [0, 1). Default: ``(0.9, 0.999)``.
        eps (float): ε >= 0. Default: ``1e-8``.
        weight_decay (float): λ >= 0, added to the Euclidean gradient. Default: ``0.0``.
        amsgrad (bool): use the running maximum of v. Default: ``False``.
        manifold (mantra.manifolds.Manifold, optional): keyword only; ``None`` is
            ``Euclidean()``. Default: ``None``.
        retraction (str): keyword only; ``"default"`` or a name of ``manifold.retractions``.
            Default: ``"default"``.
        stabilize (int): keyword only; every N steps project parameters and moments back
            (0: never). Default: ``100``.

    Example::

        >>> Sp = mantra.manifolds.Sphere()
        >>> x = nn.Parameter(Sp.random(10, 3))
        >>> opt = mantra.optim.RiemannianAdam([x], lr=1e-2, manifold=Sp)
        >>> x[:, 0].sum().backward(); opt.step()
        >>> Sp.check_point(x.detach())
        ''
    """

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
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        super().__init__(params, defaults, manifold, retraction, stabilize)

    def _update(self, group, p):
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
            amsgrad=group["amsgrad"], **self._geometry(group))
