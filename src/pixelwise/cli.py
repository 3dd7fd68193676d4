"""Command line: ``pixelwise train | predict | evaluate | segment | compare | remove-bg | adapt | serve |
export | models | demo``. Subcommands only; the work happens in the library. The options come
from :mod:`pixelwise.config`; heavy imports wait until a command runs, so ``pixelwise --version``
and ``--help`` answer fast."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

from pixelwise import __version__
from pixelwise.allocator import allocator, tune_allocator
from pixelwise.config import (
    MODEL_HELP,
    Opt,
    TrainConfig,
    add_shared,
    bounded,
    box_numbers,
    default_out,
    field_options,
    from_args,
    str_list,
    value_list,
)
from pixelwise.constants import (
    CUTOUT_FORMATS,
    CUTOUT_TYPES,
    MIN_ADAPT_PHOTOS,
    counted,
    did_you_mean,
    first_ten,
    one_line,
    parse_range,
    parse_stems,
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


COMMANDS: dict[str, tuple[str, str, list]] = {
    # name: (help, description, options: Opt or the name of a shared option)
    "train": (
        "train a model on an image/mask dataset or COCO instances",
        "Train on DATA (DATA/images + DATA/masks or Pascal VOC's JPEGImages + SegmentationClass, split "
        "by DATA/train[/val]/... or VOC's ImageSets lists; TIFF stacks, Cell Tracking Challenge, "
        "Cityscapes, a COCO instances JSON (Mask R-CNN, or any model: category k is class k), a YOLO "
        "data.yaml, LabelMe JSON files, GeoJSON files (QuPath; cells by their outline, or their nuclei with PIXELWISE_CELL_PART=nucleus; on a whole-slide scan, the windows around its regions, grown by PIXELWISE_WINDOW_MARGIN pixels of unscored context), or a CSV of image,mask[,split] pairs; 'pixelwise inspect "
        "DATA' shows how it is read). Writes last.pt, best.pt, metrics.csv, curve.png and "
        "overlays/ to --out.",
        [],
    ),
    "inspect": (
        "what a dataset holds, as train would read it",
        "Reads DATA as 'pixelwise train' would, with the same data options, and prints where the "
        "training and validation images come from, their sizes, each class's stored value and "
        "share of the pixels in each split, and warnings (a class no validation image shows, "
        "images smaller than --crop, mostly ignored pixels). Every mask is read once; nothing "
        "is written.",
        [],
    ),
    "predict": (
        "predict masks and overlays for images or folders",
        "Writes OUT/masks/<name>.png (class ids, palette PNG; black and white for a model trained on black-and-white masks) and OUT/overlays/<name>.png; instance models also "
        "OUT/instances (16-bit labels) and OUT/coco (COCO results); a video file (named or in a folder; semantic models, the "
        "[video] extra) becomes OUT/overlays/<name>.mp4; each page of a multi-page TIFF (an EM stack) is "
        "an image of its own, <stack>-000.png, <stack>-001.png, ... A TIFF over the pixel limit (a "
        "whole-slide scan, .svs too) is read region by region into OUT/masks/<name>.tif (a tiled "
        "BigTIFF pyramid, OME-TIFF as QuPath writes it; --geojson, --probabilities and --scale work on it). Bad files are skipped, listed at the end, and make the exit status 1.",
        [
            Opt(
                ("paths",),
                f"{MODEL_HELP}, then image files and/or folders (searched recursively; folders an earlier run wrote "
                "its outputs to, marked .pixelwise-output, and a dataset's masks beside its images "
                "are left out); with --method only inputs",
                nargs="+",
                metavar="CHECKPOINT INPUT",
            ),
            Opt(
                ("--method",),
                "a classical method instead of a checkpoint (otsu, kmeans, graphcut or grabcut: OpenCV GrabCut, felzenszwalb, "
                "slic, watershed); masks then hold region ids",
            ),
            default_out("predict"),
            Opt(
                ("--probabilities",),
                "semantic models: also write OUT/probabilities/<name>.tif, one 8-bit page per "
                "class (round(255 p))",
                action="store_true",
            ),
            "labelme",
            "geojson",
            "min_object_size",
            "score_threshold",
            "precision",
            "tta",
            "input_range",
            "channel",
            "tile",
            "overlap",
            "scale",
            "tissue_only",
            "runtime",
            "skip_existing",
            "progress",
        ],
    ),
    "evaluate": (
        "score a checkpoint, or masks predicted by any tool, on a labelled dataset",
        "Pixel accuracy, class accuracy, per-class, mean and frequency weighted IoU and Dice from one "
        "confusion matrix over the whole set, and "
        "each class's boundary F1 (BF) and 95 % Hausdorff distance (HD95, pixels) image by image (instance models: COCO AP and DSB2018 mean AP). Evaluates --val-stems if given, else the validation split (DATA/val, "
        "VOC's val.txt, ...), else (on the data the checkpoint was trained on) the validation images "
        "its run drew, else the training split, else DATA/{images,masks}. Given a folder instead of a "
        "checkpoint, scores the masks in it (one per image, by file stem: the image's name or its file's; "
        "class ids, as predict's masks are marked, or the data's mask values; for instance data or "
        "--object-class, label images, or predict's class masks made into objects as segment would; "
        "remove-bg's cut-outs by their alpha; GeoJSON files, as --geojson writes them or QuPath exports "
        "objects, drawn: regions by class name, each Feature an object), e.g. predict's or another "
        "tool's output; predict's output of an instance model (OUT or OUT/coco: a COCO results file per "
        "image) is scored as that model's detections would be.",
        [
            Opt(
                ("checkpoint",),
                f"{MODEL_HELP}, a folder of predicted masks (predict/segment's output folder works) "
                "or a COCO results .json of detections (on COCO data)",
            ),
            Opt(("data",), "dataset root folder, COCO JSON or CSV of image,mask pairs"),
            Opt(
                ("--val-stems",),
                "evaluate only these stems ('25-29' or '25,26')",
                type=parse_stems,
                metavar="STEMS",
            ),
            Opt(
                ("--json",),
                "where to write the metrics JSON, with each image's scores (default: "
                "evaluation.json beside the checkpoint)",
            ),
            "object_class",
            "min_object_size",
            "instance_thresholds",
            "precision",
            "tta",
            "input_range",
            "channel",
            "scale",
            "runtime",
            "device",
            "progress",
        ],
    ),
    "segment": (
        "instance label images (one id per object) and overlays",
        "Writes OUT/instances/<name>.png (16-bit, 0 = background, 1..N objects; a 32-bit .tif beyond 65535 "
        "objects) and OUT/overlays/<name>.png, for "
        "a model trained with --instances, an instance model, or --object-class. The model may also "
        "come first, as in predict: 'pixelwise segment nuclei cells/'. A multi-page TIFF is segmented "
        "page by page, as by predict. A TIFF over the pixel limit (a whole-slide scan) is segmented "
        "region by region, its objects made in blocks of 2048 pixels, into OUT/instances/<name>.tif "
        "(32-bit, tiled, an OME-TIFF pyramid); --measure, --geojson and --expand work on it, --coco and --labelme do not.",
        [
            "inputs",
            Opt(("--checkpoint",), f"{MODEL_HELP} (default nuclei)", "nuclei", old=("--model",)),
            default_out("segment"),
            "labelme",
            "geojson",
            Opt(
                ("--coco",),
                "also write one COCO instances file for the whole batch: every object as a "
                "compressed-RLE mask with its box and area, the images by path relative to the "
                "file's folder (its images/ folder, when there is one), to correct in CVAT or "
                "FiftyOne, score with pycocotools, or train on: pixelwise train FILE",
                metavar="FILE",
            ),
            Opt(
                ("--measure",),
                "also write one CSV for the whole batch, a row per object: its image, number "
                "and class, area, centroid, box, equivalent diameter, perimeter, eccentricity, "
                "solidity and mean intensity (per colour channel for colour images)",
                metavar="FILE",
            ),
            Opt(
                ("--expand",),
                "also each object's cell: the object grown by up to PIXELS pixels (at most "
                "1000) into the background, never into another (QuPath's and StarDist's cell expansion), "
                "written to OUT/cells/<name>.png with the objects' numbers; --measure then also "
                "measures each cell and its cytoplasm (the cell without its object) and "
                "--geojson writes QuPath cells (the object as the cell's nucleus)",
                type=int,
                default=0,
                metavar="PIXELS",
            ),
            Opt(
                ("--stains",),
                "with --measure, on brightfield RGB images: also each stain's mean optical "
                "density by colour deconvolution (mean_hematoxylin, mean_eosin, mean_dab; for "
                "the cells and cytoplasms too), what an immunohistochemistry score thresholds",
                action="store_true",
            ),
            Opt(
                ("--stain-vectors",),
                "with --stains: the stains' own optical densities in place of Ruifrok and "
                "Johnston's, e.g. 'hematoxylin=0.65 0.70 0.29; dab=0.27 0.57 0.78' (QuPath's "
                "estimated values, or what pixelwise stains IMAGE estimates)",
                metavar="STAIN=R G B;...",
            ),
            Opt(
                ("--positive",),
                "with --measure: grade each object by one of its measurements, as QuPath's "
                "positive cell detection does: COLUMN:T, Negative under T and Positive from T "
                "on, or COLUMN:T1,T2,T3, Negative, 1+, 2+, 3+ (e.g. mean_dab:0.2 with --stains, "
                "cell_mean_dab:0.15,0.3,0.6 with --expand too, mean_channel_1:40 with --channel "
                "0); adds a grade column, colours the overlays and GeoJSON classes by grade and "
                "writes each image's positive share (and H-score) to OUT/grades.csv",
                metavar="COLUMN:T",
            ),
            Opt(
                ("--pixel-size",),
                "with --measure: the side of a pixel in micrometres, for every image (images "
                "whose TIFF records it, OME-TIFF, Aperio SVS, ImageJ or a resolution per "
                "centimetre, are measured by their own without it): the rows then also give "
                "area_um2, centroid_x_um, centroid_y_um, equivalent_diameter_um and "
                "perimeter_um (cell_area_um2, ... with --expand)",
                type=float,
                metavar="UM",
            ),
            "min_object_size",
            "object_class",
            "score_threshold",
            "instance_thresholds",
            "precision",
            "tta",
            "input_range",
            "channel",
            "tile",
            "overlap",
            "scale",
            "tissue_only",
            "runtime",
            "skip_existing",
            "progress",
        ],
    ),
    "remove-bg": (
        "cut out the foreground of photos (transparent PNGs) and videos",
        "Writes OUT/<name>.png (RGBA; folders keep their inner structure; --format webp or jpg: "
        "those), or OUT itself when it ends in .png, .webp or .jpg and one photo is given (- as the input: standard input; -o -: standard output). A video file (.mp4, .mov, .m4v, .mkv, .webm, .avi, named "
        "or found in a folder; the [video] extra) is cut out frame by frame into OUT/<name>.webm "
        "(VP9 with alpha), or as -o "
        "names it for one video: .webm, .mov (PNG frames) or .mp4 (with --background or "
        "--mask-only). A photo with transparency keeps it: what was transparent stays so, and the "
        "cut looks inside the rest. Bad files are skipped, listed at the end, and make the exit "
        "status 1.",
        [
            "inputs",
            "out_cutouts",
            "checkpoint_option",
            "box_checkpoint",
            "method",
            Opt(
                ("--matting",),
                "refine edges by closed-form alpha matting (slower)",
                action="store_true",
            ),
            Opt(("--mask-only",), "write the alpha mask (greyscale) instead", action="store_true"),
            Opt(
                ("--background",),
                "composite onto a colour (#rrggbb or a name such as white) or an image file "
                "instead of transparency",
            ),
            Opt(
                ("--model-size",),
                "longer side the network sees, 32 to 4096 (default 320)",
                320,
                type=bounded(int, 32, 4096),
            ),
            Opt(
                ("--format",),
                "photos' cut-outs as png (default; lossless), webp (colours lossy, alpha exact; "
                "several times smaller) or jpg (no transparency: onto white unless --background); "
                "default: -o's suffix for one photo, else png",
                choices=tuple(CUTOUT_TYPES),
            ),
            "skip_existing",
            Opt(
                ("--box",),
                "one photo: x0,y0,x1,y1 around the object, in pixels (graph cut inside it; everything "
                "outside is background)",
                type=box_numbers,
                metavar="X0,Y0,X1,Y1",
            ),
            Opt(
                ("--strokes",),
                'one photo: a JSON file {"foreground": [{"points": [[x, y], ...], "radius": r}], '
                '"background": [...]} of pixels to keep and to remove (hard constraints of the graph cut)',
                metavar="JSON",
            ),
            Opt(
                ("--boxes",),
                'folders: a JSON file {"name.jpg": [x0, y0, x1, y1], ...} keyed by the path inside the '
                "folder given (or the file name; either with or without its suffix)",
                metavar="JSON",
            ),
            "runtime",
            "progress",
        ],
    ),
    "adapt": (
        "adapt the cut-out model to your photos, no masks needed (self-training)",
        "Cuts out every photo with the model (as remove-bg does), takes each cut as that photo's mask and "
        "fine-tunes the model on them (about 4 minutes for 200 photos of 512 px on 2 cores, longer for "
        "larger ones). Writes OUT/data (the photos and their masks), OUT/last.pt (the adapted model) and "
        "train's files. It helps where the cut-out is already roughly right on these photos and can hurt "
        "where it is mostly wrong (docs/results.md (i)): look at a few cut-outs first. Bad files are "
        "skipped and listed.",
        [
            "inputs",
            "out",
            "checkpoint_option",
            "box_checkpoint",
            Opt(("--epochs",), "default 8", 8, type=bounded(int, 1)),
            Opt(("--epoch-size",), "samples per epoch (default 400)", 400, type=bounded(int, 1)),
            Opt(
                ("--crop",),
                "training crop (default 224; 0: whole photos)",
                224,
                type=bounded(int, 0),
            ),
            Opt(
                ("--lr",),
                "peak learning rate (default 1e-3)",
                1e-3,
                type=bounded(float, 0, 10, True),
            ),
            Opt(("--device",), "auto, cpu, cuda, ... (default auto)", "auto"),
            Opt(
                ("--sample",),
                f"label and fine-tune on a random sample of this many photos (at least "
                f"{MIN_ADAPT_PHOTOS}; default: all), quicker on a large collection",
                type=bounded(int, MIN_ADAPT_PHOTOS),
            ),
            "progress",
        ],
    ),
    "serve": (
        "HTTP API and web page for background removal (FastAPI)",
        "POST /api/remove-background (multipart 'file'; box and strokes optional) returns a PNG (format=webp "
        "or jpg: those); POST "
        "/api/predict the served model's class-id mask (output=objects: instance labels; output=coco: "
        "COCO annotations); GET / is a web page; GET /docs the OpenAPI description. Binds 127.0.0.1 unless told otherwise. Limits: uploads "
        "(--max-upload-mb), decoded pixels (--max-megapixels), matting (--max-matting-megapixels): 413 beyond; "
        "requests beyond --threads + --queue: 503; Host must be a loopback name, --host or --allow-host (400) and "
        "a POST's Origin one of those (403).",
        [
            Opt(("--host",), "default 127.0.0.1", "127.0.0.1"),
            Opt(("--port",), "default 8000", 8000, type=bounded(int, 1, 65535)),
            "checkpoint_option",
            "box_checkpoint",
            "method",
            Opt(
                ("--max-upload-mb",),
                "larger uploads get 413, checked while the body streams in (default 20)",
                20.0,
                type=bounded(float, 0, above=True),
            ),
            Opt(
                ("--max-megapixels",),
                "larger images get 413, refused from their header before decoding (default 40)",
                40.0,
                type=bounded(float, 0, above=True),
            ),
            Opt(
                ("--max-matting-megapixels",),
                "matting costs about 600 MB per megapixel: larger images with matting get 413 "
                "(default 2; 0: matting refused)",
                2.0,
                type=bounded(float, 0),
            ),
            Opt(
                ("--threads",),
                "requests processed at once (default 2)",
                2,
                type=bounded(int, 1),
                old=("--workers",),
            ),
            Opt(
                ("--queue",),
                "requests waiting beyond those; more get 503 at once (default 8)",
                8,
                type=bounded(int, 0),
            ),
            Opt(
                ("--allow-host",),
                "also accept this host name in Host and Origin (repeatable; loopback names and --host "
                "are always accepted)",
                action="append",
                dest="allow_host",
            ),
            "runtime",
        ],
    ),
    "compare": (
        "score classical methods and checkpoints side by side",
        "One table (mean IoU, Dice, pixel accuracy, seconds per image) and one figure grid (image | truth | each "
        "method) written to --out. Classical methods' regions are matched to classes with the ground truth: the "
        "best foreground region set for 2 classes, an optimal one-to-one (Hungarian) matching otherwise.",
        [
            Opt(("data",), "dataset root folder(s); their images are pooled", nargs="+"),
            Opt(
                ("--methods",),
                "comma-separated: classical names, NAME:CHECKPOINT and NAME:FOLDER (masks "
                "predicted beforehand, one per image by stem, e.g. by another tool), e.g. "
                "otsu,kmeans,graphcut,unet:runs/u/best.pt,cellpose:out/masks",
                required=True,
            ),
            default_out("compare"),
            Opt(
                ("--mask-values",),
                "stored mask value of class 0,1,... (e.g. 0,255 or '#000000,#ff0000')",
                type=value_list,
            ),
            Opt(
                ("--ignore-values",),
                "stored mask values to leave unscored (default: classes.json's void id; 255 "
                "is always left out)",
                type=value_list,
            ),
            Opt(
                ("--soft-masks",),
                "masks with soft edges (anti-aliased, resized, alpha mattes): each pixel takes "
                "the class of the nearest --mask-values value (default 0,255)",
                action="store_true",
            ),
            Opt(
                ("--num-classes",),
                "default: from --mask-values, else the first checkpoint, else 2",
                type=bounded(int, 2),
            ),
            Opt(
                ("--val-stems",),
                "score only these stems of each dataset",
                type=parse_stems,
                metavar="STEMS",
            ),
            Opt(("--sample",), "a seeded random sample of this many images", type=bounded(int, 1)),
            Opt(("--seed",), "default 0", 0, type=bounded(int, 0)),
            Opt(
                ("--grid",), "rows (images) in the figure grid (default 4)", 4, type=bounded(int, 1)
            ),
            "progress",
        ],
    ),
    "export": (
        "export a checkpoint to ONNX (dynamic height and width)",
        "Writes an ONNX graph (input 'image' N x C x H x W float32, output 'logits') whose metadata carries "
        "classes, colours and normalisation: 'pixelwise predict model.onnx ...' runs it on ONNX Runtime. Checks "
        "it against PyTorch first.",
        [
            Opt(("checkpoint",), "a .pt file or a bundled model name"),
            Opt(("--onnx",), "output .onnx path", required=True),
            Opt(
                ("--int8",),
                "quantise to int8 (ONNX Runtime static quantisation) calibrated on the validation images "
                "of DATA; the accuracy gate (mean IoU drop <= 0.005 there) is checked and recorded in "
                "the file's metadata",
                metavar="DATA",
            ),
            Opt(
                ("--val-stems",),
                "with --int8: which images of DATA",
                type=parse_stems,
                metavar="STEMS",
            ),
        ],
    ),
    "calibrate": (
        "calibrate a checkpoint for int8 inference on its validation images",
        "Quantises the network to int8 (ONNX Runtime static quantisation) with activation ranges "
        "from the validation images of DATA, and checks the accuracy gate there (mean IoU drop <= "
        "0.005 against fp32). When it passes, the int8 graph and the gate are stored in the "
        "checkpoint (or in --out), and the default path (--precision auto) runs it wherever this "
        "machine measured int8 fastest ('pixelwise info'); exit status 1 when it fails, the "
        "checkpoint unchanged.",
        [
            Opt(("checkpoint",), "a .pt file"),
            Opt(("data",), "the dataset whose validation images calibrate and gate it"),
            Opt(
                ("--val-stems",),
                "which images of DATA (default: the training run's validation images when DATA "
                "holds them, as evaluate picks them; else DATA's validation split)",
                type=parse_stems,
                metavar="STEMS",
            ),
            Opt(("--out",), "write the calibrated checkpoint here (default: in place)"),
        ],
    ),
    "stains": (
        "estimate the stain vectors of brightfield images (for segment --stain-vectors)",
        "Estimates the optical density vectors of the two main stains of RGB brightfield images, "
        "taken together, by Macenko et al.'s method (2009): hematoxylin and eosin on an H&E "
        "image, hematoxylin and DAB on an IHC image. Prints them and the --stain-vectors option "
        "that makes segment --stains measure with them. Estimate once on images representative "
        "of a batch and reuse the option for the whole batch, so that --positive's thresholds "
        "mean the same on every image.",
        [
            Opt(
                ("inputs",),
                "RGB images or folders of them (16 megapixels in all at most: every n-th pixel of "
                "larger sets; of a slide over the pixel limit, a grid of its pixels)",
                nargs="+",
            ),
        ],
    ),
    "convert": (
        "a Kaggle run-length CSV to a COCO instances file (to train on, inspect, evaluate), and back",
        "Reads a CSV of Kaggle segmentation competitions (Data Science Bowl 2018, Airbus ships, "
        "Carvana, Severstal, Sartorius...): a row per object, an image id column (ImageId, img, "
        "id, ...), a run-length column (EncodedPixels, rle_mask, annotation, ...: 'start length' "
        "pairs, starts from 1) and optionally a class column (ClassId). Writes a COCO instances "
        "file that 'pixelwise train FILE.json' trains on (category k is class k; --instances or "
        "--model mask_rcnn for the objects) and CVAT or FiftyOne open. Image ids are looked up by "
        "file name or stem under --images. Given a COCO instances file (such as segment --coco "
        "writes), writes it as such a CSV, a submission: ImageId,EncodedPixels a row per object "
        "(and ClassId, the category id, for more than one category), one row with an empty "
        "run-length for an image without objects. Needs pycocotools.",
        [
            Opt(
                ("source",), "the run-length CSV, or a COCO instances file (.json) to write as one"
            ),
            Opt(
                ("--images",),
                "CSV to COCO: the folder holding the images, searched recursively (default: the "
                "CSV's folder)",
            ),
            Opt(
                ("-o", "--out"),
                "the file to write (default: SOURCE's name, .json for a CSV, .csv for a COCO file)",
            ),
            Opt(
                ("--order",),
                "how pixels are numbered: columns (top to bottom, then left to right: most "
                "competitions; default) or rows (left to right, then down: Sartorius, HuBMAP)",
                "columns",
                choices=("columns", "rows"),
            ),
            Opt(
                ("--classes",),
                "CSV to COCO: class names, comma-separated, in the order of the class column's "
                "values (default: class1, class2, ..., or 'object' without a class column)",
                type=str_list,
            ),
            Opt(
                ("--image-ids",),
                "COCO to CSV: each image's file name without its suffix (stem: Data Science Bowl "
                "2018, Sartorius; default) or with it (name: Airbus, Severstal)",
                "stem",
                choices=("stem", "name"),
            ),
        ],
    ),
    "models": ("list the available architectures", "", []),
    "info": (
        "this machine: CPU, flags, versions and the execution paths measured fastest; or a model",
        "Prints the CPU model and the flags that decide the fast paths, the library versions, and the "
        "probe's timings (measured once per machine and cached; see pixelwise.runtime). With MODEL: "
        "what that checkpoint, .onnx file or bundled model is (architecture, classes and their mask "
        "values, input normalisation, its training run and options, int8 calibration).",
        [
            Opt(
                ("model",),
                "a .pt or .onnx file or a bundled model name; or an image: its size, layout, "
                "pixel size and how predict reads it",
                nargs="?",
            ),
            Opt(("--probe",), "measure again now (a few seconds)", action="store_true"),
        ],
    ),
    "demo": (
        "train on generated shapes, then predict and evaluate (about a minute)",
        "",
        [
            default_out("demo"),
            Opt(
                ("--remove-bg",),
                "instead: cut out scikit-image's sample photos with the bundled foreground model",
                action="store_true",
            ),
            Opt(
                ("--checkpoint",),
                "--remove-bg: a checkpoint instead of the bundled model",
                old=("--model",),
            ),
            Opt(("--epochs",), "default 8", 8, type=bounded(int, 1)),
        ],
    ),
}


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


# how the data's masks are read
MASK_OPTIONS = ("class_names", "mask_values", "ignore_values", "soft_masks")
INSPECT_OPTIONS = (
    "data",
    *MASK_OPTIONS,
    "instances",
    "val_stems",
    "val_fraction",
    "seed",
    "crop",
    "scale",
    "progress",
)


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

    from pixelwise.data.io import TIFF_SUFFIXES, atomic_save, read_mask

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
    from pixelwise.batch import predict_files, run_sharded
    from pixelwise.checkpoint import load_for_command
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
    from pixelwise.batch import (
        check_output_file,
        coco_names,
        run_sharded,
        segment_files,
        write_coco,
    )
    from pixelwise.checkpoint import load_for_command
    from pixelwise.data.io import atomic_write_bytes
    from pixelwise.instances import check_object_class, with_thresholds
    from pixelwise.measure import Grading, measurements_csv

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
    from pixelwise.data.io import atomic_write_bytes
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
    from pixelwise.evaluate import (
        evaluate_checkpoint,
        evaluate_predictions,
        evaluate_results,
        results_folder,
    )

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
    from pixelwise.data.io import atomic_write_bytes
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
        d = {k: "-" if v is None else f"{v:.4f}" for k, v in summary["detection"].items()}
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
    from pixelwise.batch import report_failures, run_batch
    from pixelwise.classical import get_method
    from pixelwise.data.io import read_image, save_mask

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


def cmd_remove_bg(args: argparse.Namespace) -> int:
    from pixelwise.cutout import background_of, box_helper, get_model
    from pixelwise.video import split_videos

    background = background_of(args.background) if args.background else None
    out = Path(args.out)
    args.format = cutout_format(args, out)
    streams = STREAM in args.inputs or args.out == STREAM
    videos, photos = ([], args.inputs) if streams else split_videos(args.inputs, out)
    if videos and (args.box or args.strokes or args.boxes):
        raise ValueError("--box, --strokes and --boxes are for photos, not videos")
    model = get_model(args.checkpoint, args.runtime) if args.method != "grabcut" else None
    box_model = box_helper(args.checkpoint, args.box_checkpoint) if model is not None else None

    def cut(image, **hints):
        return remove_background_with(args, image, model, box_model, background, **hints)

    if streams:
        return remove_bg_stream(args, cut)
    status = remove_bg_videos(args, videos, out, cut, one=not photos) if videos else 0
    return max(status, remove_bg_photos(args, photos, out, cut) if photos else 0)


def cutout_format(args: argparse.Namespace, out: Path) -> str:
    """The photos' cut-out format: --format, else -o's suffix when it names one file (.png,
    .webp, .jpg), else png; another image suffix, a clash or --mask-only as anything but PNG is
    refused (ValueError)."""
    from pixelwise.data.io import IMAGE_SUFFIXES

    suffix = out.suffix.lower() if args.out != STREAM and not out.is_dir() else ""
    named = CUTOUT_FORMATS.get(suffix)
    if suffix in IMAGE_SUFFIXES and named is None:
        raise ValueError(  # "-o cut.tif" would otherwise become a folder named cut.tif
            f"-o {out}: cut-outs are written as PNG, WebP or JPEG; name one photo's cut-out "
            "*.png, *.webp or *.jpg, or give a folder"
        )
    if named and args.format and args.format != named:
        raise ValueError(f"-o {out} names a {named} file; --format {args.format} says otherwise")
    fmt = args.format or named or "png"
    if args.mask_only and fmt != "png":
        raise ValueError(f"--mask-only writes masks as PNG (lossless), not {fmt}")
    return fmt


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
        **hints,
    )


# remove-bg's name for standard input (as the input) and standard output (as -o)
STREAM = "-"


def remove_bg_stream(args: argparse.Namespace, cut) -> int:
    """remove-bg on one photo through the standard streams, for pipelines: ``-`` as the input
    reads the photo from standard input; ``-o -`` writes its cut-out (PNG, or as --format says)
    to standard output, and nothing else goes there."""
    from pixelwise.cutout import cutout_bytes, kept_nothing
    from pixelwise.data.io import atomic_write_bytes, open_image_bytes
    from pixelwise.video import is_video

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
            ".webp or .jpg), or -o - for standard output"
        )
    if args.out == STREAM and sys.stdout.isatty():
        raise ValueError("-o -: standard output is a terminal; redirect it (> cut.png) or pipe it")
    if given[0] == STREAM:
        name = "<stdin>"
        image = open_image_bytes(sys.stdin.buffer.read(), name)  # transparency kept
    else:
        name = image = given[0]
    with contextlib.redirect_stdout(sys.stderr):  # standard output holds the cut-out alone
        cutout = cut(image, **one_photo_hints(args))
    if args.out == STREAM:
        sys.stdout.buffer.write(cutout_bytes(cutout, args.format))
        sys.stdout.buffer.flush()
    else:
        atomic_write_bytes(out, cutout_bytes(cutout, args.format))
        print(f"wrote {out}", file=sys.stderr)
    report_empty([name] if kept_nothing(cutout) else [])
    return 0


def remove_bg_photos(args: argparse.Namespace, photos: list, out: Path, cut) -> int:
    """remove-bg's photos: one file each (``-o x.png`` names one photo's cut-out; the format:
    :func:`cutout_format`)."""
    from pixelwise.batch import output_names, report_failures, run_batch
    from pixelwise.cutout import cutout_bytes, kept_nothing
    from pixelwise.data.io import atomic_write_bytes

    pairs = output_names(photos, out)
    hints = user_hints(args, pairs)
    # "-o cut.png" for one photo names the cut-out itself; otherwise OUT is a folder
    one_file = out.suffix.lower() in CUTOUT_FORMATS and not out.is_dir() and len(pairs) == 1
    target = {
        rel: out if one_file else out / rel.with_suffix(f".{args.format}") for _, rel in pairs
    }
    empty = []

    def write(src, rel, cutout):
        atomic_write_bytes(target[rel], cutout_bytes(cutout, args.format))
        if kept_nothing(cutout):
            empty.append(rel.with_suffix("").as_posix())
        return target[rel], None

    skip = (lambda rel: target[rel].exists()) if args.skip_existing else None
    compute = lambda src: cut(src, **hints(src))  # noqa: E731
    folder = None if one_file else out
    result = run_batch(
        photos, compute, write, "remove-bg", args.progress, skip=skip, pairs=pairs, out=folder
    )
    skipped = f" ({result.skipped} existing skipped)" if result.skipped else ""
    print(f"wrote {counted(len(result.written), 'cut-out')} to {args.out}" + skipped)
    report_empty(empty)
    return report_failures(result)


def remove_bg_videos(
    args: argparse.Namespace, videos: list[tuple[Path, Path]], out: Path, cut, one: bool
) -> int:
    """remove-bg's videos (each with its output name, :func:`~pixelwise.video.split_videos`):
    each frame cut out, written as OUT/<name>.webm (transparent), or as ``-o`` names it for one
    video (.webm, .mov, .mp4); failures listed, exit status 1."""
    from pixelwise.video import WRITERS, check_output, report_video_failures, run_videos

    named = one and len(videos) == 1 and out.suffix.lower() in WRITERS
    targets = [out if named else out / f"{rel}.webm" for _, rel in videos]
    for dst in targets:
        check_output(dst, transparent=not (args.background or args.mask_only))
    pairs = [(video, dst) for (video, _), dst in zip(videos, targets)]
    failures = run_videos(pairs, cut, args.progress, args.skip_existing, None if named else out)
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
    from pixelwise.batch import report_failures
    from pixelwise.cutout import box_helper_name

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
    )
    serve(args.host, args.port, model, args.method, limits, box_model)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from pixelwise.compare import format_table, run_compare

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
    print(f"table: {Path(args.out) / 'compare.md'}\nfigure grid: {Path(args.out) / 'grid.png'}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from pixelwise.batch import check_output_file
    from pixelwise.checkpoint import load_model
    from pixelwise.export import export_checked, export_int8

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
    from pixelwise.batch import check_output_file
    from pixelwise.checkpoint import calibrate_checkpoint, calibration_target, default_path
    from pixelwise.evaluate import note_data_settings, run_validation
    from pixelwise.report import gate_scores

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


def main(argv: list[str] | None = None) -> int:
    tune_allocator()
    parser = build_parser()
    given = sys.argv[1:] if argv is None else list(argv)
    if "--version" in given and {"-v", "--verbose"} & set(given):
        given = ["info"]  # the version with the CPU, its flags and the measured paths
    if given and not given[0].startswith("-") and given[0] not in HANDLERS:
        hint = did_you_mean(given[0], list(HANDLERS)) or f" (the commands: {', '.join(HANDLERS)})"
        parser.error(f"no command {given[0]!r}{hint}")
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
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
