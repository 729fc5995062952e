#!/usr/bin/python3
"""Reference for shared/data/bilinear-resize.ts: PyTorch's own bilinear resize.

Reads `count` grey uint8 images of `height x width` pixels (raw bytes, image after image) from
stdin, scales them to [0, 1] as torchvision's ToTensor does (float32, x / 255), resizes each
to every requested size with F.interpolate(mode='bilinear', align_corners=False, no
antialias), and writes the results to stdout as little-endian float32, size after size, each
[count, size, size] row-major.

Usage: resize_reference.py COUNT HEIGHT WIDTH SIZE [SIZE ...]   (run with Debian's
/usr/bin/python3, which has python3-torch)
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F


def main(argv):
    if len(argv) < 5:
        sys.exit(__doc__)
    count, height, width = (int(a) for a in argv[1:4])
    sizes = [int(a) for a in argv[4:]]
    torch.set_num_threads(1)
    raw = sys.stdin.buffer.read()
    expected = count * height * width
    if len(raw) != expected:
        sys.exit(f"read {len(raw)} bytes from stdin, expected {expected}")
    pixels = torch.from_numpy(np.frombuffer(raw, dtype=np.uint8).copy())
    x = pixels.reshape(count, 1, height, width).to(torch.float32) / 255
    for size in sizes:
        y = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        sys.stdout.buffer.write(y.contiguous().numpy().astype("<f4").tobytes())


if __name__ == "__main__":
    main(sys.argv)
