"""Closed-form matting on the unknown band: the Laplacian rows, the right-hand side and the alpha
against pymatting's whole-photo ``cf_laplacian`` / ``estimate_alpha_cf`` (the reference; their
modules loaded alone, as matting loads its solvers: importing the package would compile all of
it, a minute of a fresh CI run)."""

import importlib.util

import numpy as np
import pytest
from PIL import Image

from pixelwise.matting import band_system, closed_form_matting, pymatting_modules

if importlib.util.find_spec("pymatting") is None:
    pytest.skip("matting is the [matting] extra (pymatting)", allow_module_level=True)


def _photo_and_trimap():
    """A crop of scikit-image's astronaut and a ring-shaped unknown band, one part of which
    touches the photo's top edge (where pymatting has no window centres)."""
    from skimage import data

    rgb = np.ascontiguousarray(data.astronaut()[100:220, 150:310])
    yy, xx = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
    r = np.hypot(yy - 60, xx - 80)
    tri = np.where(r < 30, 1.0, np.where(r < 45, 0.5, 0.0))
    tri[0:3, 60:100] = 0.5
    return rgb, tri


def _smooth_photo_and_trimap():
    """A photo blown up 12x from random colours: windows of almost one colour make the Laplacian
    nearly singular, and pymatting's preconditioner retries with larger shifts."""
    small = (np.random.default_rng(0).random((8, 10, 3)) * 255).astype(np.uint8)
    rgb = np.asarray(Image.fromarray(small).resize((120, 96), Image.BICUBIC))
    tri = np.zeros((96, 120))
    tri[:, 40:80] = 0.5
    tri[:, 80:] = 1
    return rgb, tri


def test_band_system_is_pymattings_laplacian_on_the_unknown_pixels():
    cf_laplacian = pymatting_modules("pymatting.laplacian.cf_laplacian")[0].cf_laplacian
    rgb, tri = _photo_and_trimap()
    unknown, known = (tri == 0.5).ravel(), (tri != 0.5).ravel()
    whole = cf_laplacian(rgb / 255.0, is_known=known)
    reference = whole[unknown][:, unknown]
    reference.eliminate_zeros()
    rhs = -whole[unknown][:, known].dot((tri == 1).ravel()[known])
    system, b, index = band_system(rgb, tri)
    assert np.array_equal(index, np.flatnonzero(unknown))
    assert system.shape == reference.shape and system.nnz == reference.nnz
    scale = abs(reference).max()
    assert abs(system - reference).max() < 1e-6 * scale  # the windows' 3 x 3 inverses round apart
    np.testing.assert_allclose(b, rhs, atol=1e-6 * scale)


def test_alpha_is_estimate_alpha_cf():
    *_, alpha_cf = pymatting_modules(
        "pymatting.util.util",
        "pymatting.laplacian.cf_laplacian",
        "pymatting.preconditioner.ichol",
        "pymatting.solver.cg",
        "pymatting.alpha.estimate_alpha_cf",
    )
    estimate_alpha_cf = alpha_cf.estimate_alpha_cf
    for rgb, tri in (_photo_and_trimap(), _smooth_photo_and_trimap()):
        expected = estimate_alpha_cf(rgb / 255.0, tri).clip(0, 1)
        alpha = closed_form_matting(rgb, tri)
        assert alpha.dtype == np.float32 and alpha.shape == tri.shape
        np.testing.assert_allclose(alpha, expected, atol=1e-4)
        assert np.array_equal(alpha[tri != 0.5], tri[tri != 0.5])  # sure pixels stay as given


def test_nearly_singular_photo_prints_nothing(capsys):
    """pymatting's preconditioner prints a "PERFORMANCE WARNING" per shift it retries; in a
    command's output that is noise, not news."""
    rgb, tri = _smooth_photo_and_trimap()
    alpha = closed_form_matting(rgb, tri)
    assert capsys.readouterr().out == ""
    assert 0 <= alpha.min() and alpha.max() <= 1 and alpha[:, 40:80].std() > 0.01


def test_no_unknown_pixels_give_the_trimap():
    rgb = np.zeros((20, 30, 3), np.uint8)
    tri = np.zeros((20, 30))
    tri[:, 15:] = 1
    assert np.array_equal(closed_form_matting(rgb, tri), tri.astype(np.float32))


def test_windows_in_chunks_give_the_same_system(monkeypatch):
    """A large photo's windows are visited a chunk at a time; each chunk sums into the rows it
    touches alone. Chunks of 97 windows against all of them at once."""
    import pixelwise.matting

    rgb, tri = _photo_and_trimap()
    whole, b_whole, unknown = band_system(rgb, tri)
    monkeypatch.setattr(pixelwise.matting, "CHUNK", 97)
    chunked, b_chunked, unknown_chunked = band_system(rgb, tri)
    assert np.array_equal(unknown_chunked, unknown)
    assert chunked.nnz == whole.nnz and abs(chunked - whole).max() < 1e-12
    np.testing.assert_allclose(b_chunked, b_whole, atol=1e-12)


def test_matting_loads_pymattings_two_solvers_alone():
    """Importing pymatting compiles every numba function of the package (70 s on 2 cores the
    first time after an install); matting loads only the preconditioner's and the solver's
    modules (a fresh interpreter: the package itself not imported), once."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np; from pixelwise.matting import closed_form_matting; "
        "tri = np.zeros((20, 30)); tri[:, 12:18] = 0.5; tri[:, 18:] = 1; "
        "rgb = np.zeros((20, 30, 3), np.uint8); rgb[:, 15:] = 200; "
        "alpha = closed_form_matting(rgb, tri); assert alpha[:, 17].min() > 0.5 > alpha[:, 13].max(); "
        "print(sorted(m for m in sys.modules if m.startswith('pymatting')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[-2] == str(
        ["pymatting.preconditioner.ichol", "pymatting.solver.cg"]
    )
    from pixelwise.matting import solvers

    ichol, cg = solvers()
    assert (ichol, cg) == solvers() and ichol.__module__ == "pymatting.preconditioner.ichol"
    assert sys.modules["pymatting.solver.cg"].cg is cg


def test_matting_without_pymatting_names_the_extra(monkeypatch, tmp_path, capsys):
    """Without pymatting installed, remove-bg --matting says which extra to install."""
    import sys

    from pixelwise.cli import main

    monkeypatch.setitem(sys.modules, "pymatting", None)  # an import fails as when not installed
    for name in ("pymatting.preconditioner.ichol", "pymatting.solver.cg"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    rgb, _ = _photo_and_trimap()
    Image.fromarray(rgb).save(tmp_path / "p.png")
    run = ["remove-bg", str(tmp_path / "p.png"), "-o", str(tmp_path / "out"), "--matting"]
    assert main(run + ["--method", "grabcut", "--no-progress"]) == 2
    assert "pymatting is not installed: pip install 'pixelwise[matting]'" in capsys.readouterr().err
