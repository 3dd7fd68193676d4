"""The commands that run a model over files: ``predict`` (also the classical methods and videos),
``segment`` and ``evaluate``; the work happens in :mod:`pixelwise.batch` (run by
:mod:`pixelwise.runner`) and :mod:`pixelwise.evaluate`."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from pixelwise.cli.table import MASK_OPTIONS
from pixelwise.constants import (
    counted,
    first_ten,
    run_best,
)


def predict_options(args: argparse.Namespace):
    from pixelwise.batch import PredictOptions

    names = (
        "precision",
        "tta",
        "tile",
        "overlap",
        "score_threshold",
        "min_object_size",
        "object_class",
        "skip_existing",
        "probabilities",
        "labelme",
        "geojson",
        "coco",
        "measure",
        "expand",
        "stains",
        "stain_vectors",
        "positive",
        "pixel_size",
        "scale",
        "input_range",
        "channel",
        "tissue_only",
    )
    return PredictOptions(**{n: getattr(args, n) for n in names if hasattr(args, n)})


def no_inputs(first: str) -> str:
    """The error for `predict` given one path; where that is an image or a folder, it says that
    a checkpoint comes first."""
    from pixelwise.checkpoint import BUNDLED
    from pixelwise.data.io import IMAGE_SUFFIXES

    said = "no inputs given (pixelwise predict CHECKPOINT INPUT...)"
    if Path(first).suffix.lower() in IMAGE_SUFFIXES or Path(first).is_dir():
        said += (
            f"; {first} is an input: give a checkpoint before it (a .pt file or a bundled model: "
            f"{', '.join(BUNDLED)})"
        )
    return said


ONE_FILE_SUFFIXES = (".png", ".tif", ".tiff")  # -o naming predict's or segment's one output


def one_file_target(args: argparse.Namespace, inputs: list, side: tuple[str, ...]) -> Path | None:
    """``-o`` when it names the one output file of one input image (``mask.png``, ``labels.tif``;
    not an existing folder), else None; ValueError for options whose outputs (``side``) only a
    folder holds."""
    from pixelwise.data.io import IMAGE_SUFFIXES

    out = Path(args.out)
    single = len(inputs) == 1 and Path(inputs[0]).is_file()
    if not single or out.is_dir():
        return None
    if out.suffix.lower() in IMAGE_SUFFIXES and out.suffix.lower() not in ONE_FILE_SUFFIXES:
        raise ValueError(
            f"-o {out}: class ids and labels are written as PNG or TIFF (a {out.suffix} would "
            "change their values); name the file *.png or *.tif, or give a folder"
        )
    if out.suffix.lower() not in ONE_FILE_SUFFIXES:
        return None
    given = [f"--{name.replace('_', '-')}" for name in side if getattr(args, name, None)]
    if given:
        raise ValueError(
            f"-o {out} names one file; {', '.join(given)} "
            f"{'writes' if len(given) == 1 else 'write'} into a folder: give -o a folder"
        )
    return out


def with_out(args: argparse.Namespace, folder: Path) -> argparse.Namespace:
    """The same command's arguments with ``-o folder``."""
    return with_values(args, out=str(folder))


def with_values(args: argparse.Namespace, **values) -> argparse.Namespace:
    """The same command's arguments with ``values`` in place of theirs."""
    return argparse.Namespace(**{**vars(args), **values})


