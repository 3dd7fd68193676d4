"""The background-removal commands: ``remove-bg`` (photos, videos, a stream), ``adapt`` and
``serve``; the work happens in :mod:`pixelwise.cutout`, :mod:`pixelwise.adapt` and
:mod:`pixelwise.web`."""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import warnings
from pathlib import Path

from pixelwise.constants import (
    CUTOUT_FORMATS,
    counted,
    crop_setting,
    first_ten,
)


def cmd_remove_bg(args: argparse.Namespace) -> int:
    from pixelwise.video import split_videos

    out = Path(args.out)
    args.format = cutout_format(args, out)
    streams = STREAM in args.inputs or args.out == STREAM
    videos, photos = ([], args.inputs) if streams else split_videos(args.inputs, out)
    if videos and (args.box or args.strokes or args.boxes or crop_of(args) is not None):
        raise ValueError("--box, --strokes, --boxes and --crop are for photos, not videos")
    cut = cutter(args)
    if streams:
        return remove_bg_stream(args, cut)
    status = remove_bg_videos(args, videos, out, cut, one=not photos) if videos else 0
    return max(status, remove_bg_photos(args, photos, out, cut) if photos else 0)


def cutter(args: argparse.Namespace):
    """remove-bg's ``cut(image, **hints)``: its models loaded (and any missing extra or bad
    option refused) once."""
    from pixelwise.cutout import background_of, box_helper, get_model

    background = background_of(args.background) if args.background else None
    model = get_model(args.checkpoint, args.runtime) if args.method != "grabcut" else None
    box_model = box_helper(args.checkpoint, args.box_checkpoint) if model is not None else None
    if args.matting:  # without pymatting: one line naming the extra, before any photo
        from pixelwise.matting import solvers

        solvers()

    def cut(image, **hints):
        return remove_background_with(args, image, model, box_model, background, **hints)

    return cut


def cutout_format(args: argparse.Namespace, out: Path) -> str:
    """The photos' cut-out format: --format, else -o's suffix when it names one file (.png,
    .webp, .jpg), else png; another image suffix, a clash or --mask-only as anything but PNG is
    refused (ValueError)."""
    from pixelwise.data.io import IMAGE_SUFFIXES

    suffix = out.suffix.lower() if args.out != STREAM and not out.is_dir() else ""
    named = CUTOUT_FORMATS.get(suffix)
    if suffix in IMAGE_SUFFIXES and named is None:
        raise ValueError(  # "-o cut.tif" would otherwise become a folder named cut.tif
            f"-o {out}: cut-outs are written as PNG, WebP, JPEG or TIFF; name one photo's "
            "cut-out *.png, *.webp, *.jpg or *.tif, or give a folder"
        )
    if named and args.format and args.format != named:
        raise ValueError(f"-o {out} names a {named} file; --format {args.format} says otherwise")
    fmt = args.format or named or "png"
    if args.mask_only and fmt != "png":
        raise ValueError(f"--mask-only writes masks as PNG (lossless), not {fmt}")
    return fmt


def crop_of(args: argparse.Namespace) -> str | None:
    """The crop margin of --crop and --crop-margin (which implies --crop); None: no crop."""
    return crop_setting(args.crop, args.crop_margin)


def remove_background_with(args, image, model, box_model, background, **hints):
    """:func:`pixelwise.cutout.remove_background` with remove-bg's options."""
    from pixelwise.cutout import remove_background

    return remove_background(
        image,
        model,
        args.method,
        args.matting,
        background,
        args.mask_only,
        model_size=args.model_size,
        box_model=box_model,
        input_range=args.input_range,
        matting_megapixels=args.matting_megapixels,
        **hints,
    )


# remove-bg's name for standard input (as the input) and standard output (as -o)
STREAM = "-"


def remove_bg_stream(args: argparse.Namespace, cut) -> int:
    """remove-bg on one photo through the standard streams, for pipelines: ``-`` as the input
    reads the photo from standard input; ``-o -`` writes its cut-out (PNG, or as --format says)
    to standard output, and nothing else goes there."""
    from pixelwise.data.io import open_image_bytes
    from pixelwise.data.write import atomic_write_bytes
    from pixelwise.video import (
        check_animation_format,
        cut_each,
        encoded_cutout,
        is_video,
        read_animation,
    )

    given, out = args.inputs, Path(args.out)
    if len(given) != 1 or args.boxes:
        raise ValueError(
            f"- (standard input or output) is for one photo; {len(given)} input(s)"
            + (" and --boxes given" if args.boxes else " given")
        )
    if given[0] != STREAM and (Path(given[0]).is_dir() or is_video(given[0])):
        raise ValueError(
            f"-o -: {given[0]} is not a photo; standard output takes one photo's cut-out"
        )
    if args.out != STREAM and (out.suffix.lower() not in CUTOUT_FORMATS or out.is_dir()):
        raise ValueError(
            f"-o {out}: a photo from standard input needs its cut-out named (-o FILE.png, "
            ".webp, .jpg or .tif), or -o - for standard output"
        )
    if args.out == STREAM and sys.stdout.isatty():
        raise ValueError("-o -: standard output is a terminal; redirect it (> cut.png) or pipe it")
    if given[0] == STREAM:
        name, data = "<stdin>", sys.stdin.buffer.read()
        image = read_animation(data, name) or open_image_bytes(data, name)  # transparency kept
    else:
        name, image = given[0], read_animation(given[0]) or given[0]
    with contextlib.redirect_stdout(sys.stderr):  # standard output holds the cut-out alone
        check_animation_format(image, args.format)
        cutout = cut_each(cut, image, crop=crop_of(args), **one_photo_hints(args))
        data, empty = encoded_cutout(cutout, args.format)
    if args.out == STREAM:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        atomic_write_bytes(out, data)
        print(f"wrote {out}", file=sys.stderr)
    report_empty([name] if empty else [])
    return 0


