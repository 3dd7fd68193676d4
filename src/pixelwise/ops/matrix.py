r"""Convolution as a matrix: build the dense X with ``conv(x) = X @ x.flatten()``.

Row ``o`` of X holds the kernel laid over the inputs that output ``o`` sees; ``X.T`` then
maps outputs back to inputs, which is exactly the transposed convolution::

    conv_transpose(y) = X.T @ y.flatten()

Works for 1D (kernel ``(k,)``, input ``(n,)``) and 2D (kernel ``(kh, kw)``, input ``(h, w)``)
single-channel kernels, and for any NumPy dtype, including ``object`` arrays of symbols
(``np.array(["x", "y", "z"], dtype=object)``) to print the lecture's symbolic matrices.
"""

from __future__ import annotations

import numpy as np


def conv_matrix(
    kernel, input_shape, stride=1, padding=0, dilation=1, padded_input: bool = False
) -> np.ndarray:
    """Dense (outputs, inputs) matrix of a single-channel convolution.

    ``padded_input=True`` keeps a column for every zero-padding position, so the matrix acts
    on the padded input as drawn on lecture slides; by default padding columns are dropped
    (they multiply zeros) and the matrix acts on the input itself.
    """
    kernel = np.asarray(kernel)
    dims = kernel.ndim
    if dims not in (1, 2) or len(tuple(input_shape)) != dims:
        raise ValueError(
            f"kernel shape {kernel.shape} and input shape {tuple(input_shape)} must both be 1D or 2D"
        )
    s, p, d = (np.broadcast_to(np.asarray(v), (dims,)) for v in (stride, padding, dilation))
    size = np.asarray(input_shape)
    out = (size + 2 * p - d * (np.asarray(kernel.shape) - 1) - 1) // s + 1
    if (out < 1).any() or (s < 1).any() or (d < 1).any():
        raise ValueError(
            f"kernel {kernel.shape} (stride {tuple(s)}, padding {tuple(p)}, dilation {tuple(d)}) "
            f"does not fit input {tuple(input_shape)}"
        )
    # one entry per (output position, kernel tap): its input coordinate along each axis
    grids = np.meshgrid(
        *[np.arange(o) for o in out], *[np.arange(k) for k in kernel.shape], indexing="ij"
    )
    coords = [grids[a] * s[a] - p[a] + grids[dims + a] * d[a] for a in range(dims)]
    extent = size + 2 * p if padded_input else size
    if padded_input:
        coords = [c + p[a] for a, c in enumerate(coords)]
    valid = np.logical_and.reduce([(c >= 0) & (c < extent[a]) for a, c in enumerate(coords)])
    rows = np.ravel_multi_index([g[valid] for g in grids[:dims]], tuple(out))
    cols = np.ravel_multi_index([c[valid] for c in coords], tuple(extent))
    taps = kernel[tuple(g[valid] for g in grids[dims:])]
    matrix = np.zeros((int(np.prod(out)), int(np.prod(extent))), dtype=kernel.dtype)
    matrix[rows, cols] = taps
    return matrix