def into_one_file(target: Path, main: str, run) -> int:
    """``run(folder)``, a batch of one image, into a temporary folder beside ``target``; its one
    output in ``folder/main/`` becomes ``target`` (the overlay and the batch's report are left
    out; a PNG asked for as ``.tif`` is written as a TIFF of the same values); the exit status."""
    import io
    import shutil
    import tempfile

    import tifffile

    from pixelwise.data.io import TIFF_SUFFIXES, read_mask
    from pixelwise.data.write import atomic_save

    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".pixelwise-", dir=target.parent))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            status = run(folder)
        made = sorted(p for p in (folder / main).rglob("*") if p.is_file())
        if not made:
            return status or 1  # the failure was listed
        tiff = target.suffix.lower() in TIFF_SUFFIXES
        if tiff and made[0].suffix.lower() == ".png":
            values = read_mask(made[0])
            atomic_save(target, lambda tmp: tifffile.imwrite(tmp, values, compression="zlib"))
        elif tiff != (made[0].suffix.lower() in TIFF_SUFFIXES):
            raise ValueError(
                f"-o {target}: this image's output is a TIFF (a slide's, or over 65535 objects); "
                f"name it {target.with_suffix('.tif')}"
            )
        else:
            os.replace(made[0], target)
        print(f"wrote {target}")
        return status
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def cmd_predict(args: argparse.Namespace) -> int:
    from pixelwise.batch import predict_files
    from pixelwise.checkpoint import load_for_command
    from pixelwise.runner import run_sharded
    from pixelwise.video import split_videos

    if args.method:
        return predict_classical(args)
    checkpoint, inputs = args.paths[0], args.paths[1:]
    if not inputs:
        raise ValueError(no_inputs(checkpoint))
    videos, inputs = split_videos(inputs, args.out)
    target = (
        None if videos else one_file_target(args, inputs, ("probabilities", "labelme", "geojson"))
    )
    if target is not None:  # -o mask.png for one image: the mask alone (the model loaded once)
        return into_one_file(target, "masks", lambda folder: cmd_predict(with_out(args, folder)))
    seg = load_for_command(checkpoint, args.runtime, args.precision)
    status = predict_videos(args, seg, videos) if videos else 0
    if not inputs:
        return status
    if args.probabilities and seg.kind == "instance":
        raise ValueError(
            "--probabilities is for semantic models; an instance model's detections carry their "
            "scores in OUT/coco"
        )
    out = Path(args.out)
    extra = (
        f", instance labels to {out / 'instances'}, COCO results to {out / 'coco'}"
        if seg.kind == "instance"
        else ""
    )
    return max(
        status,
        run_sharded(
            lambda shard: predict_files(
                seg, inputs, out, predict_options(args), args.progress, shard
            ),
            lambda result: print(
                f"wrote {counted(len(result.written), 'mask')} to {out / 'masks'}{extra} and overlays to "
                f"{out / 'overlays'}"
                + (
                    f", class probabilities to {out / 'probabilities'}"
                    if args.probabilities
                    else ""
                )
                + (f", LabelMe polygons to {out / 'labelme'}" if args.labelme else "")
                + (f", GeoJSON polygons to {out / 'geojson'}" if args.geojson else "")
                + (f" ({result.skipped} existing skipped)" if result.skipped else "")
            ),
        ),
    )


def predict_videos(args: argparse.Namespace, seg, videos: list[tuple[Path, Path]]) -> int:
    """predict's videos (each with its output name, :func:`~pixelwise.video.split_videos`):
    each frame's classes over it, as OUT/overlays/<name>.mp4 (semantic models; the frames'
    masks are what predict writes for the frames as images)."""
    from pixelwise import distributed as dist
    from pixelwise.data.encoding import map_range
    from pixelwise.inference import predict
    from pixelwise.overlays import overlay
    from pixelwise.video import report_video_failures, run_videos

    if seg.kind != "semantic":
        raise ValueError(
            f"{videos[0][0]}: videos are for semantic models (an instance model: predict its frames)"
        )
    extra = [f"--{n}" for n in ("probabilities", "labelme", "geojson") if getattr(args, n, False)]
    if extra or args.channel is not None:  # written for images; say so rather than skip quietly
        extra += ["--channel"] if args.channel is not None else []
        print(f"pixelwise: {counted(len(videos), 'video')}: an overlay video each; "
              f"{', '.join(extra)} apply to images only", file=sys.stderr)  # fmt: skip
    palette = seg.palette()
    run = (args.precision, args.tta, args.tile, args.overlap)

    def overlaid(rgb):
        if args.input_range is not None:
            rgb = map_range(rgb, *args.input_range)
        return overlay(rgb, predict(seg, rgb, *run), palette)

    out = Path(args.out)
    pairs = [(video, out / "overlays" / f"{rel}.mp4") for video, rel in videos]
    share = pairs[dist.rank() :: dist.world_size()]  # under torchrun, each process its share
    failures = run_videos(share, overlaid, args.progress, args.skip_existing, out)
    return report_video_failures(failures)


