"""Closed-form alpha matting (Levin, Lischinski and Weiss, 2008) with memory in proportion to the
trimap's unknown band, not to the photo.

The matting Laplacian couples two pixels only when a 3 x 3 window holds both, and alpha is
solved for the unknown pixels alone (``L_UU alpha_U = -L_UK alpha_K``), so only the windows that
touch an unknown pixel matter. pymatting's ``estimate_alpha_cf`` allocates 25 index and 25 value
slots for every pixel of the photo (about 0.5 KB per pixel: 13.8 GB peak for a 24-megapixel
photo); here the windows are visited in chunks and only the rows of unknown pixels are kept.
The solver is pymatting's (conjugate gradients, incomplete-Cholesky preconditioner), so the
alpha is the one ``estimate_alpha_cf`` computes; tests/test_matting.py checks both the
Laplacian and the alpha against it.
"""

from __future__ import annotations

import threading

import numpy as np

EPSILON = 1e-7  # regularisation of the window colour covariance (pymatting's default)
CHUNK = 65_536  # windows per step: bounds the (chunk, 9, 9) temporaries to about 100 MB


def window_centres(unknown: np.ndarray) -> np.ndarray:
    """Flat indices of the 3 x 3 windows (by their centre, inside the photo) that hold at least one
    unknown pixel."""
    import cv2

    touched = cv2.dilate(unknown.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    touched[[0, -1], :] = False  # a window needs all nine pixels inside the photo
    touched[:, [0, -1]] = False
    return np.flatnonzero(touched)


def window_blocks(colours: np.ndarray, epsilon: float = EPSILON) -> np.ndarray:
    """(n, 9, 9) contributions of n windows to the Laplacian from their pixels' colours (n, 9, 3)
    in [0, 1]: ``delta_ij - (1 + (I_i - mu)^T (Sigma + epsilon / 9 * Id)^-1 (I_j - mu)) / 9``
    (batched matrix products, in place: 3.6 times numpy's three-operand ``einsum``)."""
    centred = colours - colours.mean(axis=1, keepdims=True)
    covariance = centred.transpose(0, 2, 1) @ centred
    covariance += epsilon * np.eye(3)
    covariance /= 9
    blocks = (centred @ np.linalg.inv(covariance)) @ centred.transpose(0, 2, 1)
    blocks += 1
    blocks /= -9
    blocks += np.eye(9)
    return blocks


# A window's pixels a and b (3 x 3 positions 0..8) lie at most two rows and two columns apart:
# which of the 25 neighbours of a (5 x 5, row by row) b is.
_POSITIONS = np.stack(np.divmod(np.arange(9), 3), axis=1)
_APART = _POSITIONS[None, :, :] - _POSITIONS[:, None, :] + 2
NEIGHBOUR = _APART[..., 0] * 5 + _APART[..., 1]  # (9, 9)


def band_system(rgb: np.ndarray, trimap: np.ndarray, epsilon: float = EPSILON):
    """``(L_UU, b, unknown)``: the matting Laplacian's rows and columns of the unknown pixels
    (trimap 0.5; CSR), the right-hand side ``-L_UK alpha_K`` from the sure pixels (0 and 1), and
    the flat indices of the unknown pixels. ``rgb`` is uint8 (H, W, 3).

    Each unknown pixel's row has at most 25 entries, one per neighbour within two rows and two
    columns; the windows' contributions are summed into an (unknown, 25) array by ``bincount``
    and the CSR matrix written from it already sorted (0.42 -> 0.18 s for 46,000 unknown pixels,
    against summing coordinate lists)."""
    import scipy.sparse

    h, w = trimap.shape
    unknown = np.flatnonzero(trimap == 0.5)
    index = np.full(h * w, -1, np.int64)
    index[unknown] = np.arange(unknown.size)
    flat = rgb.reshape(-1, 3)
    offsets = (np.arange(-1, 2)[:, None] * w + np.arange(-1, 2)[None, :]).ravel()
    centres = window_centres(trimap == 0.5)
    near = np.zeros(unknown.size * 25)  # row by row: each unknown pixel's 25 neighbours
    for start in range(0, centres.size, CHUNK):
        pixels = centres[start : start + CHUNK, None] + offsets  # (n, 9)
        blocks = window_blocks(flat[pixels].astype(np.float64) / 255.0, epsilon)
        rows = index[pixels]
        kept = rows >= 0  # only the rows of unknown pixels are solved for
        first, last = rows[kept].min(), rows[kept].max() + 1  # the centres go in order
        slots = (rows[:, :, None] - first) * 25 + NEIGHBOUR
        near[first * 25 : last * 25] += np.bincount(
            slots[kept].ravel(), blocks[kept].ravel(), (last - first) * 25
        )
    near = near.reshape(-1, 25)
    coupled = near != 0
    dy, dx = np.divmod(np.arange(25), 5)
    columns = unknown[:, None] + (dy - 2) * w + (dx - 2)  # the neighbours' pixels
    columns[~coupled] = 0  # where no window reached (beyond the photo's edges too)
    b = -(near * ((trimap == 1).ravel()[columns] & coupled)).sum(axis=1)  # sure: never unknown
    columns = index[columns]
    inner = coupled & (columns >= 0)
    starts = np.concatenate([[0], np.cumsum(inner.sum(axis=1))])
    system = scipy.sparse.csr_matrix(
        (near[inner], columns[inner], starts), shape=(unknown.size, unknown.size)
    )
    return system, b, unknown


_LOADING = threading.Lock()


def pymatting_modules(*names: str) -> list:
    """pymatting's modules ``names`` (``pymatting.solver.cg``, ...), each loaded from its own
    file under its own name unless imported already, in the order given (a module's pymatting
    imports first), without importing the package: its import compiles every numba function of
    every one of its modules (70 s on 2 cores the first time after an install, cached after).
    Numba's cache and a later ``import pymatting`` find the modules as usual."""
    import importlib.util
    import sys
    from pathlib import Path

    with _LOADING:
        for name in names:
            if name in sys.modules:
                continue
            package = importlib.util.find_spec("pymatting")  # found, not imported
            if package is None:  # the CLI names the extra to install (missing_extra)
                raise ModuleNotFoundError("No module named 'pymatting'", name="pymatting")
            path = Path(package.submodule_search_locations[0], *name.split(".")[1:])
            spec = importlib.util.spec_from_file_location(name, path.with_suffix(".py"))
            module = sys.modules[name] = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
    return [sys.modules[name] for name in names]


def solvers():
    """pymatting's ``ichol`` and ``cg``, from their two modules alone (7 s to compile the first
    time, against 70 s for the whole package: :func:`pymatting_modules`). ``ichol`` prints six
    lines ("PERFORMANCE WARNING") for every shift it has to try on a near-singular Laplacian
    (flat, smooth photos) and goes on with the next: noise in a command's output, so that
    module's ``print`` alone is silenced (thread-safe, unlike redirecting ``sys.stdout``)."""
    preconditioner, solver = pymatting_modules(
        "pymatting.preconditioner.ichol", "pymatting.solver.cg"
    )
    preconditioner.print = lambda *args, **kwargs: None
    return preconditioner.ichol, solver.cg


def closed_form_matting(
    rgb: np.ndarray, trimap: np.ndarray, epsilon: float = EPSILON
) -> np.ndarray:
    """Alpha (H, W) float32 in [0, 1] of a uint8 (H, W, 3) photo from a trimap (H, W) of 0 (sure
    background), 1 (sure foreground) and 0.5 (unknown); pymatting's ``estimate_alpha_cf``
    without its whole-photo arrays."""
    ichol, cg = solvers()
    alpha = trimap.astype(np.float64).ravel()
    system, b, unknown = band_system(rgb, trimap, epsilon)
    if unknown.size:
        alpha[unknown] = cg(system, b, M=ichol(system))  # CSR of a symmetric matrix: its CSC
    return alpha.reshape(trimap.shape).clip(0, 1).astype(np.float32)
