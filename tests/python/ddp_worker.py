"""The training run of test_ddp.py: a constrained model trained by DistributedDataParallel
(gloo, CPU) or in one process, with DynamicTrivialization(K=5) over RiemannianAdam."""

import os

import torch
import torch.nn as nn

import mantra

STEPS = 20
GLOBAL_BATCH = 32


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = mantra.nn.Linear(6, 8, triv="cayley")            # orthogonal constraint (rebased)
        self.b = mantra.low_rank(nn.Linear(8, 8), "weight", 3)      # composite constraint (U, V rebased)
        # A point of the Stiefel manifold trained directly by the Riemannian optimizer.
        self.frame = nn.Parameter(mantra.manifolds.Stiefel().random(8, 3, dtype=torch.float64))

    def forward(self, x):
        return torch.tanh(self.b(torch.tanh(self.a(x)))) @ self.frame


def data():
    g = torch.Generator().manual_seed(123)
    x = torch.randn(STEPS, GLOBAL_BATCH, 6, dtype=torch.float64, generator=g)
    y = torch.randn(STEPS, GLOBAL_BATCH, 3, dtype=torch.float64, generator=g)
    return x, y


def train(rank=0, world_size=1):
    torch.manual_seed(0)
    model = Model().double()
    net = model
    if world_size > 1:
        net = nn.parallel.DistributedDataParallel(model)
    frame = [model.frame]
    rest = [p for p in model.parameters() if p is not model.frame]
    inner = mantra.optim.RiemannianAdam([{"params": rest},
                                         {"params": frame, "manifold": mantra.manifolds.Stiefel()}], lr=0.02)
    opt = mantra.optim.DynamicTrivialization(inner, model, K=5)
    x, y = data()
    per_rank = GLOBAL_BATCH // world_size
    for t in range(STEPS):
        xs = x[t, rank * per_rank:(rank + 1) * per_rank]
        ys = y[t, rank * per_rank:(rank + 1) * per_rank]
        opt.zero_grad()
        (net(xs) - ys).pow(2).mean().backward()
        opt.step()
    with torch.no_grad():
        return {"a": model.a.weight.clone(), "b": model.b.weight.clone(), "frame": model.frame.detach().clone()}


def worker(rank, world_size, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method="env://", rank=rank, world_size=world_size)
    try:
        torch.save(train(rank, world_size), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        torch.distributed.destroy_process_group()
