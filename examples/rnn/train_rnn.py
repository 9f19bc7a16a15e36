"""The Python twin of mantra_train_rnn: orthogonal RNNs (dynamic trivialization) and an LSTM on
the TIMIT-style speech task or the copying task, with the Python API, in one process or under
torchrun with DistributedDataParallel (gloo on CPU, NCCL on GPU):

    python examples/rnn/train_rnn.py --models dtriv100,lstm --epochs 3
    torchrun --nproc_per_node=2 examples/rnn/train_rnn.py --models dtriv100 --epochs 3

Each global batch is split evenly over the ranks, so a run on P processes takes the same steps
as one process (up to float rounding). The speech corpus is the C++ programs' cache, built (or
found) by the mantra_speech_corpus tool; see examples/rnn/data/README.md for its format.
"""

import argparse
import csv
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

import mantra

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def log(*args):
    if not dist.is_initialized() or dist.get_rank() == 0:
        print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- data

def load_split(folder):
    meta = dict(line.split(" ", 1) for line in open(os.path.join(folder, "meta.txt")).read().splitlines() if " " in line)
    F = int(meta["feature_dim"])
    frames = np.fromfile(os.path.join(folder, "frames.f32"), "<f4").reshape(-1, F)
    offsets = np.fromfile(os.path.join(folder, "offsets.i64"), "<i8")
    return torch.from_numpy(frames), offsets


def speech_corpus(args):
    tool = args.corpus_tool or os.path.join(ROOT, "build", "examples", "rnn", "data", "mantra_speech_corpus")
    if not os.path.exists(tool):
        raise SystemExit(f"train_rnn.py: the corpus tool {tool} is missing: build the project first "
                         "(bash scripts/main.sh) or pass --corpus-tool")
    cmd = [tool, "--train", str(args.train_utts), "--valid", str(args.valid_utts), "--test", str(args.test_utts),
           "--seed", str(args.seed if getattr(args, "data_seed", -1) < 0 else args.data_seed)]
    if args.timit_root:
        cmd = [tool, "--timit", args.timit_root]
    if args.cache_dir:
        cmd += ["--cache-dir", args.cache_dir]
    # One process builds the cache; the others wait and then read it.
    path = None
    if not dist.is_initialized() or dist.get_rank() == 0:
        path = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
    if dist.is_initialized():
        box = [path]
        dist.broadcast_object_list(box, src=0)
        path = box[0]
    return {split: load_split(os.path.join(path, split)) for split in ("train", "valid", "test")}


def crop_sequences(frames, offsets, max_frames):
    """The first max_frames frames of every sequence: (frames, offsets) as load_split gives."""
    keep = [frames[offsets[i]: min(offsets[i + 1], offsets[i] + max_frames)] for i in range(len(offsets) - 1)]
    return torch.cat(keep), np.cumsum([0] + [len(k) for k in keep]).astype(np.int64)


