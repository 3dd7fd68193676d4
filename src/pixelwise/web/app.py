"""``pixelwise serve``: background removal and the served model's masks over HTTP (FastAPI), for
this machine only by default.

- ``POST /api/remove-background`` (multipart field ``file``; optional form fields ``matting``,
  ``mask_only``, ``background`` as ``#rrggbb`` or a colour name, ``box`` as ``x0,y0,x1,y1`` and
  ``foreground_strokes`` / ``background_strokes`` as JSON polylines, ``format`` = ``png``,
  ``webp``, ``jpg`` or ``tif``, ``input_range`` as ``LO,HI``, ``matting_megapixels`` to mat
  on a smaller copy than the server's bound) returns the cut-out (PNG by default).
- ``POST /api/predict`` (multipart ``file``; ``output`` = ``mask``, ``objects`` or ``coco``;
  ``object_class``) runs the served model as ``pixelwise predict`` / ``segment`` do: the class-id
  mask (palette PNG), the instance labels (16-bit PNG) or the objects as COCO annotations.
- ``GET /`` serves a page to upload a photo, draw a box, paint keep/erase strokes and download.
- ``GET /docs`` and ``/openapi.json``: the OpenAPI description (the page: :mod:`pixelwise.web.docs`).

Safety, every bound set by :class:`Limits` (``pixelwise serve --help`` names the options):
the upload size is checked while the body streams in (413 before it is stored); images are
refused by their header before decoding when they have more pixels than allowed (413); matting
is bounded separately (it costs about 600 MB per megapixel: a larger photo is matted shrunk to
the bound, its alpha enlarged by the guided filter; an animation beyond it gets 413); requests
beyond the threads and a short queue get 503 at once; only loopback host names (and the host
the server was started on) are accepted in ``Host`` (a DNS-rebinding page gets 400) and a POST
carrying a foreign ``Origin`` gets 403, so a web page the user visits cannot drive the server.
Decoding, the cut and PNG encoding run in a thread pool (``serve --processes N``: in N processes
of their own, :mod:`pixelwise.web.workers`), never on the event loop. Nothing is
fetched from URLs and no file path is taken from a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from importlib import resources
from urllib.parse import urlparse

import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image

from pixelwise.constants import (
    CUTOUT_TYPES,
    DEFAULT_CUTOUT,
    crop_margin,
    crop_setting,
    parse_range,
)
from pixelwise.cutout import (
    BLUR,
    box_helper,
    cutout_bytes,
    get_model,
    parse_colour,
    read_photo,
    remove_background,
    shrunk,
)
from pixelwise.data.io import ImageReadError, ImageTooLarge, open_image_bytes, read_image_bytes
from pixelwise.data.write import png_bytes
from pixelwise.instances import check_object_class
from pixelwise.segmenter import Segmenter
from pixelwise.video import (
    Animation,
    check_animation_format,
    cut_each,
    encoded_cutout,
    read_animation,
)
from pixelwise.web.docs import api_page
from pixelwise.web.workers import WorkerDied

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


@dataclass(frozen=True)
class Limits:
    """What the server accepts (all adjustable on the command line)."""

    max_upload_mb: float = 20.0
    max_megapixels: float = 40.0
    max_matting_megapixels: float = 2.0
    threads: int = 2
    queue: int = 8
    processes: int = 1  # above 1: requests done in processes of their own (web.workers)
    max_strokes: int = 200
    max_stroke_points: int = 20_000
    hosts: tuple[str, ...] = LOOPBACK
    # the web page edits a still photo (JPEG, PNG, WebP) larger than this on a copy of this
    # size, its Download cutting out the photo itself (0: the photo itself always)
    preview_megapixels: float = 2.0
    # the page's edits are matted at most at this size (a stroke answered within a second), its
    # Download at max_matting_megapixels
    edit_matting_megapixels: float = 1.0

    @property
    def max_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


class TooLarge(ValueError):
    """A request asks for more than the server's limits allow (413)."""


