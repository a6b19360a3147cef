#!/usr/bin/env python3
"""Choose each method's hyper-parameters on the validation split: for every (benchmark, scenario, strategy) of a
validation sweep, the setting with the best mean validation ACC over seeds (ties: the first in sort order).

    python3 scripts/select_hyperparameters.py results/protocols/split-mnist-validation [--write examples/protocols/split-mnist.yaml]
    python3 scripts/select_hyperparameters.py results/protocols/seq-mnist-replay-validation --per buffer_size [--write …]

Prints the grid (every setting's validation ACC, the chosen one marked) as a Markdown table, then one line per
choice in the YAML form of a sweep's `grids` entry. With --write FILE, the lines after the FILE's line
`# chosen on validation` are replaced by the choices (the final sweep then runs them). Refuses runs scored on the
test set. The learning rate (`training.lr`) is a setting like the methods' options when the sweep varies it. With
--per OPTION (e.g. buffer_size), runs are chosen separately for every value of that option (a memory size is a
condition of the comparison, not a setting to pick), and the choice lines name it. With --seeds METHODS=SEEDS
(repeatable; METHODS a comma list or `*` for every other method), each choice line also sets `training.seed`, for a
final sweep that runs some methods on more seeds than others:
    … --write examples/protocols/permuted-mnist.yaml --seeds ewc,online-ewc,si,mas,lwf=0,1,2 --seeds '*=0'
Reads results.json of both schemas (schema_version ≥ 2: top-level `average_accuracy`; older: `metrics.averageAccuracy`).
"""
import json
import statistics
import sys
from pathlib import Path


