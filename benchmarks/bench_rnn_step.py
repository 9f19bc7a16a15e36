"""Training-step time of the orthogonal RNN (TIMIT setup: 129 features in and out), CPU float32:

  * C++ mantra_train_rnn's model (bench_rnn_step, the same code path as the trainer),
  * mantra.nn.OrthogonalRNN from Python (the same operator),
  * the same model written in plain PyTorch: B from torch.nn.utils.parametrizations.orthogonal
    (matrix_exp), a Python loop over time steps with modReLU (how expRNN-style code is written),
  * torch.nn.LSTM with about the same parameter count (hidden --lstm-hidden, 84 at hidden 224 and
    129 features: 83k parameters against the orthogonal RNN's 83k) and a Linear read-out, Adam.

Each step is forward + backward + RMSprop (recurrent) / Adam (rest); median of repeated runs after
warm-up. Prints a table (ratios against the plain-PyTorch loop and against the LSTM); asserts
nothing. --clock cpu times the process's CPU time (steadier than wall time on a loaded machine).

    python benchmarks/bench_rnn_step.py [--hidden 224] [--steps 200] [--batch 128] [--threads 2]
        [--lstm-hidden 84] [--clock wall|cpu]
"""

import argparse
import os
import re
import statistics
import subprocess
import time

import torch
from torch import nn

import mantra

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TorchExpRNN(nn.Module):
    def __init__(self, F, H):
        super().__init__()
        self.input_kernel = nn.Linear(F, H, bias=False)
        self.recurrent = nn.utils.parametrizations.orthogonal(nn.Linear(H, H, bias=False),
                                                              orthogonal_map="matrix_exp")
        self.bias = nn.Parameter(torch.zeros(H))
        self.output_layer = nn.Linear(H, F)

    def forward(self, x):
        u = self.input_kernel(x)
        B = self.recurrent.weight
        h = u.new_zeros(x.shape[1], B.shape[0])
        out = []
        for t in range(x.shape[0]):
            z = u[t] + h @ B.T
            h = torch.sign(z) * torch.relu(torch.abs(z) + self.bias)
            out.append(h)
        return self.output_layer(torch.stack(out))


class LSTMModel(nn.Module):
    def __init__(self, F, H):
        super().__init__()
        self.lstm = nn.LSTM(F, H)
        self.output_layer = nn.Linear(H, F)

    def forward(self, x):
        return self.output_layer(self.lstm(x)[0])


CLOCK = time.perf_counter


def step_time(model, recurrent_params, x, y, repeats):
    ids = {id(p) for p in recurrent_params}
    rest = [p for p in model.parameters() if id(p) not in ids]
    opts = [torch.optim.Adam(rest, lr=1e-3)]
    if recurrent_params:
        opts.append(torch.optim.RMSprop(recurrent_params, lr=1e-4))

    def step():
        for o in opts:
            o.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        for o in opts:
            o.step()

    step(), step()
    times = []
    for _ in range(repeats):
        t = CLOCK()
        step()
        times.append(1000 * (CLOCK() - t))
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--hidden", type=int, default=224)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--features", type=int, default=129)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--lstm-hidden", type=int, default=84)
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    p.add_argument("--cpp", default=os.path.join(ROOT, "build", "benchmarks", "bench_rnn_step"))
    a = p.parse_args()
    global CLOCK
    CLOCK = time.perf_counter if a.clock == "wall" else time.process_time
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = torch.randn(a.steps, a.batch, a.features)
    y = torch.randn(a.steps, a.batch, a.features)

    rows = []
    out = subprocess.run([a.cpp, "--hidden", str(a.hidden), "--steps", str(a.steps), "--batch", str(a.batch),
                          "--features", str(a.features), "--repeats", str(a.repeats), "--threads", str(a.threads),
                          "--clock", a.clock],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    print(out, end="")
    cpp = float(re.search(r"train step \S+\s+([0-9.]+)", out).group(1))
    rows.append(("C++ mantra::nn::OrthogonalRNN (mantra_train_rnn)", cpp))

    m = mantra.nn.OrthogonalRNN(a.features, a.hidden, output_size=a.features)
    rows.append(("Python mantra.nn.OrthogonalRNN", step_time(m, list(m.parametrizations.parameters()), x, y,
                                                            a.repeats)))
    t = TorchExpRNN(a.features, a.hidden)
    rows.append(("Python loop + torch parametrizations.orthogonal",
                 step_time(t, list(t.recurrent.parametrizations.parameters()), x, y, a.repeats)))

    lstm = LSTMModel(a.features, a.lstm_hidden)
    lstm_ms = step_time(lstm, [], x, y, a.repeats)
    count = lambda mod: sum(q.numel() for q in mod.parameters())
    print(f"orthogonal RNN training step, CPU float32, {a.threads} threads: hidden {a.hidden}, {a.steps} steps, "
          f"batch {a.batch}, {a.features} features; median of {a.repeats} (ms, {a.clock} clock)")
    print(f"  {'':<52} {'ms':>9}   {'loop/x':>6} {'LSTM/x':>6}")
    base = rows[-1][1]
    for name, ms in rows + [(f"torch nn.LSTM hidden {a.lstm_hidden} + Linear, Adam", lstm_ms)]:
        print(f"  {name:<52} {ms:9.1f}   {base / ms:5.2f}x {lstm_ms / ms:5.2f}x")
    print(f"  parameters: OrthogonalRNN {count(m)} (recurrent stored as {a.hidden}², {a.hidden * (a.hidden - 1) // 2} free), "
          f"LSTM model {count(lstm)}")


if __name__ == "__main__":
    main()
