"""Every registered model: the semantic contract, generated from the registry."""

import copy
import inspect

import pytest
import torch

from pixelwise import create_model, list_models
from pixelwise.checkpoint import load_model, save_checkpoint
from pixelwise.data.encoding import Normalization
from pixelwise.models import MODELS
from pixelwise.segmenter import Segmenter

SMALL = {"depth": 2, "base_width": 4, "width": 4, "hidden": 8, "window": 23}


def small(name: str, **kw) -> dict:
    accepted = inspect.signature(MODELS[name]).parameters
    return {k: v for k, v in SMALL.items() if k in accepted} | kw


def full(model, x):
    """Logits at input resolution (the original U-Net's forward is valid-only)."""
    return getattr(model, "forward_full", model)(x)


def test_registry_error_lists_names():
    with pytest.raises(
        ValueError, match="unknown model 'nope'; choose one of: " + ", ".join(list_models("all"))
    ):
        create_model("nope")
    assert set(list_models()) == {
        "unet",
        "unet_resnet",
        "unet_original",
        "segnet",
        "deconvnet",
        "fcn32s",
        "fcn16s",
        "fcn8s",
        "patch",
        "u2net",
    }


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("h, w", [(37, 51), (64, 64), (17, 9), (45, 61)])
def test_logits_at_input_resolution(name, h, w):
    model = create_model(name, **small(name, in_channels=3, num_classes=5)).eval()
    out = full(model, torch.randn(2, 3, h, w))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 5, h, w)


@pytest.mark.parametrize("name", list_models())
def test_backward_reaches_every_parameter(name):
    torch.manual_seed(0)
    model = create_model(name, **small(name, in_channels=1, num_classes=2))
    full(model, torch.randn(2, 1, 40, 40)).square().sum().backward()
    missing = [
        n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0
    ]
    assert not missing


@pytest.mark.parametrize("name", list_models())
def test_eval_deterministic_and_checkpoint_round_trip(name, tmp_path):
    kwargs = small(name, in_channels=1, num_classes=3)
    model = create_model(name, **kwargs).eval()
    x = torch.randn(1, 1, 24, 24)
    assert torch.equal(full(model, x), full(model, x))
    seg = Segmenter(model, name, kwargs, ["a", "b", "c"], Normalization())
    save_checkpoint(tmp_path / "m.pt", seg)
    loaded = load_model(tmp_path / "m.pt")
    assert type(loaded.network) is type(model)
    torch.testing.assert_close(full(loaded.network, x), full(model, x), rtol=0, atol=0)


