"""Scoring predictions already made: a folder of masks or label images (a file per image, named
by its stem; soft masks, GeoJSON, a slide's windows) or a COCO results file, against the
data :func:`~pixelwise.evaluate.evaluate_checkpoint` would score, with the same metrics."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from pixelwise.config import TrainConfig
from pixelwise.constants import (
    IGNORE_INDEX,
    first_ten,
    one_line,
    parse_stems,
    unusable,
)
from pixelwise.data.encoding import BLACK_AND_WHITE, MaskEncoding
from pixelwise.data.io import (
    drawn_as_stored,
    laid_as_stored,
    list_images,
    page_name,
    read_alpha,
    read_mask,
)
from pixelwise.data.layouts import (
    evaluation_items,
    holds_instance_labels,
    read_dataset_info,
)
from pixelwise.data.write import holds_class_ids
from pixelwise.detection import evaluation_instances
from pixelwise.evaluate import image_rows, instances_for_reference, object_metrics, outside_ignored
from pixelwise.instances import (
    drop_small,
    semantic_to_instances,
)
from pixelwise.metrics import (
    ImageScores,
    overlaps,
)
from pixelwise.semantic import resolve_classes


def evaluate_predictions(
    predictions: str | Path,
    data: str | Path,
    val_stems: str | list[str] | None = None,
    object_class: int | None = None,
    min_size: int = 0,
    data_options: dict | None = None,
) -> dict:
    """The scores of masks some other run or tool predicted, a file per image named by its stem
    in the folder ``predictions`` (or in its ``masks/`` and ``instances/``, as `predict` and
    `segment` write them), against ``data`` (the images :func:`evaluate_checkpoint` would score).

    Class masks hold class ids 0..K-1 (as `predict` writes them) or the data's own stored values
    (e.g. 0/255), the data's classes as training reads them. For instance data (``instances/``
    label images), or with ``object_class``, the object scores are added: of instance label
    images (0 = background; those of ``instances/`` when there is one) as they are, of the class
    masks `predict` writes as `segment` makes objects of them (:func:`predicted_objects`). The
    pixel scores of label images for ``object_class`` of semantic data are those of that class
    against the rest (they hold no other class). COCO mask AP is not scored, as plain label
    images rank no object above another. Predicted objects under ``min_size`` pixels are
    dropped. ``data_options`` read the data's masks as training would (``class_names``,
    ``mask_values``, ``ignore_values``)."""
    root, stems = Path(data), parse_stems(val_stems)
    items, split = evaluation_items(root, stems)
    objects = bool(items) and holds_instance_labels(items[0])
    instances = "foreground" if objects else None
    cfg = TrainConfig(data=str(root), instances=instances, **(data_options or {}))
    cfg.check()
    info = read_dataset_info(root)
    ignore = info.ignored(cfg.ignore_values)
    names, values = resolve_classes(cfg, info, items, ignore)
    encoding = MaskEncoding(values, ignore, cfg.instances, cfg.soft_masks)
    folder = prediction_folder(Path(predictions), objects or object_class is not None)
    files = prediction_files(folder, items)
    head = {"split": split, "images": len(items), "predictions": str(folder)}
    if not objects and object_class is None:
        scores, failures = ImageScores(len(names)), []
        for item, path in zip(items, files):
            try:
                reference = item.read_mask()
                stored = read_prediction(path, reference.shape, len(names), names, item=item)
                target = encoding.apply(reference, len(names), item.mask)
                scores.add(predicted_ids(path, stored, encoding, len(names)), target)
            except ValueError as exc:  # scored no further: every bad file is named at the end
                failures.append(one_line(exc))
        if failures:
            raise unusable(failures, "prediction")
        return head | scores.summary(names) | {"per_image": image_rows(items, scores)}
    scores, pairs, names = predicted_object_scores(
        items, files, encoding, names, object_class, min_size
    )
    image_aps: list[float] = []
    objects = object_metrics(pairs, image_aps)
    rows = image_rows(items, scores, image_aps)
    return head | scores.summary(names) | {"objects": objects, "per_image": rows}


def predicted_object_scores(
    items: list, files: list[Path], encoding: MaskEncoding, names: list[str],
    object_class: int | None, min_size: int,
) -> tuple[ImageScores, list, list[str]]:  # fmt: skip
    """:func:`evaluate_predictions`' pixel scores and (reference, predicted) object pairs of
    instance data, or of ``object_class`` of semantic data, and the names of the classes scored
    (``object_class`` and the rest, when the predictions are label images of its objects)."""
    classes, semantic = len(names), encoding.instances is None
    label_images = semantic and not holds_class_ids(files[0])
    drawn = dict(names=names, objects=True, only=names[object_class] if semantic else None)
    if label_images:
        names = [f"not {names[object_class]}", names[object_class]]
    scores, pairs, failures = ImageScores(len(names)), [], []
    for item, path in zip(items, files):
        marked = holds_class_ids(path)
        try:
            if semantic and marked == label_images:
                raise ValueError(
                    f"{path}: a {'class mask' if marked else 'label image'} among "
                    f"{'label images' if marked else 'class masks'} ({files[0]}); score one "
                    "kind of prediction at a time"
                )
            reference = item.read_mask(instances=not semantic)
            stored = read_prediction(path, reference.shape[:2], classes, **drawn, item=item)
            target = encoding.apply(reference, classes, item.mask)
            labels = outside_ignored(
                predicted_objects(stored, marked, object_class, min_size), target == IGNORE_INDEX
            )
            ids = (
                None
                if label_images
                else predicted_ids(path, stored if marked else labels, encoding, classes)
            )
        except ValueError as exc:  # scored no further: every bad file is named at the end
            failures.append(one_line(exc))
            continue
        if not semantic:
            pairs.append(overlaps(reference, labels))
        else:
            pairs.append(overlaps(instances_for_reference(target, object_class), labels))
        if label_images:  # object_class against the rest
            target = np.where(target == IGNORE_INDEX, IGNORE_INDEX, target == object_class)
            scores.add((labels > 0).astype(np.int64), target)
        else:
            scores.add(ids, target)
    if failures:
        raise unusable(failures, "prediction")
    return scores, pairs, names


def predicted_objects(
    stored: np.ndarray, marked: bool, object_class: int | None, min_size: int
) -> np.ndarray:
    """The objects of a predicted mask as a label image: an instance label image (as `segment`
    writes them, or another tool) as it is; a class mask `predict` wrote (``marked``:
    :func:`~pixelwise.data.write.holds_class_ids`) as `segment` makes objects of one: the
    connected regions of ``object_class``, or for instance data its interiors (1) grown into
    their borders (2), or without borders split by a watershed. Objects under ``min_size``
    pixels are dropped."""
    if not marked:
        return drop_small(stored, min_size) if min_size else stored
    if object_class is not None:
        return semantic_to_instances(
            stored, interior_class=object_class, min_size=min_size, fill_holes=False
        )
    if stored.max(initial=0) >= 2:
        return semantic_to_instances(stored, interior_class=1, border_class=2, min_size=min_size)
    return semantic_to_instances(stored, "watershed", interior_class=1, min_size=min_size)


def prediction_folder(path: Path, objects: bool) -> Path:
    """Where the predicted masks are: ``path``, or the ``masks/`` (class masks) or
    ``instances/`` (objects) that `predict` and `segment` write under their output folder; for
    objects without ``instances/`` (a semantic model's run), its ``masks/``, whose foreground
    is scored as objects; for classes without ``masks/`` (a `segment` run), its ``instances/``
    (never its ``overlays/``)."""
    if not path.is_dir():
        raise ValueError(f"{path}: no such folder of predicted masks")
    inner = ("instances", "masks") if objects else ("masks", "instances")
    inner += ("geojson",)  # predict/segment --geojson's polygons, when no masks were kept
    return next((path / name for name in inner if (path / name).is_dir()), path)


def prediction_files(folder: Path, items: list) -> list[Path]:
    """Each item's predicted mask in ``folder`` (by file stem, in any image format; a folder
    without images: GeoJSON files, as QuPath exports objects); every item must have one, and
    only one."""
    files = list_images([folder]) or sorted(folder.rglob("*.geojson"))
    return file_per_item(files, folder, items, "prediction", "as the images")


def file_per_item(
    files: list[Path], folder: Path, items: list, what: str, naming: str
) -> list[Path]:
    """The file among ``files`` (from ``folder``) of each item: by file stem, the item's name or
    its image file's own (as `predict` names outputs: Cityscapes' ``X_leftImg8bit``, a Cell
    Tracking Challenge frame's ``t000``, a stack's page ``stack-003``). An item with none, a
    name with two files, or a file that two items would share is a one-line error (``what`` the
    files are, ``naming`` how to name them); windows of one slide share the slide's."""
    by_stem: dict[str, list[Path]] = {}
    for path in files:
        by_stem.setdefault(path.stem, []).append(path)
    chosen: dict[Path, str] = {}
    slides: dict[Path, Path] = {}  # a file that windows share: their slide
    found, missing = [], []
    for item in items:
        path = item_file(item, by_stem, what)
        found.append(path)
        if path is None:
            missing.append(item.name)
        elif getattr(item, "window", None) is not None and slides.get(path) == item.image:
            continue
        elif path in chosen:
            raise ValueError(
                f"{path}: the only {what} for both {chosen[path]} and {item.name}, images of "
                "one name in different folders; choose the images to score with --val-stems, "
                "or predict them into one output folder that keeps their folders"
            )
        else:
            chosen[path] = item.name
            if getattr(item, "window", None) is not None:
                slides[path] = item.image
    if missing:
        have = [item.name for item, path in zip(items, found) if path is not None]
        listed = (
            f" (the {len(have)} with one: --val-stems {','.join(have)})"
            if 0 < len(have) <= 30
            else ""
        )
        raise ValueError(
            f"{folder}: no {what} for {len(missing)} of the {len(items)} images to score "
            f"({first_ten(missing, 'images')}); name them {naming}, or choose the images "
            f"with --val-stems{listed}"
        )
    return found