def cmd_segment(args: argparse.Namespace) -> int:
    from pixelwise.batch import coco_names, segment_files
    from pixelwise.checkpoint import load_for_command
    from pixelwise.data.write import atomic_write_bytes
    from pixelwise.instances import check_object_class, with_thresholds
    from pixelwise.measure import Grading, measurements_csv
    from pixelwise.runner import check_output_file, run_sharded, write_coco

    target = one_file_target(args, args.inputs, ("labelme", "geojson", "expand"))
    if target is not None:  # -o labels.png for one image: the label image alone
        return into_one_file(
            target, "instances", lambda folder: cmd_segment(with_out(args, folder))
        )
    seg = load_for_command(args.checkpoint, args.runtime, args.precision)
    with_thresholds(seg, args.instance_thresholds)
    check_object_class(seg, args.object_class)  # once, not for every file
    if args.coco is not None:
        check_output_file(args.coco, "--coco", ".json")
    if args.measure is not None:
        check_output_file(args.measure, "--measure", ".csv")

    def report(result) -> None:
        counts = first_ten(
            [f"{rel.with_suffix('').as_posix()}: {n}" for rel, n in result.counts], "images"
        )
        coco, graded = "", ""
        if args.coco is not None:
            found = write_coco(args.coco, result, coco_names(seg, args.object_class))
            coco = f", {counted(found, 'object')} of {counted(len(result.coco), 'image')} to {args.coco}"
        if args.measure is not None:
            rows = [(name, found) for _, name, found in sorted(result.measures, key=lambda m: m[0])]
            atomic_write_bytes(args.measure, measurements_csv(rows))
            measured = counted(sum(len(r) for _, r in rows), "object")
            coco += f", measurements of {measured} to {args.measure}"
            if args.positive is not None:
                written, graded = report_grades(Grading.parse(args.positive), rows, Path(args.out))
                coco += written
        print(
            f"wrote {counted(len(result.written), 'instance label image')} to {Path(args.out) / 'instances'} and overlays to "
            f"{Path(args.out) / 'overlays'}"
            + (f", LabelMe polygons to {Path(args.out) / 'labelme'}" if args.labelme else "")
            + (f", GeoJSON polygons to {Path(args.out) / 'geojson'}" if args.geojson else "")
            + (f", cells to {Path(args.out) / 'cells'}" if args.expand else "")
            + coco
            + (f"\nobjects per image: {counts}" if counts else "")
            + graded
        )

    return run_sharded(
        lambda shard: segment_files(
            seg, args.inputs, args.out, predict_options(args), args.progress, shard
        ),
        report,
    )


def report_grades(grading, rows: list[tuple[str, list[dict]]], out: Path) -> tuple[str, str]:
    """``segment --positive``: each image's grade counts written to ``OUT/grades.csv`` (atomic);
    what the summary line adds: where they went, and a line of the first images' shares."""
    from pixelwise.data.write import atomic_write_bytes
    from pixelwise.measure import grades_csv

    atomic_write_bytes(out / "grades.csv", grades_csv(grading, rows))
    lines = []
    for name, found in rows:
        summary = grading.summary(found)
        if not summary["graded"]:
            lines.append(f"{name}: no object graded")
            continue
        score = f", H-score {summary['h_score']:.1f}" if "h_score" in summary else ""
        lines.append(f"{name}: {summary['positive_percent']:.1f} % positive{score}")
    shares = f"\npositive by {grading.column}: {first_ten(lines, 'images')}"
    return f", grades to {out / 'grades.csv'}", shares