class SpeechTask:
    """Speech prediction as the C++ trainer: next frame (--target next: input frame t, target
    frame t+1) or one-step recall (--target recall: input frame t+1, target frame t, the
    published pairing); standardized features (mapped back to dB for the loss) or raw dB
    (--features raw-db); MSE in dB² per bin over the valid frames or all padded frames
    (--loss-denominator); --max-frames N cuts every utterance to its first N frames. `corpus`
    ({split: (frames, offsets)}) skips the corpus tool (tests)."""

    def __init__(self, args, corpus=None):
        self.corpus = corpus if corpus is not None else speech_corpus(args)
        max_frames = getattr(args, "max_frames", 0)
        if max_frames:
            self.corpus = {split: crop_sequences(*fo, max_frames) for split, fo in self.corpus.items()}
        self.recall = args.target == "recall"
        self.raw = args.features == "raw-db"
        self.padded = args.loss_denominator == "padded"
        frames, _ = self.corpus["train"]
        self.mean = frames.mean(0)
        self.std = frames.std(0).clamp_min(1e-3)
        self.input_size = self.output_size = frames.shape[1]
        self.batch = args.batch
        self.seed = args.seed

    def mean_output(self):
        """The training mean in the output's own units (dB for raw dB, 0 for standardized)."""
        return self.mean.clone() if self.raw else torch.zeros_like(self.mean)

    def _pad(self, split, idx):
        frames, offsets = self.corpus[split]
        lengths = [int(offsets[i + 1] - offsets[i]) for i in idx]
        T = max(lengths)
        x = torch.zeros(T, len(idx), frames.shape[1])
        mask = torch.zeros(T, len(idx))
        for j, i in enumerate(idx):
            x[: lengths[j], j] = frames[offsets[i]: offsets[i + 1]]
            mask[: lengths[j], j] = 1
        first, second = x[:-1], x[1:]
        inp, target = (second, first) if self.recall else (first, second)
        # A step counts when both its frames are in the utterance: mask of the later frame.
        return (inp.clone() if self.raw else (inp - self.mean) / self.std, target, mask[1:])

    def train_batches(self, epoch):
        n = len(self.corpus["train"][1]) - 1
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 1000003 + epoch)).tolist()
        return [self._pad("train", perm[b: b + self.batch]) for b in range(0, n, self.batch)]

    def eval_batches(self, split):
        n = len(self.corpus[split][1]) - 1
        return [self._pad(split, list(range(b, min(n, b + self.batch)))) for b in range(0, n, self.batch)]

    def loss(self, out, target, mask):
        """(sum of per-frame MSE over valid frames, number of valid frames)."""
        pred = out if self.raw else out * self.std + self.mean
        count = torch.tensor(float(mask.numel())) if self.padded else mask.sum()
        return ((pred - target) ** 2).mean(-1).mul(mask).sum(), count


class CopyingTask:
    """expRNN's copying task: 10 symbols, lag L; cross-entropy per step."""

    def __init__(self, args):
        self.lag, self.batch, self.seed, self.batches = args.lag, args.batch, args.seed, args.copying_batches
        self.input_size, self.output_size = 10, 9

    def _make(self, seed):
        g = torch.Generator().manual_seed(seed)
        L, B = self.lag, self.batch
        data = torch.randint(1, 9, (10, B), generator=g)
        # L blanks, then the marker at step L+10 with the first recall step (expRNN's layout).
        x = torch.cat([data, torch.zeros(L, B, dtype=torch.long), torch.full((1, B), 9),
                       torch.zeros(9, B, dtype=torch.long)])
        y = torch.cat([torch.zeros(L + 10, B, dtype=torch.long), data])
        return nn.functional.one_hot(x, 10).float(), y, None

    def train_batches(self, epoch):
        return [self._make(self.seed * 1000003 + epoch * 10007 + i + 1) for i in range(self.batches)]

    def eval_batches(self, split):
        return [self._make((1 if split == "valid" else 2) * 999983 + i) for i in range(4)]

    def loss(self, out, target, mask):
        l = nn.functional.cross_entropy(out.reshape(-1, 9), target.reshape(-1), reduction="sum")
        return l, torch.tensor(float(target.numel()))


# ---------------------------------------------------------------- models

class LSTMModel(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size)
        self.output_layer = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.output_layer(self.lstm(x)[0])

    def set_forget_bias(self, value):
        """b_f = value: b_ih's forget slice (torch's gate order i, f, g, o) = value, b_hh's = 0."""
        H = self.lstm.hidden_size
        with torch.no_grad():
            self.lstm.bias_ih_l0[H:2 * H].fill_(value)
            self.lstm.bias_hh_l0[H:2 * H].zero_()


# The LSTM recipes (as the C++ trainer's models.h lstm_recipe): adam = Adam(--lr), torch's init;
# urnn = the uRNN TIMIT pipeline's LSTM: forget-gate bias 1, RMSprop lr 1e-3, elementwise
# gradient clipping at 1.
LSTM_RECIPES = {"adam": dict(optimizer="adam", lr=None, clip_value=0.0, forget_bias=None),
                "urnn": dict(optimizer="rmsprop", lr=1e-3, clip_value=1.0, forget_bias=1.0)}


def recipe_for(name, args):
    return LSTM_RECIPES[args.lstm_recipe] if name == "lstm" else LSTM_RECIPES["adam"]


