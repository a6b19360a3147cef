#!/usr/bin/env python3
"""Markdown table of Engram runs: one row per (benchmark, scenario, model, strategy), mean ± std over seeds.

    python3 scripts/results_table.py runs/split-fmnist-isolation runs/split-fmnist-baselines ...

Columns: seeds, TAw ACC and forgetting (task given), TAg ACC / forgetting / task prediction under the
method's own task-agnostic rule and, for MIND, the most-confident rule, strategy memory after the last task,
trainable parameters, training seconds.
Reads every results.json below the given directories: schema version 2 (docs/results-schema.md) and the older
layout (camelCase `matrix` / `metrics`).
"""
import json
import statistics
import sys
from pathlib import Path


def mean_std(values, scale=100.0, digits=1):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    m = statistics.mean(values) * scale
    if len(values) == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {statistics.stdev(values) * scale:.{digits}f}"


def mib(n):
    return f"{n / 2**20:.2f} MiB" if n else "0"


def batch_norm(c):
    """'per-task', 'shared' or '–' (no BatchNorm, or a progressive network whose columns each have their own)."""
    strategies = c["strategy"].split("+")
    if c["model"] == "mlp" or "pnn" in strategies:
        return "–"
    per_task = c.get("per_task_batchnorm")
    if per_task is None:  # an older file, written before the configuration was resolved: Engram's default then
        per_task = any(s in ("mind", "mind-self", "packnet") for s in strategies)
    return "per-task" if per_task else "shared"


def task_aware(r):
    """(ACC, forgetting) with the task given: the `_taw` keys, the headline of a file without them, or the older
    layout's `metrics` (whose matrix was always task-aware)."""
    if "schema_version" not in r:
        return r["metrics"].get("averageAccuracy"), r["metrics"].get("forgetting")
    if "average_accuracy_taw" in r:
        return r["average_accuracy_taw"], r.get("average_forgetting_taw")
    return r.get("average_accuracy"), r.get("average_forgetting")


def main(directories):
    groups = {}
    for directory in directories:
        for path in sorted(Path(directory).rglob("results.json")):
            r = json.loads(path.read_text())
            c = r["configuration"]
            settings = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                 for k, v in sorted((c.get("hyperparameters") or {}).items()))
            key = (r["benchmark"], r["scenario"], c["model"], batch_norm(c), r["strategy"] + (f" {settings}" if settings else ""))
            groups.setdefault(key, []).append(r)
    header = ["benchmark", "scenario", "model", "BatchNorm", "method", "seeds", "TAw ACC (%)", "TAw forgetting (%)",
              "TAg ACC (%)", "TAg forgetting (%)", "task pred. (%)", "TAg ACC most-confident (%)",
              "memory held", "parameters", "training s"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    order = {"task-il": 0, "domain-il": 1, "class-il": 2}
    for (benchmark, scenario, model, norm, strategy), runs in sorted(
            groups.items(), key=lambda g: (g[0][0], order.get(g[0][1], 9), g[0][2], g[0][4])):
        def tag(i, field):
            return [r["task_agnostic"][i][field] if r.get("task_agnostic") and len(r["task_agnostic"]) > i else None
                    for r in runs]
        tag_rule = (runs[0].get("task_agnostic") or [{}])[0].get("rule")
        single_head_tag = scenario != "task-il" and tag_rule is None
        accuracy = [task_aware(r)[0] for r in runs]
        forgetting = [task_aware(r)[1] for r in runs]
        row = [benchmark, scenario, model, norm, strategy + (f" ({tag_rule})" if tag_rule else ""),
               str(len(runs)), mean_std(accuracy), mean_std(forgetting),
               # A single-head model's ordinary accuracy needs no task id: it is task-agnostic already.
               mean_std(accuracy) if single_head_tag else mean_std(tag(0, "average_accuracy")),
               mean_std(forgetting) if single_head_tag else mean_std(tag(0, "forgetting")),
               mean_std(tag(0, "average_task_prediction")),
               mean_std(tag(1, "average_accuracy")) if tag_rule and "entropy" in tag_rule else "–",
               mib(statistics.mean(r["strategy_memory_bytes"][-1] for r in runs)),
               f"{runs[0]['parameter_count']:,}",
               mean_std([sum(r["seconds_per_task"]) for r in runs], scale=1.0, digits=0)]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main(sys.argv[1:] or ["runs"])
