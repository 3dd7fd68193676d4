"""Models on the scratch backend: same outputs as on native kernels, same training curve."""

import pytest
import torch

from pixelwise import create_model
from pixelwise.data.synthetic import shapes_sample
from pixelwise.precision import autocast


def _batch(n=8, size=32, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    pairs = [shapes_sample(size, rng) for _ in range(n)]
    x = torch.tensor(np.stack([p[0] for p in pairs]), dtype=torch.float32).unsqueeze(1) / 255
    y = torch.tensor(np.stack([p[1] for p in pairs]), dtype=torch.long)
    return x, y


def _losses(name: str, backend: str, steps: int = 12) -> list[float]:
    torch.manual_seed(0)
    model = create_model(name, in_channels=1, num_classes=3, depth=2, base_width=8, backend=backend)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    x, y = _batch()
    out = []
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        out.append(loss.item())
    return out


@pytest.mark.parametrize("name", ["segnet", "unet"])
def test_scratch_backend_follows_torch_loss_curve(name):
    native, scratch = _losses(name, "torch"), _losses(name, "scratch")
    assert native[-1] < 0.8 * native[0]  # it does learn
    assert scratch == pytest.approx(native, rel=1e-3, abs=1e-4)


@pytest.mark.parametrize("name", ["segnet", "unet"])
def test_backends_share_state_dicts_and_outputs(name):
    a = create_model(
        name, in_channels=3, num_classes=2, depth=2, base_width=4, backend="torch"
    ).eval()
    b = create_model(
        name, in_channels=3, num_classes=2, depth=2, base_width=4, backend="scratch"
    ).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 19, 26)
    torch.testing.assert_close(b(x), a(x), rtol=1e-5, atol=1e-5)
    with torch.no_grad(), autocast("bf16"):  # the scratch ops follow autocast like native ones
        assert b(x).shape == (2, 2, 19, 26)
