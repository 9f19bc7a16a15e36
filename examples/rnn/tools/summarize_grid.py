"""Summarizes the controlled grid of examples/rnn/tools/controlled_grid.sh into markdown tables
(test MSE at the best-validation epoch, mean ± half the range over the seeds, per model and
cell; whether each run was stopped by the early-stopping rule) and copies each cell's
results.md and curves.svg (per seed) into a folder (docs/results/ for the README):

    python examples/rnn/tools/summarize_grid.py results/grid docs/results [epoch cap]

The grid folder holds seed<S>/timit_<target>_<features>/ (the trainer's --out per run). A run
was stopped by the rule when it ran fewer epochs than the cap (default 300).
"""

import csv
import os
import re
import shutil
import sys

CELLS = [("next", "standardized"), ("next", "raw-db"), ("recall", "standardized"), ("recall", "raw-db")]
NAMES = {"exprnn": "EXPRNN", "dtrivinf": "DTRIV∞", "dtriv100": "DTRIV100", "dtriv1": "DTRIV1",
         "lstm-adam": "LSTM, Adam recipe", "lstm-urnn": "LSTM, uRNN recipe"}


def read_results(path):
    rows, refs = {}, {}
    for line in open(path):
        m = re.match(r"\| (\S+) +\| (\d+) +\| (\d+) +\| (\d+) \(best (\d+)\) +\| ([0-9.]+) +\| ([0-9.]+) +\| ([0-9.]+) +\| (\S+) +\|", line)
        if m:
            rows[m[1]] = dict(hidden=int(m[2]), params=int(m[3]), epochs=int(m[4]), best=int(m[5]),
                              valid=float(m[6]), test=float(m[7]), ms=float(m[8]))
        if line.startswith("References:"):
            for label, value in re.findall(r" ([^;=]+?) = ([0-9.]+);", line):
                refs[label.strip()] = float(value)
    folder = os.path.dirname(path)
    for model, row in rows.items():
        with open(os.path.join(folder, model, "log.csv")) as f:
            log = list(csv.DictReader(f))
        row["seconds"] = float(log[-1]["seconds"]) if log else 0.0
    return rows, refs


def mean_spread(values):
    m = sum(values) / len(values)
    return m, (max(values) - min(values)) / 2


def minutes(seconds):
    return f"{seconds / 60:.1f}"


def main():
    grid, dest = sys.argv[1], sys.argv[2]
    cap = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    os.makedirs(dest, exist_ok=True)
    seeds = sorted(int(d[4:]) for d in os.listdir(grid) if re.fullmatch(r"seed\d+", d))
    results = {}  # (cell, seed) -> (rows, refs)
    for seed in seeds:
        for target, features in CELLS:
            folder = os.path.join(grid, f"seed{seed}", f"timit_{target}_{features}")
            if not os.path.exists(os.path.join(folder, "results.md")):
                continue
            results[((target, features), seed)] = read_results(os.path.join(folder, "results.md"))
            for name in ("results.md", "curves.svg"):
                ext = name.split(".")[1]
                shutil.copy(os.path.join(folder, name),
                            os.path.join(dest, f"timit_grid_{target}_{features}_seed{seed}.{ext}"))
    cells = [c for c in CELLS if any((c, s) in results for s in seeds)]
    models = []
    for rows, _ in results.values():
        models += [m for m in rows if m not in models]

    def runs(model, cell):
        return [results[(cell, s)][0][model] for s in seeds if (cell, s) in results and model in results[(cell, s)][0]]

    print("Test MSE (dB²) at the best-validation epoch, mean ± half the range over the seeds "
          f"({', '.join(str(s) for s in seeds)}); n = runs; † = a run stopped by the epoch cap ({cap}), "
          "not by the rule.\n")
    print("| model | hidden | parameters | " + " | ".join(f"{t}, {f}" for t, f in cells) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in cells) + " |")
    for m in models:
        any_row = next(rows[m] for rows, _ in results.values() if m in rows)
        entries = []
        for c in cells:
            rs = runs(m, c)
            if not rs:
                entries.append("—")
                continue
            mu, sp = mean_spread([r["test"] for r in rs])
            capped = "†" if any(r["epochs"] >= cap for r in rs) else ""
            entries.append(f"{mu:.1f} ± {sp:.1f} (n={len(rs)}){capped}")
        print(f"| {NAMES.get(m, m)} | {any_row['hidden']} | {any_row['params']:,} | " + " | ".join(entries) + " |")
    for label in ("repeat the previous frame (valid)", "output the input frame (valid)", "predict the training mean (valid)"):
        vals = []
        for c in cells:
            v = [results[(c, s)][1].get(label) for s in seeds if (c, s) in results]
            vals.append(next((x for x in v if x is not None), None))
        if any(v is not None for v in vals):
            print(f"| *{label}* | | | " + " | ".join("" if v is None else f"{v:.1f}" for v in vals) + " |")

    print("\nPer run: test MSE, best epoch / epochs run, stopped by the rule (yes) or the cap (no), minutes.\n")
    print("| cell | seed | " + " | ".join(NAMES.get(m, m) for m in models) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in models) + " |")
    total = 0.0
    for c in cells:
        for s in seeds:
            if (c, s) not in results:
                continue
            rows = results[(c, s)][0]
            entries = []
            for m in models:
                r = rows.get(m)
                if r is None:
                    entries.append("—")
                    continue
                total += r["seconds"]
                rule = "yes" if r["epochs"] < cap else "no"
                entries.append(f"{r['test']:.1f}, {r['best']}/{r['epochs']}, {rule}, {minutes(r['seconds'])}")
            print(f"| {c[0]}, {c[1]} | {s} | " + " | ".join(entries) + " |")
    print(f"\nTraining time summed over the runs: {minutes(total)} minutes (one thread per run).")


if __name__ == "__main__":
    main()
