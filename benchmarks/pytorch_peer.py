#!/usr/bin/env python3
"""PyTorch peer of `engram bench`: the same workloads, timed the same way, printed with the same JSON keys.

A full training step = forward, cross-entropy, backward, SGD-momentum update (lr 0.01, momentum 0.9),
on a pool of 4 synthetic batches, after a warm-up; the eval_* workloads time forward passes only (eval mode,
torch.no_grad()). `engram bench --peer benchmarks/pytorch_peer.py` runs this script alternately with Engram. PyTorch is a benchmark peer only, never a dependency
of Engram.

    python3 benchmarks/pytorch_peer.py --threads 2 --json
    python3 benchmarks/pytorch_peer.py --stream --data-dir ../shared/datasets   # the default `engram run`, end to end

`--stream` is the default experiment of `engram run` written in PyTorch the fastest way it allows: MAS (λ = 1) on
5-task Permuted MNIST (task 1 unpermuted, domain-incremental), MLP 784-400-400-10, one epoch per task, batch 128,
SGD 0.01 with momentum 0.9 (a new optimizer per task), exact per-sample importance after each task on the task's
60 000 training images: Ω_t = (1/N) Σ_n |∂‖f(x_n)‖²/∂θ|, for a linear layer |Δ|ᵀ|X| from forward/backward hooks
(the per-sample gradient δ_n x_nᵀ has |δ_n||x_n|ᵀ as its absolute value), Ω ← Ω + Ω_t; accuracy on every test set
after every task. Prints wall seconds (from the start of the process, loading included) and peak RSS.
"""
import argparse
import warnings
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ShortcutA(nn.Module):
    """Option-A shortcut of the CIFAR ResNets: every second pixel, zero channels padded on both sides."""

    def __init__(self, cin, cout):
        super().__init__()
        self.before = (cout - cin) // 2
        self.after = cout - cin - self.before

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.before, self.after))


class BasicBlockA(BasicBlock):
    def __init__(self, cin, cout, stride=1):
        super().__init__(cin, cout, stride)
        if stride != 1 or cin != cout:
            self.shortcut = ShortcutA(cin, cout)