def decode_upload(data: bytes, name: str, max_pixels: int | None = None, read=read_image_bytes):
    """An uploaded image as an array (decoded like a file: same size guard, EXIF orientation,
    grey/16-bit handling; ``read=open_image_bytes``: as the PIL image, alpha kept), or
    ValueError with the reason."""
    if not data:
        raise ValueError(f"{name}: empty upload")
    try:
        return read(data, name, max_pixels)
    except ImageTooLarge as exc:
        raise TooLarge(
            f"{name}: {exc.pixels / 1e6:.1f} megapixels; the server accepts at most "
            f"{exc.limit / 1e6:g} (pixelwise serve --max-megapixels)"
        ) from None
    except ImageReadError as exc:
        raise ValueError(f"{name}: not a decodable image ({exc.reason})") from None


def host_name(host: str) -> str:
    """The name in a Host header, without its port: "Example.com:8000" -> "example.com",
    "[::1]:8000" -> "::1"."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


class Guard:
    """ASGI middleware: a request's ``Host`` must name one of the allowed hosts (400 otherwise,
    saying how to allow it: a defence against DNS rebinding), a POST's ``Origin`` too (403), and
    a request body may not exceed ``max_bytes``: refused from its Content-Length, or stopped
    while it streams (413), before anything is stored."""

    def __init__(self, app, max_bytes: int, hosts: tuple[str, ...]) -> None:
        self.app, self.max_bytes, self.hosts = app, max_bytes, hosts
        self.names = {host_name(urlparse(h).netloc if "://" in h else h) for h in hosts}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if host_name(host) not in self.names:
            detail = (
                f"Invalid host header {host!r}: this server answers to "
                f"{', '.join(sorted(self.names))}; start it with --allow-host "
                f"{host_name(host) or 'NAME'} to answer to that name too"
            )
            return await JSONResponse({"detail": detail}, 400)(scope, receive, send)
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        origin = headers.get("origin")
        if origin is not None and urlparse(origin).hostname not in self.names:
            return await JSONResponse(
                {"detail": f"cross-origin request from {origin} refused"}, 403
            )(scope, receive, send)
        if int(headers.get("content-length") or 0) > self.max_bytes:
            return await self.too_large(scope, receive, send)
        detail = f"upload exceeds the {self.max_bytes / 1024 / 1024:g} MB limit"
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:  # FastAPI passes HTTPException through its form parsing
                raise HTTPException(413, detail)
            return message

        await self.app(scope, counted, send)

    async def too_large(self, scope, receive, send) -> None:
        detail = f"upload exceeds the {self.max_bytes / 1024 / 1024:g} MB limit"
        await JSONResponse({"detail": detail}, 413)(scope, receive, send)


STROKE_FIELDS = ("foreground_strokes", "background_strokes")


def check_format(format: str, mask_only: bool) -> None:
    """ValueError for a cut-out format the API does not write (a mask: PNG only)."""
    if format not in CUTOUT_TYPES or (mask_only and format != "png"):
        raise ValueError(f"format {format!r}: png, webp, jpg or tif, and png with mask_only")


def parse_megapixels(text: str | None) -> float | None:
    """The form's ``matting_megapixels``: a number above 0, or None when not given."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:  # nan too
        raise ValueError(f"matting_megapixels must be a number above 0, got {text!r}")
    return value


def parse_box(text: str | None) -> tuple[float, ...] | None:
    if not text:
        return None
    try:
        values = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise ValueError(f"box must be x0,y0,x1,y1 in pixels, got {text!r}") from None
    if len(values) != 4:
        raise ValueError(f"box must be x0,y0,x1,y1 in pixels, got {text!r}")
    return values


def parse_input_range(text: str | None) -> tuple[float, float] | None:
    """``LO,HI``: the raw values seen as the full range (``remove-bg --input-range``)."""
    if not text:
        return None
    try:
        return parse_range(text)
    except ValueError:
        raise ValueError(
            f"input_range must be LO,HI with LO < HI (0,4095 for a 12-bit photo), got {text!r}"
        ) from None


def parse_strokes(text: str | None, name: str, limits: Limits) -> list | None:
    """JSON ``[{"points": [[x, y], ...], "radius": r}, ...]``, bounded in count and size."""
    if not text:
        return None
    try:
        strokes = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name}: not JSON ({exc.msg})") from None
    if not isinstance(strokes, list) or not all(isinstance(s, dict) for s in strokes):
        raise ValueError(f'{name}: expected a list of {{"points": [[x, y], ...], "radius": r}}')
    points = sum(len(s.get("points") or []) for s in strokes)
    if len(strokes) > limits.max_strokes or points > limits.max_stroke_points:
        raise ValueError(
            f"{name}: {len(strokes)} strokes with {points} points; at most {limits.max_strokes} "
            f"strokes and {limits.max_stroke_points} points"
        )
    return strokes


