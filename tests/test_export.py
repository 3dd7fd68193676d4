"""ONNX export: every exportable model equals PyTorch on random sizes under ONNX Runtime, and
the CLI runs exported models end to end."""

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("onnxruntime", reason="ONNX Runtime is part of the [onnx] extra")

from conftest import tiny_config, train_tiny
from test_models import small  # noqa: E402

from pixelwise import create_model, list_models  # noqa: E402
from pixelwise.checkpoint import load_model  # noqa: E402
from pixelwise.cli import main  # noqa: E402
from pixelwise.data.encoding import Normalization  # noqa: E402
from pixelwise.data.io import read_mask  # noqa: E402
from pixelwise.export import OnnxNetwork, onnx_bytes  # noqa: E402
from pixelwise.inference import predict  # noqa: E402
from pixelwise.segmenter import Segmenter  # noqa: E402

EXPORTABLE = [n for n in list_models() if n != "unet_original"]


def _seg(name: str, **kw) -> Segmenter:
    torch.manual_seed(0)
    kwargs = small(name, in_channels=3, num_classes=4) | kw
    return Segmenter(
        create_model(name, **kwargs).eval(), name, kwargs, ["a", "b", "c", "d"], Normalization()
    )


@pytest.mark.parametrize(
    "name, kw", [(n, {}) for n in EXPORTABLE] + [("segnet", {"decoder": "transpose"})]
)
def test_onnx_equals_pytorch_on_random_sizes(name, kw):
    seg = _seg(name, **kw)
    session = OnnxNetwork(onnx_bytes(seg))
    rng = np.random.default_rng(len(name))
    for _ in range(3):
        h, w = (int(v) for v in rng.integers(33, 150, 2))  # >= the largest downsampling factor (32)
        x = torch.randn(2, 3, h, w)
        with torch.no_grad():
            expected = seg.network(x)
        got = session(x)
        assert got.shape == expected.shape == (2, 4, h, w)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", EXPORTABLE)
def test_inputs_too_small_for_the_graphs_pad_are_edge_padded_to_64(name):
    import torch.nn.functional as F

    seg = _seg(name)
    session, refusals = OnnxNetwork(onnx_bytes(seg)), []
    for h, w in ((1, 1), (1, 70), (5, 40), (9, 1)):
        x = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(h * w))
        try:  # the graph alone: ONNX's reflect pad refuses a pad as large as the input
            session.run(x)
            refused = False
        except Exception:
            refused = True
        if refused:  # then edge-padded to 64, run, cropped back
            x_in = F.pad(x, (0, max(0, 64 - w), 0, max(0, 64 - h)), mode="replicate")
        else:
            x_in = x
        with torch.no_grad():
            expected = seg.network(x_in)[..., :h, :w]
        torch.testing.assert_close(session(x), expected, rtol=0, atol=1e-4)
        refusals.append(refused)
    assert refusals[0] or name == "u2net"  # 1 x 1: padded by all but U^2-Net (which resizes)


def test_original_unet_refuses_with_a_reason():
    with pytest.raises(ValueError, match="no dynamic-size ONNX graph"):
        onnx_bytes(_seg("unet_original"))


