#!/usr/bin/python3
"""Examples/sec of the seed's PyTorch ResNet-18: a training step and a train-mode forward pass.

The model is test/reference/resnet18_reference.py's `build_resnet18` (the seed's d2l network,
the one the cross-check compares against). Measured the way bench/step.ts measures tfjs:
  step:    zero_grad, forward in train mode, mean cross-entropy, backward, SGD update (lr 0.05)
  forward: forward in train mode under torch.no_grad() (batch statistics, running statistics
           updated, no autograd graph), logits computed
Each is warmed up, then timed step by step; prints one JSON object on stdout.

Usage (Debian's /usr/bin/python3, which has python3-torch):
  pytorch_step.py --threads N --configs 96x32,28x64 [--warmup 2] [--steps 5] [--budget 20]
Set OMP_NUM_THREADS=N as well (bench/step.ts does): the OpenMP pool is sized when torch loads.
"""
import argparse
import json
import os
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "reference"))
from resnet18_reference import build_resnet18  # noqa: E402


def timed_runs(fn, warmup, steps, budget_s):
    """Runs fn `warmup` times, then up to `steps` times (at least once) within `budget_s`; seconds each."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < steps and (not times or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def measure(size, batch, warmup, steps, budget_s):
    torch.manual_seed(0)
    net = build_resnet18()
    net.train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.rand(batch, 1, size, size)
    y = torch.randint(0, 10, (batch,))

    def forward():
        with torch.no_grad():
            net(x)

    def step():
        optimizer.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        optimizer.step()

    return {
        "size": size,
        "batch": batch,
        "forward": timed_runs(forward, warmup, steps, budget_s),
        "step": timed_runs(step, warmup, steps, budget_s),
    }


def parse_configs(text):
    configs = []
    for item in text.split(","):
        size, batch = item.split("x")
        configs.append((int(size), int(batch)))
    return configs


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--configs", default="96x32,28x64", help="SIZExBATCH,...")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of timed runs per measurement")
    args = parser.parse_args(argv[1:])
    torch.set_num_threads(args.threads)
    results = [measure(size, batch, args.warmup, args.steps, args.budget) for size, batch in parse_configs(args.configs)]
    detail = f"PyTorch {torch.__version__}, {torch.get_num_threads()} thread(s), oneDNN {'available' if torch.backends.mkldnn.is_available() else 'unavailable'}"
    json.dump({"detail": detail, "results": results}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv)
