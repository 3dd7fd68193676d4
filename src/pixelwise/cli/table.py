"""The command line's table: each subcommand's help, description and options (an
:class:`~pixelwise.config.Opt` or the name of a shared one), declared once;
:mod:`pixelwise.cli.commands` builds the parser from it."""

from __future__ import annotations

from pixelwise.classical import METHODS as CLASSICAL
from pixelwise.config import (
    MODEL_HELP,
    Opt,
    bounded,
    box_numbers,
    default_out,
    margin,
    str_list,
    value_list,
)
from pixelwise.constants import (
    CUTOUT_TYPES,
    MATTING_MEGAPIXELS,
    MIN_ADAPT_PHOTOS,
    parse_stems,
)

# how predict and segment run a model over files (shared options, in their --help order)
RUN_OPTIONS = (
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
)

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
            *RUN_OPTIONS,
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
            *RUN_OPTIONS,
        ],
    ),
    "remove-bg": (
        "cut out the foreground of photos (transparent PNGs) and videos",
        "Writes OUT/<name>.png (RGBA; folders keep their inner structure; --format webp, jpg or "
        "tif: those), or OUT itself when it ends in .png, .webp, .jpg or .tif and one photo is given (- as the input: standard input; -o -: standard output). A video file (.mp4, .mov, .m4v, .mkv, .webm, .avi, named "
        "or found in a folder; the [video] extra) is cut out frame by frame into OUT/<name>.webm "
        "(VP9 with alpha), or as -o "
        "names it for one video: .webm, .mov (PNG frames) or .mp4 (with --background or "
        "--mask-only). An animated GIF, PNG or WebP is cut out frame by frame into an animated "
        "PNG (--format webp: WebP) that keeps each frame's time and the loop count. "
        "A photo with transparency keeps it: what was transparent stays so, and the "
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
            Opt(
                ("--matting-megapixels",),
                "with --matting, mat a photo larger than this shrunk to this size, its alpha "
                "enlarged by the guided filter (quicker, less memory; default "
                f"{MATTING_MEGAPIXELS:g}: a phone's photo at full size; 0: every photo at full "
                "size, about 130 bytes a pixel)",
                None,
                type=bounded(float, 0),
                metavar="MP",
            ),
            Opt(("--mask-only",), "write the alpha mask (greyscale) instead", action="store_true"),
            Opt(
                ("--background",),
                "composite onto a colour (#rrggbb or a name such as white), an image file "
                "(scaled to cover the photo, its aspect kept, centred) or blur (the photo's own "
                "background, blurred: a portrait mode's look) instead of transparency",
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
                "several times smaller), jpg (no transparency: onto white unless --background) "
                "or tif (lossless, for print software); "
                "default: -o's suffix for one photo, else png",
                choices=tuple(CUTOUT_TYPES),
            ),
            "skip_existing",
            "input_range",
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
            Opt(
                ("--crop",),
                "crop each cut-out to its subject: the box around what it keeps (an animation: "
                "around what any frame keeps; not videos)",
                action="store_true",
            ),
            Opt(
                ("--crop-margin",),
                "with --crop (which it implies), a margin around the subject: pixels (30, 30px) "
                "or a percentage of its size (10%%) (default 0)",
                type=margin,
                metavar="MARGIN",
            ),
            Opt(
                ("--jobs",),
                "cut out the photos in N processes of its own, each its share, this machine's "
                "cores shared out among them (default 1; videos: one process; under torchrun, "
                "its processes instead). The graph cut runs on one core: on 2 cores --jobs 2 "
                "cut out a folder 1.3-1.5x as fast; each process holds its own models",
                1,
                type=bounded(int, 1, 64),
                metavar="N",
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
        "COCO annotations); GET / is a web page (POST /api/shown: a photo as it draws one a browser cannot "
        "show, TIFF or HEIC); GET /docs the OpenAPI description. Binds 127.0.0.1 unless told otherwise. Limits: uploads "
        "(--max-upload-mb), decoded pixels (--max-megapixels): 413 beyond; matting (--max-matting-megapixels) "
        "on a shrunk copy beyond; "
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
                "matting costs about 600 MB per megapixel: a larger photo is matted shrunk to this "
                "size, its alpha enlarged by the guided filter (an animation beyond it gets 413) "
                "(default 2; 0: matting refused)",
                2.0,
                type=bounded(float, 0),
            ),
            Opt(
                ("--preview-megapixels",),
                "the web page edits a still photo (JPEG, PNG, WebP) larger than this on a copy of "
                "this size, quick to cut out at each stroke; its Download cuts out the photo itself "
                "(default 2; 0: the photo itself always)",
                2.0,
                type=bounded(float, 0),
            ),
            Opt(
                ("--edit-matting-megapixels",),
                "with matting, the web page's edits are matted at most at this size, quicker at "
                "each stroke; its Download at --max-matting-megapixels (default 1)",
                1.0,
                type=bounded(float, 0, above=True),
            ),
            Opt(
                ("--threads",),
                "requests processed at once (default 2)",
                2,
                type=bounded(int, 1),
                old=("--workers",),
            ),
            Opt(
                ("--processes",),
                "instead of threads, process requests in N processes of their own, each with its "
                "models (more memory) and its share of the cores: the graph cut holds Python's "
                "lock, so threads wait on one another there (default 1: threads)",
                1,
                type=bounded(int, 1, 64),
                metavar="N",
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
                f"comma-separated: classical methods ({', '.join(CLASSICAL)}), NAME:CHECKPOINT "
                "and NAME:FOLDER (masks predicted beforehand, one per image by stem, e.g. by "
                "another tool), e.g. otsu,kmeans,graphcut,unet:runs/u/best.pt,cellpose:out/masks",
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
