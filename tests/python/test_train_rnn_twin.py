"""examples/rnn/train_rnn.py (the Python twin of the C++ trainer) under torchrun with DDP: two
processes (gloo, loopback) end with bitwise identical weights and match one process."""

import os
import socket
import subprocess
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "examples", "rnn", "train_rnn.py")
ARGS = ["--task", "copying", "--lag", "8", "--copying-batches", "4", "--batch", "8", "--hidden", "12",
        "--epochs", "2", "--models", "dtriv3,lstm", "--threads", "1"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, out):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"), OMP_NUM_THREADS="1")
    r = subprocess.run(cmd + ARGS + ["--out", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout
    return r.stdout


def test_torchrun_ddp_matches_one_process(tmp_path):
    one = run([sys.executable, SCRIPT], tmp_path / "one")
    assert "| dtriv3 |" in one and "| lstm |" in one
    run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
         f"--master_port={free_port()}", SCRIPT], tmp_path / "ddp")
    for model in ("dtriv3", "lstm"):
        r0 = torch.load(tmp_path / "ddp" / f"{model}.rank0.pt")
        r1 = torch.load(tmp_path / "ddp" / f"{model}.rank1.pt")
        single = torch.load(tmp_path / "one" / f"{model}.pt")
        assert r0.keys() == r1.keys() == single.keys()
        for k in r0:
            assert torch.equal(r0[k], r1[k]), f"{model}.{k} differs between ranks"
            # The global batch is the same; only the all-reduce's float32 rounding differs.
            torch.testing.assert_close(r0[k], single[k], rtol=1e-4, atol=1e-5, msg=f"{model}.{k}")


