"""Summarizes the controlled grid of examples/rnn/tools/controlled_grid.sh into one markdown
table (test MSE at the best-validation epoch, per model and cell) and copies each cell's
results.md and curves.svg into a folder (docs/results/ for the README):

    python examples/rnn/tools/summarize_grid.py results/grid docs/results
"""

import os
import re
import shutil
import sys

CELLS = [("next", "standardized"), ("next", "raw-db"), ("recall", "standardized"), ("recall", "raw-db")]


def read_results(path):
    rows, refs = {}, {}
    for line in open(path):
        m = re.match(r"\| (\S+) +\| (\d+) +\| (\d+) +\| (\d+) \(best (\d+)\) +\| ([0-9.]+) +\| ([0-9.]+) +\| ([0-9.]+) +\| (\S+) +\|", line)
        if m:
            rows[m[1]] = dict(hidden=int(m[2]), params=int(m[3]), epochs=int(m[4]), best=int(m[5]),
                              valid=float(m[6]), test=float(m[7]), ms=float(m[8]), time=m[9])
        if line.startswith("References:"):
            for label, value in re.findall(r" ([^;=]+?) = ([0-9.]+);", line):
                refs[label.strip()] = float(value)
    return rows, refs


def main():
    grid, dest = sys.argv[1], sys.argv[2]
    os.makedirs(dest, exist_ok=True)
    results = {}
    for target, features in CELLS:
        folder = os.path.join(grid, f"timit_{target}_{features}")
        if not os.path.exists(os.path.join(folder, "results.md")):
            continue
        results[(target, features)] = read_results(os.path.join(folder, "results.md"))
        for name in ("results.md", "curves.svg"):
            ext = name.split(".")[1]
            shutil.copy(os.path.join(folder, name), os.path.join(dest, f"timit_grid_{target}_{features}.{ext}"))
    models = []
    for rows, _ in results.values():
        models += [m for m in rows if m not in models]
    cells = [c for c in CELLS if c in results]
    print("| model | hidden | parameters | " + " | ".join(f"{t}, {f}" for t, f in cells) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in cells) + " |")
    for m in models:
        any_row = next(rows[m] for rows, _ in results.values() if m in rows)
        entries = []
        for c in cells:
            r = results[c][0].get(m)
            entries.append("—" if r is None else f"{r['test']:.1f} ({r['best']}/{r['epochs']})")
        print(f"| {m} | {any_row['hidden']} | {any_row['params']:,} | " + " | ".join(entries) + " |")
    for label in ("repeat the previous frame (valid)", "output the input frame (valid)", "predict the training mean (valid)"):
        vals = [results[c][1].get(label) for c in cells]
        if any(v is not None for v in vals):
            print(f"| *{label}* | | | " + " | ".join("" if v is None else f"{v:.1f}" for v in vals) + " |")


if __name__ == "__main__":
    main()