def item_file(item, by_stem: dict[str, list[Path]], what: str) -> Path | None:
    """:func:`file_per_item`'s file of one item, None when there is none; of two files with its
    name, the one in a folder named as its image's (``01/t000.png`` for ``01/t000.tif``)."""
    page = getattr(item, "image_page", None)
    # a window of a slide: the slide's, whose prediction is read in the window
    own = item.image.stem if page is None else page_name(item.image.stem, page)
    for name in dict.fromkeys((item.name, own)):
        found = by_stem.get(name, [])
        if len(found) > 1:
            beside = [p for p in found if p.parent.name == item.image.parent.name]
            if len(beside) != 1:
                raise ValueError(f"{' and '.join(map(str, found))}: two {what}s of one image")
            found = beside
        if found:
            return found[0]
    return None


def slide_window(item, path: Path) -> tuple[int, int, int, int] | None:
    """The window of its slide that an item is, when its prediction ``path`` is the whole
    slide's (named as the slide, not as the window): where to read it."""
    window = getattr(item, "window", None)
    return window if window is not None and Path(path).stem != item.name else None


def read_prediction(
    path: Path, shape: tuple[int, int], classes: int, names: list[str] | None = None,
    objects: bool = False, only: str | None = None, item=None,
) -> np.ndarray:  # fmt: skip
    """A predicted mask's stored values; it must have its image's size (``shape``). A cut-out
    (a PNG, WebP or TIFF with transparency, as `remove-bg` writes it) gives class ids:
    foreground (1) where its alpha is at least 128, for data of two classes. A GeoJSON file is
    drawn at ``shape`` (:func:`geojson_prediction`, the data's class ``names``). For an ``item``
    that is a window of a slide, a file of the whole slide is read in that window
    (:func:`slide_window`)."""
    window = slide_window(item, path)
    if is_geojson(path):
        names = names or [f"class{k}" for k in range(classes)]  # as resolve_classes names them
        corner = (0, 0) if window is None else (window[2], window[0])
        return geojson_prediction(path, shape, names, objects, only, corner)
    if window is not None:
        return window_prediction(path, window)
    alpha = read_alpha(path)
    stored = None if alpha is None else (alpha >= 128).astype(np.uint8)
    if stored is not None and classes != 2:
        raise ValueError(
            f"{path}: a cut-out (its transparency is the foreground) scores data of background "
            f"and foreground, not {classes} classes"
        )
    stored = read_mask(path) if stored is None else stored
    if item is not None and drawn_as_stored(item.image, shape, stored.shape):
        stored = laid_as_stored(stored, item.image)  # predicted upright, annotated as stored
    if stored.shape != tuple(shape):
        cropped = alpha is not None and all(s <= t for s, t in zip(stored.shape, shape))
        raise ValueError(
            f"{path}: {stored.shape[1]} x {stored.shape[0]} pixels, its image {shape[1]} x {shape[0]}"
            + ("; a cut-out cropped to its subject (remove-bg --crop) is scored whole: cut out "
               "without --crop" if cropped else "")
        )  # fmt: skip
    return stored