@dataclass
class Job:
    """One request's work, done in the thread pool."""

    data: bytes
    name: str
    options: dict
    matting: bool
    format: str = "png"
    backdrop: tuple[bytes, str] | None = None  # a background image's upload and its name
    matting_megapixels: float | None = None  # the request's own bound, within the server's

    def run(
        self, seg: Segmenter | None, method: str, limits: Limits, box_model: Segmenter | None = None
    ) -> tuple[bytes, bool]:
        """The cut-out encoded (PNG, or :attr:`format`), and whether it kept nothing
        (:func:`~pixelwise.cutout.kept_nothing`); an animated GIF, PNG or WebP cut out frame by
        frame into an animated PNG or WebP (:class:`~pixelwise.video.Animation`)."""
        limit = int(limits.max_megapixels * 1e6)  # an animation's: all frames together
        photo = decode_upload(self.data, self.name, limit, read_animation) or decode_upload(
            self.data, self.name, limit, open_image_bytes
        )  # with its transparency
        check_animation_format(photo, self.format)
        megapixels, at_most = pixel_count(photo) / 1e6, limits.max_matting_megapixels
        # a larger photo is matted shrunk to the limit (cutout.matted); an animation's frames
        # together are bounded by it
        if self.matting and not at_most:
            raise ValueError(  # serve --max-matting-megapixels 0, or pymatting not installed
                f"{self.name}: this server does not mat (GET /api/health: max_matting_megapixels "
                "0); send it without matting"
            )
        if self.matting and megapixels > at_most and isinstance(photo, Animation):
            raise TooLarge(
                f"{self.name}: matting is limited to {at_most:g} megapixels (an animation's "
                f"frames together); this image has {megapixels:.1f} (send it without matting, "
                "or smaller)"
            )
        options = {"method": method, "matting": self.matting, "box_model": box_model}
        options["matting_megapixels"] = min(self.matting_megapixels or at_most, at_most)
        if self.backdrop is not None:  # covers the photo (decoded here, in the pool)
            options["background"] = decode_upload(*self.backdrop, limit)
        return encoded_cutout(
            cut_each(remove_background, photo, model=seg, **self.options | options), self.format
        )

    def in_worker(self, state: dict) -> tuple[bytes, bool]:
        """:meth:`run` in a process of :mod:`pixelwise.web.workers`, with its models."""
        return self.run(state["seg"], state["method"], state["limits"], state["helper"])


@dataclass
class ShownJob:
    """One ``/api/shown`` request's work, done in the thread pool."""

    data: bytes
    name: str

    def in_worker(self, state: dict) -> tuple[bytes, str, tuple[int, int]]:
        return self.run(state["limits"])

    def run(self, limits: Limits) -> tuple[bytes, str, tuple[int, int]]:
        """The photo as remove-bg reads it (upright, 8 bits, inks as colours, its transparency
        kept), shrunk to ``limits.preview_megapixels`` when larger (0: its own size): a JPEG, a
        PNG when it has transparency; its media type; and the photo's own (width, height)."""
        photo = decode_upload(
            self.data, self.name, int(limits.max_megapixels * 1e6), open_image_bytes
        )
        rgb, alpha, *_ = read_photo(photo)
        height, width = rgb.shape[:2]
        pixels = np.dstack([rgb, alpha]) if alpha is not None else rgb
        # as the page shrinks a photo it shows itself
        pixels = shrunk(pixels, limits.preview_megapixels)[0]
        fmt = "png" if alpha is not None else "jpg"  # encoded as cut-outs are
        return cutout_bytes(Image.fromarray(pixels), fmt), CUTOUT_TYPES[fmt], (width, height)


def pixel_count(photo) -> int:
    """The pixels of an opened upload: a PIL image, an array or an :class:`Animation` (all its
    frames)."""
    if isinstance(photo, Animation):
        return len(photo.frames) * photo.frames[0].width * photo.frames[0].height
    height, width = photo.shape[:2] if isinstance(photo, np.ndarray) else photo.size[::-1]
    return width * height


