"""Videos in, videos out: each frame of a clip cut out as a photo is (or overlaid with a model's
classes), written as a video that keeps the transparency (PyAV, the ``video`` extra).

Containers by the output's suffix: ``.webm`` (VP9 with an alpha channel: browsers play it
transparent; the default), ``.mov`` (PNG frames, lossless RGBA, for video editors) and ``.mp4``
(H.264, no transparency: for a cut-out composited onto a ``background`` or a mask). Frames are
cut out one by one, each on its own (no smoothing over time), upright (a phone's portrait clip,
stored as landscape frames with a rotation, is cut out and written standing up); the frame rate
is the clip's, and
its sound is copied as it is when the container takes the codec (AAC into .mp4 and .mov, Opus
into .webm; else a line says it was left out); a frame of odd width or height loses its last
column or row (the codecs take even sizes). The output is written to a temporary file and
renamed at the end, so a stopped run leaves no half-written video.

Animated images (GIF, animated PNG, animated WebP) are cut out frame by frame too, into an
animated PNG or WebP that keeps each frame's time and the loop count (:class:`Animation`).
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pixelwise.data.io import (
    ANIMATED_FORMATS,
    VIDEO_SUFFIXES,
    ImageReadError,
    ImageTooLarge,
    max_pixels_limit,
    undecodable,
)
from pixelwise.data.write import PNG_COMPRESS_LEVEL, WEBP_SAVE, atomic_save


@dataclass
class Animation:
    """The frames of an animated image, each whole as shown (PIL images), how long each is
    shown (milliseconds) and how many times it plays (0: for ever)."""

    frames: list
    durations: list[int]
    loop: int

    def with_frames(self, frames: list) -> Animation:
        """The same timing with other frames (the cut-outs of these)."""
        return Animation(list(frames), self.durations, self.loop)

    def encoded(self, fmt: str = "png") -> bytes:
        """The animation as an animated PNG (lossless; each frame replaces the last, alpha
        included) or WebP (as :func:`pixelwise.cutout.cutout_bytes` encodes a photo: colours
        at quality 90, alpha lossless); JPEG holds no animation (ValueError)."""
        check_animation_format(self, fmt)
        first, *rest = self.frames
        timing = dict(save_all=True, append_images=rest, duration=self.durations, loop=self.loop)
        buf = io.BytesIO()
        if fmt == "png":
            first.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL, blend=0, **timing)
        else:
            first.save(buf, **WEBP_SAVE, **timing)
        return buf.getvalue()


class AnimationTooLarge(ImageTooLarge):
    """An animation of more pixels, all frames together, than the decompression-bomb guard
    allows: refused from its header, before any frame is decoded."""

    def __init__(self, name, count: int, size: tuple[int, int], limit: int) -> None:
        pixels = count * size[0] * size[1]
        ImageReadError.__init__(
            self,
            name,
            f"an animation of {count} frames of {size[0]} x {size[1]}, {pixels / 1e6:.0f} "
            f"megapixels in all, over the limit of {limit / 1e6:.0f} (PIXELWISE_MAX_PIXELS); "
            "as a video (.mp4, .webm) it is cut out a frame at a time",
        )
        self.pixels, self.limit = pixels, limit


def read_animation(source, name: str | None = None, max_pixels: int | None = None):
    """The frames of an animated GIF, PNG or WebP (a file, or its bytes; ``name`` stands for
    it in errors) as an :class:`Animation` (RGBA frames, each as shown: Pillow composes a
    frame that stores only what changed onto the ones before), or None for a still image and
    anything else. An animation of more pixels in all than the decompression-bomb guard
    allows (``max_pixels``, else :func:`~pixelwise.data.io.max_pixels_limit`) is refused
    (:class:`AnimationTooLarge`)."""
    if isinstance(source, (bytes, bytearray)):
        opened, name = io.BytesIO(source), name or "image"
    elif isinstance(source, (str, os.PathLike)) and os.path.isfile(source):
        opened, name = source, name or str(source)
    else:
        return None
    try:
        image = Image.open(opened)
    except (OSError, ValueError, SyntaxError):
        return None  # reading it as a photo says what is wrong
    with image:
        if image.format not in ANIMATED_FORMATS or not getattr(image, "is_animated", False):
            return None
        count, limit = image.n_frames, max_pixels_limit(max_pixels)
        if count * image.width * image.height > limit:
            raise AnimationTooLarge(name, count, image.size, limit)
        frames, durations = [], []
        try:
            for index in range(count):
                image.seek(index)
                frames.append(image.convert("RGBA"))  # loads it: WebP's duration is known then
                durations.append(int(image.info.get("duration") or 100))  # 0: as browsers
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise undecodable(Path(name), exc) from None
        return Animation(frames, durations, int(image.info.get("loop", 1)))


def check_animation_format(image, fmt: str) -> None:
    """Refuse (ValueError) to write an :class:`Animation` as ``fmt`` when that format holds
    none (jpg): called before any frame is cut out. Anything else passes."""
    if isinstance(image, Animation) and fmt not in ("png", "webp"):
        raise ValueError(
            f"an animation ({len(image.frames)} frames) cannot be written as {fmt}; "
            "--format png (an animated PNG) or webp keeps it"
        )


def cut_each(cut, image, crop=None, **hints):
    """``cut(image, crop=crop, **hints)``; of an :class:`Animation`, each frame's, as an
    Animation, cropped (``crop``: the margin) to the box around what any frame keeps, so that
    the frames keep one size and place."""
    if not isinstance(image, Animation):
        return cut(image, crop=crop, **hints)
    frames = [cut(frame, **hints) for frame in image.frames]
    if crop is not None:
        frames = crop_frames(frames, crop)
    return image.with_frames(frames)


def crop_frames(frames: list, margin) -> list:
    """Cut-out frames (RGBA, or masks) cropped to the union of their subjects' boxes
    (:func:`~pixelwise.cutout.subject_box`); frames composited onto a background have no
    transparency to find the subject by (ValueError)."""
    from pixelwise.cutout import subject_box

    boxes = []
    for frame in frames:
        if frame.mode not in ("RGBA", "L"):
            raise ValueError("an animation composited onto a background cannot be cropped")
        alpha = np.asarray(frame.getchannel("A") if frame.mode == "RGBA" else frame) / 255.0
        boxes.append(subject_box(alpha, margin))
    boxes = [box for box in boxes if box is not None]
    if not boxes:
        return frames  # nothing kept: the whole frame, as for a photo
    x0, y0, x1, y1 = zip(*boxes)
    union = (min(x0), min(y0), max(x1), max(y1))
    return [frame.crop(union) for frame in frames]


def encoded_cutout(cutout, fmt: str) -> tuple[bytes, bool]:
    """A cut-out (a photo's, or an :class:`Animation`) encoded as ``fmt`` (png, webp, jpg, tif), and
    whether it kept nothing (:func:`pixelwise.cutout.kept_nothing`, of every frame)."""
    from pixelwise.cutout import cutout_bytes, kept_nothing

    if isinstance(cutout, Animation):
        return cutout.encoded(fmt), all(kept_nothing(frame) for frame in cutout.frames)
    return cutout_bytes(cutout, fmt), kept_nothing(cutout)


# container format, codec, pixel format of frames with and without alpha
WRITERS = {
    ".webm": ("webm", "libvpx-vp9", "yuva420p", "yuv420p"),
    ".mov": ("mov", "png", "rgba", "rgb24"),
    ".mp4": ("mp4", "libx264", None, "yuv420p"),
}


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def split_videos(
    inputs: list[str], out: str | os.PathLike
) -> tuple[list[tuple[Path, Path]], list[str]]:
    """The videos among ``inputs``, each with its output-relative name without suffix (a
    file: its stem; found in a folder, searched recursively: its path in it, outside ``out``
    and the output folders of earlier runs),
    and the inputs left for the photos: files that are not videos, and folders unless they
    hold videos and no image."""
    from pixelwise.data.io import list_images
    from pixelwise.runner import is_output

    outputs = Path(out).resolve()
    videos: list[tuple[Path, Path]] = []
    photos: list[str] = []
    seen: dict[Path, bool] = {}
    for given in inputs:
        path = Path(given)
        if path.is_file() and is_video(path):
            videos.append((path, Path(path.stem)))
            continue
        found = []
        if path.is_dir():
            found = [
                f
                for f in sorted(path.rglob("*"))
                if f.is_file() and is_video(f) and not is_output(f, path, outputs, seen)
            ]
            videos.extend((f, f.relative_to(path).with_suffix("")) for f in found)
        if not found or list_images([path]):
            photos.append(given)
    return videos, photos


def pyav():
    try:
        import av
    except ImportError:
        raise ValueError("videos need PyAV: pip install 'pixelwise[video]'") from None
    return av


def check_output(path: Path, transparent: bool) -> None:
    """Refuse (one line) an output the writers cannot make, before any frame is cut out."""
    if path.suffix.lower() not in WRITERS:
        raise ValueError(f"{path}: write a video as {', '.join(WRITERS)}")
    if transparent and WRITERS[path.suffix.lower()][2] is None:
        raise ValueError(
            f"{path}: an .mp4 has no transparency; write .webm or .mov, or give --background "
            "(or --mask-only) for an opaque video"
        )


def frame_count(path: Path) -> int | None:
    """The clip's number of frames, when its container says (ValueError naming the file when
    it is no video)."""
    av = pyav()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path}: no video stream")
            return container.streams.video[0].frames or None
    except av.error.FFmpegError as exc:
        raise ValueError(f"{path}: cannot read the video ({reason(exc)})") from None


def video_report(path: str | os.PathLike) -> str:
    """``pixelwise info CLIP``: its frame size and how players turn it, frames, frame rate and
    length, codec, and its sound and the outputs that keep it."""
    av = pyav()
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path}: no video stream")
            stream = container.streams.video[0]
            frame = next(container.decode(stream), None)
            turn = quarter_turns(frame) if frame else 0
            rate, frames = stream.average_rate, stream.frames
            seconds = float(stream.duration * stream.time_base) if stream.duration else None
            audio = (
                container.streams.audio[0].codec_context.name if container.streams.audio else None
            )
            width, height = stream.codec_context.width, stream.codec_context.height
            codec = stream.codec_context.name
    except av.error.FFmpegError as exc:
        raise ValueError(f"{path}: cannot read the video ({reason(exc)})") from None
    quarter = f", shown {height} x {width}: players turn it a quarter, as remove-bg does"
    half = ", shown turned half a turn, as remove-bg turns it"
    shown = {1: quarter, 2: half, 3: quarter}.get(turn, "")
    length = f" ({seconds:.1f} s)" if seconds else ""
    lines = [
        f"{path}: {width} x {height} pixels (width x height){shown}; {codec}, "
        f"{frames or 'unknown number of'} frames at {float(rate or 0):g} fps{length}"
    ]
    if audio:
        kept = [f".{fmt}" for fmt, codecs in AUDIO_COPIED.items() if audio in codecs]
        lines.append(f"sound: {audio} (kept in {' and '.join(kept) or 'no output: left out'})")
    else:
        lines.append("no sound")
    return "\n".join(lines)


def reason(exc: Exception) -> str:
    """FFmpeg's words for an error, without its number and file name."""
    return getattr(exc, "strerror", None) or str(exc)