def clip_gradients(params, clip_norm, clip_value):
    """By global norm (clip_norm > 0), then elementwise (clip_value > 0)."""
    params = list(params)
    if clip_norm > 0:
        torch.nn.utils.clip_grad_norm_(params, clip_norm)
    if clip_value > 0:
        torch.nn.utils.clip_grad_value_(params, clip_value)


def degrees_of_freedom(model):
    n = sum(p.numel() for name, p in model.named_parameters() if "parametrizations" not in name)
    for module in model.modules():
        if isinstance(module, mantra.nn.OrthogonalRNN):
            n += module.hidden_size * (module.hidden_size - 1) // 2
    return n


def make_model(name, task, args):
    torch.manual_seed(args.seed)
    if name == "lstm":
        H = args.hidden
        target = H * task.input_size + H * (H - 1) // 2 + H + H * task.output_size + task.output_size
        a, b, c = 4, 4 * (task.input_size + 2) + task.output_size, task.output_size - target
        h = args.lstm_hidden or max(1, round((-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)))
        model, K = LSTMModel(task.input_size, h, task.output_size), None
        if recipe_for(name, args)["forget_bias"] is not None:
            model.set_forget_bias(recipe_for(name, args)["forget_bias"])
    elif name == "exprnn":  # B = exp(A) at the identity, A trained directly
        model, K = mantra.nn.OrthogonalRNN(task.input_size, args.hidden, output_size=task.output_size,
                                           init=args.init, chart_at_identity=True), 0
    else:
        if not (name == "dtrivinf" or (name.startswith("dtriv") and name[5:].isdigit() and int(name[5:]) > 0)):
            raise SystemExit(f"train_rnn.py: argument --models: unknown model '{name}' (dtrivK, dtrivinf, exprnn, lstm)")
        K = 0 if name == "dtrivinf" else int(name[5:])
        model = mantra.nn.OrthogonalRNN(task.input_size, args.hidden, output_size=task.output_size, init=args.init)
    readout = readout_init(args)
    if readout in ("zero", "mean"):
        with torch.no_grad():  # zero read-out: every model starts at the trivial prediction (as the C++ trainer)
            model.output_layer.weight.zero_()
            model.output_layer.bias.zero_()
            if readout == "mean" and hasattr(task, "mean_output"):  # raw dB: start at the training mean
                model.output_layer.bias.copy_(task.mean_output())
    return model, K  # default: torch's read-out init, as the published pipeline


def readout_init(args):
    """--readout-init, defaulting as the C++ trainer: torch's init with raw dB, else zero."""
    chosen = getattr(args, "readout_init", "")
    if chosen:
        return chosen
    return "default" if getattr(args, "features", "standardized") == "raw-db" else "zero"


def last_counted_improvement(valid_losses, min_delta):
    """The 1-based epoch of the last validation loss that counted as an improvement: the first,
    then each below (1 - min_delta) x the last counted one; 0 for none. The C++ trainer's rule
    (examples/rnn/models.cpp), tested on the same cases."""
    at, ref = 0, math.inf
    for i, v in enumerate(valid_losses):
        if at == 0 or v < ref * (1 - min_delta):
            at, ref = i + 1, v
    return at


def make_optimizers(model, K, args, recipe=LSTM_RECIPES["adam"]):
    if K is None:
        if recipe["optimizer"] == "rmsprop":
            return [torch.optim.RMSprop(model.parameters(), lr=recipe["lr"])], None
        return [torch.optim.Adam(model.parameters(), lr=args.lr)], None
    constrained = [p for m in model.modules() if hasattr(m, "parametrizations") for p in m.parametrizations.parameters()]
    ids = {id(p) for p in constrained}
    rest = [p for p in model.parameters() if id(p) not in ids]
    dtriv = mantra.optim.DynamicTrivialization(torch.optim.RMSprop(constrained, lr=args.lr_orth), model, K=K)
    return [torch.optim.Adam(rest, lr=args.lr)], dtriv


# ---------------------------------------------------------------- training

def shard(batch, rank, world):
    """This rank's contiguous block of the columns of a global batch."""
    x, y, mask = batch
    N = x.shape[1]
    per = N // world
    lo, hi = rank * per, (rank + 1) * per if rank < world - 1 else N
    return x[:, lo:hi], y[:, lo:hi], None if mask is None else mask[:, lo:hi]


