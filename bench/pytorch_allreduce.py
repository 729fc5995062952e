#!/usr/bin/python3
"""One rank of PyTorch's gloo all_reduce (sum), the peer bench/allreduce.ts measures beside ours.

Every rank is one process (bench/allreduce.ts starts them all), joins the group through
init_method tcp://127.0.0.1:PORT, fills a float32 tensor of ELEMENTS values, runs one warm-up
all_reduce, then REPEATS all_reduces back to back, each on a fresh copy of the same values, as
test/helpers/ring-member-process.ts does for ours. Prints one JSON object on stdout:
{"rank": r, "times_ms": [...]} with this rank's time per all_reduce.

Usage (Debian's /usr/bin/python3, which has python3-torch):
  pytorch_allreduce.py --rank R --world-size N --port P --elements E --repeats K
"""
import argparse
import json
import time

import torch
import torch.distributed as dist


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rank", type=int, required=True)
    parser.add_argument("--world-size", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--elements", type=int, required=True)
    parser.add_argument("--repeats", type=int, required=True)
    args = parser.parse_args()
    # One thread per rank, as each of our ring processes has one JavaScript thread.
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{args.port}", rank=args.rank, world_size=args.world_size
    )
    generator = torch.Generator().manual_seed(args.rank + 1)
    original = torch.rand(args.elements, generator=generator, dtype=torch.float32)
    data = original.clone()
    dist.all_reduce(data)
    times = []
    for _ in range(args.repeats):
        data.copy_(original)
        began = time.perf_counter()
        dist.all_reduce(data)
        times.append((time.perf_counter() - began) * 1000)
    dist.destroy_process_group()
    print(json.dumps({"rank": args.rank, "times_ms": times}), flush=True)


if __name__ == "__main__":
    main()
