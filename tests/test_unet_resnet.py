"""U-Net on a torchvision ResNet encoder: the encoder is torchvision's ResNet with the file's
weights (checked against torchvision's own forward), and ImageNet weights given by a local file
start training (semantic and Mask R-CNN) or are refused in one line. The semantic contract
(logits at input size, gradients, checkpoints) is tested for every model in test_models.py."""

import pytest
import torch
from torchvision.models import resnet as tv

from pixelwise.checkpoint import load_model
from pixelwise.cli import main
from pixelwise.models import create_model
from pixelwise.models.unet_resnet import load_backbone, resnet_state


def resnet_file(tmp_path, name="resnet18", seed=0):
    """A torchvision ResNet's state dict as torchvision saves its ImageNet weights (here
    seeded random weights, with batch-norm statistics that are not the identity)."""
    torch.manual_seed(seed)
    net = getattr(tv, name)()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    path = tmp_path / f"{name}.pth"
    torch.save(net.state_dict(), path)
    return net.eval(), path


def torchvision_features(net, x):
    """Stride-32 features by torchvision's own modules."""
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    return net.layer4(net.layer3(net.layer2(net.layer1(x))))


def our_features(model, x):
    y = model.pool(model.stem(x))
    for stage in model.stages:
        y = stage(y)
    return y


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_encoder_is_torchvisions_resnet_with_the_files_weights(tmp_path, name):
    net, path = resnet_file(tmp_path, name)
    model = create_model("unet_resnet", num_classes=3, backbone=name).eval()
    assert load_backbone(model.encoder(), path) == len(
        [k for k in net.state_dict() if not k.startswith("fc.")]
    )
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(our_features(model, x), torchvision_features(net, x))


def test_grey_images_see_what_the_rgb_network_sees_of_a_grey_photo(tmp_path):
    """A 1-channel encoder gets conv1's RGB kernels summed: grey g gives exactly what the RGB
    network gives for (g, g, g)."""
    net, path = resnet_file(tmp_path)
    model = create_model("unet_resnet", in_channels=1, num_classes=2).eval()
    load_backbone(model.encoder(), path)
    g = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(
            our_features(model, g), torchvision_features(net, g.expand(-1, 3, -1, -1))
        )


def test_a_file_of_another_resnet_or_no_resnet_is_refused(tmp_path):
    _, path = resnet_file(tmp_path, "resnet18")
    model = create_model("unet_resnet", backbone="resnet34")
    with pytest.raises(
        ValueError,
        match=r"resnet18\.pth: does not fit a resnet34 encoder.*holds a resnet18: give --backbone resnet18$",
    ):
        load_backbone(model.encoder(), path)
    with pytest.raises(ValueError, match="weights file not found"):
        load_backbone(model.encoder(), tmp_path / "missing.pth")
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other.pth")
    (tmp_path / "text.pth").write_text("not weights")
    assert resnet_state(path) is not None
    assert resnet_state(tmp_path / "other.pth") is None
    assert resnet_state(tmp_path / "text.pth") is None
    with pytest.raises(ValueError, match=r"text\.pth: cannot read as PyTorch weights"):
        load_backbone(model.encoder(), tmp_path / "text.pth")


def test_train_starts_the_encoder_from_imagenet_weights(shapes_data, tmp_path, capsys):
    """`train --model unet_resnet --weights resnet18.pth`: the run starts from the file (with a
    learning rate of 1e-9 conv1 stays the file's), normalises as ImageNet did, and the checkpoint
    loads and predicts without the file; the file for another model is refused."""
    _, path = resnet_file(tmp_path)
    common = ["--epochs", "1", "--epoch-size", "4", "--crop", "32", "--no-progress"]
    args = ["train", str(shapes_data), "--model", "unet_resnet", "--weights", str(path)]
    assert main([*args, "--out", str(tmp_path / "run"), "--lr", "1e-9", *common]) == 0
    assert "encoder: 120 tensors from" in capsys.readouterr().err
    state = torch.load(path, weights_only=True)
    path.unlink()
    seg = load_model(tmp_path / "run" / "best.pt")
    assert seg.arch == "unet_resnet" and seg.arch_kwargs["backbone"] == "resnet18"
    grey = state["conv1.weight"].sum(1, keepdim=True)  # the shapes are grey images
    torch.testing.assert_close(seg.network.stem[0].weight, grey, atol=1e-6, rtol=0)
    assert seg.norm.mean == pytest.approx([(0.485 + 0.456 + 0.406) / 3])
    images = shapes_data / "val" / "images"
    assert (
        main(
            [
                "predict",
                str(tmp_path / "run" / "best.pt"),
                str(images),
                "--out",
                str(tmp_path / "pred"),
            ]
        )
        == 0
    )
    assert len(list((tmp_path / "pred" / "masks").glob("*.png"))) == len(list(images.glob("*.png")))
    torch.save(state, path)
    refused = ["train", str(shapes_data), "--weights", str(path), "--out", str(tmp_path / "u")]
    assert main(refused) == 2
    assert "a ResNet's weights; they start the encoder of unet_resnet" in capsys.readouterr().err


def test_mask_rcnn_backbone_from_imagenet_weights(tmp_path):
    from pixelwise.models.mask_rcnn import mask_rcnn

    net, path = resnet_file(tmp_path)
    body = mask_rcnn(2, "resnet18", weights=str(path)).backbone.body.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(body(x)["3"], torchvision_features(net, x))
