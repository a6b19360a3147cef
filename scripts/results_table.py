#!/usr/bin/env python3
"""Markdown table of Engram runs: one row per (benchmark, scenario, model, strategy), mean ± std over seeds.

    python3 scripts/results_table.py runs/split-fmnist-isolation runs/split-fmnist-baselines ...

Columns: seeds, TAw ACC and forgetting (task given), TAg ACC / forgetting / task prediction under the
method's own task-agnostic rule and, for MIND, the most-confident rule, strategy memory after the last task,
trainable parameters, training seconds.
Reads every results.json below the given directories: schema version 2 (docs/results-schema.md) and the older
layout (camelCase `matrix` / `metrics`).
"""
import collections
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


PER_TASK_BATCHNORM_BY_DEFAULT = {"mind", "mind-self", "packnet"}


def batch_norm(r):
    """'per-task', 'shared', 'per-column' (progressive convolutional columns) or '–' (no BatchNorm), as results.json's
    `batch_norm` says; older files without it: from the resolved configuration, and files older still (which did not
    write `per_task_batchnorm`) from the strategy's default then, per-task for MIND, MIND-self and PackNet."""
    layout = r.get("batch_norm")
    if layout is None:
        c = r["configuration"]
        per_task = c.get("per_task_batchnorm", r["strategy"] in PER_TASK_BATCHNORM_BY_DEFAULT)
        layout = "none" if c["model"] == "mlp" else ("per-task" if per_task else "shared")
    return "–" if layout == "none" else layout


def flat_settings(c):
    """The hyper-parameters of a configuration as {'mas.lambda': 1, …}: sections (schema 2 with per-strategy
    options) and, for older files, values outside sections as they were written; plus the learning rate and dropout."""
    flat = {}
    for key, value in (c.get("hyperparameters") or {}).items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    # Options outside the sections that make a different method setting: the learning rate, and dropout (Stable
    # SGD's recipe is dropout plus the decayed learning rate).
    if "lr" in (c.get("training") or {}):
        flat["training.lr"] = c["training"]["lr"]
    if "dropout" in c:
        flat["dropout"] = c["dropout"]
    return flat


def label_settings(runs_by_strategy):
    """For each strategy, the settings that differ between its runs (what tells its rows apart). A setting a file
    does not write (older files wrote only what was given, not the defaults) does not count as a difference."""
    varying = {}
    for strategy, settings in runs_by_strategy.items():
        keys = set().union(*settings) if settings else set()
        varying[strategy] = sorted(k for k in keys if len({repr(s[k]) for s in settings if k in s}) > 1)
    return varying


def task_aware(r):
    """(ACC, forgetting) with the task given: the `_taw` keys, the headline of a file without them, or the older
    layout's `metrics` (whose matrix was always task-aware)."""
    if "schema_version" not in r:
        return r["metrics"].get("averageAccuracy"), r["metrics"].get("forgetting")
    if "average_accuracy_taw" in r:
        return r["average_accuracy_taw"], r.get("average_forgetting_taw")
    return r.get("average_accuracy"), r.get("average_forgetting")


def method(r):
    """The method a run belongs to: its strategy, `+sam` when it trains with sharpness-aware steps (SAM is an
    optimizer option of any strategy, so its runs are a method of their own, not seeds of the strategy's row)."""
    sam = ((r.get("configuration") or {}).get("training") or {}).get("sam_rho")
    return r["strategy"] + ("+sam" if sam else "")


def main(directories):
    files = []
    for directory in directories:
        for path in sorted(Path(directory).rglob("results.json")):
            r = json.loads(path.read_text())
            r["strategy"] = method(r)
            files.append((r, flat_settings(r["configuration"])))
    by_strategy = {}
    for r, settings in files:
        by_strategy.setdefault(r["strategy"], []).append(settings)
    varying = label_settings(by_strategy)
    groups = {}
    for r, settings in files:
        c = r["configuration"]
        shown = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in sorted(settings.items()) if k in varying[r["strategy"]])
        key = (r["benchmark"], r["scenario"], c["model"], batch_norm(r), r["strategy"] + (f" {shown}" if shown else ""))
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
    # The backends round differently, so one seed follows a different trajectory on each: say which produced the rows.
    backends = collections.Counter(r.get("compute_backend", "not recorded") for r, _ in files)
    if set(backends) != {"not recorded"}:
        print("\ncompute backend: " + ", ".join(f"{name} ({count} run{'s' if count != 1 else ''})"
                                               for name, count in sorted(backends.items())))


if __name__ == "__main__":
    main(sys.argv[1:] or ["runs"])
