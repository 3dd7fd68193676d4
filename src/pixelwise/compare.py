"""``pixelwise compare``: classical methods and trained checkpoints scored the same way on the
same images: one table (mean IoU, mean Dice, pixel accuracy, seconds per image) and one
figure grid (image | ground truth | each method)."""

from __future__ import annotations

import io
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pixelwise.checkpoint import load_model
from pixelwise.classical import METHODS, regions_to_classes, run_method
from pixelwise.constants import (
    IGNORE_INDEX,
    each_readable,
    one_line,
    parse_stems,
    run_best,
    unusable,
)
from pixelwise.data.datasets import size_mismatch
from pixelwise.data.encoding import MaskEncoding
from pixelwise.data.layouts import (
    Item,
    black_and_white,
    evaluation_items,
    holds_instance_labels,
    read_dataset_info,
    stored_values,
    value_counts,
)
from pixelwise.data.slide import annotated_image, item_image
from pixelwise.data.write import atomic_write_bytes
from pixelwise.evaluate import note_data_settings, run_validation
from pixelwise.evaluate_folders import (
    predicted_ids,
    prediction_files,
    prediction_folder,
    read_prediction,
)
from pixelwise.inference import predict
from pixelwise.metrics import ImageScores, image_mean, mean_interval
from pixelwise.segmenter import default_colours
from pixelwise.semantic import soft_black_and_white