def is_geojson(path: Path) -> bool:
    return Path(path).suffix.lower() == ".geojson"


def window_prediction(path: Path, window: tuple) -> np.ndarray:
    """Window (y0, y1, x0, x1) of a slide's predicted mask or labels (``predict``/``segment``'s
    tiled TIFF of it, read region by region; another file read whole)."""
    from pixelwise.data.io import is_tiff
    from pixelwise.data.slide import TiffRegions

    y0, y1, x0, x1 = window

    def within(height: int, width: int) -> None:
        if y1 > height or x1 > width:
            raise ValueError(
                f"{path}: {width} x {height} pixels, smaller than its slide (a window of it "
                f"reaches x {x1}, y {y1})"
            )

    if is_tiff(path):
        with TiffRegions(path, shown=False) as regions:
            within(*regions.shape)
            return regions.stored(y0, y1, x0, x1)
    stored = read_mask(path)
    within(*stored.shape[:2])
    return stored[y0:y1, x0:x1]


def geojson_prediction(
    path: Path, shape: tuple[int, int], names: list[str], objects: bool, only: str | None,
    corner: tuple[int, int] = (0, 0),
) -> np.ndarray:  # fmt: skip
    """A GeoJSON file of predicted regions or objects (`predict`/`segment --geojson`'s, QuPath's
    export) drawn at its image's size ``shape``, its Features in file order (a later one over
    an earlier): with ``objects``, a label image, each Feature one object (with ``only``, each
    of that class or unclassified); else class ids, each Feature its class's (by name among
    ``names``; an unclassified one, the foreground of data of two classes). ``corner``: (x, y)
    of the image's top left pixel in the file's coordinates (a window of a slide)."""
    from pixelwise.data.geojson import UNCLASSIFIED, cell_part
    from pixelwise.data.labelme import shifted
    from pixelwise.data.shapes import draw_shapes

    (h, w), (dx, dy) = shape, corner
    groups, boxes = geojson_groups(str(path), Path(path).stat().st_mtime_ns, cell_part())
    near = (boxes[:, 0] < dx + w) & (boxes[:, 2] > dx) & (boxes[:, 1] < dy + h) & (boxes[:, 3] > dy)
    out = np.zeros(shape, np.int64 if objects else np.uint8)
    count = 0
    for (group, label, parts), (x0, y0, x1, y1), seen in zip(groups, boxes, near):
        if objects and only is not None and label not in (only, UNCLASSIFIED):
            continue
        if objects:
            value = count + 1  # objects numbered as drawn
        elif label in names:
            value = names.index(label)
        elif label == UNCLASSIFIED and len(names) == 2:
            value = 1
        else:
            raise ValueError(
                f"{path}, feature {group}: class {label!r} is not one of the data's classes "
                f"({', '.join(names)})"
            )
        left, top = max(int(np.floor(x0)) - dx, 0), max(int(np.floor(y0)) - dy, 0)
        right, bottom = min(int(np.ceil(x1)) + 1 - dx, w), min(int(np.ceil(y1)) + 1 - dy, h)
        if seen and left < right and top < bottom:  # drawn in its box, when that meets the image
            local = tuple(shifted(part, left + dx, top + dy) for part in parts)
            drawn = draw_shapes(local, bottom - top, right - left) > 0
            if drawn.any():
                out[top:bottom, left:right][drawn] = value
                count += objects
    return out


