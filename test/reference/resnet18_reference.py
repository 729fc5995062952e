#!/usr/bin/python3
"""The seed's ResNet-18 in PyTorch, and the reference run the TypeScript model is checked against.

The network is d2l.ai's ResNet-18 ("Residual Networks" chapter) as the seed program builds it:
stem Conv2d(1, 64, 7, stride 2, padding 2) (d2l's book uses padding 3; the seed, and
shared/model/resnet18-architecture.ts, use 2), BatchNorm2d(64), ReLU, MaxPool2d(3, 2, 1); four
stages of two Residual units (the first unit of stages 3-5 halves the size and has a 1x1
projection `conv3`); AdaptiveAvgPool2d((1, 1)), Flatten, Linear(512, 10). BatchNorm momentum
0.1 and eps 1e-5 (PyTorch's defaults, set explicitly), convolutions with bias.
bench/pytorch_step.py imports `build_resnet18` from here, so both use this one model.

Tensor bundles: `<base>.json` lists `{"name", "shape", "offset"}` (offset in elements) and the
`"dtype"` ("float32" or "float64") of `<base>.bin`, which holds the values little-endian,
row-major, one tensor after another. Weights use PyTorch's layouts (OIHW kernels, [out, in]
linear weights) and the TypeScript model's names (`stage3_unit1_shortcut/kernel`).

Usage (Debian's /usr/bin/python3, which has python3-torch; nothing from PyPI):
  resnet18_reference.py crosscheck --weights BASE --batches BASE --out BASE
                                   [--lr 0.05] [--dtypes float32,float64] [--threads 1]
Loads the weights, then for each batch (`batch<i>/x` [n, 1, h, w], `batch<i>/labels` [n]) runs
one training step: forward in train mode, mean cross-entropy, backward, plain SGD. The first
dtype leads the trajectory; the others (float64: the same computation with float32 rounding
taken out) take its trainable weights before each step. Writes (as float32, see write_bundle)
`trajectory/step<i>/<name>`: the leader's trainable weights before step i >= 2;
`<dtype>/step<i>/logits|loss|grad/<name>` (before the update); after the last step
`<dtype>/final/<name>` for every weight and running statistic and `<dtype>/final/eval_logits`
(eval mode, first batch).
"""
import argparse
import json
import re
import sys

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

BATCH_NORM_MOMENTUM = 0.1
BATCH_NORM_EPSILON = 1e-5


def batch_norm(channels):
    return nn.BatchNorm2d(channels, eps=BATCH_NORM_EPSILON, momentum=BATCH_NORM_MOMENTUM)


class Residual(nn.Module):
    """d2l's residual unit: conv-BN-ReLU-conv-BN, plus the (optionally projected) input, ReLU."""

    def __init__(self, input_channels, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides) if use_1x1conv else None
        self.bn1 = batch_norm(num_channels)
        self.bn2 = batch_norm(num_channels)

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3 is not None:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)


def resnet_block(input_channels, num_channels, num_residuals, first_block=False):
    blk = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.append(Residual(input_channels, num_channels, use_1x1conv=True, strides=2))
        else:
            blk.append(Residual(num_channels, num_channels))
    return blk


def build_resnet18(input_channels=1, classes=10):
    """The seed's network, in the seed's `nn.Sequential` layout (PyTorch's default init)."""
    b1 = nn.Sequential(
        nn.Conv2d(input_channels, 64, kernel_size=7, stride=2, padding=2),
        batch_norm(64),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )
    b2 = nn.Sequential(*resnet_block(64, 64, 2, first_block=True))
    b3 = nn.Sequential(*resnet_block(64, 128, 2))
    b4 = nn.Sequential(*resnet_block(128, 256, 2))
    b5 = nn.Sequential(*resnet_block(256, 512, 2))
    return nn.Sequential(b1, b2, b3, b4, b5, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(512, classes))


# TypeScript parameter suffix -> PyTorch attribute.
TORCH_ATTRIBUTE = {
    "kernel": "weight",
    "bias": "bias",
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}
UNIT_LAYER = re.compile(r"stage([2-5])_unit([12])_(conv1|conv2|bn1|bn2|shortcut)")


def module_for(net, layer):
    """The PyTorch module behind one of the TypeScript model's layer names."""
    if layer == "stem_conv":
        return net[0][0]
    if layer == "stem_bn":
        return net[0][1]
    if layer == "dense":
        return net[7]
    match = UNIT_LAYER.fullmatch(layer)
    if match is None:
        raise KeyError(f"no PyTorch module for layer {layer!r}")
    stage, unit, part = int(match[1]), int(match[2]), match[3]
    module = getattr(net[stage - 1][unit - 1], "conv3" if part == "shortcut" else part)
    if module is None:
        raise KeyError(f"layer {layer!r} has no PyTorch module (unit without projection)")
    return module


def tensor_for(net, name):
    """The parameter or buffer named `<layer>/<suffix>` in the TypeScript model's terms."""
    layer, suffix = name.split("/")
    return getattr(module_for(net, layer), TORCH_ATTRIBUTE[suffix])


def read_bundle(base):
    with open(base + ".json") as f:
        manifest = json.load(f)
    raw = np.fromfile(base + ".bin", dtype="<f4" if manifest["dtype"] == "float32" else "<f8")
    out = {}
    for entry in manifest["tensors"]:
        size = int(np.prod(entry["shape"], dtype=np.int64))
        out[entry["name"]] = raw[entry["offset"]:entry["offset"] + size].reshape(entry["shape"])
    return out