# the limits that GET /api/health reports and the web page is written with ({{MAX_UPLOAD_MB}}, ...)
SHOWN_LIMITS = (
    "max_upload_mb",
    "max_megapixels",
    "max_matting_megapixels",
    "preview_megapixels",
    "edit_matting_megapixels",
)


def page_html(limits: Limits) -> str:
    """The web page with the server's limits written in."""
    page = resources.files("pixelwise").joinpath("web/static/index.html").read_text()
    for name in SHOWN_LIMITS:
        page = page.replace("{{" + name.upper() + "}}", f"{getattr(limits, name):g}")
    return page


def matting_installed(limits: Limits) -> Limits:
    """``limits``, with matting off (``max_matting_megapixels`` 0: the page's box disabled,
    requests refused with a reason) when pymatting is not installed, said once on stderr."""
    import importlib.util

    if not limits.max_matting_megapixels or importlib.util.find_spec("pymatting") is not None:
        return limits
    print(
        "pixelwise serve: note: pymatting is not installed: serving without matting (pip "
        "install 'pixelwise[matting]')",
        file=sys.stderr,
    )
    return replace(limits, max_matting_megapixels=0)


def create_app(
    model: str | Segmenter | None = None,
    method: str = DEFAULT_CUTOUT,
    limits: Limits = Limits(),
    box_model: str | Segmenter | None = None,
    source: tuple | None = None,
) -> FastAPI:
    """The FastAPI application; the model (and the box model that helps it inside a box, see
    :func:`pixelwise.cutout.box_helper`) is loaded here, once, and warmed up. With
    ``limits.processes`` above 1 the requests' work runs in that many processes
    (:class:`~pixelwise.web.workers.Workers`), each loading ``source`` = (checkpoint, runtime,
    box checkpoint) (default: ``model`` and ``box_model`` as given, on torch)."""
    seg = get_model(model) if method != "grabcut" else None
    helper = box_helper(model, box_model) if seg is not None else None
    limits = matting_installed(limits)
    workers = request_workers(limits, source or (model, "torch", box_model), method, seg, helper)
    pool = ThreadPoolExecutor(max_workers=limits.threads, thread_name_prefix="remove-bg")
    page = page_html(limits)
    app = FastAPI(
        title="pixelwise background removal",
        version="1",
        description="Remove the background of a photo; everything runs on this machine.",
        docs_url=None,  # Swagger UI and ReDoc come from public CDNs: web/docs.py's page instead
        redoc_url=None,
        lifespan=stopping(workers),
    )
    app.add_middleware(Guard, max_bytes=limits.max_bytes, hosts=limits.hosts)
    app.state.pool, app.state.busy, app.state.workers = pool, 0, workers

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs() -> str:
        return api_page(app.openapi())

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return page

    @app.get("/api/health")
    def health() -> dict:
        return {
            "status": "ok",
            "method": method,
            "threads": limits.threads,
            "processes": limits.processes,
            "queue": limits.queue,
            "busy": app.state.busy,
            **{name: getattr(limits, name) for name in SHOWN_LIMITS},
        }

    add_remove_route(app, lambda job: job.run(seg, method, limits, helper), limits)
    add_shown_route(app, limits)
    if seg is not None:
        add_predict_route(app, seg, limits)
    return app


def request_workers(limits: Limits, source: tuple, method: str, seg, helper):
    """With ``limits.processes`` above 1, the processes that do the requests' work, each loading
    ``source`` = (checkpoint, runtime, box checkpoint); else None, this process's models warmed
    up (the threads use them)."""
    from pixelwise.web.workers import Workers, warm_up

    if limits.processes > 1:
        return Workers(limits.processes, *source, method, limits)
    warm_up(seg, method, helper)
    return None