@functools.lru_cache(maxsize=2)
def geojson_groups(path: str, stamp: int, cells: str) -> tuple[list[tuple], np.ndarray]:
    """The Features of a GeoJSON file with an area, each (number, class, shapes) as
    :func:`~pixelwise.data.labelme.outline` gives them, and their boxes (x0, y0, x1, y1), read
    once for the windows of a slide that share the file (``stamp``: its modification time;
    ``cells``: the outline of its cells read, :func:`~pixelwise.data.geojson.cell_part`). A
    region to ignore (a cell without the nucleus read) is no prediction: left out."""
    from pixelwise.data.geojson import read_geojson
    from pixelwise.data.labelme import IGNORE_LABEL, outline
    from pixelwise.data.shapes import extent

    groups: dict[int, tuple[str, list]] = {}
    for item in read_geojson(Path(path))["shapes"]:
        part = outline(item, f"{path}, feature {item['group_id']}")
        if part is not None and item["label"] != IGNORE_LABEL:
            groups.setdefault(item["group_id"], (item["label"], []))[1].append(part)
    found = [(group, label, parts) for group, (label, parts) in groups.items()]
    boxes = [np.array([extent(*part) for part in parts]) for _, _, parts in found]
    box = [(b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()) for b in boxes]
    return found, np.array(box, float).reshape(-1, 4)


