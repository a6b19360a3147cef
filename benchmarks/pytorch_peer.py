#!/usr/bin/env python3
"""PyTorch peer of `engram bench`: the same workloads, timed the same way, printed with the same JSON keys.

A full training step = forward, cross-entropy, backward, SGD-momentum update (lr 0.01, momentum 0.9),
on a pool of 4 synthetic batches, after a warm-up; the eval_* workloads time forward passes only (eval mode,
torch.no_grad()). `engram bench --peer benchmarks/pytorch_peer.py` runs this script alternately with Engram. PyTorch is a benchmark peer only, never a dependency
of Engram.

    python3 benchmarks/pytorch_peer.py --threads 2 --json
"""
import argparse
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


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
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