def write_bundle(base, tensors):
    """
    Writes {name: array} as float32. float64 results lose digits beyond 2^-24 relative (6e-8),
    far below the float32-vs-float64 differences they are used to show (1e-6 and up), and half
    the size matters: the gradients of three steps in two dtypes are 270 MB as float32.
    """
    entries, offset = [], 0
    with open(base + ".bin", "wb") as data:
        for name, value in tensors.items():
            array = np.ascontiguousarray(value, dtype="<f4")
            entries.append({"name": name, "shape": list(array.shape), "offset": offset})
            array.tofile(data)
            offset += array.size
    with open(base + ".json", "w") as f:
        json.dump({"dtype": "float32", "tensors": entries}, f)


def load_weights(net, weights):
    """Copies every weight into `net`; fails unless they cover its parameters and buffers exactly."""
    assigned = set()
    with torch.no_grad():
        for name, value in weights.items():
            target = tensor_for(net, name)
            if tuple(target.shape) != value.shape:
                raise ValueError(f"{name}: shape {value.shape}, PyTorch expects {tuple(target.shape)}")
            if id(target) in assigned:
                raise ValueError(f"{name}: PyTorch tensor assigned twice")
            target.copy_(torch.from_numpy(np.array(value)))
            assigned.add(id(target))
    expected = [(n, t) for n, t in list(net.named_parameters()) + list(net.named_buffers()) if not n.endswith("num_batches_tracked")]
    missing = [n for n, t in expected if id(t) not in assigned]
    if missing:
        raise ValueError(f"weights file lacks {len(missing)} PyTorch tensors, e.g. {missing[:3]}")
    return len(expected)


def to_numpy(tensor):
    # clone: for float64 tensors .to() is a no-op, and the optimizer updates in place.
    return tensor.detach().to(torch.float64).clone().numpy()


class Replica:
    """One copy of the network in one dtype, with its optimizer and loss."""

    def __init__(self, weights, lr, dtype):
        torch.manual_seed(0)  # construction draws a random init, which load_weights overwrites
        self.dtype = dtype
        self.net = build_resnet18().to(dtype)
        load_weights(self.net, weights)
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=lr)
        self.loss_fn = nn.CrossEntropyLoss()

    def follow(self, leader, names):
        """Copies the leader's trainable weights (not its running statistics) into this replica."""
        with torch.no_grad():
            for name in names:
                tensor_for(self.net, name).copy_(tensor_for(leader.net, name))

    def step(self, x, y, names, out):
        """One training step; records logits, loss and gradients (before the update) in `out`."""
        self.net.train()
        self.optimizer.zero_grad()
        logits = self.net(x.to(self.dtype))
        loss = self.loss_fn(logits, y)
        loss.backward()
        out["logits"] = to_numpy(logits)
        out["loss"] = to_numpy(loss).reshape(1)
        for name in names:
            out[f"grad/{name}"] = to_numpy(tensor_for(self.net, name).grad)
        self.optimizer.step()

    def final(self, names, first_x, out):
        """Every weight and running statistic, and eval-mode logits of the first batch."""
        for name in names:
            out[name] = to_numpy(tensor_for(self.net, name))
        self.net.eval()
        with torch.no_grad():
            out["eval_logits"] = to_numpy(self.net(first_x.to(self.dtype)))


def crosscheck(weights, batches, lr, dtypes):
    """
    One SGD step per batch, starting from `weights`. The first dtype leads: it trains freely, and
    before each step the other replicas take its trainable weights, so every dtype computes its
    gradients at the same point (and its running statistics from the same batches and weights).
    Returns {name: array} as described in the module docstring.
    """
    replicas = {name: Replica(weights, lr, dtype) for name, dtype in dtypes.items()}
    leader = next(iter(replicas.values()))
    names = list(weights)
    trainable = [n for n in names if tensor_for(leader.net, n).requires_grad]
    steps = sorted(int(key[len("batch"):-len("/x")]) for key in batches if key.endswith("/x"))
    out = {}
    for step in steps:
        x = torch.from_numpy(np.array(batches[f"batch{step}/x"]))
        y = torch.from_numpy(np.array(batches[f"batch{step}/labels"])).to(torch.int64)
        if step != steps[0]:
            for name in trainable:
                out[f"trajectory/step{step}/{name}"] = to_numpy(tensor_for(leader.net, name))
        for replica in replicas.values():
            if replica is not leader:
                replica.follow(leader, trainable)
        for dtype_name, replica in replicas.items():
            record = {}
            replica.step(x, y, trainable, record)
            out.update({f"{dtype_name}/step{step}/{key}": value for key, value in record.items()})
    first_x = torch.from_numpy(np.array(batches[f"batch{steps[0]}/x"]))
    for dtype_name, replica in replicas.items():
        record = {}
        replica.final(names, first_x, record)
        out.update({f"{dtype_name}/final/{key}": value for key, value in record.items()})
    return out


def main(argv):
    parser = argparse.ArgumentParser(description="PyTorch reference run for the ResNet-18 cross-check")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("crosscheck")
    run.add_argument("--weights", required=True)
    run.add_argument("--batches", required=True)
    run.add_argument("--out", required=True)
    run.add_argument("--lr", type=float, default=0.05)
    run.add_argument("--dtypes", default="float32,float64")
    run.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv[1:])
    torch.set_num_threads(args.threads)
    weights = read_bundle(args.weights)
    batches = read_bundle(args.batches)
    dtypes = {name: {"float32": torch.float32, "float64": torch.float64}[name] for name in args.dtypes.split(",")}
    write_bundle(args.out, crosscheck(weights, batches, args.lr, dtypes))


if __name__ == "__main__":
    main(sys.argv)