def predicted_ids(
    path: Path, stored: np.ndarray, encoding: MaskEncoding, classes: int
) -> np.ndarray:
    """Class ids of a predicted mask stored as the data's masks are (its values among the
    data's stored values) or as class ids 0..classes-1 (as `predict` writes them, marked so:
    :func:`~pixelwise.data.write.holds_class_ids`); for data of objects (``encoding.instances``),
    a label image's objects are the foreground; with soft masks (``encoding.soft``) any values
    but class ids, each the class of the nearest data value. Values that are both are read as
    the data's, unless the file is marked or some are values the data leaves unscored (no
    prediction gives a pixel no class). For two classes, a black-and-white mask (0 and 255, as
    most tools write a binary mask) is background and foreground, whatever the data stores."""
    if encoding.instances is not None:
        return (stored > 0).astype(np.int64)
    found = set(np.unique(stored).tolist())
    class_ids = found <= set(range(classes))
    if class_ids and (holds_class_ids(path) or is_geojson(path)):
        return stored.astype(np.int64)
    if encoding.soft and encoding.values is not None and not found <= set(range(classes)):
        return encoding.apply(stored, classes, path)  # soft as the data's: the nearest value's
    if encoding.values is not None and found <= set(encoding.values) | set(encoding.ignore_values):
        ignored = sorted(found & set(encoding.ignore_values))
        if not ignored:
            return encoding.apply(stored, classes, path)
        if not class_ids:
            raise ValueError(
                f"{path}: values {ignored[:10]} are ones the data's masks leave unscored, not "
                "classes; a predicted mask gives every pixel a class"
            )
    if class_ids:
        return stored.astype(np.int64)
    grey = BLACK_AND_WHITE[0]  # another tool's binary mask: 0 and 255
    if classes == 2 and found <= set(grey):
        return (stored == grey[1]).astype(np.int64)
    hint = ""
    if Path(path).suffix.lower() in (".jpg", ".jpeg"):
        hint = " (a JPEG's lossy compression changes the values at edges: save masks as PNG)"
    elif classes == 2:
        hint = (
            " (soft alpha, as remove-bg --mask-only writes it: --soft-masks reads each pixel as "
            "the nearer of the mask values)"
        )
    raise ValueError(
        f"{path}: values {sorted(found)[:10]} are neither class ids 0..{classes - 1} nor the "
        f"data's mask values ({', '.join(map(str, encoding.values or ())) or 'class ids'})" + hint
    )