def remove_bg_photos(args: argparse.Namespace, photos: list, out: Path, cut) -> int:
    """remove-bg's photos: one file each (``-o x.png`` names one photo's cut-out; the format:
    :func:`cutout_format`); under torchrun, or with ``--jobs N`` in N processes of its own, each
    process cuts out its share."""
    from pixelwise import distributed as dist
    from pixelwise.runner import report_failures, run_in_processes, run_sharded

    pairs, run, report = photo_batch(args, photos, out, cut)
    jobs = min(args.jobs, len(pairs))
    if jobs <= 1 or dist.world_size() > 1:
        return run_sharded(run, report)
    own = argparse.Namespace(**vars(args))  # the processes show no bars: this one shows all
    own.progress = False
    result = run_in_processes(
        remove_bg_share, (own, photos), jobs, len(pairs), "remove-bg", args.progress
    )
    report(result)
    return report_failures(result)


def remove_bg_share(payload: tuple, shard: tuple[int, int]):
    """One ``remove-bg --jobs`` process's share of the photos (in a fresh process: models
    loaded again, and on a machine's first ``--jobs`` run its fastest path for the processes'
    threads measured, which it says; what the first process said of the inputs and options is
    not said again)."""
    args, photos = payload
    cut = cutter(args)
    with contextlib.redirect_stderr(io.StringIO()):
        _, run, _ = photo_batch(args, photos, Path(args.out), cut)
    return run(shard)


def photo_batch(args: argparse.Namespace, photos: list, out: Path, cut):
    """remove-bg's photo batch: ``(pairs, run(shard), report(result))`` (inputs with their output
    names; :func:`~pixelwise.runner.run_batch` on a share of them; the summary)."""
    from pixelwise.cutout import DimPhoto
    from pixelwise.data.write import atomic_write_bytes
    from pixelwise.runner import output_names, run_batch
    from pixelwise.video import check_animation_format, cut_each, encoded_cutout, read_animation

    pairs = output_names(photos, out, suffix=f".{args.format}")
    hints = user_hints(args, pairs)
    # "-o cut.png" for one photo names the cut-out itself; otherwise OUT is a folder
    one_file = out.suffix.lower() in CUTOUT_FORMATS and not out.is_dir() and len(pairs) == 1
    target = {
        rel: out if one_file else out / rel.with_suffix(f".{args.format}") for _, rel in pairs
    }
    empty = []

    def write(src, rel, cutout):
        data, empty_cut = encoded_cutout(cutout, args.format)
        atomic_write_bytes(target[rel], data)
        if empty_cut:
            empty.append(rel.with_suffix("").as_posix())
        return target[rel], None

    skip = (lambda rel: target[rel].exists()) if args.skip_existing else None
    dim: list[str] = []  # 12-bit photos in 16-bit files, seen 16 times darker

    def compute(src):
        animation = read_animation(src)  # an animated GIF, PNG or WebP: frame by frame
        check_animation_format(animation, args.format)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DimPhoto)
            cutout = cut_each(cut, animation or src, crop=crop_of(args), **hints(src))
        dim.extend(str(src) for w in caught if issubclass(w.category, DimPhoto))
        return cutout

    def run(shard):
        folder = None if one_file else out
        result = run_batch(
            photos, compute, write, "remove-bg", args.progress, shard, skip, pairs=pairs, out=folder
        )
        result.dim, result.empty = dim, empty
        return result

    def report(result) -> None:
        skipped = f" ({result.skipped} existing skipped)" if result.skipped else ""
        print(f"wrote {counted(len(result.written), 'cut-out')} to {args.out}" + skipped)
        report_empty(result.empty)

    return pairs, run, report


