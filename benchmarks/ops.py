"""Scratch operations versus PyTorch's native kernels: forward and forward+backward time.

Prints median milliseconds of both and their ratio (scratch / native) for each shape, all
measured side by side in one run. Target (issue 3): within 3x for unpooling and transposed
convolution.

    python benchmarks/ops.py [--repeats 7] [--threads 2] [--quick]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from timing import add_common, begin, median_seconds

from pixelwise import ops


def median_ms(fn, repeats: int) -> float:
    return 1000 * median_seconds(fn, repeats)


def fwd_bwd(make_out, leaves):
    def run():
        for t in leaves:
            t.grad = None
        make_out().sum().backward()

    return run


def cases(quick: bool):
    n, c, hw = (2, 32, 64) if quick else (8, 64, 128)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, hw, hw, generator=g)
    _, idx = F.max_pool2d(x, 2, return_indices=True)
    v = torch.randn(idx.shape, generator=g, requires_grad=True)
    yield (
        f"max_unpool2d {tuple(v.shape)}->{hw}x{hw}",
        lambda: ops.max_unpool2d(v, idx, (hw, hw)),
        lambda: F.max_unpool2d(v, idx, 2, output_size=(hw, hw)),
        [v],
    )
    xp = x.clone().requires_grad_()
    yield (
        f"max_pool2d_with_indices {tuple(xp.shape)}",
        lambda: ops.max_pool2d_with_indices(xp, 2)[0],
        lambda: F.max_pool2d(xp, 2, return_indices=True)[0],
        [xp],
    )
    for k, s in ((2, 2), (3, 2), (4, 2)):
        y = torch.randn(n, c, hw, hw, generator=g, requires_grad=True)
        w = torch.randn(c, c, k, k, generator=g, requires_grad=True)
        p = (k - 2 + 1) // 2
        op = (k - 2) % 2  # sizes double exactly
        yield (
            f"conv_transpose2d k{k} s{s} {tuple(y.shape)}->{2 * hw}",
            lambda y=y, w=w, p=p, op=op: ops.conv_transpose2d(y, w, None, s, p, op),
            lambda y=y, w=w, p=p, op=op: F.conv_transpose2d(y, w, None, s, p, op),
            [y, w],
        )
    xc = torch.randn(n, c, hw, hw, generator=g, requires_grad=True)
    wc = torch.randn(c, c, 3, 3, generator=g, requires_grad=True)
    yield (
        f"conv2d k3 s1 {tuple(xc.shape)}",
        lambda: ops.conv2d(xc, wc, None, 1, 1),
        lambda: F.conv2d(xc, wc, None, 1, 1),
        [xc, wc],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    add_common(parser)
    args = parser.parse_args()
    begin(args)
    print(
        f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats}; ratio = scratch / native"
    )
    print(f"{'operation':<48}{'pass':>10}{'scratch ms':>12}{'native ms':>11}{'ratio':>7}")
    for name, ours, theirs, leaves in cases(args.quick):
        with torch.no_grad():
            f_ours, f_theirs = median_ms(ours, args.repeats), median_ms(theirs, args.repeats)
        b_ours = median_ms(fwd_bwd(ours, leaves), args.repeats)
        b_theirs = median_ms(fwd_bwd(theirs, leaves), args.repeats)
        print(f"{name:<48}{'fwd':>10}{f_ours:>12.2f}{f_theirs:>11.2f}{f_ours / f_theirs:>7.2f}")
        print(f"{'':<48}{'fwd+bwd':>10}{b_ours:>12.2f}{b_theirs:>11.2f}{b_ours / b_theirs:>7.2f}")


if __name__ == "__main__":
    main()