def transform_video(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    cut: Callable[[np.ndarray], Image.Image],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Every frame of ``src`` through ``cut`` (an RGB (H, W, 3) uint8 array -> a PIL image:
    RGBA, RGB or L; a cut-out, an overlay), written to ``dst`` at the clip's frame rate; returns
    the number of frames. ``progress(n)`` is called after each frame. Errors name the file, in
    one line."""
    av = pyav()
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise ValueError(f"{src}: no such file")
    fmt, codec, alpha_format, opaque_format = WRITERS[dst.suffix.lower()]
    frames = []

    def write(tmp: str) -> None:
        formats = (alpha_format, opaque_format)
        frames.append(_transcode(av, src, tmp, fmt, codec, formats, cut, progress))

    try:
        atomic_save(dst, write)
    except av.error.FFmpegError as exc:
        raise ValueError(f"{src}: cannot read or write the video ({reason(exc)})") from None
    return frames[0]


# audio codecs each container takes as they are (the sound is copied, never re-encoded)
AUDIO_COPIED = {
    "webm": ("opus", "vorbis"),
    "mp4": ("aac", "mp3", "opus"),
    "mov": ("aac", "mp3", "alac", "pcm_s16le", "pcm_s24le", "pcm_f32le"),
}


def kept_sound(src: Path, reader, fmt: str):
    """The clip's audio stream when the output container takes its codec as it is; else None,
    said on stderr when there was sound."""
    if not reader.streams.audio:
        return None
    audio = reader.streams.audio[0]
    if audio.codec_context.name in AUDIO_COPIED[fmt]:
        return audio
    name = audio.codec_context.name
    keepers = [f".{container}" for container, codecs in AUDIO_COPIED.items() if name in codecs]
    advice = f"; write {' or '.join(keepers)} to keep it" if keepers else ""
    print(f"{src}: its sound ({name}) is not kept in .{fmt}{advice}", file=sys.stderr)
    return None


def _transcode(av, src, tmp, fmt, codec, formats, cut, progress) -> int:
    """Frames through ``cut`` into ``tmp``; the sound copied when the container takes it. The
    output streams are made at the first frame (its cut-out says whether there is alpha), and
    the sound's packets before it wait for them."""
    count, out, sound, waiting = 0, None, None, []
    with av.open(str(src)) as reader, av.open(tmp, "w", format=fmt) as writer:
        if not reader.streams.video:
            raise ValueError(f"{src}: no video stream")
        stream = reader.streams.video[0]
        audio = kept_sound(src, reader, fmt)
        for packet in reader.demux(*[s for s in (stream, audio) if s is not None]):
            if packet.stream.type == "audio":
                if packet.dts is not None:
                    waiting.append(packet)
                if sound is not None:
                    for early in waiting:
                        early.stream = sound
                        writer.mux(early)
                    waiting = []
                continue
            for frame in packet.decode():
                image = cut(upright(frame))
                if out is None:
                    out = video_stream(writer, codec, stream, image, formats)
                    sound = writer.add_stream_from_template(audio) if audio else None
                writer.mux(out.encode(video_frame(av, image, out)))
                count += 1
                if progress is not None:
                    progress(count)
        if out is None:
            raise ValueError(f"{src}: no frames")
        for early in waiting if sound is not None else ():
            early.stream = sound
            writer.mux(early)
        writer.mux(out.encode(None))
    return count


def upright(frame) -> np.ndarray:
    """A decoded frame's RGB pixels as players show them: turned by the clip's display matrix
    (phones store a portrait clip as landscape frames and a rotation), by quarter turns."""
    pixels = frame.to_ndarray(format="rgb24")
    turns = quarter_turns(frame)
    return np.ascontiguousarray(np.rot90(pixels, turns)) if turns else pixels


def quarter_turns(frame) -> int:
    """The counter-clockwise quarter turns (0..3) players give a decoded frame (PyAV reads the
    display matrix's rotation; 0 where it cannot)."""
    return round((getattr(frame, "rotation", 0) or 0) / 90) % 4


def video_stream(writer, codec: str, source, image: Image.Image, formats):
    """The output's video stream: the clip's frame rate, the first cut-out's size made even,
    with alpha when the cut-out has it and the codec can keep it."""
    out = writer.add_stream(codec, rate=source.average_rate or 25)
    out.width, out.height = image.size[0] // 2 * 2, image.size[1] // 2 * 2
    transparent = image.mode in ("RGBA", "LA")
    out.pix_fmt = formats[0] if transparent and formats[0] else formats[1]
    return out


def video_frame(av, image: Image.Image, out):
    """A cut-out as a frame of the output stream (RGBA where the stream keeps alpha)."""
    rgba = image.convert("RGBA" if out.pix_fmt in ("yuva420p", "rgba") else "RGB")
    pixels = np.ascontiguousarray(np.asarray(rgba)[: out.height, : out.width])
    return av.VideoFrame.from_ndarray(pixels, format="rgba" if rgba.mode == "RGBA" else "rgb24")


def run_videos(
    pairs: list[tuple[Path, Path]],
    fn,
    progress: bool = True,
    skip_existing: bool = False,
    out: Path | None = None,
) -> list[str]:
    """Each (video, output) pair through ``fn`` frame by frame (:func:`transform_video`), with
    a progress bar per clip and a line per output written; returns the failures, one line each
    naming the file (a bad clip does not stop the others). ``out``, the output folder, is
    marked as one when the first clip is written (:func:`~pixelwise.data.write.mark_output`)."""
    from tqdm import tqdm

    from pixelwise.data.write import mark_output

    failures = []
    for src, dst in pairs:
        if skip_existing and dst.exists():
            continue
        try:
            bar = tqdm(total=frame_count(src), desc=src.name, unit="frame", disable=not progress)
            with bar:
                frames = transform_video(src, dst, fn, lambda n, bar=bar: bar.update(1))
            print(f"wrote {dst} ({frames} frames)")
            if out is not None and out.is_dir():
                mark_output(out)
        except ValueError as exc:
            failures.append(str(exc) if str(src) in str(exc) else f"{src}: {exc}")
    return failures


def report_video_failures(failures: list[str]) -> int:
    """List failed clips on stderr; the exit status (1 if any failed)."""
    if failures:
        print(f"{len(failures)} video(s) failed:", file=sys.stderr)
    for reason in failures:
        print(f"  {reason}", file=sys.stderr)
    return 1 if failures else 0