def evaluate_results(
    results_file: str | Path,
    data: str | Path,
    val_stems: str | list[str] | None = None,
    score_threshold: float = 0.5,
) -> dict:
    """The scores :func:`evaluate_checkpoint` gives an instance model, for detections another
    tool wrote as a COCO results file (a list of ``image_id``, ``category_id``, ``score``,
    ``bbox`` and/or ``segmentation``, as Detectron2 or MMDetection write them) on a
    COCO dataset whose image and category ids they use: COCO box (and mask) AP of every result,
    and the DSB2018 mean AP, PQ and AJI of those scoring at least ``score_threshold``.
    ``results_file`` may also be a folder of such files, one per image named by its stem (as
    `predict` writes them for an instance model, :func:`results_by_stem`), for any instance
    data."""
    from pixelwise.data.coco import item_target
    from pixelwise.detection import detection_scores, reference_labels, results_labels

    path = Path(results_file)
    items, cats, spec = evaluation_instances(data, parse_stems(val_stems))
    if path.is_dir():
        results = results_by_stem(path, items)
    elif spec is None:
        raise ValueError(
            f"{path}: COCO results name images by the ids of a COCO file; {data} has none"
        )
    else:
        results = read_results(path)
        known = {im["id"] for im in spec["images"]}
        strangers = sorted({r["image_id"] for r in results} - known)
        if strangers:
            raise ValueError(f"{path}: image ids {strangers[:10]} are not in {data}'s COCO file")
    ids = {i.image_id for i in items}
    unknown = sorted({r["category_id"] for r in results} - set(cats.ids))
    if unknown:
        raise ValueError(f"{path}: category ids {unknown[:10]} are not {data}'s ({list(cats.ids)})")
    results = [r for r in results if r["image_id"] in ids]
    by_image: dict[int, list[dict]] = {}
    for r in results:
        by_image.setdefault(r["image_id"], []).append(r)

    def pairs_of(index: int, item) -> tuple[np.ndarray, np.ndarray]:
        reference = reference_labels(item_target(item, cats)["masks"])
        return reference, results_labels(by_image.get(item.image_id, []), item, score_threshold)

    scores = detection_scores(items, cats, spec, pairs_of, results)
    return {
        "split": f"{data}" + (f" ({len(items)} listed stems)" if val_stems else ""),
        "images": len(items),
        "results": str(path),
        "detection": scores,
    }


def results_folder(path: Path) -> Path | None:
    """The folder of per-image COCO results that `predict` writes for an instance model
    (``OUT/coco/<image>.json``) when ``path`` is that folder or ``OUT``; None for anything else
    (masks, label images)."""
    folder = path / "coco" if (path / "coco").is_dir() else path
    if not folder.is_dir() or list_images([folder]):
        return None
    return folder if any(folder.rglob("*.json")) else None


def results_by_stem(folder: Path, items: list) -> list[dict]:
    """The detections of a folder of per-image COCO results files (``<image stem>.json``, as
    `predict` writes them, whatever image ids they hold), given the ids of ``items``' images;
    every item must have its file."""
    files = file_per_item(
        sorted(folder.rglob("*.json")), folder, items, "results file", "<image stem>.json"
    )
    return [
        r | {"image_id": item.image_id}
        for item, path in zip(items, files)
        for r in read_results(path)
    ]


def read_results(path: Path) -> list[dict]:
    """A COCO results file: a JSON list of detections, each with ``image_id``, ``category_id``,
    ``score`` and a ``bbox`` or ``segmentation``."""
    import json

    try:
        results = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a COCO results file ({type(exc).__name__}: {exc})") from None
    needed = ("image_id", "category_id", "score")
    if not isinstance(results, list) or not all(
        isinstance(r, dict) and all(k in r for k in needed) and ("bbox" in r or "segmentation" in r)
        for r in results
    ):
        raise ValueError(
            f"{path}: not a COCO results file (a list of detections with image_id, category_id, "
            "score and bbox or segmentation)"
        )
    return results
