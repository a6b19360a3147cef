#!/usr/bin/env python3
"""The 20-task optimization-view table of docs/results.md (issue 18) from a final sweep's runs: one row per method
setting, average accuracy and forgetting (%, mean ± std over seeds, after the last task), the seeds, a run's
training seconds, and the published numbers of Mirzadeh et al. (ICLR 2021, Table 1) beside them.

    python3 scripts/protocol_table.py results/protocols/rotated-mnist-20 --benchmark rotated
    python3 scripts/protocol_table.py results/protocols/permuted-mnist-20 --benchmark permuted

A run that failed (no results.json; its log.txt says why) is counted and named under the table.
"""
import argparse
import json
import statistics
from pathlib import Path

from results_table import mean_std, method

# (ACC %, forgetting as a fraction) of Mirzadeh et al. 2021, Table 1, as read from the paper (see docs/results.md).
PUBLISHED = {
    "permuted": {"finetune": (44.4, 0.53), "ewc": (70.7, 0.23), "agem": (65.7, 0.29), "er": (72.4, 0.16),
                 "stable-sgd": (80.1, 0.09), "stable-sgd+mc-sgd": (85.3, 0.06), "joint": (89.5, 0.0)},
    "rotated": {"finetune": (46.3, 0.52), "ewc": (48.5, 0.48), "agem": (55.3, 0.42), "er": (69.2, 0.21),
                "stable-sgd": (70.8, 0.10), "stable-sgd+mc-sgd": (82.3, 0.08), "joint": (89.8, 0.0)},
}
NAMES = {"finetune": "naive SGD", "finetune+sam": "SAM (ρ 0.05)", "ewc": "EWC", "agem": "A-GEM", "er": "ER",
         "ogd": "OGD", "gpm": "GPM", "stable-sgd": "Stable SGD", "stable-sgd+mc-sgd": "MC-SGD",
         "joint": "multitask (joint)"}
ORDER = ["finetune", "finetune+sam", "ewc", "agem", "er", "ogd", "gpm", "stable-sgd", "stable-sgd+mc-sgd", "joint"]


def setting(c):
    """What tells a method's rows apart: the learning rate, dropout and the method's own options."""
    t = c.get("training") or {}
    parts = [f"lr {t.get('lr'):g}"]
    if c.get("dropout"):
        parts.append(f"dropout {c['dropout']:g}")
    for section in (c.get("hyperparameters") or {}).values():
        for k, v in sorted(section.items()):
            if k in ("lambda", "lr_decay", "line_lr", "penalty_step", "memory_size", "buffer_size"):
                parts.append(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}")
    return ", ".join(parts)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--benchmark", choices=sorted(PUBLISHED), required=True)
    args = parser.parse_args()
    rows, failed = {}, []
    for run in sorted(Path(args.directory).iterdir()):
        if not run.is_dir():
            continue
        results = run / "results.json"
        if not results.exists():
            log = run / "log.txt"
            if log.exists() and "error failed:" in log.read_text():
                failed.append(run.name)
            continue
        r = json.loads(results.read_text())
        rows.setdefault((method(r), setting(r["configuration"])), []).append(r)
    published = PUBLISHED[args.benchmark]
    print("| method | setting | seeds | ACC (%) | forgetting (%) | published ACC (%) | published forgetting (%) | s a run |")
    print("|---|---|---|---|---|---|---|---|")
    for (name, shown), runs in sorted(rows.items(), key=lambda kv: (ORDER.index(kv[0][0]) if kv[0][0] in ORDER else 99, kv[0][1])):
        acc = mean_std([r["average_accuracy"] for r in runs])
        forgetting = mean_std([r["average_forgetting"] for r in runs])
        paper = published.get(name)
        seconds = statistics.mean(r["wall_seconds"] for r in runs)
        print(f"| {NAMES.get(name, name)} | {shown} | {len(runs)} | {acc} | {forgetting} | "
              f"{paper[0] if paper else '–'} | {f'{100 * paper[1]:.0f}' if paper else '–'} | {seconds:.0f} |")
    if failed:
        print("\nFailed runs (their log.txt gives the reason): " + ", ".join(failed))


if __name__ == "__main__":
    main()