def evaluate(model, task, split, device):
    total = count = 0.0
    with torch.no_grad():
        for x, y, mask in task.eval_batches(split):
            l, c = task.loss(model(x.to(device)), y.to(device), None if mask is None else mask.to(device))
            total += float(l)
            count += float(c)
    return total / count


def run(name, task, args, device, rank, world):
    model, K = make_model(name, task, args)
    model.to(device)
    net = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    recipe = recipe_for(name, args)
    adam, dtriv = make_optimizers(model, K, args, recipe)
    optimizers = adam + ([dtriv] if dtriv else [])
    history, best, start = [], math.inf, time.time()
    best_state, best_epoch = None, 0
    step_time, steps = 0.0, 0
    patience, min_delta = getattr(args, "patience", 0), getattr(args, "min_delta", 0.0)
    for epoch in range(args.epochs):
        if patience > 0 and history and history[-1][0] - last_counted_improvement([h[2] for h in history],
                                                                                  min_delta) >= patience:
            log(f"[{name}] early stop after epoch {history[-1][0]}: {patience} epochs without a "
                f"{100 * min_delta:g} % validation improvement")
            break
        batches = task.train_batches(epoch)
        tot = cnt = 0.0
        t0 = time.time()
        for i, batch in enumerate(batches):
            x, y, mask = shard(batch, rank, world)
            x, y = x.to(device), y.to(device)
            mask = None if mask is None else mask.to(device)
            s0 = time.perf_counter()
            for o in optimizers:
                o.zero_grad()
            # The loss of the global batch: this rank's sum over its frames / the global count.
            l, c = task.loss(net(x), y, mask)
            if not math.isfinite(float(l.detach())):  # as the C++ trainer: never train on NaN/Inf
                raise RuntimeError(f"[{name}] the training loss is {float(l.detach())} in epoch {epoch + 1}, batch "
                                   f"{i + 1}; the model's parameters or the data hold NaN/Inf. Stopping")
            global_count = c.clone()
            if world > 1:
                dist.all_reduce(global_count)
            (l * world / global_count).backward()  # DDP averages gradients over the ranks
            clip_gradients(model.parameters(), args.clip, recipe["clip_value"])
            for o in optimizers:
                o.step()
            step_time += time.perf_counter() - s0
            steps += 1
            tot += float(l.detach())
            cnt += float(c)
            if (i + 1) % max(1, len(batches) // 10) == 0 or i + 1 == len(batches):
                el = time.time() - t0
                eta = el / (i + 1) * (len(batches) - i - 1)
                log(f"[{name}] epoch {epoch + 1}/{args.epochs} {i + 1}/{len(batches)} loss {tot / cnt:.4g} "
                    f"{cnt / el:.3g} items/s (rank 0) ETA {eta:.0f}s")
        valid = evaluate(model, task, "valid", device)
        if valid < best:  # keep the best-validation weights: the test uses them (as the C++ trainer)
            best, best_epoch = valid, epoch + 1
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        history.append((epoch + 1, tot / cnt, valid, time.time() - start))
        log(f"[{name}] epoch {epoch + 1}/{args.epochs} train {tot / cnt:.5g} valid {valid:.5g}")
    weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}  # the last epoch's
    if best_state is not None:
        model.load_state_dict(best_state)
    test = evaluate(model, task, "test", device)
    return {"model": name, "parameters": degrees_of_freedom(model), "best_valid": best, "best_epoch": best_epoch,
            "test": test,
            "ms_per_step": 1000 * step_time / max(steps, 1), "seconds": time.time() - start, "history": history,
            "weights": weights, "best_weights": best_state}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="timit", choices=["timit", "copying"])
    p.add_argument("--models", default="dtriv100,lstm")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--lstm-hidden", type=int, default=0)
    p.add_argument("--init", default="henaff")
    p.add_argument("--epochs", type=int, default=3, help="the most epochs")
    p.add_argument("--patience", type=int, default=0,
                   help="early stopping: stop a model after P epochs without a counted validation improvement (0: off)")
    p.add_argument("--min-delta", type=float, default=0.0,
                   help="with --patience: a new best counts only below (1 - R) x the last counted one")
    p.add_argument("--readout-init", default="", choices=["", "zero", "default", "mean"],
                   help="zero (W_out = 0, c = 0; the default except with raw dB) | default (torch's init; the "
                        "default with raw dB) | mean (W_out = 0, c = the training mean in the output's units)")
    p.add_argument("--batch", type=int, default=32, help="global batch (split over the ranks)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-orth", type=float, default=1e-4)
    p.add_argument("--clip", type=float, default=0.0, help="clip the gradient norm of any model (0: off)")
    p.add_argument("--lstm-recipe", default="adam", choices=sorted(LSTM_RECIPES),
                   help="adam (Adam --lr) | urnn (forget bias 1, RMSprop 1e-3, elementwise clipping at 1)")
    p.add_argument("--target", default="next", choices=["next", "recall"])
    p.add_argument("--features", default="standardized", choices=["standardized", "raw-db"])
    p.add_argument("--loss-denominator", default="valid", choices=["valid", "padded"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-seed", type=int, default=-1, help="the synthetic corpus's seed (default: --seed)")
    p.add_argument("--max-frames", type=int, default=0, help="cut every utterance to its first N frames (0: whole)")
    p.add_argument("--train-utts", type=int, default=800)
    p.add_argument("--valid-utts", type=int, default=96)
    p.add_argument("--test-utts", type=int, default=96)
    p.add_argument("--timit-root", default="")
    p.add_argument("--cache-dir", default="")
    p.add_argument("--corpus-tool", default="")
    p.add_argument("--lag", type=int, default=1000)
    p.add_argument("--copying-batches", type=int, default=100)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", default="", help="folder for log CSVs and final weights (rank 0)")
    args = p.parse_args()
    if args.max_frames != 0 and args.max_frames < 2:
        raise SystemExit(f"train_rnn.py: argument --max-frames must be 0 (whole utterances) or >= 2, got {args.max_frames}")
    if not (math.isfinite(args.clip) and args.clip >= 0):
        raise SystemExit(f"train_rnn.py: argument --clip must be >= 0 (0: off), got {args.clip}")
    if args.patience < 0:
        raise SystemExit(f"train_rnn.py: argument --patience must be >= 0 (0: off), got {args.patience}")
    if not (math.isfinite(args.min_delta) and 0 <= args.min_delta < 1):
        raise SystemExit(f"train_rnn.py: argument --min-delta must be in [0, 1) (a relative improvement), "
                         f"got {args.min_delta}")

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        backend = "nccl" if args.device == "cuda" else "gloo"
        dist.init_process_group(backend)
        if args.batch % world:
            raise SystemExit(f"train_rnn.py: --batch {args.batch} must be divisible by the {world} processes")
    device = torch.device(args.device, int(os.environ.get("LOCAL_RANK", "0"))) if args.device == "cuda" else torch.device("cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    task = SpeechTask(args) if args.task == "timit" else CopyingTask(args)
    results = [run(name, task, args, device, rank, world) for name in args.models.split(",") if name]
    if rank == 0:
        print(f"\n| model | parameters | best valid (epoch) | test (best valid epoch) | ms/step | time |")
        print("|---|---|---|---|---|---|")
        for r in results:
            print(f"| {r['model']} | {r['parameters']} | {r['best_valid']:.4f} ({r['best_epoch']}) | {r['test']:.4f} | "
                  f"{r['ms_per_step']:.1f} | {r['seconds']:.1f}s |")
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            for r in results:
                with open(os.path.join(args.out, f"{r['model']}.csv"), "w", newline="") as f:
                    w = csv.writer(f)
                    w.writerow(["epoch", "train_loss", "valid_loss", "seconds"])
                    w.writerows(r["history"])
                torch.save(r["weights"], os.path.join(args.out, f"{r['model']}.pt"))
    if world > 1:
        # Every rank saves its weights when asked, so a test can check they are identical.
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            for r in results:
                torch.save(r["weights"], os.path.join(args.out, f"{r['model']}.rank{rank}.pt"))
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
