"""Model registry and U-Net contract: logits at input resolution for any size."""

import pytest
import torch

from pixelwise import create_model, list_models


def test_registry_error_lists_names():
    with pytest.raises(ValueError, match="unknown model 'nope'; choose one of: unet"):
        create_model("nope")
    assert "unet" in list_models()


@pytest.mark.parametrize("h, w", [(37, 51), (64, 64), (17, 9)])
def test_unet_logits_at_input_resolution(h, w):
    model = create_model("unet", in_channels=3, num_classes=5, depth=3, base_width=4).eval()
    assert model(torch.randn(2, 3, h, w)).shape == (2, 5, h, w)


def test_unet_backward_reaches_every_parameter():
    model = create_model("unet", in_channels=1, num_classes=2, depth=2, base_width=4, batch_norm=False)
    model(torch.randn(1, 1, 20, 20)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_unet_eval_deterministic_and_bad_depth():
    model = create_model("unet", in_channels=1, num_classes=2, depth=2, base_width=4).eval()
    x = torch.randn(1, 1, 24, 24)
    assert torch.equal(model(x), model(x))
    with pytest.raises(ValueError, match="depth must be >= 1"):
        create_model("unet", depth=0)
