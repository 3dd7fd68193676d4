"""``pixelwise serve``: background removal over HTTP (FastAPI), for this machine only by default.

- ``POST /api/remove-background`` (multipart field ``file``; optional form fields ``matting``,
  ``mask_only``, ``background`` as ``#rrggbb``) returns a PNG.
- ``GET /`` serves a page with drag-and-drop upload, a before/after view and a download button.
- ``GET /docs`` and ``/openapi.json``: the OpenAPI description.

Safety: uploads over the size cap get 413, non-image content types 415, undecodable or
oversized images 400, each with a one-line message; nothing is fetched from URLs and no file
path is taken from a request. The model is loaded once; a bounded thread pool runs the work.
"""

import asyncio
import io
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import HTMLResponse, Response

from pixelwise.cutout import get_model, parse_colour, remove_background
from pixelwise.segmenter import Segmenter
from pixelwise.data.io import ImageReadError, read_image_bytes


def decode_upload(data: bytes, name: str) -> np.ndarray:
    """An uploaded image as an array (decoded like a file: same size guard, EXIF orientation,
    grey/16-bit handling), or ValueError with the reason."""
    if not data:
        raise ValueError(f"{name}: empty upload")
    try:
        return read_image_bytes(data, name)
    except ImageReadError as exc:
        raise ValueError(f"{name}: not a decodable image ({exc.reason})") from None


def create_app(model: str | Segmenter | None = None, max_upload_mb: float = 20.0, threads: int = 2,
               method: str = "model"):
    """The FastAPI application; the model is loaded here, once."""
    seg = get_model(model) if method != "grabcut" else None
    remove_background(np.zeros((64, 64, 3), np.uint8), seg, method=method)  # warm up before the first request
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="remove-bg")
    limit = int(max_upload_mb * 1024 * 1024)
    page = resources.files("pixelwise").joinpath("web/static/index.html").read_text()
    app = FastAPI(title="pixelwise background removal", version="1",
                  description="Remove the background of a photo; everything runs on this machine.")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return page

    @app.get("/api/health")
    def health() -> dict:
        return {"status": "ok", "method": method, "threads": threads, "max_upload_mb": max_upload_mb}

    @app.post("/api/remove-background", response_class=Response,
              responses={200: {"content": {"image/png": {}}, "description": "the cut-out as PNG"},
                         400: {"description": "undecodable image or bad option"},
                         413: {"description": "upload too large"}, 415: {"description": "not an image"}})
    async def remove(file: UploadFile = File(..., description="the photo (PNG, JPEG, TIFF, ...)"),
                     matting: bool = Form(False), mask_only: bool = Form(False),
                     background: str | None = Form(None, description="#rrggbb to composite onto")) -> Response:
        name = file.filename or "upload"
        if file.content_type and not file.content_type.startswith("image/") and file.content_type != "application/octet-stream":
            raise HTTPException(415, f"{name}: expected an image, got content type {file.content_type}")
        data = await file.read(limit + 1)
        if len(data) > limit:
            raise HTTPException(413, f"{name}: upload exceeds the {max_upload_mb:g} MB limit")
        try:
            rgb = decode_upload(data, name)
            colour = parse_colour(background)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(pool, lambda: remove_background(
            rgb, seg, method=method, matting=matting, mask_only=mask_only, background=colour))
        buf = io.BytesIO()
        result.save(buf, format="PNG")
        return Response(buf.getvalue(), media_type="image/png",
                        headers={"Content-Disposition": 'inline; filename="cutout.png"'})

    app.state.pool = pool
    return app


def serve(host: str = "127.0.0.1", port: int = 8000, **kwargs) -> None:
    import uvicorn

    uvicorn.run(create_app(**kwargs), host=host, port=port, log_level="info")