def number(v):
    """A value as YAML reads it back: integral floats as integers (1e+08 would be a string to YAML 1.1)."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v) if isinstance(v, float) else str(v)


def accuracy(r):
    if "average_accuracy" in r:
        return r["average_accuracy"]
    return (r.get("metrics") or {}).get("averageAccuracy")


def flat_settings(strategy, c):
    """{'mas.lambda': 1, …}: a section's options under the strategy's name; a value outside sections (older
    files) under the run's strategy's name."""
    flat = {}
    for key, value in (c.get("hyperparameters") or {}).items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[f"{strategy}.{key}"] = value
    if "lr" in (c.get("training") or {}):
        flat["training.lr"] = c["training"]["lr"]
    if (c.get("training") or {}).get("sam_rho"):
        flat["training.sam_rho"] = c["training"]["sam_rho"]
    if "dropout" in c:
        flat["dropout"] = c["dropout"]
    return flat


def method(strategy, c):
    """The method a run belongs to: its strategy, `+sam` when it trains with sharpness-aware steps (SAM is an
    optimizer option of any strategy, so its runs are a method of their own, not a setting of the strategy)."""
    return strategy + ("+sam" if (c.get("training") or {}).get("sam_rho") else "")


def condition(settings, per):
    """The values of the options named `per` (any section), as a sorted tuple of (name, value)."""
    if not per:
        return ()
    return tuple(sorted((name, value) for name, value in settings.items() if name.split(".")[-1] == per))


def seeds_for(strategy, seeds):
    """The seeds --seeds gives `strategy` (its own entry, else `*`'s), or None."""
    for methods, values in seeds:
        if strategy in methods:
            return values
    return next((values for methods, values in seeds if "*" in methods), None)


def grid_options(point):
    """The options a sweep's grid set for a point, from its directory name (`agem__buffer_size=200__lr=0.01__seed=0`
    gives buffer_size and lr): the last component of each option's name, seed and scenario left out."""
    names = {part.split("=")[0] for part in point.split("__")[1:] if "=" in part}
    return names - {"seed", "scenario"}


def main(directories, write=None, per=None, seeds=()):
    runs, gridded = {}, {}
    for directory in directories:
        for path in sorted(Path(directory).rglob("results.json")):
            r = json.loads(path.read_text())
            c = r.get("configuration") or {}
            if not c.get("evaluate_on_validation"):
                sys.exit(f"{path}: scored on the test set, not on a validation split; selection must not see test data")
            settings = flat_settings(r["strategy"], c)
            fixed = condition(settings, per)
            for name, _ in fixed:
                del settings[name]
            key = (r["benchmark"], r["scenario"], method(r["strategy"], c), fixed)
            runs.setdefault(key, []).append((settings, accuracy(r)))
            gridded.setdefault(key, set()).update(grid_options(path.parent.name))
    # A setting is the values of the options that take several values within the group (older files write only
    # the options that were set, newer ones every option: an absent option is not a different value).
    groups, full = {}, {}
    for key, members in runs.items():
        names = set().union(*(s for s, _ in members))
        # Options the validation grid set to one value (a buffer size, Stable SGD's lr) are part of the setting too:
        # the choice line must spell them, or the final sweep would run the strategy's default instead.
        varying = sorted(n for n in names if len({repr(s[n]) for s, _ in members if n in s}) > 1
                         or n.split(".")[-1] in gridded.get(key, ()))
        for settings, acc in members:
            setting = tuple((n, settings.get(n)) for n in varying)
            groups.setdefault(key, {}).setdefault(setting, []).append(acc)
            # With --per, a choice line spells every option of the chosen run (the final sweep must not fall back
            # on a default the validation runs did not use, e.g. DER's replay batch).
            full.setdefault(key, {})[setting] = tuple(sorted(settings.items()))
    print(f"| benchmark | scenario | method |{' ' + per + ' |' if per else ''} setting | seeds | validation ACC (%) | chosen |")
    print("|---|---|---|" + ("---|" if per else "") + "---|---|---|---|")
    choices = []
    order = {"task-il": 0, "domain-il": 1, "class-il": 2}
    for (benchmark, scenario, strategy, fixed), settings in sorted(groups.items(), key=lambda g: (g[0][0], order.get(g[0][1], 9), g[0][2], g[0][3])):
        scored = {s: statistics.mean(v) for s, v in settings.items() if all(a is not None for a in v)}
        best = max(sorted(scored), key=lambda s: scored[s]) if scored else None
        for s in sorted(settings):
            text = ", ".join(f"{k}={number(v)}" for k, v in s) or "defaults"
            acc = f"{scored[s] * 100:.2f}" if s in scored else "diverged"
            shown = f" {', '.join(number(v) for _, v in fixed)} |" if per else ""
            print(f"| {benchmark} | {scenario} | {strategy} |{shown} {text} | {len(settings[s])} | {acc} | {'◀' if s == best else ''} |")
        if best is not None:
            every = full[(benchmark, scenario, strategy, fixed)][best]
            choices.append((scenario, strategy, fixed + (every if per else best), dict(every)))
    print()
    lines = []
    for scenario, strategy, best, every in choices:
        values = ", ".join(f"{k if k.startswith('training.') or '.' not in k else 'hyperparameters.' + k}: [{number(v)}]"
                           for k, v in best if v is not None)
        # A SAM method's ρ is written even when the validation runs did not vary it (it is what makes it SAM).
        sam = (", training.sam_rho: [" + number(every["training.sam_rho"]) + "]"
               if strategy.endswith("+sam") and "training.sam_rho" not in dict(best) else "")
        chosen_seeds = seeds_for(strategy.removesuffix('+sam'), seeds)
        seed_text = f", training.seed: [{', '.join(chosen_seeds)}]" if chosen_seeds else ""
        lines.append(f"  - {{scenario: [{scenario.split('-')[0]}], strategy: [{strategy.removesuffix('+sam')}]{', ' + values if values else ''}{sam}{seed_text}}}")
    print("\n".join(lines))
    if write:
        text = Path(write).read_text().split("\n")
        marker = next((i for i, line in enumerate(text) if line.strip().startswith("# chosen on validation")), None)
        if marker is None:
            sys.exit(f"{write}: no line '# chosen on validation' to write the choices after")
        Path(write).write_text("\n".join(text[:marker + 1] + lines) + "\n")


if __name__ == "__main__":
    arguments = sys.argv[1:]
    target = per_option = None
    if "--per" in arguments:
        i = arguments.index("--per")
        per_option = arguments[i + 1]
        del arguments[i:i + 2]
    seed_options = []
    while "--seeds" in arguments:
        i = arguments.index("--seeds")
        methods, _, values = arguments[i + 1].partition("=")
        if not values or not all(v.strip().isdigit() for v in values.split(",")):
            sys.exit(f"--seeds {arguments[i + 1]}: expected METHODS=SEEDS, e.g. ewc,si=0,1,2 or '*=0'")
        seed_options.append((set(methods.split(",")), [v.strip() for v in values.split(",")]))
        del arguments[i:i + 2]
    if "--write" in arguments:
        i = arguments.index("--write")
        target = arguments[i + 1]
        del arguments[i:i + 2]
    if not arguments:
        sys.exit(__doc__)
    main(arguments, target, per_option, seed_options)
