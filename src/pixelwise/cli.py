"""Command line: ``pixelwise train | predict | evaluate | segment | compare | remove-bg | serve | export | models``. Subcommands only; the work
happens in the library. Heavy imports are deferred so ``pixelwise --version`` answers fast."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pixelwise import __version__

TTA_HELP = ("average predictions over the 8 flips/rotations (8x slower); for models trained with '--flips all' "
            "(the default): it undoes a direction learned with --flips horizontal or --no-augment")


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _float_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _str_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def add_split_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--val-stems", metavar="STEMS",
                   help="validation images by file stem: '25,26,27' or a numeric range '25-29'")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="seeded random validation share when the data has no val/ folder (default 0.2)")
    p.add_argument("--seed", type=int, default=0, help="random seed for splits, init and augmentation (default 0)")


def add_runtime_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runtime", choices=["torch", "onnx"], default="torch",
                   help="run the network on PyTorch (default) or ONNX Runtime (exported in memory; .onnx files always use it)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixelwise", description="Image segmentation as pixel classification: train, predict, evaluate."
    )
    parser.add_argument("--version", action="version", version=f"pixelwise {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="train a model on an image/mask dataset",
                       description="Train on DATA (DATA/images + DATA/masks, or DATA/train[/val]/{images,masks}). "
                                   "Writes last.pt, best.pt, metrics.csv, curve.png and overlays/ to --out.")
    t.add_argument("data", help="dataset root folder")
    t.add_argument("--out", required=True, help="run folder for checkpoints, metrics and plots")
    t.add_argument("--model", default="unet", help="architecture (see 'pixelwise models'; default unet)")
    t.add_argument("--depth", type=int, default=4,
                   help="U-Nets, SegNet, DeconvNet: number of down-sampling levels (default 4)")
    t.add_argument("--base-width", type=int, default=32,
                   help="channels of the first level (default 32; models that take it)")
    t.add_argument("--no-batch-norm", dest="batch_norm", action="store_false", help="U-Net without batch norm")
    t.add_argument("--decoder", choices=["unpool", "transpose"], default="unpool",
                   help="SegNet: upsample by max unpooling (default) or transposed convolution")
    t.add_argument("--backend", choices=["torch", "scratch"], default="torch",
                   help="run (un)pooling and transposed convolutions on native kernels or on pixelwise.ops")
    t.add_argument("--backbone", choices=["resnet18", "resnet50"], default="resnet18",
                   help="mask_rcnn: FPN backbone (default resnet18, CPU-friendly; resnet50 is the paper's)")
    t.add_argument("--min-size", type=int, default=512, help="mask_rcnn: shorter image side it works at (default 512)")
    t.add_argument("--max-size", type=int, default=853, help="mask_rcnn: longer side cap (default 853)")
    t.add_argument("--max-detections", type=int, default=100,
                   help="mask_rcnn: most objects per image kept when validating, saved in the checkpoint (default 100)")
    t.add_argument("--weights", help="mask_rcnn: local weights to start from (torchvision's or ours; never downloaded)")
    t.add_argument("--classes", type=_str_list, help="class names, comma-separated (default: classes.json or class0..)")
    t.add_argument("--mask-values", type=_int_list,
                   help="stored mask value of class 0,1,... e.g. '0,255' for black/white masks (default: values are ids)")
    t.add_argument("--instances", choices=["foreground", "boundary"],
                   help="masks are instance labels (0 = background): learn foreground/background, or "
                        "background/interior/boundary (separates touching objects)")
    t.add_argument("--ignore-values", type=_int_list,
                   help="stored mask values to ignore (default: classes.json's void id; 255 is always ignored)")
    add_split_args(t)
    t.add_argument("--epochs", type=int, default=20, help="default 20")
    t.add_argument("--epoch-size", type=int, help="samples per epoch (default: number of training images)")
    t.add_argument("--batch-size", type=int, default=4, help="default 4")
    t.add_argument("--crop", type=int, default=256, help="random square crop for training; 0 = whole images (default 256)")
    t.add_argument("--scale", type=float, default=1.0,
                   help="train at reduced resolution: resize images by this factor (kept in the checkpoint; "
                        "predict/evaluate resize inputs the same way and upsample the result)")
    t.add_argument("--no-augment", dest="augment", action="store_false", help="no flips/rotations")
    t.add_argument("--flips", choices=["all", "horizontal"], default="all",
                   help="all: random horizontal and vertical flips and 90-degree rotations (default); horizontal: "
                        "left-right mirroring only, for labels with a direction (ISBI 2012's membrane labels sit "
                        "about half a pixel above the dark lines they trace)")
    t.add_argument("--elastic", action="store_true",
                   help="U-Net paper's elastic deformation (3x3 grid, 10 px) of training crops")
    t.add_argument("--zoom", type=_float_list, metavar="LO,HI",
                   help="random resized crops covering LO..HI of the image area, with aspect jitter (e.g. 0.3,1), "
                        "instead of plain --crop windows")
    t.add_argument("--rotate", type=float, default=0.0, metavar="DEG", help="random rotation up to DEG degrees")
    t.add_argument("--appearance", choices=["none", "photo", "microscopy"], default="none",
                   help="random appearance changes: photo (colour, greyscale, blur, noise, JPEG) or microscopy "
                        "(stain, intensity, gamma, inversion, greyscale, blur, noise); default none")
    t.add_argument("--composite", type=float, default=0.0, metavar="P",
                   help="with probability P paste the foreground (class 1) onto another training image's "
                        "background (its own foreground filled in first)")
    t.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    t.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of the one-cycle schedule (default 1e-3)")
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--loss", choices=["ce", "weighted-ce", "dice", "ce+dice"], default="ce",
                   help="default ce (per-pixel cross-entropy); weighted-ce weights each pixel by U-Net's border "
                        "weight map (class balance + w0 * exp(-(d1 + d2)^2 / 2 sigma^2) between cells)")
    t.add_argument("--w0", type=float, default=10.0, help="weighted-ce: border weight w0 (default 10)")
    t.add_argument("--sigma", type=float, default=5.0, help="weighted-ce: border width sigma in pixels (default 5)")
    t.add_argument("--class-weighting", choices=["none", "median", "inverse"], default="none",
                   help="cross-entropy class weights from training pixel counts (default none)")
    t.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                   help="auto = bf16 autocast + channels_last where the CPU/GPU supports bf16, else fp32")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ... (default auto: the GPU if there is one)")
    t.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    t.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                   help="validate and save an exponential moving average of the weights (e.g. 0.99; default off)")
    t.add_argument("--resume", action="store_true", help="continue from --out/last.pt if it exists")
    t.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")

    p = sub.add_parser("predict", help="predict masks and overlays for images or folders",
                       description="Writes OUT/masks/<name>.png (class ids, palette PNG) and OUT/overlays/<name>.png. "
                                   "Bad files are skipped, listed at the end, and make the exit status 1.")
    p.add_argument("paths", nargs="+", metavar="CHECKPOINT INPUT",
                   help="a .pt file written by 'pixelwise train', an exported .onnx file or a bundled model name, "
                        "then image files and/or folders (searched recursively); with --method only inputs")
    p.add_argument("--score-threshold", type=float, default=0.5, help="mask_rcnn: keep detections scoring at least this")
    p.add_argument("--max-detections", type=int, default=100, help="mask_rcnn: at most this many objects per image")
    p.add_argument("--image-size", type=int, help="mask_rcnn: shorter side to work at (smaller = faster on CPU)")
    p.add_argument("--method", help="a classical method instead of a checkpoint (otsu, kmeans, graphcut, felzenszwalb, "
                                    "slic, watershed); masks then hold region ids")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")
    p.add_argument("--tta", action="store_true", help=TTA_HELP)
    p.add_argument("--tile", type=int, default=None,
                   help="overlap-tile prediction with tiles of this size (default: 1024 for images over 2048x2048 "
                        "pixels; 0 = never tile)")
    p.add_argument("--overlap", type=int, default=64, help="context kept around each tile's core (default 64)")
    add_runtime_arg(p)
    p.add_argument("--no-progress", dest="progress", action="store_false")

    e = sub.add_parser("evaluate", help="score a checkpoint on a labelled dataset",
                       description="Pixel accuracy, per-class and mean IoU and Dice from one confusion matrix over "
                                   "the whole set. Evaluates --val-stems if given, else DATA/val, else DATA/train, "
                                   "else DATA/{images,masks}.")
    e.add_argument("checkpoint")
    e.add_argument("data", help="dataset root folder")
    e.add_argument("--val-stems", metavar="STEMS", help="evaluate only these stems ('25-29' or '25,26')")
    e.add_argument("--json", help="where to write the metrics JSON (default: evaluation.json beside the checkpoint)")
    e.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")
    e.add_argument("--tta", action="store_true", help=TTA_HELP)
    e.add_argument("--object-class", type=int, metavar="ID",
                   help="also score objects: connected components of this class id in truth and prediction "
                        "(automatic for models trained with --instances)")
    e.add_argument("--min-size", type=int, default=0, help="drop predicted objects under this many pixels")
    add_runtime_arg(e)

    g = sub.add_parser("segment", help="instance label images (one id per object) and overlays",
                       description="Writes OUT/instances/<name>.png (16-bit, 0 = background, 1..N objects) and "
                                   "OUT/overlays/<name>.png. --model is a bundled model name or a checkpoint "
                                   "trained with --instances.")
    g.add_argument("inputs", nargs="+", help="image files and/or folders (searched recursively)")
    g.add_argument("--model", default="nuclei", help="bundled model name (nuclei) or checkpoint path (default nuclei)")
    g.add_argument("--out", default="segment-output", help="output folder (default segment-output)")
    g.add_argument("--min-size", type=int, default=0, help="drop objects under this many pixels (default 0)")
    g.add_argument("--object-class", type=int, metavar="ID",
                   help="for models not trained on instances: objects are connected components of this class")
    g.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")
    g.add_argument("--tile", type=int, default=None, help="overlap-tile size (default: automatic)")
    g.add_argument("--overlap", type=int, default=64)
    add_runtime_arg(g)

    r = sub.add_parser("remove-bg", help="cut out the foreground of photos (transparent PNGs)",
                       description="Writes OUT/<name>.png (RGBA; folders keep their inner structure). Bad files are "
                                   "skipped, listed at the end, and make the exit status 1.")
    r.add_argument("inputs", nargs="+", help="image files and/or folders (searched recursively)")
    r.add_argument("-o", "--out", required=True, help="output folder")
    r.add_argument("--model", default=None, help="checkpoint path or bundled model name (default: foreground)")
    r.add_argument("--method", choices=["model", "grabcut"], default="model",
                   help="the network (default) or GrabCut, a classical fallback that needs no weights")
    r.add_argument("--matting", action="store_true", help="refine edges by closed-form alpha matting (slower)")
    r.add_argument("--mask-only", action="store_true", help="write the alpha mask (greyscale) instead")
    r.add_argument("--background", help="composite onto a colour (#rrggbb) or an image file instead of transparency")
    r.add_argument("--model-size", type=int, default=320, help="longer side the network sees (default 320)")
    r.add_argument("--skip-existing", action="store_true", help="leave inputs whose output exists alone")
    add_runtime_arg(r)
    r.add_argument("--no-progress", dest="progress", action="store_false")

    v = sub.add_parser("serve", help="HTTP API and web page for background removal (FastAPI)",
                       description="POST /api/remove-background (multipart 'file') returns a PNG; GET / is a web "
                                   "page; GET /docs the OpenAPI description. Binds 127.0.0.1 unless told otherwise.")
    v.add_argument("--host", default="127.0.0.1")
    v.add_argument("--port", type=int, default=8000)
    v.add_argument("--model", default=None, help="checkpoint path or bundled model name (default: foreground)")
    v.add_argument("--method", choices=["model", "grabcut"], default="model")
    v.add_argument("--max-upload-mb", type=float, default=20.0, help="larger uploads get 413 (default 20)")
    v.add_argument("--workers", type=int, default=2, help="concurrent requests processed (default 2)")
    add_runtime_arg(v)

    c = sub.add_parser("compare", help="score classical methods and checkpoints side by side",
                       description="One table (mean IoU, Dice, pixel accuracy, seconds per image) and one figure grid "
                                   "(image | truth | each method) written to --out. Classical methods' regions are "
                                   "matched to classes with the ground truth: the best foreground region set for 2 "
                                   "classes, an optimal one-to-one (Hungarian) matching otherwise.")
    c.add_argument("data", nargs="+", help="dataset root folder(s); their images are pooled")
    c.add_argument("--methods", required=True,
                   help="comma-separated: classical names and NAME:CHECKPOINT, e.g. otsu,kmeans,graphcut,unet:runs/u/best.pt")
    c.add_argument("--out", default="compare-output", help="output folder (default compare-output)")
    c.add_argument("--mask-values", type=_int_list, help="stored mask value of class 0,1,... (e.g. 0,255)")
    c.add_argument("--num-classes", type=int, help="default: from --mask-values, else the first checkpoint, else 2")
    c.add_argument("--val-stems", metavar="STEMS", help="score only these stems of each dataset")
    c.add_argument("--sample", type=int, help="a seeded random sample of this many images")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--grid", type=int, default=4, help="rows (images) in the figure grid (default 4)")

    x = sub.add_parser("export", help="export a checkpoint to ONNX (dynamic height and width)",
                       description="Writes an ONNX graph (input 'image' N x C x H x W float32, output 'logits') whose "
                                   "metadata carries classes, colours and normalisation: 'pixelwise predict "
                                   "model.onnx ...' runs it on ONNX Runtime. Checks it against PyTorch first.")
    x.add_argument("checkpoint", help="a .pt file or a bundled model name")
    x.add_argument("--onnx", required=True, help="output .onnx path")
    g.add_argument("--no-progress", dest="progress", action="store_false")

    sub.add_parser("models", help="list the available architectures")

    d = sub.add_parser("demo", help="train on generated shapes, then predict and evaluate (about a minute)")
    d.add_argument("--out", default="demo-output", help="output folder (default demo-output)")
    d.add_argument("--remove-bg", action="store_true",
                   help="instead: cut out scikit-image's sample photos with the bundled foreground model")
    d.add_argument("--model", help="--remove-bg: a checkpoint instead of the bundled model")
    d.add_argument("--epochs", type=int, default=8)
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    from pixelwise.data.datasets import parse_stems
    from pixelwise.train import TrainConfig, fit

    cfg = TrainConfig(
        data=args.data, out=args.out, model=args.model, depth=args.depth, base_width=args.base_width,
        batch_norm=args.batch_norm, backend=args.backend, decoder=args.decoder, class_names=args.classes, mask_values=args.mask_values,
        ignore_values=args.ignore_values, instances=args.instances, val_stems=parse_stems(args.val_stems), val_fraction=args.val_fraction,
        epochs=args.epochs, epoch_size=args.epoch_size, batch_size=args.batch_size, crop=args.crop or None,
        augment=args.augment, flips=args.flips, elastic=args.elastic, zoom=args.zoom, rotate=args.rotate,
        appearance=args.appearance, composite=args.composite, scale=args.scale, optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay, loss=args.loss,
        w0=args.w0, sigma=args.sigma, backbone=args.backbone, min_size=args.min_size, max_size=args.max_size,
        max_detections=args.max_detections,
        weights=args.weights,
        class_weighting=args.class_weighting, precision=args.precision, device=args.device, workers=args.workers,
        seed=args.seed, ema=args.ema, resume=args.resume, progress=args.progress,
    )
    start = time.perf_counter()
    best = fit(cfg)
    out = Path(args.out)
    print(f"done in {time.perf_counter() - start:.0f}s\n  best checkpoint: {best}\n  last checkpoint: {out / 'last.pt'}\n"
          f"  metrics: {out / 'metrics.csv'}\n  curve: {out / 'curve.png'}\n  overlays: {out / 'overlays'}")
    return 0


def sharded(run, report) -> int:
    """Run ``run(shard)`` on this process's share of the inputs. Under torchrun the inputs are
    split among the ranks, results are gathered, and rank 0 reports for all; every rank exits
    1 if any file failed anywhere."""
    from pixelwise import distributed as dist
    from pixelwise.inference import BatchResult

    _, created = dist.setup("cpu")
    try:
        result = BatchResult.merge(dist.gather(run((dist.rank(), dist.world_size()))))
    finally:
        dist.cleanup(created)
    if dist.is_main():
        report(result)
        return report_failures(result)
    return 1 if result.failures else 0


def cmd_predict(args: argparse.Namespace) -> int:
    from pixelwise.checkpoint import load_model
    from pixelwise.inference import predict_files

    if args.method:
        return predict_classical(args)
    args.checkpoint, args.inputs = args.paths[0], args.paths[1:]
    if not args.inputs:
        raise ValueError("no inputs given (pixelwise predict CHECKPOINT INPUT...)")
    seg = load_model(args.checkpoint, args.runtime)
    if seg.arch == "mask_rcnn":
        from pixelwise.inference import predict_detection_files

        return sharded(
            lambda shard: predict_detection_files(seg, args.inputs, args.out, args.progress, args.score_threshold,
                                                  args.max_detections, args.image_size, shard),
            lambda result: print(f"wrote {len(result.written)} instance label images to {Path(args.out) / 'instances'}, "
                                 f"COCO results to {Path(args.out) / 'coco'} and overlays to {Path(args.out) / 'overlays'}"))
    return sharded(
        lambda shard: predict_files(seg, args.inputs, args.out, args.precision, args.progress, args.tta,
                                    args.tile, args.overlap, shard),
        lambda result: print(f"wrote {len(result.written)} masks to {Path(args.out) / 'masks'} and overlays to "
                             f"{Path(args.out) / 'overlays'}"))


def report_failures(result) -> int:
    if not result.failures:
        return 0
    print(f"{len(result.failures)} file(s) failed:", file=sys.stderr)
    for _, reason in result.failures:
        print(f"  {reason}", file=sys.stderr)
    return 1


def cmd_segment(args: argparse.Namespace) -> int:
    from pixelwise.checkpoint import load_model
    from pixelwise.inference import segment_files

    seg = load_model(args.model, args.runtime)

    def report(result) -> None:
        counts = ", ".join(f"{p.stem}: {n}" for p, n in result.counts[:10])
        print(f"wrote {len(result.written)} instance label images to {Path(args.out) / 'instances'} and overlays to "
              f"{Path(args.out) / 'overlays'}" + (f"\nobjects per image: {counts}" if counts else ""))

    return sharded(lambda shard: segment_files(seg, args.inputs, args.out, args.precision, args.progress,
                                               args.min_size, args.object_class, args.tile, args.overlap, shard), report)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pixelwise.checkpoint import BUNDLED_DIR, resolve_checkpoint
    from pixelwise.evaluate import evaluate_checkpoint
    from pixelwise.metrics import format_table

    summary = evaluate_checkpoint(args.checkpoint, args.data, args.val_stems, args.precision, args.tta,
                                  args.object_class, args.min_size, args.runtime)
    print(f"{summary['images']} images from {summary['split']}")
    if "detection" in summary:
        d = summary["detection"]
        print(f"mask AP {d['mask_ap']:.4f}  AP50 {d['mask_ap50']:.4f}  AP75 {d['mask_ap75']:.4f}   "
              f"box AP {d['box_ap']:.4f}  AP50 {d['box_ap50']:.4f}   DSB mean AP {d['dsb_mean_ap']:.4f}")
    else:
        print(format_table(summary))
    out = Path(args.json) if args.json else resolve_checkpoint(args.checkpoint).parent / "evaluation.json"
    if not args.json and BUNDLED_DIR in out.parents:
        out = Path("evaluation.json")  # never write into the installed package
    from pixelwise.data.io import atomic_write_bytes

    atomic_write_bytes(out, json.dumps(summary, indent=2).encode())
    print(f"metrics JSON: {out}")
    return 0


def predict_classical(args: argparse.Namespace) -> int:
    from pixelwise.classical import get_method
    from pixelwise.data.io import read_image, save_mask
    from pixelwise.inference import run_batch

    method = get_method(args.method)  # an unknown name is a usage error, not a bad file

    def write(src, rel, regions):
        save_mask(Path(args.out) / "masks" / rel, regions)
        return Path(args.out) / "masks" / rel, None

    result = run_batch(args.paths, lambda src: method(read_image(src)), write, args.method, args.progress)
    print(f"wrote {len(result.written)} region masks ({args.method}) to {Path(args.out) / 'masks'}")
    return report_failures(result)


def cmd_remove_bg(args: argparse.Namespace) -> int:
    from pixelwise.cutout import get_model, parse_colour, remove_background
    from pixelwise.data.io import save_png
    from pixelwise.inference import run_batch

    background = args.background
    if background and background.startswith("#"):
        background = parse_colour(background)
    model = get_model(args.model, args.runtime) if args.method == "model" else None
    out = Path(args.out)

    def write(src, rel, cutout):
        save_png(out / rel, cutout)
        return out / rel, None

    result = run_batch(args.inputs, lambda src: remove_background(src, model, args.method, args.matting, background,
                                                                   args.mask_only, model_size=args.model_size),
                       write, "remove-bg", args.progress,
                       skip=(lambda rel: (out / rel).exists()) if args.skip_existing else None)
    skipped = f" ({result.skipped} existing skipped)" if result.skipped else ""
    print(f"wrote {len(result.written)} cut-outs to {args.out}" + skipped)
    return report_failures(result)


def cmd_serve(args: argparse.Namespace) -> int:
    from pixelwise.web import serve

    from pixelwise.cutout import get_model

    model = get_model(args.model, args.runtime) if args.method == "model" else None
    serve(args.host, args.port, model=model, max_upload_mb=args.max_upload_mb, workers=args.workers,
          method=args.method)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from pixelwise.compare import format_table, run_compare

    rows = run_compare(args.data, args.methods, args.out, mask_values=args.mask_values, num_classes=args.num_classes,
                       val_stems=args.val_stems, sample=args.sample, seed=args.seed, grid_rows=args.grid)
    print(format_table(rows))
    print(f"table: {Path(args.out) / 'compare.md'}\nfigure grid: {Path(args.out) / 'grid.png'}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from pixelwise.checkpoint import load_model
    from pixelwise.export import export_onnx, load_onnx
    from pixelwise.inference import predict_logits

    seg = load_model(args.checkpoint)
    path = export_onnx(seg, args.onnx)
    onnx_seg = load_onnx(path)
    worst = 0.0
    for h, w in ((97, 131), (256, 200)):  # sizes that are not multiples of the downsampling factor
        x = torch.randn(1, seg.in_channels, h, w, generator=torch.Generator().manual_seed(h))
        diff = predict_logits(seg.network, x, "fp32") - predict_logits(onnx_seg.network, x, "fp32")
        worst = max(worst, diff.abs().max().item())
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); max |ONNX Runtime - PyTorch| logit difference {worst:.2e}")
    return 0


def cmd_models(_: argparse.Namespace) -> int:
    from pixelwise.models import create_model, describe, list_models

    for name in list_models("all"):
        n = sum(p.numel() for p in create_model(name).parameters())
        print(f"{name:<12}{n / 1e6:>8.2f}M params  {describe(name)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from pixelwise.demo import run_background_demo, run_demo

    if args.remove_bg:
        run_background_demo(args.out, args.model)
        return 0

    run_demo(args.out, args.epochs)
    return 0


COMMANDS = {"demo": cmd_demo, "train": cmd_train, "predict": cmd_predict, "evaluate": cmd_evaluate, "segment": cmd_segment,
            "export": cmd_export, "compare": cmd_compare, "remove-bg": cmd_remove_bg,
            "serve": cmd_serve, "models": cmd_models}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "predict" and extra and not any(e.startswith("-") for e in extra):
        args.paths += extra  # inputs given after options ("predict CKPT --runtime onnx IMAGES")
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except (ValueError, OSError) as exc:
        print(f"pixelwise {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
