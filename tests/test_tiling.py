"""Overlap-tile prediction equals whole-image prediction when the receptive field fits the overlap."""

import numpy as np
import pytest
import torch
from torch import nn

from pixelwise.data.datasets import to_tensor
from pixelwise.data.encoding import Normalization
from pixelwise.inference import predict, predict_logits, predict_tiled, tile_starts
from pixelwise.segmenter import Segmenter


def small_rf_net() -> nn.Module:
    """Three 3x3 convolutions: receptive field 7 x 7 (3 pixels each side)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 4, 3, padding=1),
    ).eval()


@pytest.mark.parametrize("percentiles", [None, [2.0, 98.0]])
@pytest.mark.parametrize(
    "h, w, tile, overlap", [(100, 77, 32, 8), (64, 64, 64, 4), (30, 200, 40, 5)]
)
def test_tiled_equals_whole_image_on_mirrored_input(h, w, tile, overlap, percentiles):
    """Also for a model normalised by percentiles: every tile by the whole image's (the image
    brightens from left to right, so each tile's own would differ)."""
    net = small_rf_net()
    norm = Normalization([0.5] * 3, [0.25] * 3, percentiles=percentiles)
    noise = np.random.default_rng(0).integers(0, 128, (h, w, 3))
    image = (noise + np.linspace(0, 127, w)[None, :, None]).astype(np.uint8)
    tiled = predict_tiled(net, image, norm, tile, overlap, precision="fp32", batch_size=3)
    # reference: the whole mirror-extended image at once, cropped back
    padded = np.pad(image, ((overlap, overlap), (overlap, overlap), (0, 0)), mode="reflect")
    bounds = norm.bounds(image)
    logits = predict_logits(net, to_tensor(padded, norm, bounds)[None], "fp32")[
        0, :, overlap:-overlap, overlap:-overlap
    ]
    np.testing.assert_array_equal(tiled, logits.argmax(0).numpy())
    # away from the image border the plain whole-image prediction agrees too
    whole = predict_logits(net, to_tensor(image, norm)[None], "fp32")[0].argmax(0).numpy()
    np.testing.assert_array_equal(tiled[3:-3, 3:-3], whole[3:-3, 3:-3])


def test_tile_starts_cover_exactly():
    assert tile_starts(100, 40) == [0, 40, 60]
    assert tile_starts(30, 40) == [0]
    assert tile_starts(80, 40) == [0, 40]


def test_predict_uses_tiles_when_asked_and_checks_sizes():
    seg = Segmenter(
        small_rf_net(),
        "x",
        {"in_channels": 3},
        ["a", "b", "c", "d"],
        Normalization([0.5] * 3, [0.25] * 3),
    )
    image = np.random.default_rng(1).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    np.testing.assert_array_equal(
        predict(seg, image, "fp32", tile=24, overlap=6)[4:-4, 4:-4],
        predict(seg, image, "fp32", tile=0)[4:-4, 4:-4],
    )
    with pytest.raises(ValueError, match="tile 10 must be larger than twice the overlap 6"):
        predict(seg, image, "fp32", tile=10, overlap=6)


def test_tiled_prediction_of_a_reduced_scale_model_returns_full_size():
    seg = Segmenter(
        small_rf_net(),
        "x",
        {"in_channels": 3},
        ["a", "b", "c", "d"],
        Normalization([0.5] * 3, [0.25] * 3),
        input_scale=0.5,
    )
    image = np.random.default_rng(2).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    assert predict(seg, image, "fp32", tile=24, overlap=4).shape == (50, 70)


def test_tiled_prediction_applies_the_decision_rule_per_tile():
    from pixelwise.instances import boundary_codes

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Tanh(), nn.Conv2d(3, 3, 1)).eval()
    norm = Normalization([0.5] * 3, [0.25] * 3)
    image = np.random.default_rng(1).integers(0, 255, (70, 90, 3), dtype=np.uint8)
    tiled = predict_tiled(net, image, norm, 32, 4, "fp32", decide=boundary_codes)
    padded = np.pad(image, ((4, 4), (4, 4), (0, 0)), mode="reflect")
    probs = predict_logits(net, to_tensor(padded, norm)[None], "fp32").softmax(1)
    expected = boundary_codes(probs)[0, 4:-4, 4:-4].numpy()
    np.testing.assert_array_equal(tiled, expected)
    assert set(np.unique(tiled)) <= {0, 1, 2} and not np.array_equal(
        tiled, probs.argmax(1)[0, 4:-4, 4:-4].numpy()
    )  # the rule, not the argmax


@pytest.mark.parametrize("tile", [0, 32])
def test_class_probabilities_whole_and_tiled(tile):
    """The probabilities are the network's softmax (tiled as the mask is), and their argmax is
    predict's mask."""
    from pixelwise.inference import predict_probabilities

    seg = Segmenter(
        small_rf_net(), "x", {"in_channels": 3}, list("abcd"), Normalization([0.5] * 3, [0.25] * 3)
    )
    image = np.random.default_rng(2).integers(0, 255, (60, 45, 3), dtype=np.uint8)
    probs = predict_probabilities(seg, image, "fp32", tile=tile, overlap=8)
    assert probs.shape == (60, 45, 4) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(-1), 1, atol=1e-5)
    np.testing.assert_array_equal(
        probs.argmax(-1), predict(seg, image, "fp32", tile=tile, overlap=8)
    )
    softmax = predict_logits(seg.network, to_tensor(image, seg.norm)[None], "fp32").softmax(1)
    inner = np.s_[4:-4, 4:-4]  # tiles see the image mirrored beyond its border
    np.testing.assert_allclose(probs[inner], softmax[0].permute(1, 2, 0).numpy()[inner], atol=1e-5)


class CountingNet(nn.Module):
    """``net``, counting the tiles (batch items) it has seen."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.tiles = net, 0

    def forward(self, x):
        self.tiles += len(x)
        return self.net(x)


def test_tiles_of_one_value_go_through_the_network_once():
    """A slide's unscanned glass is filled with one value: those tiles are predicted once, and
    the mask is still the whole image's."""
    net = CountingNet(small_rf_net())
    norm = Normalization([0.5] * 3, [0.25] * 3)
    image = np.full((100, 200, 3), 255, np.uint8)
    image[20:60, 150:190] = np.random.default_rng(0).integers(0, 255, (40, 40, 3))  # tissue
    tiled = predict_tiled(net, image, norm, 32, 4, precision="fp32", batch_size=3)
    starts = len(tile_starts(100, 24)) * len(tile_starts(200, 24))
    assert net.tiles < starts / 2  # 45 tiles, most of them glass
    padded = np.pad(image, ((4, 4), (4, 4), (0, 0)), mode="reflect")
    logits = predict_logits(net, to_tensor(padded, norm)[None], "fp32")[0, :, 4:-4, 4:-4]
    np.testing.assert_array_equal(tiled, logits.argmax(0).numpy())
    assert len(np.unique(tiled)) > 1