def evaluation_of(args: argparse.Namespace) -> tuple[dict, Path]:
    """evaluate's scores of what it was given, and the folder its JSON goes to by default:
    a folder of predicted masks (or, from `predict` of an instance model, of per-image COCO
    results: scored as detections unless --object-class or --min-object-size ask for its label
    images), a COCO results file, or a checkpoint."""
    from pixelwise.checkpoint import resolve_checkpoint
    from pixelwise.evaluate import evaluate_checkpoint
    from pixelwise.evaluate_folders import evaluate_predictions, evaluate_results, results_folder

    given = Path(args.checkpoint)
    if best := run_best(given):  # a training run: its model
        given = best
        args = with_values(args, checkpoint=str(given))
    if given.is_dir() or given.suffix.lower() == ".json":
        unset = {"tta": False, "scale": 1.0}  # the defaults that are not None
        for option in ("tta", "input_range", "channel", "instance_thresholds", "scale"):
            value = getattr(args, option)
            if value is not None and not (option in unset and value == unset[option]):
                name = "--" + option.replace("_", "-")
                raise ValueError(f"{given}: {name} is for models; these are predictions")
    as_labels = args.object_class is not None or args.min_object_size
    found = results_folder(given) if given.is_dir() and not as_labels else None
    if found is not None or given.suffix.lower() == ".json":  # detections, any tool's
        summary = evaluate_results(found or given, args.data, args.val_stems)
        return summary, given if given.is_dir() else given.parent
    read_as = {name: getattr(args, name) for name in MASK_OPTIONS if getattr(args, name)}
    if given.is_dir():
        summary = evaluate_predictions(
            given, args.data, args.val_stems, args.object_class, args.min_object_size, read_as
        )
        return summary, given
    soft = read_as.pop("soft_masks", False)  # how the data is stored, for a model too
    if read_as:
        options = ", ".join("--" + name.replace("_", "-") for name in read_as)
        raise ValueError(
            f"{args.checkpoint}: a model reads the data's masks as it was trained to; {options} "
            "are for scoring a folder of predicted masks"
        )
    summary = evaluate_checkpoint(
        args.checkpoint,
        args.data,
        args.val_stems,
        args.precision,
        args.tta,
        args.object_class,
        args.min_object_size,
        args.runtime,
        args.device,
        args.input_range,  # parsed by main
        args.instance_thresholds,
        args.channel,
        args.scale,
        args.progress,
        soft,
    )
    return summary, resolve_checkpoint(args.checkpoint).parent


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pixelwise.checkpoint import BUNDLED_DIR
    from pixelwise.data.write import atomic_write_bytes
    from pixelwise.metrics import format_table
    from pixelwise.report import object_rule

    if args.json and Path(args.json).is_dir():  # refused before the scoring, not after it
        raise ValueError(f"--json {args.json}: is a folder")
    summary, beside = evaluation_of(args)
    ran = f" ({summary['path']})" if "path" in summary else ""
    ran += f" at --scale {summary['scale']}" if "scale" in summary else ""
    print(f"{counted(summary['images'], 'image')} from {summary['split']}{ran}")
    if "instance_thresholds" in summary:
        print(f"objects: {object_rule(*summary['instance_thresholds'])}")
    if "detection" in summary:
        found = dict(summary["detection"])
        interval = found.pop("dsb_mean_ap_interval", None)
        d = {k: "-" if v is None else f"{v:.4f}" for k, v in found.items()}
        print(
            f"mask AP {d['mask_ap']}  AP50 {d['mask_ap50']}  AP75 {d['mask_ap75']}   "
            f"box AP {d['box_ap']}  AP50 {d['box_ap50']}   DSB mean AP {d['dsb_mean_ap']}"
            f"   PQ {d['pq']}   AJI {d['aji']}"
            + (
                f"\n(COCO counts the 100 best objects of an image; counting every one, mask AP "
                f"{d['mask_ap_every']})"
                if "mask_ap_every" in d
                else ""
            )
        )
        if interval is not None:
            print(
                f"DSB mean AP 95 % interval {interval[0]:.4f}-{interval[1]:.4f} (the images drawn again)"
            )
    else:
        print(format_table(summary))
        print_lowest(summary["per_image"])
    out = Path(args.json) if args.json else beside / "evaluation.json"
    if not args.json and BUNDLED_DIR in out.parents:
        out = Path("evaluation.json")  # never write into the installed package
    atomic_write_bytes(out, json.dumps(summary, indent=2).encode())
    print(f"metrics JSON: {out}")
    return 0


def print_lowest(rows: list[dict], count: int = 5) -> None:
    """The images that scored lowest (by DSB mean AP for objects, else mean IoU): where to look."""
    if not rows:
        return
    key, label = (
        ("dsb_mean_ap", "DSB mean AP") if "dsb_mean_ap" in rows[0] else ("mean_iou", "mean IoU")
    )
    scored = sorted((r for r in rows if r[key] is not None), key=lambda r: r[key])
    if len(scored) > 1:
        shown = ", ".join(f"{r['name']} {r[key]:.3f}" for r in scored[:count])
        print(f"lowest {label}: {shown} (every image's scores in the JSON)")


def predict_classical(args: argparse.Namespace) -> int:
    from pixelwise.classical import get_method
    from pixelwise.data.io import read_image
    from pixelwise.data.write import save_mask
    from pixelwise.runner import report_failures, run_batch

    method = get_method(args.method)  # an unknown name is a usage error, not a bad file
    flags = ("probabilities", "labelme", "geojson", "tta", "skip_existing")
    given = [name for name in flags if getattr(args, name, False)]
    given += [name for name in ("channel", "input_range", "tile") if getattr(args, name, None)]
    if given:  # they would be ignored silently
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ValueError(
            f"--method {args.method} writes region masks only; {options}: with a model"
        )

    def write(src, rel, regions):
        save_mask(Path(args.out) / "masks" / rel, regions)
        return Path(args.out) / "masks" / rel, None

    result = run_batch(
        args.paths,
        lambda src: method(read_image(src)),
        write,
        args.method,
        args.progress,
        out=args.out,
        pages=True,
    )
    print(
        f"wrote {counted(len(result.written), 'region mask')} ({args.method}) to {Path(args.out) / 'masks'}"
    )
    return report_failures(result)
