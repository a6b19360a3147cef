#!/usr/bin/env python3
"""Markdown table of a REMIND-against-replay sweep: one row per benchmark and setting (strategy and the options that
differ between runs), ACC and forgetting mean ± std over seeds, the samples and bytes the memory holds at the end, and
the streaming rate (new samples per second over tasks 2…T, mean over seeds; see stream_rate).

    python3 scripts/remind_table.py results/protocols/remind

Samples held: ER's `buffer_size` (its memory is full at the end of these streams); REMIND's from its bytes —
(bytes − codebooks) / (H·W·m + 8), the codebooks 256 centroids × C channels × 4 B, with the `cnn`'s C = width and
H = W = 14 after its first block (MNIST-sized input). Reads results.json of schema version 2 (docs/results-schema.md).
"""
import json
import statistics
import sys
from pathlib import Path

IGNORED = {"seed"}


def mean_std(values, scale=100, decimals=2):
    values = [v * scale for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{decimals}f} (1 seed)"
    return f"{statistics.mean(values):.{decimals}f} ± {statistics.stdev(values):.{decimals}f}" + (
        "" if len(values) == 3 else f" ({len(values)} seeds)")


def options(c):
    strategy = c["strategy"] if "strategy" in c else None
    out = {}
    for name, section in (c.get("hyperparameters") or {}).items():
        if strategy and name not in strategy.split("+"):
            continue
        for key, value in section.items():
            out[f"{name}.{key}"] = value
    out["lr"] = c["training"]["lr"]
    return out


def samples_held(r):
    c = r["configuration"]
    h = (c.get("hyperparameters") or {}).get(r["strategy"], {})
    if r["strategy"] == "remind":
        width, m = c.get("width", 20), h.get("subvectors", 2)
        codebooks = 256 * width * 4
        return (r["strategy_memory_bytes"][-1] - codebooks) // (14 * 14 * m + 8)
    return h.get("buffer_size", 0)


def stream_rate(r):
    """New samples per second over tasks 2…T. The trainer counts the samples each step trains on: ER's steps add
    `replay_batch_size` replayed images to each new one; REMIND counts the streamed samples (its replay is inside)."""
    h = (r["configuration"].get("hyperparameters") or {}).get(r["strategy"], {})
    per_step = 1 + h["replay_batch_size"] if "replay_batch_size" in h else 1
    return statistics.mean(r["samples_per_second_per_task"][1:]) / per_step


def main(directory):
    runs = {}
    for path in sorted(Path(directory).rglob("results.json")):
        r = json.loads(path.read_text())
        c = r["configuration"]
        if c.get("evaluate_on_validation"):
            sys.exit(f"{path}: scored on the validation split; the table is for test runs")
        c["strategy"] = r["strategy"]
        runs.setdefault((r["benchmark"], r["strategy"]), []).append((options(c), r))
    print("| benchmark | method | setting | ACC (%) | forgetting (%) | samples held | bytes held | stream samples/s |")
    print("|---|---|---|---|---|---|---|---|")
    methods = ["finetune", "remind", "er"]
    order = lambda key: (key[0] != "split-mnist", key[0], methods.index(key[1]) if key[1] in methods else 9, key[1])
    for (benchmark, strategy), group in sorted(runs.items(), key=lambda item: order(item[0])):
        # The options that differ between this strategy's runs name its rows; the others are the protocol's.
        keys = sorted({k for o, _ in group for k in o})
        varying = [k for k in keys if len({json.dumps(o.get(k)) for o, _ in group}) > 1]
        rows = {}
        for o, r in group:
            rows.setdefault(tuple((k, json.dumps(o.get(k))) for k in varying), []).append(r)
        for setting, results in sorted(rows.items(), key=lambda item: [float(v) if v.replace('.', '', 1).isdigit() else v for _, v in item[0]]):
            label = ", ".join(f"{k}={v}" for k, v in setting) or "–"
            held = {samples_held(r) for r in results}
            rate = statistics.mean(stream_rate(r) for r in results)
            print(f"| {benchmark} | {strategy} | {label} | {mean_std([r['average_accuracy'] for r in results])} | "
                  f"{mean_std([r['average_forgetting'] for r in results])} | {'/'.join(map(str, sorted(held)))} | "
                  f"{max(r['strategy_memory_bytes'][-1] for r in results):,} | {rate:.0f} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
