#!/usr/bin/env python3
"""Markdown tables of a sweep with consolidating methods (SRC's sleep): one row per method and setting, ACC and
forgetting as mean ± std over seeds, the memory held after the last task, and — for methods that sleep — the mean
accuracy over the seen tasks just before and just after each sleep (the `consolidation` key of results.json).

    python3 scripts/sleep_table.py results/protocols/split-mnist-sleep

Reads results.json of schema version 2 (docs/results-schema.md).
"""
import json
import statistics
import sys
from pathlib import Path


def mean_std(values, scale=100):
    values = [v * scale for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f} (1 seed)"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}" + ("" if len(values) == 3 else f" ({len(values)} seeds)")


def label(r):
    c = r["configuration"]
    h = c.get("hyperparameters") or {}
    parts = []
    if "src" in h:
        parts.append(f"α {h['src']['alpha_scale']:g}, scales from {h['src']['scale_data']} data")
    if "er" in h:
        parts.append(f"M {h['er']['buffer_size']}, replay batch {h['er']['replay_batch_size']}")
    return r["strategy"] + (f" ({'; '.join(parts)})" if parts else "")


def main(directory):
    groups = {}
    for path in sorted(Path(directory).glob("*/results.json")):
        r = json.loads(path.read_text())
        groups.setdefault(label(r), []).append(r)
    order = ["finetune", "src", "er", "src+er", "joint"]
    keys = sorted(groups, key=lambda k: (order.index(k.split(" ")[0]) if k.split(" ")[0] in order else 99, k))
    print("| method | ACC (%) | forgetting (%) | memory held (bytes) | seeds |")
    print("|---|---|---|---|---|")
    for k in keys:
        runs = groups[k]
        memory = max(r["strategy_memory_bytes"][-1] for r in runs)
        print(f"| {k} | {mean_std([r['average_accuracy'] for r in runs])} | "
              f"{mean_std([r['average_forgetting'] for r in runs])} | {memory:,} | {len(runs)} |")
    sleepers = [k for k in keys if all(r.get("consolidation") for r in groups[k])]
    if not sleepers:
        return
    tasks = len(groups[sleepers[0]][0]["consolidation"]["accuracy_before"])
    print()
    print("| method | " + " | ".join(f"after task {i + 1}: before → after sleep" for i in range(tasks)) + " | sleep seconds (all phases) |")
    print("|---|" + "---|" * tasks + "---|")
    for k in sleepers:
        cells = []
        for i in range(tasks):
            before = [statistics.mean(r["consolidation"]["accuracy_before"][i][: i + 1]) for r in groups[k]]
            after = [statistics.mean(r["consolidation"]["accuracy_after"][i][: i + 1]) for r in groups[k]]
            cells.append(f"{statistics.mean(before) * 100:.1f} → {statistics.mean(after) * 100:.1f}")
        seconds = statistics.mean(sum(r["consolidation"]["seconds"]) for r in groups[k])
        print(f"| {k} | " + " | ".join(cells) + f" | {seconds:.0f} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