def remove_bg_videos(
    args: argparse.Namespace, videos: list[tuple[Path, Path]], out: Path, cut, one: bool
) -> int:
    """remove-bg's videos (each with its output name, :func:`~pixelwise.video.split_videos`):
    each frame cut out, written as OUT/<name>.webm (transparent), or as ``-o`` names it for one
    video (.webm, .mov, .mp4); failures listed, exit status 1. Under torchrun each process
    cuts out its share."""
    from pixelwise import distributed as dist
    from pixelwise.video import WRITERS, check_output, report_video_failures, run_videos

    named = one and len(videos) == 1 and out.suffix.lower() in WRITERS
    targets = [out if named else out / f"{rel}.webm" for _, rel in videos]
    for dst in targets:
        check_output(dst, transparent=not (args.background or args.mask_only))
    pairs = [(video, dst) for (video, _), dst in zip(videos, targets)]
    share = pairs[dist.rank() :: dist.world_size()]
    failures = run_videos(share, cut, args.progress, args.skip_existing, None if named else out)
    return report_video_failures(failures)


def report_empty(names: list[str]) -> None:
    """Name the cut-outs that kept nothing (written all the same: an empty cut-out is an
    answer, not a failure) and say how to fix them."""
    if names:
        print(
            f"pixelwise remove-bg: {len(names)} cut-out(s) kept nothing: "
            f"{first_ten(names, 'photos')}; a box around the subject (--box, --boxes) or a keep "
            "stroke (--strokes) says where it is",
            file=sys.stderr,
        )


def user_hints(args: argparse.Namespace, pairs: list[tuple[Path, Path]]):
    """``src -> remove_background keyword arguments`` from --box, --strokes and --boxes."""
    from pixelwise.cutout import read_boxes

    if (args.box or args.strokes) and len(pairs) != 1:
        raise ValueError(
            f"--box and --strokes are for one photo; {len(pairs)} inputs given (use --boxes for folders)"
        )
    one = one_photo_hints(args)
    boxes = read_boxes(args.boxes) if args.boxes else {}
    keys = {  # the path inside the folder given, or the file name; either without its suffix
        src: (
            rel.with_suffix(src.suffix).as_posix(),
            src.name,
            rel.with_suffix("").as_posix(),
            src.stem,
        )
        for src, rel in pairs
    }
    unused = sorted(set(boxes) - {k for both in keys.values() for k in both})
    if unused:  # a typo would otherwise cut that photo without its box, silently
        more = f" and {len(unused) - 3} more" if len(unused) > 3 else ""
        print(
            f"pixelwise remove-bg: warning: {args.boxes}: no input photo named "
            f"{', '.join(unused[:3])}{more} (those boxes are unused)",
            file=sys.stderr,
        )

    def hints(src: Path) -> dict:
        if boxes:
            key = next((k for k in keys[src] if k in boxes), None)
            return {"box": boxes[key]} if key else {}
        return one

    return hints


def one_photo_hints(args: argparse.Namespace) -> dict:
    """remove_background keyword arguments of --box and --strokes (one photo's)."""
    from pixelwise.cutout import read_strokes

    hints = {"box": args.box} if args.box else {}
    return hints | (read_strokes(args.strokes) if args.strokes else {})


def cmd_adapt(args: argparse.Namespace) -> int:
    from pixelwise.adapt import AdaptOptions, adapt
    from pixelwise.cutout import box_helper_name
    from pixelwise.runner import report_failures

    options = AdaptOptions(args.epochs, args.epoch_size, args.crop, args.lr, device=args.device)
    model, labelled = adapt(
        args.inputs, args.out, args.checkpoint, args.box_checkpoint, options, args.progress,
        args.sample,
    )  # fmt: skip
    box = box_helper_name(args.checkpoint, args.box_checkpoint)  # as adapt labelled with
    print(
        f"labelled {len(labelled.written)} photos; adapted model: {model}\n  use it: pixelwise remove-bg "
        f"PHOTOS -o OUT --checkpoint {model}" + (f" --box-checkpoint {box}" if box else "")
    )
    return report_failures(labelled)


def cmd_serve(args: argparse.Namespace) -> int:
    from pixelwise.cutout import box_helper, get_model
    from pixelwise.web.app import LOOPBACK, Limits, check_port, serve

    check_port(args.host, args.port)
    model = get_model(args.checkpoint, args.runtime) if args.method != "grabcut" else None
    box_model = box_helper(args.checkpoint, args.box_checkpoint) if model is not None else None
    limits = Limits(
        args.max_upload_mb,
        args.max_megapixels,
        args.max_matting_megapixels,
        args.threads,
        args.queue,
        hosts=(*LOOPBACK, *(args.allow_host or ())),
        preview_megapixels=args.preview_megapixels,
        edit_matting_megapixels=args.edit_matting_megapixels,
        processes=args.processes,
    )
    source = (args.checkpoint, args.runtime, args.box_checkpoint)  # what --processes load
    serve(args.host, args.port, model, args.method, limits, box_model, source)
    return 0