def test_an_instance_model_is_refused_before_anything_is_written(tmp_path):
    from pixelwise.export import export_onnx

    kwargs = {"num_classes": 1, "backbone": "resnet18"}
    seg = Segmenter(
        create_model("mask_rcnn", **kwargs), "mask_rcnn", kwargs, ["bg", "x"], Normalization()
    )
    with pytest.raises(ValueError, match="mask_rcnn is an instance model"):
        export_onnx(seg, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_cli_export_then_predict_and_evaluate_on_onnx_runtime(shapes_data, tmp_path, capsys):
    run = train_tiny(shapes_data, tmp_path / "run")
    onnx_path = tmp_path / "model.onnx"
    assert main(["export", str(run / "best.pt"), "--onnx", str(onnx_path)]) == 0
    assert "max |ONNX Runtime - PyTorch| logit difference" in capsys.readouterr().out
    assert load_model(onnx_path).class_names == load_model(run / "best.pt").class_names

    images = str(shapes_data / "val" / "images")
    for name, args in {
        "torch": [str(run / "best.pt")],
        "file": [str(onnx_path)],
        "flag": [str(run / "best.pt"), "--runtime", "onnx"],
    }.items():
        assert (
            main(
                [
                    "predict",
                    *args,
                    images,
                    "--out",
                    str(tmp_path / name),
                    "--precision",
                    "fp32",
                    "--no-progress",
                ]
            )
            == 0
        )
    for mask in (tmp_path / "torch" / "masks").iterdir():
        reference = read_mask(mask)
        for name in ("file", "flag"):
            assert (read_mask(tmp_path / name / "masks" / mask.name) == reference).mean() >= 0.999
    assert (
        main(["evaluate", str(onnx_path), str(shapes_data), "--json", str(tmp_path / "e.json")])
        == 0
    )


def test_tiled_prediction_and_background_removal_run_on_onnx_runtime(tmp_path):
    from pixelwise.cutout import remove_background
    from pixelwise.export import to_onnx_runtime
    from pixelwise.inference import predict

    seg = _seg("unet")
    seg.class_names = ["background", "foreground"]
    seg.network = create_model("unet", **small("unet", in_channels=3, num_classes=2)).eval()
    seg.arch_kwargs = small("unet", in_channels=3, num_classes=2)
    onnx_seg = to_onnx_runtime(seg)
    image = np.random.default_rng(0).integers(0, 255, (150, 170, 3), dtype=np.uint8)
    tiled_torch = predict(seg, image, "fp32", tile=64, overlap=16)
    tiled_onnx = predict(onnx_seg, image, "fp32", tile=64, overlap=16)
    assert (tiled_torch == tiled_onnx).mean() >= 0.999
    a = np.asarray(remove_background(image, seg, mask_only=True, precision="fp32"), np.int16)
    b = np.asarray(remove_background(image, onnx_seg, mask_only=True, precision="fp32"), np.int16)
    assert np.abs(a - b).max() <= 2


def test_int8_export_records_its_accuracy_gate(shapes_data, tmp_path, capsys):
    pytest.importorskip(
        "onnxruntime.quantization", reason="int8 export needs ONNX Runtime's quantisation tools"
    )
    import json

    import onnx

    from pixelwise.train import fit

    best = fit(tiny_config(shapes_data, tmp_path / "run"))
    status = main(
        ["export", str(best), "--onnx", str(tmp_path / "m8.onnx"), "--int8", str(shapes_data)]
    )
    out = capsys.readouterr().out
    meta = json.loads(
        {p.key: p.value for p in onnx.load(str(tmp_path / "m8.onnx")).metadata_props}["pixelwise"]
    )
    gate = meta["int8"]
    assert gate["images"] == 4 and gate["max_drop"] == 0.005
    assert gate["drop"] == pytest.approx(gate["mean_iou_fp32"] - gate["mean_iou_int8"])
    assert (
        status == (0 if gate["passed"] else 1) and ("passed" if gate["passed"] else "FAILED") in out
    )
    model = onnx.load(str(tmp_path / "m8.onnx"))
    assert any(n.op_type == "QuantizeLinear" for n in model.graph.node)  # really int8 inside
    int8, fp32 = load_model(tmp_path / "m8.onnx"), load_model(best)
    image = np.asarray(Image.open(next((shapes_data / "val" / "images").iterdir())))
    agree = (predict(int8, image) == predict(fp32, image, "fp32")).mean()
    assert agree > 0.9


def test_calibrated_checkpoint_runs_int8_where_measured_fastest(
    shapes_data, tmp_path, monkeypatch, capsys
):
    pytest.importorskip(
        "onnxruntime.quantization",
        reason="int8 calibration needs ONNX Runtime's quantisation tools",
    )
    import json
    from dataclasses import replace

    import onnx

    from pixelwise import checkpoint as checkpoint_module
    from pixelwise import export, runtime
    from pixelwise.checkpoint import int8_graph, read_checkpoint
    from pixelwise.train import fit

    best = fit(replace(tiny_config(shapes_data, tmp_path / "run"), calibrate=False))
    before = best.read_bytes()
    # a gate no model can pass: exit 1, the checkpoint untouched
    monkeypatch.setattr(export, "INT8_GATE", -1.0)
    assert main(["calibrate", str(best), str(shapes_data)]) == 1
    assert "accuracy gate FAILED" in capsys.readouterr().out and best.read_bytes() == before
    # one every model passes: the int8 graph and its gate are stored in --out
    monkeypatch.setattr(export, "INT8_GATE", 1.0)
    calibrated = tmp_path / "calibrated.pt"
    monkeypatch.setenv("PIXELWISE_PATH", "onnx-int8")  # as if measured fastest here
    assert main(["calibrate", str(best), str(shapes_data), "--out", str(calibrated)]) == 0
    out = capsys.readouterr().out
    assert "accuracy gate passed" in out and best.read_bytes() == before
    assert "this machine's default path for it: onnx-int8" in out
    ckpt = read_checkpoint(calibrated)
    gate = ckpt["int8"]["gate"]
    assert gate["images"] == 4 and gate["passed"]
    assert gate["drop"] == pytest.approx(gate["mean_iou_fp32"] - gate["mean_iou_int8"])
    graph = int8_graph(ckpt)
    assert any(n.op_type == "QuantizeLinear" for n in onnx.load_from_string(graph).graph.node)
    assert int8_graph(read_checkpoint(best)) is None

    def network_of(path, runtime_name="auto", **kw):
        return load_model(path, runtime_name, **kw).network

    plain = load_model(best, "torch")
    fp32 = plain.network
    x = torch.rand(1, plain.in_channels, 40, 48, generator=torch.Generator().manual_seed(0))

    def is_int8(network) -> bool:  # ONNX Runtime whose logits are not fp32's (quantised)
        with torch.inference_mode():
            far = (network(x) - fp32(x)).abs().max().item() > 1e-3
        return isinstance(network, OnnxNetwork) and far

    monkeypatch.delenv("PIXELWISE_PATH", raising=False)
    monkeypatch.setenv("PIXELWISE_CACHE", str(tmp_path / "cache"))
    measurement = {"best": "torch-fp32", "seconds": {}}
    monkeypatch.setattr(
        runtime, "_MEASURED", {"key": runtime.machine_key(), "inference": measurement}
    )
    # the race on the checkpoint's own network, really run: both paths timed, one chosen
    raced = checkpoint_module.int8_race(plain, graph, calibrated, "torch-fp32")
    assert set(raced) == {"onnx-int8", "torch-fp32"} and all(s > 0 for s in raced.values())
    races = []

    def race(seg, graph, source, best):  # int8 twice as fast as the probe's best
        races.append(best)
        return {"onnx-int8": 0.1, best: 0.2}

    monkeypatch.setattr(checkpoint_module, "int8_race", race)
    assert is_int8(network_of(calibrated))  # measured faster on its own network, gate passed
    assert is_int8(network_of(calibrated)) and races == ["torch-fp32"]  # raced once
    assert not isinstance(network_of(best), OnnxNetwork)  # no calibration: the fp32 choice
    assert not is_int8(network_of(calibrated, int8=False))  # a forced precision
    assert not is_int8(network_of(calibrated, "onnx")) and not is_int8(
        network_of(calibrated, "torch")
    )
    assert races == ["torch-fp32"]
    measurement["best"] = "torch-fp32-cl"  # the machine measured again: raced again
    monkeypatch.setattr(
        checkpoint_module,
        "int8_race",
        lambda seg, graph, source, best: {"onnx-int8": 0.3, best: 0.2},
    )
    assert not isinstance(network_of(calibrated), OnnxNetwork)  # int8 not the fastest here
    # the command line: default runs int8, --precision fp32 does not; masks close to fp32
    monkeypatch.setenv("PIXELWISE_PATH", "onnx-int8")
    images = shapes_data / "val" / "images"
    for options, out in (([], "auto"), (["--precision", "fp32", "--runtime", "torch"], "fp32")):
        argv = [
            "predict",
            str(calibrated),
            str(images),
            "--out",
            str(tmp_path / out),
            "--no-progress",
        ]
        assert main(argv + options) == 0
    for mask in (tmp_path / "fp32" / "masks").iterdir():
        a, b = read_mask(mask), read_mask(tmp_path / "auto" / "masks" / mask.name)
        assert (a == b).mean() > 0.9
    # evaluate says which path it scored: int8 by default here, fp32 when forced
    for options, path in (([], "onnx-int8"), (["--precision", "fp32"], "onnx-fp32")):
        report = tmp_path / f"{path}.json"
        argv = ["evaluate", str(calibrated), str(shapes_data), "--json", str(report)]
        assert main(argv + options) == 0
        assert json.loads(report.read_text())["path"] == path
        assert f"({path})" in capsys.readouterr().out