@dataclass
class Method:
    """A named way to segment: a classical method (regions matched to classes), a checkpoint,
    or a folder of masks predicted beforehand (by any tool; see
    :func:`pixelwise.evaluate_folders.evaluate_predictions`)."""

    name: str
    classical: str | None = None
    checkpoint: str | None = None
    seconds: list[float] = field(default_factory=list)
    to_data: np.ndarray | None = None  # model class id -> the data's class of the same name
    folder: str | None = None
    files: dict[str, Path] = field(default_factory=dict)  # image name -> its predicted mask
    names: list[str] | None = None  # the data's classes (a GeoJSON prediction's, by name)

    def __post_init__(self) -> None:
        self.model = load_model(self.checkpoint) if self.checkpoint else None

    def predicted(self, item: Item, target: np.ndarray, encoding: MaskEncoding, classes: int):
        """The class ids of the mask predicted beforehand for ``item`` (objects: foreground)."""
        objects = encoding.instances is not None
        path = self.files[item.name]
        stored = read_prediction(path, target.shape, classes, self.names, objects, item=item)
        return predicted_ids(path, stored, encoding, classes)

    def __call__(self, image: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
        start = time.perf_counter()
        if self.model is not None:
            out = predict(self.model, image).astype(np.int64)
            out = out if self.to_data is None else self.to_data[out]
        else:
            out = run_method(self.classical, image)
        self.seconds.append(time.perf_counter() - start)
        return out if self.model is not None else regions_to_classes(out, target, num_classes)


def class_count(encoding: MaskEncoding, info, methods: list[Method]) -> int:
    """The classes scored when not given: the encoding's or the data's, 2 for objects, else the
    first checkpoint's, else 2."""
    return (
        len(encoding.values or info.class_names or ())
        or (2 if encoding.instances else 0)
        or (methods[0].model.num_classes if methods[0].model else 2)
    )


def classes_by_name(
    method: Method, names: list[str] | None, num_classes: int, data
) -> np.ndarray | None:
    """Model class id -> the data's class id of the same name (``num_classes``, "no class", for
    a class the data lacks), when the data names its classes otherwise than the model and some
    match beyond the background; None when they agree or nothing matches."""
    model = list(method.model.class_names)
    if not names or model == names[: len(model)] or not set(names) & set(model[1:]):
        return None
    found = [names.index(n) if n in names[:num_classes] else num_classes for n in model]
    print(f"{data}: {method.name}'s classes matched to the data's by name", file=sys.stderr)
    return np.asarray(found, np.int64)


def parse_methods(spec: str) -> list[Method]:
    """``otsu,kmeans,unet:runs/x/best.pt`` -> methods; ``label=NAME:CKPT`` renames a checkpoint
    (a training run's folder stands for its best.pt; another folder holds predicted masks)."""
    methods = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        name, sep, path = part.partition(":")
        if sep and Path(path).is_dir() and not run_best(path):
            methods.append(Method(name, folder=path))
        elif sep:
            methods.append(Method(name, checkpoint=path))
        elif part in METHODS:
            methods.append(Method(part, classical=part))
        else:
            raise ValueError(
                f"unknown method {part!r}: a classical method ({', '.join(METHODS)}), NAME:CHECKPOINT "
                "or NAME:FOLDER of predicted masks"
            )
    return methods


def select_items(
    roots: list[str],
    val_stems: str | None,
    sample: int | None,
    seed: int,
    checkpoints: tuple[str, ...] = (),
) -> list[Item]:
    """The images to score: ``val_stems`` of each dataset, else its validation split; a dataset
    a checkpoint was trained on by drawing validation images from it gives those images (its
    other images trained the checkpoint)."""
    items: list[Item] = []
    for checkpoint in checkpoints:
        note_data_settings(checkpoint)
    for root in roots:
        stems = parse_stems(val_stems)
        for checkpoint in checkpoints if not stems else ():
            stems = run_validation(checkpoint, root, "semantic")
            if stems:
                print(
                    f"{root}: the validation split of {checkpoint}'s training run", file=sys.stderr
                )
                break
        items.extend(evaluation_items(Path(root), stems)[0])
    if sample and sample < len(items):
        keep = sorted(
            np.random.default_rng(seed).choice(len(items), sample, replace=False).tolist()
        )
        items = [items[i] for i in keep]
    return items


def score(scores: ImageScores, num_classes: int) -> dict:
    """Metrics over the real classes of scores whose last predicted id means "no class"; the
    confusion matrix (pixel counts, a row per true class, a column per predicted class and a
    last one for "no class") and each image's mean IoU over its classes (None where every
    pixel is ignored), to compare methods image by image."""
    cm = scores.total
    iou, dice = cm.iou()[:num_classes], cm.dice()[:num_classes]
    per_image = [one.iou()[:num_classes].nanmean().item() for one in scores.images]
    per_class = list(scores.summary()["per_class"].values())[:num_classes]
    bf, hd95 = ([m[key] for m in per_class] for key in ("boundary_f1", "hd95"))
    return {
        "mean_iou": iou.nanmean().item(),
        "mean_dice": dice.nanmean().item(),
        "mean_boundary_f1": image_mean([float("nan") if v is None else v for v in bf]),
        "mean_hd95": image_mean([float("nan") if v is None else v for v in hd95]),
        "pixel_accuracy": cm.pixel_accuracy(),
        "mean_accuracy": cm.class_accuracy()[:num_classes].nanmean().item(),
        "per_class_iou": [None if v != v else v for v in iou.tolist()],
        "per_class_boundary_f1": bf,
        "per_class_hd95": hd95,
        "confusion_matrix": cm.matrix[:num_classes].tolist(),
        "per_image_iou": [None if v != v else v for v in per_image],
    }


def target_encoding(
    info,
    items: list[Item],
    mask_values: list[int] | None,
    ignore_values: list[int] | None = None,
    soft_masks: bool = False,
) -> MaskEncoding:
    """How the masks become targets: ``mask_values``, classes.json's colours, black-and-white
    masks as background and foreground (``soft_masks``: their soft edges too, each pixel the
    nearest value), instance labels as foreground, else class ids; the values left unscored:
    ``ignore_values``, else classes.json's void id."""
    ignore = info.ignored(ignore_values)
    values = stored_values(info, items, mask_values)
    objects = not mask_values and not soft_masks and holds_instance_labels(items[0])
    if values is None and soft_masks:
        values = soft_black_and_white(Path(items[0].mask).parent, value_counts(items))
    elif values is None and not objects:  # objects are scored as foreground
        values = black_and_white(value_counts(items), ignore)
    return MaskEncoding(values, ignore, "foreground" if objects else None, soft_masks)


def compare(
    roots: list[str],
    methods: list[Method],
    mask_values: list[int] | None = None,
    num_classes: int | None = None,
    val_stems: str | None = None,
    ignore_values: list[int] | None = None,
    soft_masks: bool = False,
    sample: int | None = None,
    seed: int = 0,
    grid_rows: int = 4,
    progress: bool = True,
) -> tuple[list[dict], list[list[np.ndarray]], list[Item], int]:
    """Score every method on the selected items; returns table rows, the grid panels of
    ``grid_rows`` items spread evenly over the selection, the items and the number of classes.

    Classes: ``num_classes``, else one per ``mask_values`` (or the dataset's classes.json; masks
    of 0 and 255 alone are background and foreground; ``ignore_values`` unscored; ``soft_masks``:
    :func:`target_encoding`),
    else the first checkpoint's, else 2. Instance labels are scored as background/foreground,
    and so are the classes of a model trained on instances. ``progress``: a bar, an image a step."""
    info = read_dataset_info(Path(roots[0]))
    checkpoints = tuple(m.checkpoint for m in methods if m.checkpoint)
    items = select_items(roots, val_stems, sample, seed, checkpoints)
    if not items:
        raise ValueError(f"{', '.join(roots)}: no labelled images selected")
    encoding = target_encoding(info, items, mask_values, ignore_values, soft_masks)
    num_classes = num_classes or class_count(encoding, info, methods)
    prepare(methods, items, info.class_names, num_classes, encoding, roots[0])
    scores, panels = {m.name: ImageScores(num_classes + 1) for m in methods}, []
    shown = set(
        np.linspace(0, len(items) - 1, min(grid_rows, len(items))).round().astype(int).tolist()
    )
    from tqdm import tqdm

    bar = tqdm(items, desc="compare", unit="img", disable=not progress)
    read = lambda _, item: read_pair(item, encoding, num_classes)  # noqa: E731
    for index, item, (image, target) in each_readable(bar, read, "pair"):  # bad ones named
        row = scored_item(item, image, target, methods, encoding, num_classes, scores)
        panels += [row] if index in shown else []
    table = [
        {
            "method": m.name,
            **score(scores[m.name], num_classes),
            "seconds_per_image": float(np.median(m.seconds)) if m.seconds else None,
        }
        for m in methods
    ]
    return table, panels, items, num_classes


def read_pair(item, encoding: MaskEncoding, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """An item's image and its target as ``encoding`` reads its mask; ValueError naming the file
    that cannot be read, or the pair whose sizes differ."""
    target = encoding.apply(item.read_mask(), classes, item.mask)
    image = annotated_image(item, target.shape)
    if image is None:
        raise ValueError(size_mismatch(item, target.shape, item_image(item).shape[:2]))
    return image, target


def scored_item(
    item, image, target, methods: list[Method], encoding: MaskEncoding, classes: int, scores
) -> list:
    """Run every method on one item's ``image`` and add its scores against ``target`` to
    ``scores`` (by method name); returns the row of the figure grid: image, truth and each
    method's prediction."""
    row = [image, target]
    for m in methods:
        if m.folder is not None:
            pred = m.predicted(item, target, encoding, classes)
        else:
            pred = m(image, target, classes)
        if encoding.instances is not None and m.model is not None and m.model.encoding.instances:
            pred = (pred > 0).astype(np.int64)  # interior and boundary are both an object
        scores[m.name].add(pred, target)
        row.append(pred)
    return row


def check_predictions(methods: list[Method], items, encoding: MaskEncoding, classes: int) -> None:
    """Every folder method's prediction for every item read once before any method runs: a
    ValueError naming all those that cannot be scored (rather than the first, after the slow
    methods had run on the images before it)."""
    folders = [m for m in methods if m.folder is not None]
    failures = []
    for item in items if folders else ():
        target = encoding.apply(item.read_mask(), classes, item.mask)
        for m in folders:
            try:
                m.predicted(item, target, encoding, classes)
            except ValueError as exc:
                failures.append(one_line(exc))
    if failures:
        raise unusable(failures, "prediction")


def prepare(
    methods: list[Method], items, names, num_classes: int, encoding: MaskEncoding, data
) -> None:
    """Each checkpoint's classes matched to the data's by name (:func:`classes_by_name`); each
    folder's predicted mask found for every item, and read (:func:`check_predictions`)."""
    objects = encoding.instances is not None
    for m in methods:
        if m.model is not None and not objects:
            m.to_data = classes_by_name(m, names, num_classes, data)
        if m.folder is not None:
            found = prediction_files(prediction_folder(Path(m.folder), objects), items)
            m.files = {item.name: path for item, path in zip(items, found)}
            m.names = list(names) if names else None
    check_predictions(methods, items, encoding, num_classes)


def class_names(root, num_classes: int) -> list[str]:
    """The data's class names as compare scores them (their ids where it names none)."""
    names = read_dataset_info(Path(root)).class_names or []
    return list(names[:num_classes]) + [str(i) for i in range(len(names), num_classes)]


def paired_lines(rows: list[dict]) -> list[str]:
    """Each method against the best by mean IoU, image by image: the mean over the images of
    the difference of their mean IoU, with its 95 % bootstrap interval (:func:`mean_interval`;
    from 5 images scored by both): whether the gap would hold on other images like these."""
    best = max(rows, key=lambda r: r["mean_iou"])
    lines = []
    for r in rows:
        pairs = zip(r["per_image_iou"], best["per_image_iou"])
        diffs = [a - b for a, b in pairs if a is not None and b is not None]
        interval = mean_interval(diffs) if r is not best else None
        if interval is None:
            continue
        lo, hi = interval
        verdict = "no clear difference" if lo <= 0 <= hi else "lower" if hi < 0 else "higher"
        gap = round(float(np.mean(diffs)), 4) + 0.0  # no "-0.0000"
        lines.append(
            f"{r['method']} - {best['method']}: {gap:+.4f} mean IoU per image, 95 % interval "
            f"{lo:+.4f} to {hi:+.4f} over {len(diffs)} images ({verdict} on these images)"
        )
    return lines


def format_table(rows: list[dict]) -> str:
    lines = [
        "| method | mean IoU | mean Dice | mean BF | mean HD95 (px) | pixel accuracy | "
        "class accuracy | s / image (median) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        seconds = r["seconds_per_image"]  # None: predicted beforehand, not timed here
        lines.append(
            f"| {r['method']} | {r['mean_iou']:.4f} | {r['mean_dice']:.4f} | "
            f"{r['mean_boundary_f1']:.4f} | {r['mean_hd95']:.2f} | {r['pixel_accuracy']:.4f} | "
            f"{r['mean_accuracy']:.4f} | " + ("-" if seconds is None else f"{seconds:.3f}") + " |"
        )
    return "\n".join(lines)


def save_grid(
    path: Path, panels: list[list[np.ndarray]], titles: list[str], num_classes: int, tile: int = 160
) -> None:
    """Rows of image | ground truth | each method, class colours, titles on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    palette = np.zeros((256, 3), np.uint8)
    palette[:num_classes] = np.asarray(default_colours(num_classes), np.uint8)
    palette[num_classes] = (128, 128, 128)  # "no class" (unmatched regions)
    palette[IGNORE_INDEX] = 255
    if num_classes == 2:
        palette[1] = 255  # foreground white on black
    rows, cols = len(panels), len(titles)
    fig, axes = plt.subplots(
        rows, cols, figsize=(cols * tile / 100, rows * tile / 100 + 0.3), squeeze=False
    )
    for r, row in enumerate(panels):
        for c, panel in enumerate(row):
            ax = axes[r][c]
            if c == 0:
                shown = panel if panel.shape[-1] == 3 else panel[..., 0]
                ax.imshow(
                    shown if shown.dtype == np.uint8 else shown / max(int(shown.max()), 1),
                    cmap="gray" if shown.ndim == 2 else None,
                )
            else:
                ax.imshow(palette[np.clip(panel, 0, 255).astype(np.intp)])
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=8)
    fig.tight_layout(pad=0.2)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def run_compare(roots: list[str], methods_spec: str, out: str | Path, **kwargs) -> list[dict]:
    """Compare, then write ``out/compare.md``, ``out/compare.json`` and ``out/grid.png``."""
    methods = parse_methods(methods_spec)
    rows, panels, items, num_classes = compare(roots, methods, **kwargs)
    out = Path(out)
    save_grid(
        out / "grid.png", panels, ["image", "ground truth"] + [m.name for m in methods], num_classes
    )
    names = class_names(roots[0], num_classes)
    meta = {"data": roots, "images": len(items), "items": [i.name for i in items]}
    meta |= {"classes": [*names, "no class"], "rows": rows}
    atomic_write_bytes(out / "compare.json", json.dumps(meta, indent=2).encode())
    paired = "\n".join(paired_lines(rows))
    text = format_table(rows) + (f"\n\n{paired}" if paired else "")
    atomic_write_bytes(out / "compare.md", (text + "\n").encode())
    return rows
