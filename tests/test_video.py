"""Videos through remove-bg: every frame cut out, the clip's frame count and rate kept, the
alpha written where the cut says (WebM VP9 with alpha, MOV of PNG frames), bad clips listed."""

import sys

import numpy as np
import pytest
from PIL import Image

from pixelwise.cli import main

av = pytest.importorskip("av", reason="videos need the [video] extra (PyAV)")

from pixelwise.video import transform_video  # noqa: E402

W, H, FRAMES = 96, 64, 12


def disc_clip(path, rate=10, sound=False, rotation=0):
    """A bright disc moving right on a dark background (with ``sound``, an AAC tone beside it;
    ``rotation``: the display matrix's counter-clockwise degrees, as phones record); returns
    each frame's disc mask as stored."""
    yy, xx = np.mgrid[:H, :W]
    discs = []
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        audio = container.add_stream("aac", rate=44100) if sound else None
        for t in range(FRAMES):
            disc = (yy - 32) ** 2 + (xx - 20 - 4 * t) ** 2 < 196
            image = np.where(disc[..., None], 220, 30).astype(np.uint8).repeat(3, -1)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            discs.append(disc)
        if audio is not None:
            tone = np.sin(np.arange(44100 * FRAMES // rate) * 0.06).astype(np.float32) * 0.3
            for i in range(0, len(tone), 1024):
                frame = av.AudioFrame.from_ndarray(tone[None, i : i + 1024], format="flt")
                frame.sample_rate = 44100
                container.mux(audio.encode(frame))
            container.mux(audio.encode(None))
        container.mux(stream.encode(None))
    return discs


def sound_of(path):
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        return np.concatenate([f.to_ndarray().ravel() for f in container.decode(audio=0)])


def bright_is_kept(rgb):
    alpha = (rgb.mean(-1) > 128).astype(np.uint8) * 255
    return Image.fromarray(np.dstack([rgb, alpha]), "RGBA")


def read_alpha(path):
    """Each frame's alpha; VP9's alpha is a side channel only libvpx's decoder reads."""
    alphas = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate
        vp9 = stream.codec_context.name == "vp9"
        decoder = av.codec.CodecContext.create("libvpx-vp9", "r") if vp9 else None
        frames = (
            (f for packet in container.demux(stream) for f in decoder.decode(packet))
            if vp9
            else container.decode(stream)
        )
        for frame in frames:
            alphas.append(frame.to_ndarray(format="rgba")[..., 3])
    return alphas, rate


@pytest.mark.parametrize("suffix", [".webm", ".mov"])
def test_every_frame_cut_out_with_its_alpha(tmp_path, suffix):
    discs = disc_clip(tmp_path / "clip.mp4")
    seen = []
    out = tmp_path / f"cut{suffix}"
    count = transform_video(tmp_path / "clip.mp4", out, bright_is_kept, seen.append)
    assert count == FRAMES and seen == list(range(1, FRAMES + 1))
    alphas, rate = read_alpha(out)
    assert len(alphas) == FRAMES and rate == 10
    for alpha, disc in zip(alphas, discs):
        agree = ((alpha > 127) == disc).mean()
        assert agree > 0.98 if suffix == ".webm" else agree > 0.995  # VP9 is lossy, PNG is not


@pytest.mark.skipif(
    not hasattr(av.video.stream.VideoStream, "set_display_rotation"), reason="PyAV >= 17 writes it"
)
@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_a_phone_clip_is_cut_out_upright(tmp_path, rotation):
    """A portrait clip stored as landscape frames with a display rotation: each frame is cut
    out as players show it, and written so (standing up, no rotation left to apply)."""
    discs = disc_clip(tmp_path / "clip.mp4", rotation=rotation)
    shapes = []

    def cut(rgb):
        shapes.append(rgb.shape)
        return bright_is_kept(rgb)

    transform_video(tmp_path / "clip.mp4", tmp_path / "cut.mov", cut)
    turned = {90: (W, H), -90: (W, H), 180: (H, W)}[rotation]
    assert shapes == [(*turned, 3)] * FRAMES
    alphas, _ = read_alpha(tmp_path / "cut.mov")
    for alpha, disc in zip(alphas, discs):
        np.testing.assert_array_equal(alpha > 127, np.rot90(disc, rotation // 90))


def test_remove_bg_on_a_clip_photos_and_a_bad_clip(tmp_path, capsys):
    disc_clip(tmp_path / "clip.mp4")
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    Image.fromarray(np.full((40, 40, 3), 200, np.uint8)).save(tmp_path / "photo.png")
    base = ["remove-bg", "--checkpoint", "foreground", "--method", "model", "--no-progress"]
    inputs = [str(tmp_path / n) for n in ("clip.mp4", "bad.mp4", "photo.png")]
    assert main([*base, *inputs, "-o", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert "bad.mp4: cannot read the video" in captured.err
    assert (tmp_path / "out" / "photo.png").is_file()
    assert len(read_alpha(tmp_path / "out" / "clip.webm")[0]) == FRAMES
    one = [*base, str(tmp_path / "clip.mp4"), "-o", str(tmp_path / "green.mp4")]
    assert main(one) == 2  # an mp4 has no alpha
    assert "an .mp4 has no transparency" in capsys.readouterr().err
    assert main([*one, "--background", "#00ff00"]) == 0
    with av.open(str(tmp_path / "green.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == FRAMES
    assert main([*base, str(tmp_path / "clip.mp4"), "--box", "1,1,9,9"]) == 2


def test_folders_are_searched_for_videos_too(tmp_path, capsys):
    """A folder of clips (and photos) given to remove-bg or predict: every video in it, at any
    depth, is processed as if named, its output keeping the folder's structure; the outputs
    under the input folder are no inputs on a rerun, nor on a run with another output folder
    (the first is marked as one). (It was: "no image files in ...".)"""
    clips = tmp_path / "clips"
    (clips / "day2").mkdir(parents=True)
    disc_clip(clips / "a.mp4")
    disc_clip(clips / "day2" / "a.mov")
    base = ["remove-bg", "--checkpoint", "foreground", "--method", "model", "--no-progress"]
    out = clips / "cut"
    assert main([*base, str(clips), "-o", str(out)]) == 0
    for name in ("a.webm", "day2/a.webm"):
        assert len(read_alpha(out / name)[0]) == FRAMES, name
    assert main([*base, str(clips), "-o", str(out)]) == 0  # not the .webm files under cut/
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        ".pixelwise-output",
        "a.webm",
        "day2",
        "day2/a.webm",
    ]
    assert main([*base, str(clips), "-o", str(clips / "cut2")]) == 0  # cut/ marked: no input
    assert sorted(
        p.relative_to(clips / "cut2").as_posix() for p in (clips / "cut2").rglob("*")
    ) == [
        ".pixelwise-output",
        "a.webm",
        "day2",
        "day2/a.webm",
    ]
    Image.fromarray(np.full((40, 40, 3), 200, np.uint8)).save(clips / "photo.png")
    assert main([*base, str(clips), "-o", str(tmp_path / "both")]) == 0
    written = {p.name for p in (tmp_path / "both").rglob("*.*")}
    assert written == {"a.webm", "photo.png", ".pixelwise-output"}  # the photos' run marks it
    argv = ["predict", "foreground", str(clips / "day2"), "-o", str(tmp_path / "p")]
    assert main([*argv, "--no-progress"]) == 0
    assert (tmp_path / "p" / "overlays" / "a.mp4").is_file()
    (clips / "day2" / "a.mov").unlink()
    assert main([*base, str(clips / "day2"), "-o", str(tmp_path / "none")]) == 2
    assert "no image files in" in capsys.readouterr().err


def test_without_pyav_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ValueError, match=r"pixelwise\[video\]"):
        transform_video(tmp_path / "clip.mp4", tmp_path / "out.webm", bright_is_kept)


def test_predict_on_a_clip_writes_its_overlay_video(tmp_path, capsys):
    """predict MODEL clip.mp4: each frame's classes over it, as OUT/overlays/clip.mp4 (the
    overlay of a frame is what predict writes for that frame as a photo, up to H.264's loss)."""
    from pixelwise import load_model, predict
    from pixelwise.overlays import overlay

    disc_clip(tmp_path / "clip.mp4")
    out = tmp_path / "out"
    argv = ["predict", "foreground", str(tmp_path / "clip.mp4"), "-o", str(out), "--no-progress"]
    assert main([*argv, "--precision", "fp32"]) == 0
    with av.open(str(tmp_path / "clip.mp4")) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    with av.open(str(out / "overlays" / "clip.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    seg = load_model("foreground")
    expected = np.asarray(overlay(first, predict(seg, first, "fp32"), seg.palette()))
    assert len(frames) == FRAMES and frames[0].shape == expected.shape
    assert np.abs(frames[0].astype(int) - expected).mean() < 4  # H.264 is lossy
    # --input-range maps each frame as it maps an image
    from pixelwise.data.encoding import map_range

    ranged = tmp_path / "ranged"
    argv[-2] = str(ranged)
    assert main([*argv, "--precision", "fp32", "--input-range", "0,128"]) == 0
    with av.open(str(ranged / "overlays" / "clip.mp4")) as container:
        first_ranged = next(container.decode(video=0)).to_ndarray(format="rgb24")
    seen = map_range(first, 0, 128)
    expected = np.asarray(overlay(seen, predict(seg, seen, "fp32"), seg.palette()))
    assert np.abs(first_ranged.astype(int) - expected).mean() < 4
    assert np.abs(first_ranged.astype(int) - frames[0]).mean() > 10  # brighter than without
    # what only images get is said, not skipped quietly
    argv[-2] = str(tmp_path / "again")
    assert main([*argv, "--precision", "fp32", "--geojson", "--labelme"]) == 0
    assert "1 video: an overlay video each; --labelme, --geojson apply to images only" in (
        capsys.readouterr().err
    )
    # commands that take images alone say what the clip is, not "not a recognised image"
    argv = ["segment", "nuclei", str(tmp_path / "clip.mp4"), "-o", str(tmp_path / "s")]
    assert main([*argv, "--no-progress"]) == 1
    assert "clip.mp4: a video, not an image (predict and remove-bg take videos;" in (
        capsys.readouterr().err
    )


def test_the_sound_is_copied_where_the_container_takes_it(tmp_path, capsys):
    """AAC sound goes into .mp4 and .mov sample for sample (copied, not re-encoded); .webm takes
    no AAC, so it is left out there and a line says so."""
    disc_clip(tmp_path / "clip.mp4", sound=True)
    original = sound_of(tmp_path / "clip.mp4")
    for suffix in (".mp4", ".mov"):
        out = tmp_path / f"cut{suffix}"
        assert (
            transform_video(tmp_path / "clip.mp4", out, lambda rgb: Image.fromarray(rgb)) == FRAMES
        )
        assert np.array_equal(sound_of(out), original)
    transform_video(tmp_path / "clip.mp4", tmp_path / "cut.webm", bright_is_kept)
    assert sound_of(tmp_path / "cut.webm") is None
    assert "its sound (aac) is not kept in .webm; write .mp4 or .mov" in capsys.readouterr().err


def test_info_on_a_clip_says_how_it_is_shown_and_its_sound(tmp_path, capsys):
    if hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        disc_clip(tmp_path / "turned.mp4", rotation=90)
        assert main(["info", str(tmp_path / "turned.mp4")]) == 0
        out = capsys.readouterr().out
        assert f"{W} x {H} pixels (width x height), shown {H} x {W}: players turn it" in out
    disc_clip(tmp_path / "clip.mp4", sound=True)
    assert main(["info", str(tmp_path / "clip.mp4")]) == 0
    out = capsys.readouterr().out
    assert f"h264, {FRAMES} frames at 10 fps (1.2 s)" in out
    assert "sound: aac (kept in .mp4 and .mov)" in out
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    assert main(["info", str(tmp_path / "bad.mp4")]) == 2
    assert "bad.mp4: cannot read the video" in capsys.readouterr().err
