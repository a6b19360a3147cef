#!/usr/bin/env python3
"""The mode-connectivity figure and the sharpness table of issue 18, from `engram analyze` outputs.

    python3 scripts/landscape_figure.py results/protocols/permuted-mnist-20-landscape [--svg docs/figures/mode-connectivity.svg]

Reads, for every run of the directory, analysis/interpolate-*.json (the line from the checkpoint after task 1 to the
one after task 2) and analysis/sharpness-*-task1.json (curvature of task 1's loss after task 1), groups the runs by
method (the run directory's name up to the first `__`), and prints a Markdown table: task 1's loss at α = 0, its
largest value along the line and at α = 1, task 1's accuracy at both ends, the top Hessian eigenvalue and the trace,
each as mean ± std over the runs (seeds). With --svg, draws task 1's loss along the line, one curve per method (mean
over seeds, the band between the seeds' lowest and highest), as a standalone SVG.
"""
import json
import statistics
import sys
from pathlib import Path

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
LABELS = {"finetune": "naive SGD", "stable-sgd": "Stable SGD", "stable-sgd+mc-sgd": "MC-SGD (on Stable SGD)"}


def mean_std(values):
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3g}"
    return f"{statistics.mean(values):.3g} ± {statistics.stdev(values):.2g}"


def load(directory):
    methods = {}
    for run in sorted(p for p in Path(directory).iterdir() if p.is_dir()):
        analysis = run / "analysis"
        lines = sorted(analysis.glob("interpolate-*.json"))
        sharpness = sorted(analysis.glob("sharpness-*-task1.json"))
        if not lines:
            continue
        line = json.loads(lines[0].read_text())
        entry = {"alphas": line["alphas"], "task1_loss": [row[0] for row in line["loss"]],
                 "task1_accuracy": [row[0] for row in line["accuracy"]]}
        if sharpness:
            s = json.loads(sharpness[0].read_text())
            entry.update(top=s["eigenvalues"][0], trace=s["trace"], converged=all(s["converged"]))
        methods.setdefault(run.name.split("__")[0], []).append(entry)
    order = list(LABELS)
    return dict(sorted(methods.items(), key=lambda m: (order.index(m[0]) if m[0] in order else len(order), m[0])))


def table(methods):
    print("| method | runs | task-1 loss at θ₁ (α = 0) | highest on the line | at θ₂ (α = 1) | task-1 acc at θ₁ / θ₂ (%) "
          "| top Hessian eigenvalue at θ₁ | Hessian trace at θ₁ |")
    print("|---|---|---|---|---|---|---|---|")
    for name, runs in methods.items():
        start = [r["task1_loss"][0] for r in runs]
        peak = [max(r["task1_loss"]) for r in runs]
        end = [r["task1_loss"][-1] for r in runs]
        acc = f"{statistics.mean(r['task1_accuracy'][0] for r in runs) * 100:.2f} / " \
              f"{statistics.mean(r['task1_accuracy'][-1] for r in runs) * 100:.2f}"
        top = [r["top"] for r in runs if "top" in r]
        trace = [r["trace"] for r in runs if "trace" in r]
        unconverged = sum(1 for r in runs if r.get("converged") is False)
        note = f" ({unconverged} not converged)" if unconverged else ""
        print(f"| {LABELS.get(name, name)} | {len(runs)} | {mean_std(start)} | {mean_std(peak)} | {mean_std(end)} | {acc} "
              f"| {mean_std(top)}{note} | {mean_std(trace)} |")


def svg(methods, path):
    width, height, left, right, top, bottom = 640, 400, 70, 200, 30, 55
    plot_w, plot_h = width - left - right, height - top - bottom
    highest = max(max(r["task1_loss"]) for runs in methods.values() for r in runs)
    y_max = max(0.5, float(f"{highest * 1.05:.2g}"))

    def x(alpha):
        return left + alpha * plot_w

    def y(loss):
        return top + plot_h * (1 - loss / y_max)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="Helvetica, Arial, sans-serif" font-size="12">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
             f'<text x="{left}" y="18" font-size="13">Task 1 loss on the line (1 − α)θ₁ + αθ₂ '
             f'(Permuted MNIST, mean of seeds; band: min–max)</text>']
    for i in range(6):
        value = y_max * i / 5
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 8}" y="{y(value) + 4:.1f}" text-anchor="end">{value:.2g}</text>')
    for i in range(6):
        alpha = i / 5
        parts.append(f'<text x="{x(alpha):.1f}" y="{top + plot_h + 18}" text-anchor="middle">{alpha:.1f}</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444"/>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 12}" text-anchor="middle">α (0: after task 1, '
                 f'1: after task 2)</text>')
    parts.append(f'<text transform="translate(18 {top + plot_h / 2}) rotate(-90)" text-anchor="middle">'
                 f'cross-entropy on task 1 (test)</text>')
    for index, (name, runs) in enumerate(methods.items()):
        color = COLORS[index % len(COLORS)]
        alphas = runs[0]["alphas"]
        columns = list(zip(*(r["task1_loss"] for r in runs)))
        mean = [statistics.mean(c) for c in columns]
        low, high = [min(c) for c in columns], [max(c) for c in columns]
        band = " ".join(f"{x(a):.1f},{y(v):.1f}" for a, v in zip(alphas, high)) + " " + \
            " ".join(f"{x(a):.1f},{y(v):.1f}" for a, v in reversed(list(zip(alphas, low))))
        parts.append(f'<polygon points="{band}" fill="{color}" fill-opacity="0.15" stroke="none"/>')
        points = " ".join(f"{x(a):.1f},{y(v):.1f}" for a, v in zip(alphas, mean))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        legend_y = top + 20 + index * 22
        parts.append(f'<line x1="{left + plot_w + 15}" x2="{left + plot_w + 40}" y1="{legend_y}" y2="{legend_y}" '
                     f'stroke="{color}" stroke-width="2"/>')
        parts.append(f'<text x="{left + plot_w + 46}" y="{legend_y + 4}">{LABELS.get(name, name)}</text>')
    parts.append("</svg>")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(parts) + "\n")


def main(arguments):
    if not arguments or arguments[0].startswith("-"):
        sys.exit(__doc__)
    methods = load(arguments[0])
    if not methods:
        sys.exit(f"{arguments[0]}: no run with analysis/interpolate-*.json (run `engram analyze interpolate` first)")
    table(methods)
    if "--svg" in arguments:
        i = arguments.index("--svg")
        if i + 1 >= len(arguments):
            sys.exit("--svg needs a file name")
        svg(methods, arguments[i + 1])


if __name__ == "__main__":
    main(sys.argv[1:])
