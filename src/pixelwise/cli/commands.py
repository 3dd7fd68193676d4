"""Command line: ``pixelwise train | predict | evaluate | segment | compare | remove-bg | adapt |
serve | export | models | demo``. Subcommands only; the work happens in the library. The options
come from :mod:`pixelwise.config` and the table in :mod:`pixelwise.cli.table`; ``predict``,
``segment`` and ``evaluate`` live in :mod:`pixelwise.cli.predict`, ``remove-bg``, ``adapt`` and
``serve`` in :mod:`pixelwise.cli.cutout`, the rest and the dispatch here. Heavy imports wait until
a command runs, so ``pixelwise --version`` and ``--help`` answer fast."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import warnings
from pathlib import Path

from pixelwise import __version__
from pixelwise.allocator import allocator, tune_allocator
from pixelwise.cli.cutout import cmd_adapt, cmd_remove_bg, cmd_serve
from pixelwise.cli.predict import cmd_evaluate, cmd_predict, cmd_segment
from pixelwise.cli.table import COMMANDS, INSPECT_OPTIONS, MASK_OPTIONS
from pixelwise.config import (
    TrainConfig,
    add_shared,
    field_options,
    from_args,
)
from pixelwise.constants import (
    Note,
    counted,
    did_you_mean,
    one_line,
    parse_range,
    run_best,
)

EXTRAS = {
    "fastapi": "serve",
    "uvicorn": "serve",
    "multipart": "serve",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "onnxscript": "onnx",
    "pymatting": "matting",
    "pycocotools": "instances",
    "playwright": "browser",
    "pillow_heif": "heic",
    "av": "video",
}  # module -> the extra that installs it


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixelwise",
        description="Image segmentation as pixel classification: train, predict, evaluate.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"pixelwise {__version__}",
        help="show the version and exit (--version -v: what pixelwise info prints)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help, description, options) in COMMANDS.items():
        p = sub.add_parser(name, help=help, description=description or help)
        if name in ("train", "inspect", "evaluate"):
            shown = {"train": None, "inspect": INSPECT_OPTIONS, "evaluate": MASK_OPTIONS}[name]
            for dest, option in field_options(TrainConfig):
                if shown is None or dest in shown:
                    option.add_to(p, dest)
        for option in options:
            if isinstance(option, str):
                add_shared(p, option)
            else:
                option.add_to(p)
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    from pixelwise.distributed import is_main
    from pixelwise.train import fit

    start = time.perf_counter()
    best = fit(from_args(TrainConfig, args))
    if not is_main():  # under torchrun rank 0 alone says where the run went
        return 0
    out = Path(args.out)
    print(
        f"done in {time.perf_counter() - start:.0f}s\n  best checkpoint: {best}\n  last checkpoint: {out / 'last.pt'}\n"
        f"  metrics: {out / 'metrics.csv'}\n  curve: {out / 'curve.png'}\n  overlays: {out / 'overlays'}"
    )
    if not args.calibrate and best.exists() and calibratable(best):
        print(f"  faster CPU prediction (int8): pixelwise calibrate {best} {args.data}")
    return 0


def calibratable(checkpoint: Path) -> bool:
    """Whether ``pixelwise calibrate`` applies and the checkpoint is not calibrated yet."""
    from pixelwise.checkpoint import int8_applies, read_checkpoint

    ckpt = read_checkpoint(checkpoint)
    return int8_applies(ckpt["arch"]) and "int8" not in ckpt


def cmd_inspect(args: argparse.Namespace) -> int:
    from pixelwise.report import dataset_report, format_report
    from pixelwise.semantic import instance_labelled

    cfg = TrainConfig(**{name: getattr(args, name) for name in INSPECT_OPTIONS})
    cfg.check()
    if instance_labelled(cfg):  # shown as they would be trained on, with their objects' sizes
        cfg.instances = "boundary"
        print(
            f"{cfg.data}: instance labels (a number per object), read as train --instances "
            "boundary reads them",
            file=sys.stderr,
        )
    print(format_report(dataset_report(cfg, progress=cfg.progress and sys.stderr.isatty())))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from pixelwise.compare import format_table, paired_lines, run_compare

    rows = run_compare(
        args.data,
        args.methods,
        args.out,
        mask_values=args.mask_values,
        ignore_values=args.ignore_values,
        soft_masks=args.soft_masks,
        num_classes=args.num_classes,
        val_stems=args.val_stems,
        sample=args.sample,
        seed=args.seed,
        grid_rows=args.grid,
        progress=args.progress,
    )
    print(format_table(rows))
    for line in paired_lines(rows):
        print(line)
    print(f"table: {Path(args.out) / 'compare.md'}\nfigure grid: {Path(args.out) / 'grid.png'}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from pixelwise.checkpoint import load_model
    from pixelwise.export import export_checked, export_int8
    from pixelwise.runner import check_output_file

    check_output_file(args.onnx, "--onnx", ".onnx")  # other names are not read back as ONNX
    seg = load_model(args.checkpoint)
    if args.int8:
        from pixelwise.report import gate_scores

        gate = export_int8(seg, args.onnx, args.int8, args.val_stems)
        verdict = "passed" if gate["passed"] else "FAILED"
        print(f"wrote {args.onnx} (int8); accuracy gate {verdict}: {gate_scores(gate)}")
        return 0 if gate["passed"] else 1
    path, worst = export_checked(seg, args.onnx)
    size = path.stat().st_size / 1e6
    print(
        f"wrote {path} ({size:.1f} MB); max |ONNX Runtime - PyTorch| logit difference {worst:.2e}"
    )
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from pixelwise.checkpoint import calibrate_checkpoint, calibration_target, default_path
    from pixelwise.evaluate import note_data_settings, run_validation
    from pixelwise.report import gate_scores
    from pixelwise.runner import check_output_file

    calibration_target(args.checkpoint, args.out)  # a bundled model in place: refused first
    if args.out:
        check_output_file(args.out, "--out", ".pt", ".pth")
    note_data_settings(args.checkpoint)
    # the run's own validation images when DATA holds them, as evaluate scores them
    stems = args.val_stems or run_validation(args.checkpoint, args.data, "semantic")
    gate = calibrate_checkpoint(args.checkpoint, args.data, stems, args.out)
    scores = gate_scores(gate)
    if not gate["passed"]:
        print(f"accuracy gate FAILED: {scores}; {args.checkpoint} left unchanged")
        return 1
    print(
        f"wrote {args.out or args.checkpoint} with its int8 graph; accuracy gate passed: {scores}"
    )
    print(f"this machine's default path for it: {default_path(args.out or args.checkpoint)}")
    return 0


STAIN_PIXELS = 4096 * 4096  # stains: at most this many pixels, shared by the images


def cmd_convert(args: argparse.Namespace) -> int:
    from pixelwise.data.kaggle_rle import coco_to_rle_csv, rle_csv_to_coco

    source = Path(args.source)
    if source.suffix.lower() == ".json":  # a COCO file: written as a Kaggle CSV
        given = [f for f, v in (("--images", args.images), ("--classes", args.classes)) if v]
        if given:
            raise ValueError(f"{source}: {', '.join(given)} are for reading a CSV, not writing one")
        out, found = coco_to_rle_csv(source, args.out, args.order, args.image_ids)
        print(
            f"wrote {out}: {counted(found['objects'], 'object')} of {counted(found['images'], 'image')}"
        )
        return 0
    if args.image_ids != "stem":
        raise ValueError(f"{source}: --image-ids is for writing a CSV from a COCO file")
    out, found = rle_csv_to_coco(source, args.images, args.out, args.order, args.classes)
    print(
        f"wrote {out}: {counted(found['objects'], 'object')} in {counted(found['images'], 'image')}"
    )
    if found["missing"]:
        shown = ", ".join(found["missing"][:5]) + (", ..." if len(found["missing"]) > 5 else "")
        print(
            f"{source}: {len(found['missing'])} image id(s) name no image under "
            f"{args.images or source.parent}, left out: {shown}",
            file=sys.stderr,
        )
    return 0


def cmd_stains(args: argparse.Namespace) -> int:
    from pixelwise.data.io import list_images, read_image
    from pixelwise.data.slide import TiffRegions, is_streamed, sample_step
    from pixelwise.measure import check_stains, estimate_stains, stains_report

    paths = list_images(args.inputs)
    if not paths:
        raise ValueError(f"{', '.join(args.inputs)}: no image files")
    images, budget = [], STAIN_PIXELS // len(paths)  # every n-th pixel where more
    for path in paths:
        if is_streamed(path):  # a slide
            with TiffRegions(path) as regions:
                images.append(regions.sample(sample_step(regions.shape, budget)))
        else:
            image = read_image(path)
            step = sample_step(image.shape[:2], budget)
            images.append(image[::step, ::step])
        try:
            check_stains(images[-1])
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    print(stains_report(estimate_stains(images)))
    return 0


def cmd_models(_: argparse.Namespace) -> int:
    import torch

    from pixelwise.models import create_model, describe, list_models

    for name in list_models("all"):
        with torch.device("meta"):  # shapes alone: no weights drawn
            n = sum(p.numel() for p in create_model(name).parameters())
        print(f"{name:<14}{n / 1e6:>8.2f}M params  {describe(name)}")
    return 0


DATA_SUFFIXES = (".csv", ".json", ".yaml", ".yml")  # datasets' files (pairs, COCO, YOLO)


def cmd_info(args: argparse.Namespace) -> int:
    from pixelwise import runtime

    if getattr(args, "model", None):
        from pixelwise.data.io import IMAGE_SUFFIXES
        from pixelwise.report import image_report, model_report
        from pixelwise.video import is_video, video_report

        if Path(args.model).suffix.lower() in IMAGE_SUFFIXES:
            print(image_report(args.model))
        elif is_video(args.model):
            print(video_report(args.model))
        elif Path(args.model).suffix.lower() in DATA_SUFFIXES or (
            Path(args.model).is_dir() and not run_best(args.model)
        ):
            raise ValueError(
                f"{args.model}: info takes a model, an image or a video; 'pixelwise inspect "
                f"{args.model}' shows what a dataset holds"
            )
        else:
            print(model_report(args.model))
        return 0

    info = runtime.probe() if args.probe else runtime.measured()
    if args.probe:
        runtime.save(info, progress=True)
    cpu, v = info["cpu"], info["versions"]
    print(
        f"pixelwise {__version__}  torch {v['torch']}  onnxruntime {v['onnxruntime']}  python {v['python']}"
    )
    print(
        f"CPU: {cpu['model']}, {cpu['threads']} threads, bf16 instructions: {'yes' if cpu['bf16_hardware'] else 'no'}"
    )
    print(f"flags: {' '.join(cpu['flags']) or '(none of interest)'}")
    print(f"memory: {allocator()}")
    for kind in ("inference", "training"):
        seconds = info[kind]["seconds"]
        base = seconds.get("torch-fp32")
        rows = ", ".join(f"{p} {s * 1000:.0f} ms ({base / s:.2f}x)" for p, s in seconds.items())
        emulated = "".join(
            f", {p} emulated: {x:.1f}x slower (never chosen)"
            for p, x in info[kind].get("emulated", {}).items()
        )
        print(f"{kind}: {info[kind]['best']} chosen; {rows}{emulated}")
        if info[kind].get("best_calibrated"):
            raced = info.get("checkpoints", {})
            print(
                f"  with int8 (calibrated checkpoints): {info[kind]['best_calibrated']} on this "
                f"network; each checkpoint is timed on its own at first use ({len(raced)} so far: "
                f"{', '.join(r['best'] for r in raced.values()) or '-'})"
            )
    print(
        f"measured in {info['probe_seconds']} s{runtime.busy_note(info)}, cached in "
        f"{runtime.cache_file()}"
    )
    print(f"optional parts: {optional_parts()}")
    return 0


def optional_parts() -> str:
    """Which extras are installed, every module of each (``pip install 'pixelwise[NAME]'`` adds
    one)."""
    from importlib.util import find_spec

    found: dict[str, bool] = {}
    for module, extra in EXTRAS.items():
        found[extra] = found.get(extra, True) and find_spec(module) is not None
    missing = [name for name, ok in found.items() if not ok]
    shown = ", ".join(f"{name} {'yes' if ok else 'no'}" for name, ok in found.items())
    return shown + (f" (pip install 'pixelwise[{','.join(missing)}]')" if missing else "")


def cmd_demo(args: argparse.Namespace) -> int:
    from pixelwise.demo import run_background_demo, run_demo

    if args.remove_bg:
        run_background_demo(args.out, args.checkpoint)
    else:
        run_demo(args.out, args.epochs)
    return 0


HANDLERS = {
    "demo": cmd_demo,
    "train": cmd_train,
    "inspect": cmd_inspect,
    "predict": cmd_predict,
    "evaluate": cmd_evaluate,
    "segment": cmd_segment,
    "export": cmd_export,
    "calibrate": cmd_calibrate,
    "compare": cmd_compare,
    "remove-bg": cmd_remove_bg,
    "adapt": cmd_adapt,
    "serve": cmd_serve,
    "models": cmd_models,
    "stains": cmd_stains,
    "convert": cmd_convert,
    "info": cmd_info,
}


def missing_extra(exc: ImportError) -> str | None:
    """A friendly line for an optional dependency that is not installed."""
    top = (exc.name or "").split(".")[0]
    if top in EXTRAS:
        return f"{top} is not installed: pip install 'pixelwise[{EXTRAS[top]}]'"
    return None


def model_first(args: argparse.Namespace, argv: list[str]) -> None:
    """Take predict's order in the commands whose model is an option: ``pixelwise segment nuclei
    cells/`` means ``--checkpoint nuclei``. The first of several inputs counts as the model when it
    names a bundled model (and no file here), is a ``.pt`` / ``.onnx`` file or a training run's
    folder (its ``best.pt``)."""
    from pixelwise.checkpoint import BUNDLED

    inputs = getattr(args, "inputs", None)
    if not hasattr(args, "checkpoint") or not inputs or len(inputs) < 2:
        return
    first = Path(inputs[0])
    named = inputs[0] in BUNDLED and not first.exists()
    if not (named or run_best(first)) and not (
        first.suffix.lower() in (".pt", ".onnx") and first.is_file()
    ):
        return
    given = any(a.split("=")[0] in ("--checkpoint", "--model") for a in argv)
    if given and args.checkpoint != inputs[0]:
        raise ValueError(
            f"two models given: {inputs[0]} and --checkpoint {args.checkpoint}; give one"
        )
    args.checkpoint, args.inputs = inputs[0], inputs[1:]


def command_parser(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser:
    """The parser of subcommand ``command`` (the main parser without one)."""
    subparsers = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return next(subparsers).choices[command] if command in HANDLERS else parser


def unknown(parser: argparse.ArgumentParser, command: str | None, extra: list[str]) -> None:
    """Exit (status 2) naming the arguments ``command`` does not take, and the option meant
    where one is close ("--ouput": --out)."""
    where = command_parser(parser, command)
    options = [o for o in where._option_string_actions if o.startswith("--")]
    hints = "".join(did_you_mean(e.split("=")[0], options) for e in extra if e.startswith("--"))
    where.error(f"unrecognized arguments: {' '.join(extra)}{hints}")


def one_dash_too_few(parser: argparse.ArgumentParser, given: list[str]) -> None:
    """Exit (status 2) for a long option written with one dash ("-out results"), which argparse
    would read as a short one with the rest as its value (-o ut), the value then an input."""
    where = command_parser(parser, given[0] if given else None)
    for arg in given[1:]:
        name = arg.split("=")[0]
        if name[:1] == "-" and name[1:2].isalpha() and f"-{name}" in where._option_string_actions:
            short = arg[:2] in where._option_string_actions  # -o: "-out" is -o with "ut"
            where.error(
                f"{arg}: did you mean -{arg}?"
                + (f" (with one dash it reads as {arg[:2]} {arg[2:]})" if short else "")
            )


# "-1000,3000": a list of numbers, the first negative (a CT scan's --input-range), not an option
NEGATIVE_LIST = re.compile(r"-\.?\d[\d.eE+-]*(,\s*[+-]?\.?\d[\d.eE+-]*)+$")


def negative_lists_joined(given: list[str]) -> list[str]:
    """``--input-range -1000,3000`` as ``--input-range=-1000,3000``: argparse takes a value that
    starts with a dash, and is not one number, for an option, and then says that the option
    before it lacks its value."""
    joined: list[str] = []
    for arg in given:
        after = joined[-1] if joined else ""
        if after.startswith("--") and "=" not in after and NEGATIVE_LIST.match(arg):
            joined[-1] = f"{after}={arg}"
        else:
            joined.append(arg)
    return joined


def main(argv: list[str] | None = None) -> int:
    tune_allocator()
    parser = build_parser()
    given = sys.argv[1:] if argv is None else list(argv)
    if "--version" in given and {"-v", "--verbose"} & set(given):
        given = ["info"]  # the version with the CPU, its flags and the measured paths
    if given and not given[0].startswith("-") and given[0] not in HANDLERS:
        hint = did_you_mean(given[0], list(HANDLERS)) or f" (the commands: {', '.join(HANDLERS)})"
        parser.error(f"no command {given[0]!r}{hint}")
    given = negative_lists_joined(given)
    one_dash_too_few(parser, given)
    args, extra = parser.parse_known_args(given)
    if args.command == "predict" and extra and not any(e.startswith("-") for e in extra):
        args.paths += extra  # inputs given after options ("predict CKPT --runtime onnx IMAGES")
    elif extra:
        unknown(parser, args.command, extra)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        model_first(args, given)
        if getattr(args, "input_range", None) is not None:  # refused before a model loads
            args.input_range = parse_range(args.input_range)
        with warnings.catch_warnings():  # pixelwise's notes as one line each
            warnings.showwarning = note_line(warnings.showwarning)
            status = HANDLERS[args.command](args)
        sys.stdout.flush()  # a reader gone shows here (BrokenPipeError), not at exit
        return status
    except ImportError as exc:
        message = missing_extra(exc)
        if message is None:
            raise
        print(f"pixelwise {args.command}: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the output's reader stopped early ("pixelwise models | head")
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit either
        return 141  # as a shell reports SIGPIPE
    except (ValueError, OSError) as exc:
        print(f"pixelwise {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted{how_to_go_on(args)}", file=sys.stderr)
        return 130


def note_line(show):
    """``warnings.showwarning`` that prints pixelwise's :class:`~pixelwise.constants.Note`
    warnings as "pixelwise: note: ..." and hands the others to ``show``."""

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, Note):
            print(f"pixelwise: note: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning


def how_to_go_on(args: argparse.Namespace) -> str:
    """How an interrupted command goes on where it stopped: training from its last checkpoint,
    file commands past the files they wrote whole (every output is written atomically)."""
    if args.command == "train" and (Path(args.out) / "last.pt").is_file():
        return f"; the same command with --resume goes on from {Path(args.out) / 'last.pt'}"
    if hasattr(args, "skip_existing"):
        given = "" if args.skip_existing else " with --skip-existing"
        return f"; each file written is whole: the same command{given} goes on past them"
    return ""


if __name__ == "__main__":
    sys.exit(main())
