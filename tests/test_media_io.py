"""Media layer: probing, streaming decode/encode with exact pts, audio packet copy, rotation, atomic outputs,
still images, and one clear error for each kind of bad file."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from clips import clip_maker, write_flat_clip
from sserd_cli.errors import SserdError
from sserd_cli.media.atomic import TEMP_MARK, atomic_output, check_output
from sserd_cli.media.decode import decode_frames
from sserd_cli.media.encode import EncodeSettings, VideoWriter, copy_streams
from sserd_cli.media.image import read_image, write_image
from sserd_cli.media.probe import probe_video



@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    make = clip_maker()
    root = tmp_path_factory.mktemp("media")
    return {
        "25": make.write_clip(root / "a25.mp4", seconds=1.0, size=(320, 240), fps=25),
        "ntsc": make.write_clip(root / "ntsc.mp4", seconds=1.0, size=(320, 240), fps=Fraction(30000, 1001)),
        "silent": make.write_clip(root / "silent.mp4", seconds=0.6, size=(320, 240), fps=25, audio=False),
        "rotated": make.write_clip(root / "rot.mp4", seconds=0.6, size=(240, 320), fps=25, rotation=90),
    }


def video_pts(path):
    with av.open(str(path)) as c:
        return [f.pts for f in c.decode(video=0)]


def audio_packets(path):
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return []
        return [(p.pts, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.size]


def first_rotation(path):
    with av.open(str(path)) as c:
        return next(iter(c.decode(video=0))).rotation


def roundtrip(info, out, **kw):
    writer = VideoWriter(out, info, EncodeSettings(**kw))
    for frame in decode_frames(info):
        writer.write(frame)
    writer.close()
    return out


def test_probe_describes_streams(clips):
    info = probe_video(clips["ntsc"])
    assert (info.width, info.height, info.rotation) == (320, 240, 0)
    assert info.rate == Fraction(30000, 1001) and info.frames == 30
    assert info.codec == "h264" and info.audio_codec == "aac"
    assert probe_video(clips["silent"]).has_audio is False
    rotated = probe_video(clips["rotated"])
    assert rotated.rotation == 90 and (rotated.width, rotated.height) == (320, 240)  # stored landscape


@pytest.mark.parametrize("name", ["25", "ntsc", "silent", "rotated"])
def test_reencode_keeps_pts_audio_bytes_and_rotation(clips, tmp_path, name):
    src = clips[name]
    out = roundtrip(probe_video(src), tmp_path / "out.mp4")
    assert video_pts(out) == video_pts(src)
    assert audio_packets(out) == audio_packets(src)
    assert first_rotation(out) == first_rotation(src)
    with av.open(str(out)) as c:
        assert c.streams.video[0].time_base == probe_video(src).time_base


def test_lossless_setting_is_exact(clips, tmp_path):
    info = probe_video(clips["25"])
    out = roundtrip(info, tmp_path / "exact.mkv", lossless=True)
    with av.open(str(src := clips["25"])) as a, av.open(str(out)) as b:
        for fa, fb in zip(a.decode(video=0), b.decode(video=0)):
            assert np.array_equal(fa.to_ndarray(format="rgb24"), fb.to_ndarray(format="rgb24"))
    assert src.exists()


def test_webm_reencodes_audio_and_says_so(clips, tmp_path):
    info = probe_video(clips["25"])
    notes = []
    writer = VideoWriter(tmp_path / "out.webm", info, EncodeSettings(), note=notes.append)
    for frame in decode_frames(info):
        writer.write(frame)
    writer.close()
    assert len(notes) == 1 and "re-encoded" in notes[0] and "aac" in notes[0]
    with av.open(str(tmp_path / "out.webm")) as c:
        assert c.streams.audio[0].codec_context.name == "opus"
        assert c.streams.video[0].codec_context.name == "vp9"
    assert len(video_pts(tmp_path / "out.webm")) == 25


def test_trim_shifts_times_and_keeps_span(clips, tmp_path):
    info = probe_video(clips["25"])
    frames = list(decode_frames(info, start=0.2, end=0.6))
    assert len(frames) == 10
    writer = VideoWriter(tmp_path / "cut.mp4", info, EncodeSettings(), start=0.2)
    for frame in frames:
        writer.write(frame)
    writer.close(end=0.6)
    pts = video_pts(tmp_path / "cut.mp4")
    assert len(pts) == 10 and pts[0] == 0
    audio = audio_packets(tmp_path / "cut.mp4")
    assert 0 < len(audio) < len(audio_packets(clips["25"]))


def test_copy_streams_is_bit_exact(clips, tmp_path):
    out = tmp_path / "copy.mp4"
    copy_streams(probe_video(clips["rotated"]), out)
    with av.open(str(clips["rotated"])) as a, av.open(str(out)) as b:
        assert [bytes(p) for p in a.demux(video=0) if p.size] == [bytes(p) for p in b.demux(video=0) if p.size]
    assert audio_packets(out) == audio_packets(clips["rotated"])
    assert first_rotation(out) == 90


def test_bad_files_give_one_clear_error(clips, tmp_path):
    cases = {}
    cases["missing"] = tmp_path / "nope.mp4"
    (tmp_path / "notes.mp4").write_text("this is not a video\n" * 50)
    cases["not a video"] = tmp_path / "notes.mp4"
    (tmp_path / "empty.mp4").write_bytes(b"")
    cases["empty"] = tmp_path / "empty.mp4"
    data = clips["25"].read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    cases["truncated"] = tmp_path / "cut.mp4"
    cases["folder"] = tmp_path
    with av.open(str(tmp_path / "zero.mp4"), "w") as c:  # a valid container with a video stream and no frames
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        c.start_encoding()
    cases["zero frames"] = tmp_path / "zero.mp4"
    with av.open(str(tmp_path / "zero.mkv"), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        c.start_encoding()
    cases["zero frames mkv"] = tmp_path / "zero.mkv"
    words = {"missing": "no such file", "not a video": "not a video", "empty": "empty", "truncated": "damaged",
             "folder": "folder", "zero frames": "zero-length", "zero frames mkv": "zero-length"}
    for name, path in cases.items():
        with pytest.raises(SserdError) as err:
            probe_video(path)
        message = str(err.value)
        assert "\n" not in message and str(path) in message and words[name] in message, (name, message)


def test_check_output_refusals(clips, tmp_path):
    existing = tmp_path / "old.mp4"
    existing.write_bytes(b"x")
    with pytest.raises(SserdError, match="already exists; pass --overwrite"):
        check_output(existing)
    assert check_output(existing, overwrite=True) == existing
    with pytest.raises(SserdError, match="overwrite the source"):
        check_output(clips["25"], overwrite=True, sources=(clips["25"],))
    with pytest.raises(SserdError, match="does not exist"):
        check_output(tmp_path / "no" / "out.mp4")
    locked = unwritable_folder(tmp_path)
    with pytest.raises(SserdError, match="not writable"):
        with atomic_output(check_output(locked / "out.mp4")):
            pass


def unwritable_folder(tmp_path):
    """A folder this user cannot create files in: a read-only one, or sysfs when running as root."""
    locked = tmp_path / "locked"
    locked.mkdir(exist_ok=True)
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):  # root ignores permission bits
        locked.chmod(0o700)
        locked = Path("/sys")
        if not locked.is_dir():
            pytest.skip("no folder this user cannot write to")
    return locked


@pytest.mark.parametrize("failure", [RuntimeError("boom"), KeyboardInterrupt()])
def test_atomic_output_leaves_nothing_on_failure(tmp_path, failure):
    target = tmp_path / "out.mp4"
    with pytest.raises(type(failure)):
        with atomic_output(target) as temp:
            assert temp.exists()  # claimed up front
            assert temp.parent == tmp_path and TEMP_MARK in temp.name and temp.suffix == ".mp4"
            temp.write_bytes(b"half")
            raise failure
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_replaces_target(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_output(target) as temp:
        temp.write_text("new")
        assert target.read_text() == "old"
    assert target.read_text() == "new" and list(tmp_path.iterdir()) == [target]


def test_image_roundtrip_and_errors(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    write_image(tmp_path / "a.png", rgb)
    assert np.array_equal(read_image(tmp_path / "a.png"), rgb)
    write_image(tmp_path / "a.jpg", rgb)
    assert read_image(tmp_path / "a.jpg").shape == rgb.shape
    (tmp_path / "bad.png").write_bytes(b"not png at all")
    with pytest.raises(SserdError, match="not an image"):
        read_image(tmp_path / "bad.png")


def test_variable_frame_rate_pts_survive(tmp_path):
    """Frames at irregular times (a VFR phone clip) keep their exact pts through decode and encode."""
    src = tmp_path / "vfr.mp4"
    times = [0, 1, 2, 4, 5, 7, 10, 11, 15, 16]
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.time_base = Fraction(1, 1000)
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = t * 40, Fraction(1, 1000)
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    out = roundtrip(probe_video(src), tmp_path / "out.mp4")
    assert video_pts(src) == video_pts(out) and len(video_pts(out)) == len(times)


@pytest.mark.parametrize("suffix", [".mkv", ".mov", ".webm", ".avi"])
def test_other_containers_roundtrip(tmp_path, suffix):
    src = clip_maker().write_clip(tmp_path / f"in{suffix}", seconds=0.4, size=(160, 120), fps=25)
    out = roundtrip(probe_video(src), tmp_path / f"out{suffix}")
    assert len(video_pts(out)) == len(video_pts(src)) == 10
    # AAC in mkv/mov/avi, Opus in WebM: copied as is (AVI counts audio time in its own units: compare bytes)
    assert [b for _, b in audio_packets(out)] == [b for _, b in audio_packets(src)]
    if suffix in (".mkv", ".mov", ".webm"):
        assert video_pts(out) == video_pts(src)


def test_odd_frame_size_is_kept(tmp_path):
    src = write_flat_clip(tmp_path / "odd.mkv", 65, 47, "yuv444p", 5)
    out = roundtrip(probe_video(src), tmp_path / "out.mp4")
    with av.open(str(out)) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (65, 47)
    assert len(video_pts(out)) == 5


def test_bt709_source_keeps_its_colour_matrix(tmp_path):
    """Edited frames go back to YUV with the source's matrix, and the output is tagged like the source."""
    from sserd_cli.media.frames import FrameConverter

    src = tmp_path / "hd.mp4"
    make = clip_maker()
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        s.codec_context.colorspace = 1  # BT.709
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(make.astronaut_frame(i, 25, 160, 120), format="rgb24")
            frame = frame.reformat(format="yuv420p", dst_colorspace=1)
            frame.colorspace, frame.pts = 1, i
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    info = probe_video(src)
    converter = FrameConverter()
    writer = VideoWriter(tmp_path / "out.mp4", info, EncodeSettings())
    for frame in decode_frames(info):
        assert frame.colorspace == 1
        back = converter.from_rgb(converter.to_rgb(frame), frame, "yuv420p")
        chroma_error = np.abs(back.to_ndarray()[120:].astype(int) - frame.to_ndarray()[120:]).mean()
        assert chroma_error < 0.3  # a BT.601 round trip of BT.709 content is off by ~0.6 on average
        writer.write(back)
    writer.close()
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert next(iter(c.decode(video=0))).colorspace == 1


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv444p"])
def test_an_edited_rectangle_is_patched_into_the_decoded_frames_own_planes(pix_fmt):
    """Only the rectangle an edit changed is converted back from RGB: outside it the decoded frame's planes
    stay bit for bit; a frame whose edit changed nothing is the decoded frame itself."""
    from sserd_cli.media.frames import FrameConverter

    converter = FrameConverter()
    rgb = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    source = av.VideoFrame.from_ndarray(rgb, "rgb24")
    source.pts, source.time_base = 7, Fraction(1, 25)
    decoded = converter.from_rgb(rgb, source, pix_fmt)
    edited = converter.to_rgb(decoded)
    edited[11:31, 13:41] = 200
    out = converter.patched(decoded, edited, (13, 11, 41, 31), pix_fmt)
    assert (out.pts, out.time_base, out.format.name) == (7, Fraction(1, 25), pix_fmt)
    shown, before = converter.to_rgb(out), converter.to_rgb(decoded)
    assert np.array_equal(shown[32:], before[32:]) and np.array_equal(shown[:, 42:], before[:, 42:])
    assert np.abs(shown[14:28, 16:38].astype(int) - 200).max() <= 2  # the inside shows the edit
    assert converter.patched(decoded, edited, (0, 0, 0, 0), pix_fmt) is decoded