def with_statistics(model, seed: int = 0):
    """``model`` with batch-norm statistics and affine terms far from their initial values (a
    fold that forgot one of them would show), in eval mode."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if type(m) is torch.nn.BatchNorm2d:
            for t, low, high in [
                (m.running_mean, -0.5, 0.5),
                (m.running_var, 0.3, 3.0),
                (m.weight.data, 0.5, 1.5),
                (m.bias.data, -0.3, 0.3),
            ]:
                t.copy_(torch.rand(t.shape, generator=g) * (high - low) + low)
    return model.eval()


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("layout", ["fp32", "fp32-cl"])
def test_batch_norms_folded_for_inference_give_the_same_logits(name, layout):
    """Inference runs a copy with each batch norm that follows a convolution folded into it:
    the same logits as the network itself (float rounding), the network left as it was."""
    from pixelwise.inference import predict_logits
    from pixelwise.precision import folded

    torch.manual_seed(0)
    model = with_statistics(create_model(name, **small(name, in_channels=3, num_classes=4)))
    x = torch.randn(2, 3, 40, 48)
    with torch.no_grad():
        expected = full(model, x)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    got = predict_logits(model, x, layout)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    norms = [type(m) is torch.nn.BatchNorm2d for m in folded(model).modules()]
    if layout == "fp32-cl":  # the folded convolutions keep the layout the path runs in
        convs = [m for m in folded(model).modules() if type(m) is torch.nn.Conv2d]
        assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    if name in ("unet", "unet_resnet", "segnet", "deconvnet", "fcn8s", "u2net"):
        assert sum(norms) == 0  # every one of them follows a convolution
    assert model.state_dict().keys() == before.keys()
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("name", ["unet", "unet_resnet", "u2net", "patch"])
def test_inference_relus_out_of_place_in_bf16_only(name):
    """The inference copy's ReLUs (in place where the network's were) give exactly the logits
    of in-place ReLUs under bf16 autocast and in fp32; in bf16 they leave their input alone, in
    fp32 they overwrite it; out-of-place ReLUs are left as they are."""
    import copy

    from pixelwise.precision import InferenceReLU, autocast, fold_batch_norms, for_inference

    torch.manual_seed(0)
    model = with_statistics(create_model(name, **small(name, in_channels=3, num_classes=2)))
    inplace = fold_batch_norms(copy.deepcopy(model))
    made = for_inference(copy.deepcopy(model))
    relus = [m for m in model.modules() if type(m) is torch.nn.ReLU]
    kept = [m for m in made.modules() if type(m) is torch.nn.ReLU]
    assert not any(m.inplace for m in kept)
    assert len(kept) == sum(not m.inplace for m in relus)
    assert sum(type(m) is InferenceReLU for m in made.modules()) == sum(m.inplace for m in relus)
    x = torch.randn(1, 3, 48, 48)
    for precision in ("fp32", "bf16"):
        with torch.no_grad(), autocast(precision):
            assert torch.equal(made(x), inplace(x)), precision
    t = torch.randn(100)
    for dtype, overwritten in ((torch.bfloat16, False), (torch.float32, True)):
        given = t.to(dtype)
        before = given.clone()
        assert torch.equal(InferenceReLU()(given), torch.relu(before))
        assert torch.equal(given, torch.relu(before) if overwritten else before)


def test_a_network_trained_on_is_folded_again():
    """Training after a validation pass changes weights and statistics: the next inference
    folds them again rather than running the old copy."""
    from pixelwise.inference import predict_logits

    torch.manual_seed(0)
    model = with_statistics(create_model("unet", **small("unet", in_channels=1, num_classes=2)))
    x = torch.randn(2, 1, 32, 32)
    first = predict_logits(model, x, "fp32")
    model.train()
    opt = torch.optim.SGD(model.parameters(), 0.5)
    full(model, x).square().mean().backward()  # batch statistics move the running ones too
    opt.step()
    model.eval()
    with torch.no_grad():
        expected = full(model, x)
    assert not torch.allclose(expected, first, atol=1e-3)
    torch.testing.assert_close(predict_logits(model, x, "fp32"), expected, rtol=1e-4, atol=1e-5)


def test_a_network_made_in_inference_mode_runs_as_it_is():
    """Tensors made under ``torch.inference_mode`` keep no count of their changes: such a
    network is run unfolded rather than refused."""
    from pixelwise.inference import predict_logits
    from pixelwise.precision import folded

    with torch.inference_mode():
        model = with_statistics(create_model("unet", **small("unet", in_channels=1, num_classes=2)))
        x = torch.randn(1, 1, 32, 32)
        expected = full(model, x)
        torch.testing.assert_close(predict_logits(model, x, "fp32"), expected)
        assert folded(model) is model


def test_unet_bad_depth():
    with pytest.raises(ValueError, match="depth must be >= 1"):
        create_model("unet", depth=0)


def test_original_unet_as_published():
    model = create_model("unet_original").eval()
    convs = [
        m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))
    ]
    assert len(convs) == 23
    assert sorted({m.out_channels for m in convs if m.kernel_size == (3, 3)}) == [
        64,
        128,
        256,
        512,
        1024,
    ]
    assert sum(isinstance(m, torch.nn.Dropout) for m in model.modules()) == 1
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 572, 572)).shape == (1, 2, 388, 388)
    assert model.margin == 92 and model.input_size_for((388, 388)) == (572, 572)
    with pytest.raises(
        ValueError, match=r"input size \(256, 256\) is not valid .* next valid size is \(268, 268\)"
    ):
        model(torch.zeros(1, 1, 256, 256))


def test_patch_classifier_equals_its_fcn():
    torch.manual_seed(0)
    model = create_model("patch", in_channels=3, num_classes=4).eval()
    x = torch.randn(1, 3, 40, 33)
    with torch.no_grad():
        slow = model.sliding_window(x, batch_size=500)
        fast = model(x)
        fcn = model.to_fcn()(model._pad(x))[..., :40, :33]
        # one window by hand: the centre pixel (7, 12) classified from its own crop
        padded = model._pad(x)
        one = model.classify(padded[:, :, 7 : 7 + model.window, 12 : 12 + model.window])
    assert (slow - fast).abs().max() < 1e-4 and (fcn - fast).abs().max() < 1e-4
    torch.testing.assert_close(one[0], slow[0, :, 7, 12], rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_patch_classifier_equals_its_fcn_512():
    torch.manual_seed(0)
    model = create_model("patch", in_channels=3, num_classes=2).eval()
    x = torch.randn(1, 3, 512, 512)
    with torch.no_grad():
        assert (model.sliding_window(x) - model(x)).abs().max().item() <= 1e-4


def test_segnet_transposed_decoder_any_size():
    model = create_model("segnet", depth=3, base_width=4, decoder="transpose").eval()
    assert model(torch.randn(1, 3, 45, 61)).shape == (1, 2, 45, 61)


def test_segnet_and_deconvnet_differ_only_in_resampling():
    a, b = create_model("segnet", **SMALL_ED), create_model("deconvnet", **SMALL_ED)
    names = lambda m: {n.split(".")[0] for n, _ in m.named_parameters()}
    assert names(a) == {"encoders", "decoders", "head"} and names(b) == {
        "encoders",
        "decoders",
        "head",
        "downs",
        "ups",
    }


SMALL_ED = {"depth": 2, "base_width": 4}


def test_u2net_side_outputs_only_while_training():
    model = create_model("u2net", in_channels=3, num_classes=2, base_width=4, width=8)
    x = torch.randn(2, 3, 45, 61)
    out = model.train()(x)
    assert out.shape == (2, 2, 45, 61) and len(model.side_logits) == 6
    assert all(s.shape == out.shape for s in model.side_logits)
    model.eval()(x)
    assert model.side_logits == []
    model.train()(x)
    copy.deepcopy(model.eval())  # as inference copies it: the sides of a graph are gone
    assert model.side_logits == []


def test_deep_supervision_adds_the_side_losses():
    """The training step's loss for U²-Net = loss(fused) + mean of the side losses."""
    from pixelwise.semantic import make_loss, semantic_step
    from pixelwise.train import train_one_epoch

    torch.manual_seed(0)
    model = create_model("u2net", in_channels=1, num_classes=2, base_width=4, width=8)
    x, y = torch.randn(2, 1, 32, 32), torch.randint(0, 2, (2, 32, 32))
    loss_fn = make_loss("ce", None)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    fused = model(x)
    expected = loss_fn(fused, y) + sum(loss_fn(s, y) for s in model.side_logits) / 6
    model.load_state_dict(state)  # the forward above updated batch-norm statistics
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    step = lambda m, batch: semantic_step(m, batch, loss_fn, torch.device("cpu"), "fp32")  # noqa: E731
    got = train_one_epoch(model, [(x, y)], step, opt, None, progress=False)
    assert got == pytest.approx(expected.item(), rel=1e-5)
    assert expected.item() > loss_fn(fused, y).item() * 1.5  # the sides really count