def cifar_resnet20(in_channels=1, classes=10):
    """He et al.'s CIFAR ResNet-20 (16/32/64 channels, option-A shortcuts), as Engram's Models.cifarResNet."""
    layers = [nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for stage, cout in enumerate([16, 32, 64]):
        for b in range(3):
            layers.append(BasicBlockA(cin, cout, 2 if stage > 0 and b == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


def resnet18_reduced(classes=100, nf=20):
    """GEM's reduced ResNet-18 for 32×32 inputs (as Engram's Models.resnet18Reduced)."""
    layers = [nn.Conv2d(3, nf, 3, 1, 1, bias=False), nn.BatchNorm2d(nf), nn.ReLU()]
    cin = nf
    for i, mult in enumerate([1, 2, 4, 8]):
        cout = nf * mult
        layers += [BasicBlock(cin, cout, 1 if i == 0 else 2), BasicBlock(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


def mlp(hidden):
    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, 10))


WORKLOADS = {
    "mlp400_b10": (lambda: mlp(400), 10, (784,), 10),
    "mlp400_b128": (lambda: mlp(400), 128, (784,), 10),
    "mlp1000_b256": (lambda: mlp(1000), 256, (784,), 10),
    "resnet18r_b32": (lambda: resnet18_reduced(), 32, (3, 32, 32), 100),
    "resnet20_b32": (lambda: cifar_resnet20(), 32, (1, 28, 28), 10),
    "eval_mlp400_b1000": (lambda: mlp(400), 1000, (784,), 10),
    "eval_resnet20_b1000": (lambda: cifar_resnet20(), 1000, (1, 28, 28), 10),
}


def measure(name, seconds):
    build, batch, shape, classes = WORKLOADS[name]
    torch.manual_seed(0)
    model = build()
    evaluation = name.startswith("eval_")
    model.train(not evaluation)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    pool = [(torch.randn(batch, *shape), torch.randint(0, classes, (batch,))) for _ in range(4)]

    def step(i):
        x, y = pool[i % len(pool)]
        if evaluation:
            with torch.no_grad():
                model(x)
            return
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for i in range(2 if "resnet" in name else 10):
        step(i)
    steps = 0
    start = time.perf_counter()
    while True:
        step(steps)
        steps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and steps >= 3:
            break
    return steps * batch / elapsed


def read_idx(path):
    """An MNIST IDX file (gzip or not) as a uint8 numpy array."""
    import gzip
    import numpy as np
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def stream(data_dir, threads, seed=0, tasks=5, lam=1.0):
    """The default `engram run` experiment (see the module docstring); returns a dict of its measurements."""
    import os
    import resource
    import numpy as np
    start = time.perf_counter()
    torch.manual_seed(seed)

    def load(stem):
        for name in (stem + ".gz", stem):
            path = os.path.join(data_dir, "mnist", name) if os.path.isdir(os.path.join(data_dir, "mnist")) else os.path.join(data_dir, name)
            if os.path.exists(path):
                return read_idx(path)
        raise SystemExit(f"pytorch_peer: {stem} not found under {data_dir}")

    train_x = torch.from_numpy(load("train-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255)
    train_y = torch.from_numpy(load("train-labels-idx1-ubyte").astype(np.int64))
    test_x = torch.from_numpy(load("t10k-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255)
    test_y = torch.from_numpy(load("t10k-labels-idx1-ubyte").astype(np.int64))
    generator = torch.Generator().manual_seed(seed)
    permutations = [torch.arange(784)] + [torch.randperm(784, generator=generator) for _ in range(tasks - 1)]
    model = mlp(400)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    params = list(model.parameters())
    omega = [torch.zeros_like(p) for p in params]
    anchor = [p.detach().clone() for p in params]
    matrix = []

    def importance(x_all):
        """Ω_t through hooks: |Δ|ᵀ|X| per linear layer, summed over chunks of 1 000, divided by N."""
        sums = [torch.zeros_like(p) for p in params]
        inputs = {}
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        hooks = [m.register_forward_hook(lambda mod, inp, out: inputs.__setitem__(mod, inp[0].detach())) for m in linears]
        grads = {}
        for m in linears:
            hooks.append(m.register_full_backward_hook(lambda mod, gin, gout: grads.__setitem__(mod, gout[0].detach())))
        for i in range(0, len(x_all), 1000):
            x = x_all[i:i + 1000]
            out = model(x)
            # Per-sample ∂‖f(x_n)‖²/∂out_n = 2 f(x_n); the sum over n keeps the samples' gradients apart per layer.
            model.zero_grad()
            out.backward(2 * out.detach())
            k = 0
            for m in linears:
                d, a = grads[m].abs(), inputs[m].abs()
                sums[k] += d.t() @ a
                sums[k + 1] += d.sum(0)
                k += 2
        for h in hooks:
            h.remove()
        return [s / len(x_all) for s in sums]

    for t in range(tasks):
        perm = permutations[t]
        x_task = train_x[:, perm]
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        order = torch.randperm(len(x_task), generator=generator)
        model.train()
        for i in range(0, len(order), 128):
            idx = order[i:i + 128]
            loss = F.cross_entropy(model(x_task[idx]), train_y[idx])
            if t > 0:
                loss = loss + lam * sum((o * (p - a) ** 2).sum() for o, p, a in zip(omega, params, anchor))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        omega = [o + n for o, n in zip(omega, importance(x_task))]
        anchor = [p.detach().clone() for p in params]
        model.eval()
        row = []
        with torch.no_grad():
            for j in range(t + 1):
                predictions = model(test_x[:, permutations[j]]).argmax(1)
                row.append(float((predictions == test_y).float().mean()))
        matrix.append(row)
    wall = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"workload": "stream_mas_pmnist5", "threads": threads, "wall_seconds": round(wall, 2),
            "peak_rss_bytes": rss, "average_accuracy": round(sum(matrix[-1]) / tasks, 4), "accuracy_matrix": matrix}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stream", action="store_true", help="run the default `engram run` experiment end to end")
    p.add_argument("--data-dir", default="../shared/datasets", help="directory with MNIST's IDX files (for --stream)")
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.stream:
        print(json.dumps(stream(args.data_dir, args.threads), sort_keys=True))
        return
    if not args.json:
        print("workload          batch  threads  samples/s    ms/step")
    for name in args.workloads.split(","):
        sps = measure(name, args.seconds)
        batch = WORKLOADS[name][1]
        if args.json:
            print(json.dumps({"workload": name, "batch": batch, "threads": args.threads,
                              "samples_per_second": round(sps, 1)}, sort_keys=True))
        else:
            print(f"{name:<18}{batch:5d}  {args.threads:7d}  {sps:9.1f}  {1000 * batch / sps:9.3f}")


if __name__ == "__main__":
    main()