def stopping(workers):
    """The application's lifespan: at the server's end, ``workers`` (if any) are stopped."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        if workers is not None:
            workers.shutdown()

    return lifespan


RESPONSES = {
    200: {
        "content": {"image/png": {}, "image/webp": {}, "image/jpeg": {}, "image/tiff": {}},
        "description": "the cut-out as PNG (format: WebP, JPEG or TIFF)",
        "headers": {
            "X-Kept-Nothing": {
                "description": "true when the cut kept no pixel (a box or a keep stroke says "
                "where the subject is)",
                "schema": {"type": "string", "enum": ["true", "false"]},
            }
        },
    },
    400: {"description": "undecodable image or bad option"},
    403: {"description": "foreign Origin"},
    413: {"description": "upload, image or matting too large"},
    415: {"description": "not an image"},
    503: {"description": "busy: every thread and queue place taken"},
}


FIELDS = {
    "file",
    "background_image",
    "crop",
    "crop_margin",
    "matting",
    "mask_only",
    "background",
    "box",
    "foreground_strokes",
    "background_strokes",
    "format",
    "input_range",
    "matting_megapixels",
}


# the longer fields of POST /api/remove-background
PHOTO_FIELD = File(
    ...,
    description="the photo (PNG, JPEG, TIFF, ...); an animated GIF, PNG or WebP is cut out frame "
    "by frame into an animated PNG (format webp: WebP), max_megapixels counting all its frames",
)
FORMAT_FIELD = Form(
    "png",
    description="png; webp (the alpha exact, the colours lossy, several times smaller); jpg (no "
    "transparency: onto white unless background); tif (lossless, for print software)",
)
INPUT_RANGE_FIELD = Form(
    None,
    description="LO,HI: raw values seen as the full range, 0,4095 for a 12-bit photo in a 16-bit "
    "file (otherwise seen 16 times darker)",
)
BACKGROUND_IMAGE_FIELD = File(
    None,
    description="an image to composite onto instead of transparency, scaled to cover the photo "
    "(its aspect kept, centred); counted in the upload limit",
)
MATTING_FIELD = Form(
    False,
    description="refine edges by alpha matting; a photo over max_matting_megapixels (GET "
    "/api/health) is matted shrunk to that size, an animation over it gets 413",
)
MATTING_MEGAPIXELS_FIELD = Form(
    None,
    description="with matting: mat a photo over this many megapixels shrunk to it, for a "
    "quicker answer (the web page's edits: edit_matting_megapixels); at most, and by default, "
    "max_matting_megapixels",
)
CROP_MARGIN_FIELD = Form(
    None,
    description="a margin around the subject (implies crop): pixels (30, 30px) or a percentage "
    "of its size (10%)",
)


def add_remove_route(app: FastAPI, work, limits: Limits) -> None:
    @app.post("/api/remove-background", response_class=Response, responses=RESPONSES)
    async def remove(
        request: Request,
        file: UploadFile = PHOTO_FIELD,
        matting: bool = MATTING_FIELD,
        matting_megapixels: str | None = MATTING_MEGAPIXELS_FIELD,
        mask_only: bool = Form(False, description="return the alpha mask alone"),
        background: str | None = Form(
            None,
            description="a colour to composite onto: #rrggbb or a name such as white; or blur: "
            "the photo's own background, blurred",
        ),
        box: str | None = Form(None, description="x0,y0,x1,y1 around the object, in pixels"),
        foreground_strokes: str | None = Form(
            None, description='JSON [{"points": [[x, y], ...], "radius": r}]: keep'
        ),
        background_strokes: str | None = Form(None, description="JSON, the same form: remove"),
        format: str = FORMAT_FIELD,
        input_range: str | None = INPUT_RANGE_FIELD,
        crop: bool = Form(False, description="crop the cut-out to its subject"),
        crop_margin: str | None = CROP_MARGIN_FIELD,
        background_image: UploadFile | None = BACKGROUND_IMAGE_FIELD,
    ) -> Response:
        await refuse_unknown_fields(request, FIELDS)
        name = upload_name(file)
        try:
            check_format(format, mask_only)
            options = {
                "mask_only": mask_only,
                "background": BLUR if background == BLUR else parse_colour(background),
                "box": parse_box(box),
                "input_range": parse_input_range(input_range),
                "crop": parse_crop(crop, crop_margin),
            }
            for field, text in zip(STROKE_FIELDS, (foreground_strokes, background_strokes)):
                options[field] = parse_strokes(text, field, limits)
            mat_size = parse_megapixels(matting_megapixels)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        backdrop = None
        if background_image is not None:
            if background:
                raise HTTPException(400, "background and background_image: give one of them")
            backdrop = (await background_image.read(), upload_name(background_image))
        job = Job(await file.read(), name, options, matting, format, backdrop, mat_size)
        body, empty = await in_pool(app, limits, work, job)
        return Response(
            body,
            media_type=CUTOUT_TYPES[format],
            headers={  # X-Kept-Nothing: the cut found no foreground (the page says what to do)
                "Content-Disposition": f'inline; filename="cutout.{format}"',
                "X-Kept-Nothing": "true" if empty else "false",
            },
        )


def add_shown_route(app: FastAPI, limits: Limits) -> None:
    @app.post(
        "/api/shown",
        response_class=Response,
        responses={
            200: {
                "content": {"image/jpeg": {}, "image/png": {}},
                "description": "the photo as a browser shows it: JPEG, or PNG with transparency",
                "headers": {
                    name: {"description": f"the photo's own {what} in pixels"}
                    for name, what in (("X-Photo-Width", "width"), ("X-Photo-Height", "height"))
                },
            },
            **{code: RESPONSES[code] for code in (400, 403, 413, 415, 503)},
        },
    )
    async def shown(
        request: Request,
        file: UploadFile = File(..., description="a photo a browser may not show (TIFF, HEIC)"),
    ) -> Response:
        """The photo as remove-background reads it, in a form every browser shows: upright, 8
        bits, at most serve --preview-megapixels (the web page draws on it)."""
        await refuse_unknown_fields(request, {"file"})
        name = upload_name(file)
        body, media_type, (width, height) = await in_pool(
            app, limits, lambda job: job.run(limits), ShownJob(await file.read(), name)
        )
        headers = {"X-Photo-Width": str(width), "X-Photo-Height": str(height)}
        return Response(body, media_type=media_type, headers=headers)


def parse_crop(crop: bool, margin: str | None) -> str | None:
    """The form's crop and crop_margin (which implies crop) as the margin, None for no crop;
    ValueError naming the field for a bad margin."""
    if margin is not None:
        try:
            crop_margin(margin)
        except ValueError as exc:
            raise ValueError(f"crop_margin: {exc}") from None
    return crop_setting(crop, margin)


async def refuse_unknown_fields(request: Request, fields: set[str]) -> None:
    """400 for a form field the route does not take: a misspelt one would otherwise be
    dropped without a word."""
    unknown = sorted(set((await request.form()).keys()) - fields)
    if unknown:
        raise HTTPException(
            400,
            f"unknown field(s) {', '.join(unknown)}; the fields are {', '.join(sorted(fields))}",
        )


def upload_name(file: UploadFile) -> str:
    """The upload's file name; 415 when it says it is no image."""
    name = file.filename or "upload"
    kind = file.content_type or ""
    if kind and not kind.startswith("image/") and kind != "application/octet-stream":
        raise HTTPException(415, f"{name}: expected an image, got content type {kind}")
    return name


