#!/usr/bin/env python3
"""Markdown table of replay runs: one row per method, one column per (scenario, memory size), ACC mean ± std over
seeds (and the number of seeds when it is not the same everywhere), then the most memory each method holds (over the scenarios) at each size.

    python3 scripts/replay_table.py results/protocols/seq-mnist-replay [--forgetting]

A run's memory size is its `buffer_size` option (any section: `er.buffer_size` for `mas+er`); methods without one
(fine-tuning, joint training) fill every memory column of their scenario. --forgetting tabulates forgetting instead.
Reads results.json of schema version 2 (docs/results-schema.md).
"""
import json
import statistics
import sys
from pathlib import Path


def buffer_size(configuration):
    for section in (configuration.get("hyperparameters") or {}).values():
        if isinstance(section, dict) and "buffer_size" in section:
            return int(section["buffer_size"])
    return None


def cell(values):
    values = [v * 100 for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f} (1 seed)"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}" + ("" if len(values) == 3 else f" ({len(values)} seeds)")


def main(directories, metric):
    runs = {}
    order, sizes, scenarios, memory = [], set(), [], {}
    for directory in directories:
        for path in sorted(Path(directory).rglob("results.json")):
            r = json.loads(path.read_text())
            c = r["configuration"]
            if c.get("evaluate_on_validation"):
                sys.exit(f"{path}: scored on the validation split; the table is for test runs")
            size = buffer_size(c)
            if size is not None:
                sizes.add(size)
            if r["strategy"] not in order:
                order.append(r["strategy"])
            if r["scenario"] not in scenarios:
                scenarios.append(r["scenario"])
            value = r.get("average_accuracy") if metric == "acc" else r.get("average_forgetting")
            runs.setdefault((r["strategy"], r["scenario"], size), []).append(value)
            if size is not None:
                # The most a method holds at that size (DER's logits are as wide as the class-incremental head).
                memory[(r["strategy"], size)] = max(memory.get((r["strategy"], size), 0), r["strategy_memory_bytes"][-1])
    sizes = sorted(sizes)
    scenarios.sort(key=lambda s: {"class-il": 0, "task-il": 1, "domain-il": 2}.get(s, 9))
    columns = [(s, m) for s in scenarios for m in sizes]
    print("| method | " + " | ".join(f"{s} M={m}" for s, m in columns) + " | memory held (" + "/".join(map(str, sizes)) + ") |")
    print("|---|" + "---|" * len(columns) + "---|")
    for strategy in order:
        cells = []
        for s, m in columns:
            values = runs.get((strategy, s, m)) or runs.get((strategy, s, None))
            cells.append(cell(values) if values else "")
        held = "/".join(f"{memory[(strategy, m)] / 1000:.0f} kB" if (strategy, m) in memory else "–" for m in sizes)
        print(f"| {strategy} | " + " | ".join(cells) + f" | {held} |")


if __name__ == "__main__":
    arguments = sys.argv[1:]
    metric = "acc"
    if "--forgetting" in arguments:
        arguments.remove("--forgetting")
        metric = "forgetting"
    if not arguments:
        sys.exit(__doc__)
    main(arguments, metric)
