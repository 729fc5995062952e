#!/usr/bin/python3
"""Examples/sec of the seed's PyTorch ResNet-18 under DistributedDataParallel (gloo), the peer
of `bench scaling`: the same global batch split across ranks, the same image size.

The model is test/reference/resnet18_reference.py's `build_resnet18` (the seed's d2l network).
Each rank is one process (torch.multiprocessing.spawn), with one thread, joined through
init_method tcp://127.0.0.1:PORT (a free port unless --port), and trains on its share of the global batch (random images,
seeded per rank; contiguous shares that differ by at most one, as ours): zero_grad, forward in
train mode, mean cross-entropy, backward (DDP all-reduces the gradients in buckets while the
backward pass runs), SGD update (lr 0.05). A warm-up step, then STEPS timed steps; a step's time
is the slowest rank's. Prints one JSON object on stdout:
{"detail": "...", "world_size": N, "batch": B, "size": S, "times_ms": [...]}.

Usage (Debian's /usr/bin/python3, which has python3-torch):
  pytorch_ddp.py --world-size N [--port P] [--batch 256] [--size 96] [--warmup 1] [--steps 3]
Set OMP_NUM_THREADS=1 as well (bench/scaling.ts does): the OpenMP pool is sized when torch loads.
"""
import argparse
import json
import os
import socket
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "reference"))
from resnet18_reference import build_resnet18  # noqa: E402


def share_of(count, rank, world_size):
    """Images in rank's contiguous share of `count` (earlier ranks take the extra), as shareOf in training-loop.ts."""
    return count // world_size + (1 if rank < count % world_size else 0)


def rank_main(rank, args):
    # One thread per rank, as each of our workers trains with one thread.
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{args.port}", rank=rank, world_size=args.world_size)
    torch.manual_seed(0)
    net = DistributedDataParallel(build_resnet18())
    net.train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(rank + 1)
    share = share_of(args.batch, rank, args.world_size)
    x = torch.rand(share, 1, args.size, args.size, generator=generator)
    y = torch.randint(0, 10, (share,), generator=generator)

    def step():
        optimizer.zero_grad()
        loss_fn(net(x), y).backward()
        optimizer.step()

    for _ in range(args.warmup):
        step()
    times = torch.zeros(args.steps, dtype=torch.float64)
    for i in range(args.steps):
        dist.barrier()
        began = time.perf_counter()
        step()
        times[i] = (time.perf_counter() - began) * 1000
    dist.all_reduce(times, op=dist.ReduceOp.MAX)
    if rank == 0:
        detail = f"PyTorch {torch.__version__} DDP (gloo), {torch.get_num_threads()} thread(s) per rank"
        result = {"detail": detail, "world_size": args.world_size, "batch": args.batch, "size": args.size, "times_ms": times.tolist()}
        print(json.dumps(result), flush=True)
    dist.destroy_process_group()


def free_port():
    """A loopback port nothing listens on right now, for the group's rendezvous."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world-size", type=int, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args(argv[1:])
    args.port = args.port or free_port()
    mp.spawn(rank_main, args=(args,), nprocs=args.world_size, join=True)


if __name__ == "__main__":
    main(sys.argv)
