"""Every registered model: the semantic contract, generated from the registry."""

import pytest
import torch

from pixelwise import create_model, list_models
from pixelwise.checkpoint import Segmenter, load_model, save_checkpoint
from pixelwise.data.datasets import Normalization

SMALL = {"depth": 2, "base_width": 4}


def test_registry_error_lists_names():
    with pytest.raises(ValueError, match="unknown model 'nope'; choose one of: " + ", ".join(list_models())):
        create_model("nope")
    assert {"unet", "segnet"} <= set(list_models())


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("h, w", [(37, 51), (64, 64), (17, 9)])
def test_logits_at_input_resolution(name, h, w):
    model = create_model(name, in_channels=3, num_classes=5, **SMALL).eval()
    out = model(torch.randn(2, 3, h, w))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 5, h, w)


@pytest.mark.parametrize("name", list_models())
def test_backward_reaches_every_parameter(name):
    torch.manual_seed(0)
    model = create_model(name, in_channels=1, num_classes=2, **SMALL)
    model(torch.randn(2, 1, 20, 20)).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


@pytest.mark.parametrize("name", list_models())
def test_eval_deterministic_and_checkpoint_round_trip(name, tmp_path):
    model = create_model(name, in_channels=1, num_classes=3, **SMALL).eval()
    x = torch.randn(1, 1, 24, 24)
    assert torch.equal(model(x), model(x))
    kwargs = {"in_channels": 1, "num_classes": 3, **SMALL}
    seg = Segmenter(model, name, kwargs, ["a", "b", "c"], Normalization())
    save_checkpoint(tmp_path / "m.pt", seg)
    loaded = load_model(tmp_path / "m.pt")
    assert type(loaded.network) is type(model)
    torch.testing.assert_close(loaded.network(x), model(x), rtol=0, atol=0)


def test_unet_bad_depth():
    with pytest.raises(ValueError, match="depth must be >= 1"):
        create_model("unet", depth=0)