async def in_pool(app: FastAPI, limits: Limits, work, job):
    """``work(job)`` in the thread pool (with ``serve --processes``, the job's ``in_worker`` in a
    process of :class:`~pixelwise.web.workers.Workers`), counted against the threads (or
    processes) and queue (503 when they are taken); its ValueErrors become 400 (413 for
    :class:`TooLarge`)."""
    workers = app.state.workers
    capacity = limits.processes if workers is not None else limits.threads
    if app.state.busy >= capacity + limits.queue:
        raise HTTPException(503, "busy: try again shortly", headers={"Retry-After": "2"})
    app.state.busy += 1
    try:
        if workers is not None:
            return await workers.run(job)
        return await asyncio.get_running_loop().run_in_executor(app.state.pool, work, job)
    except WorkerDied as exc:
        raise HTTPException(500, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(413 if isinstance(exc, TooLarge) else 400, str(exc)) from None
    finally:
        app.state.busy -= 1


PREDICT_OUTPUTS = ("mask", "objects", "coco", "geojson")


@dataclass
class PredictJob:
    """One ``/api/predict`` request's work, done in the thread pool."""

    data: bytes
    name: str
    output: str
    object_class: int | None

    def in_worker(self, state: dict) -> tuple[bytes, str]:
        return self.run(state["seg"], state["limits"])

    def run(self, seg: Segmenter, limits: Limits) -> tuple[bytes, str]:
        """The response body and its media type: the class-id mask (palette PNG, as `pixelwise
        predict` writes it), the instance labels (16-bit PNG, as `segment` writes them) or
        the objects as COCO annotations or GeoJSON features (JSON)."""
        from pixelwise.batch import object_name
        from pixelwise.data.coco import object_annotations
        from pixelwise.data.geojson import to_geojson
        from pixelwise.data.write import mask_image
        from pixelwise.inference import predict, segment

        image = decode_upload(self.data, self.name, int(limits.max_megapixels * 1e6))
        if self.output == "mask":
            return png_bytes(mask_image(predict(seg, image), seg.mask_palette())), "image/png"
        labels = segment(seg, image, object_class=self.object_class)
        if self.output == "objects":
            if labels.max(initial=0) > 65535:
                raise ValueError(f"{self.name}: over 65535 objects; ask for coco")
            return png_bytes(Image.fromarray(labels.astype(np.uint16))), "image/png"
        if self.output == "geojson":
            body = to_geojson(labels, seg, object_class=self.object_class)
            return json.dumps(body).encode(), "application/geo+json"
        body = {
            "width": image.shape[1],
            "height": image.shape[0],
            "categories": [{"id": 1, "name": object_name(seg, self.object_class)}],
            "annotations": object_annotations(labels),
        }
        return json.dumps(body).encode(), "application/json"


PREDICT_RESPONSES = {
    200: {
        "content": {"image/png": {}, "application/json": {}},
        "description": "output=mask: the class-id mask (palette PNG; class names in the "
        "X-Class-Names header, a JSON list); output=objects: instance labels (16-bit PNG, 0 = "
        "background); output=coco: the objects as COCO annotations (JSON, compressed RLE); "
        "output=geojson: each object a GeoJSON Feature, its outline along pixel edges in pixel "
        "coordinates, its number in the labels as the measurement 'object' (as segment "
        "--geojson writes them)",
    },
    **{code: RESPONSES[code] for code in (400, 403, 413, 415, 503)},
}


def add_predict_route(app: FastAPI, seg: Segmenter, limits: Limits) -> None:
    fields = {"file", "output", "object_class"}

    @app.post("/api/predict", response_class=Response, responses=PREDICT_RESPONSES)
    async def predict_route(
        request: Request,
        file: UploadFile = File(..., description="the image (PNG, JPEG, TIFF, ...)"),
        output: str = Form("mask", description="mask, objects, coco or geojson"),
        object_class: int | None = Form(
            None,
            description="objects/coco from a model not trained on objects: the connected "
            "regions of this class id",
        ),
    ) -> Response:
        await refuse_unknown_fields(request, fields)
        name = upload_name(file)
        if output not in PREDICT_OUTPUTS:
            raise HTTPException(400, f"output must be one of {', '.join(PREDICT_OUTPUTS)}")
        try:
            if output != "mask":
                check_object_class(seg, object_class, "object_class")
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        job = PredictJob(await file.read(), name, output, object_class)
        body, media = await in_pool(app, limits, lambda job: job.run(seg, limits), job)
        return Response(
            body, media_type=media, headers={"X-Class-Names": json.dumps(seg.class_names)}
        )


def check_port(host: str, port: int) -> None:
    """Refuse (ValueError, one line) an address this process cannot listen on, before the
    models load: uvicorn would report it only after start-up, as a log line."""
    import errno
    import os
    import socket

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        hint = (
            " (another server there? pick another --port)" if exc.errno == errno.EADDRINUSE else ""
        )
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ValueError(f"{host}:{port}: {reason}{hint}") from None


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    model: str | Segmenter | None = None,
    method: str = DEFAULT_CUTOUT,
    limits: Limits = Limits(),
    box_model: str | Segmenter | None = None,
    source: tuple | None = None,
) -> None:
    import uvicorn

    if host not in ("0.0.0.0", "::") and host not in limits.hosts:
        limits = Limits(**{**limits.__dict__, "hosts": (*limits.hosts, host)})
    elif host in ("0.0.0.0", "::") and set(limits.hosts) <= set(LOOPBACK):
        print(
            f"pixelwise serve: listening on every interface ({host}), but answering only requests "
            "addressed to this machine's loopback names; give --allow-host NAME for each name or "
            "address others reach it by (such as --allow-host 192.168.1.5)",
            file=sys.stderr,
        )
    uvicorn.run(
        create_app(model, method, limits, box_model, source),
        host=host,
        port=port,
        log_level="info",
        limit_concurrency=max(limits.threads, limits.processes) + limits.queue + 8,
    )