def load_twin():
    import importlib.util
    spec = importlib.util.spec_from_file_location("mantra_train_rnn_twin", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def twin_args(**kw):
    import argparse
    base = dict(target="next", features="standardized", loss_denominator="valid", batch=2, seed=0, hidden=4,
                lstm_hidden=3, init="henaff", lr=1e-3, lr_orth=1e-4, clip=0.0, lstm_recipe="adam")
    base.update(kw)
    return argparse.Namespace(**base)


def tiny_corpus():
    """Train utterances of 5 and 3 frames, valid 4, test 6 (F = 3), far from zero mean."""
    import numpy as np
    g = torch.Generator().manual_seed(3)

    def split(lengths):
        frames = torch.randn(sum(lengths), 3, generator=g) * 7 - 40
        return frames, np.cumsum([0] + lengths).astype(np.int64)
    return {"train": split([5, 3]), "valid": split([4]), "test": split([6])}


def test_recall_shifts_targets_by_one_frame():
    twin, corpus = load_twin(), tiny_corpus()
    u = corpus["valid"][0]
    for target in ("next", "recall"):
        task = twin.SpeechTask(twin_args(target=target, features="raw-db"), corpus)
        (x, y, mask), = task.eval_batches("valid")
        assert x.shape == y.shape == (3, 1, 3) and mask.shape == (3, 1)
        first, second = u[0:3], u[1:4]
        if target == "next":
            assert torch.equal(x[:, 0], first) and torch.equal(y[:, 0], second)
        else:  # the published pairing: input frame t+1, target frame t
            assert torch.equal(x[:, 0], second) and torch.equal(y[:, 0], first)


def test_max_frames_cuts_every_utterance():
    """--max-frames 4: the 5- and 6-frame utterances keep their first 4 frames (3 steps), the
    3-frame one is kept whole; the moments are those of the kept training frames (as the C++
    trainer's SpeechTask.MaxFramesCutsEveryUtterance)."""
    twin, corpus = load_twin(), tiny_corpus()
    task = twin.SpeechTask(twin_args(features="raw-db", max_frames=4), corpus)
    (x, y, mask), = task.eval_batches("test")
    u = corpus["test"][0]
    assert x.shape == (3, 1, 3)
    assert torch.equal(x[:, 0], u[0:3]) and torch.equal(y[:, 0], u[1:4])
    x, y, mask = task.train_batches(0)[0]
    assert mask.shape == (3, 2) and float(mask.sum()) == 3 + 2
    train = corpus["train"][0]
    kept = torch.cat([train[0:4], train[5:8]])
    torch.testing.assert_close(task.mean, kept.mean(0), rtol=1e-6, atol=1e-5)
    whole = twin.SpeechTask(twin_args(features="raw-db", max_frames=0), corpus)
    assert whole.eval_batches("test")[0][0].shape[0] == 5


def test_raw_db_bypasses_standardization_and_keeps_torch_readout():
    twin, corpus = load_twin(), tiny_corpus()
    raw = twin.SpeechTask(twin_args(features="raw-db"), corpus)
    std = twin.SpeechTask(twin_args(features="standardized"), corpus)
    (xr, yr, mr), = raw.eval_batches("test")
    (xs, ys, ms), = std.eval_batches("test")
    u = corpus["test"][0]
    assert torch.equal(xr[:, 0], u[:5])
    torch.testing.assert_close(xs[:, 0], (u[:5] - std.mean) / std.std, rtol=1e-6, atol=1e-5)
    p = yr + 1.5  # a prediction 1.5 dB off on every bin: MSE 2.25 either way
    lr, cr = raw.loss(p, yr, mr)
    ls, cs = std.loss((p - std.mean) / std.std, ys, ms)
    assert abs(float(lr / cr) - 2.25) < 1e-4 and abs(float(ls / cs) - 2.25) < 1e-3
    # padded denominator: 5 valid of 5 frames here, so compare on a padded train batch instead.
    padded = twin.SpeechTask(twin_args(features="raw-db", loss_denominator="padded"), corpus)
    x, y, mask = padded.train_batches(0)[0]
    l, c = padded.loss(y + 2.0, y, mask)
    assert float(c) == mask.numel() == 8 and abs(float(l / c) - 4.0 * 6 / 8) < 1e-5
    # The read-out: zero for standardized features, torch's init for raw dB.
    zero, _ = twin.make_model("dtriv10", std, twin_args(features="standardized"))
    default, _ = twin.make_model("dtriv10", raw, twin_args(features="raw-db"))
    assert float(zero.output_layer.weight.detach().abs().max()) == 0.0
    assert float(default.output_layer.weight.detach().abs().max()) > 0.0


def test_urnn_recipe_sets_forget_bias_one_and_clips():
    twin, corpus = load_twin(), tiny_corpus()
    task = twin.SpeechTask(twin_args(), corpus)
    args = twin_args(lstm_recipe="urnn")
    model, K = twin.make_model("lstm", task, args)
    H = model.lstm.hidden_size
    b = model.lstm.bias_ih_l0.detach() + model.lstm.bias_hh_l0.detach()
    assert torch.equal(b[H:2 * H], torch.ones(H))  # torch's gate order i, f, g, o
    recipe = twin.recipe_for("lstm", args)
    (opt,), _ = twin.make_optimizers(model, K, args, recipe)
    assert isinstance(opt, torch.optim.RMSprop) and opt.param_groups[0]["lr"] == 1e-3
    assert twin.recipe_for("dtriv100", args) is twin.LSTM_RECIPES["adam"]
    w = torch.zeros(4, requires_grad=True)
    w.grad = torch.tensor([-30.0, 0.5, 2.0, -0.25])
    twin.clip_gradients([w], args.clip, recipe["clip_value"])
    assert torch.equal(w.grad, torch.tensor([-1.0, 0.5, 1.0, -0.25]))
    w.grad = torch.tensor([3.0, 4.0, 0.0, 0.0])
    twin.clip_gradients([w], 1.0, 0.0)  # --clip: the global norm, for any model
    torch.testing.assert_close(w.grad, torch.tensor([0.6, 0.8, 0.0, 0.0]))


def test_tests_at_the_best_validation_epoch(tmp_path):
    """The twin's test loss is that of the best-validation weights: recomputed here from the
    saved last-epoch weights it differs, from the best ones it agrees."""
    twin = load_twin()
    import argparse
    args = argparse.Namespace(lag=6, batch=8, seed=0, copying_batches=3, hidden=8, lstm_hidden=0, init="henaff",
                              epochs=4, lr=0.05, lr_orth=1e-4, clip=0.0, lstm_recipe="adam", features="standardized")
    task = twin.CopyingTask(args)
    r = twin.run("lstm", task, args, torch.device("cpu"), 0, 1)
    valids = [h[2] for h in r["history"]]
    assert r["best_valid"] == min(valids) and r["best_epoch"] == 1 + valids.index(min(valids))
    model, _ = twin.make_model("lstm", task, args)
    model.load_state_dict(r["weights"])  # the last epoch's weights
    last_test = twin.evaluate(model, task, "test", torch.device("cpu"))
    assert r["best_epoch"] == 3  # this seed's validation loss rises in epoch 4 (1.510 -> 1.532)
    assert abs(last_test - r["test"]) > 1e-4
    best_model, _ = twin.make_model("lstm", task, args)
    best_model.load_state_dict(r["best_weights"])
    assert abs(twin.evaluate(best_model, task, "test", torch.device("cpu")) - r["test"]) < 1e-9


def test_readout_init_mean_starts_at_the_training_mean():
    """--readout-init mean: W_out = 0 and c = the training mean in the output's units (raw dB:
    the mean in dB; standardized: 0), so the first prediction is the training-mean predictor."""
    twin, corpus = load_twin(), tiny_corpus()
    for name in ("dtriv10", "lstm"):
        raw = twin.SpeechTask(twin_args(features="raw-db"), corpus)
        model, _ = twin.make_model(name, raw, twin_args(features="raw-db", readout_init="mean"))
        assert float(model.output_layer.weight.detach().abs().max()) == 0.0
        torch.testing.assert_close(model.output_layer.bias.detach(), raw.mean, rtol=0, atol=0)
        assert float(raw.mean.min()) < -30  # the corpus sits near -40 dB: the offset is real
        (x, y, mask), = raw.eval_batches("test")
        torch.testing.assert_close(model(x)[0, 0], raw.mean, rtol=1e-6, atol=1e-5)
        std = twin.SpeechTask(twin_args(), corpus)
        model, _ = twin.make_model(name, std, twin_args(readout_init="mean"))
        assert float(model.output_layer.bias.detach().abs().max()) == 0.0
    # Explicit choices override the features' default; the default follows the C++ trainer.
    assert twin.readout_init(twin_args(features="raw-db")) == "default"
    assert twin.readout_init(twin_args()) == "zero"
    assert twin.readout_init(twin_args(features="raw-db", readout_init="zero")) == "zero"


def test_early_stopping_rule_matches_the_cpp_trainer():
    """The cases of the C++ test EarlyStopping.LastCountedImprovement (tests/cpp/trainer)."""
    twin = load_twin()
    assert twin.last_counted_improvement([], 0.0) == 0
    assert twin.last_counted_improvement([5.0], 0.5) == 1
    v = [100, 90, 89.5, 89.4, 95, 88.0, 87.9]
    assert twin.last_counted_improvement(v, 0.0) == 7
    assert twin.last_counted_improvement(v, 0.01) == 6
    assert twin.last_counted_improvement([3, 2, 2, 2], 0.0) == 2


def test_patience_stops_a_model_and_tests_its_best_epoch():
    """The run of test_tests_at_the_best_validation_epoch (best epoch 3, worse in epoch 4) with
    --patience 1 and 8 epochs allowed stops after epoch 4 and tests epoch 3's weights; with a
    min_delta no epoch after the first can count, so --patience 2 stops after epoch 3."""
    twin = load_twin()
    import argparse
    base = dict(lag=6, batch=8, seed=0, copying_batches=3, hidden=8, lstm_hidden=0, init="henaff", epochs=8,
                lr=0.05, lr_orth=1e-4, clip=0.0, lstm_recipe="adam", features="standardized")
    task = twin.CopyingTask(argparse.Namespace(**base))
    r = twin.run("lstm", task, argparse.Namespace(**base, patience=1, min_delta=0.0), torch.device("cpu"), 0, 1)
    assert [h[0] for h in r["history"]] == [1, 2, 3, 4] and r["best_epoch"] == 3
    valids = [h[2] for h in r["history"]]
    assert valids[3] > valids[2] and r["best_valid"] == valids[2]
    # min_delta 0.5: a counted improvement must halve the loss, which none of epochs 2-3 does.
    r = twin.run("lstm", task, argparse.Namespace(**base, patience=2, min_delta=0.5), torch.device("cpu"), 0, 1)
    valids = [h[2] for h in r["history"]]
    assert len(valids) == 3 and all(v > 0.5 * valids[0] for v in valids[1:])
    # The best-validation weights are still the ones tested (a smaller loss that did not "count").
    assert r["best_valid"] == min(valids)
