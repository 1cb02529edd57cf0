"""Nothing in a source is dropped without a word: every audio track, subtitles, and other streams where the
output container holds them (a warning names each one it cannot); a still's alpha plane, 16-bit depth and
grey kept, or a warning for what the output format cannot hold; corrupt images give our one line only."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from skimage import data as skdata

from clips import clip_maker
from sserd_cli.cli import run
from sserd_cli.media.atomic import TEMP_MARK
from sserd_cli.media.image import read_still, write_image

SRT = """1
00:00:00,100 --> 00:00:00,400
Hello

2
00:00:00,500 --> 00:00:00,700
World
"""


def write_multitrack(path, seconds=0.8, face=True, size=(320, 240)):
    """H.264 video (the astronaut, or a flat grey) with two AAC tracks of different rates, layouts and
    languages, as dubbed or commentary releases carry them."""
    make = clip_maker()
    w, h = size
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.options = {"preset": "veryfast"}
        tracks = []
        for rate, layout, language in ((16000, "mono", "eng"), (48000, "stereo", "fra")):
            track = out.add_stream("aac", rate=rate, layout=layout)
            track.metadata["language"] = language
            tracks.append((track, rate, layout))
        for i in range(int(seconds * 25)):
            rgb = make.astronaut_frame(i, 25, w, h) if face else np.full((h, w, 3), 90, np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        for k, (track, rate, layout) in enumerate(tracks):
            channels = 1 if layout == "mono" else 2
            t = np.arange(int(seconds * rate)) / rate
            tone = (0.3 * np.sin(2 * np.pi * 220 * (k + 1) * t)).astype(np.float32)
            for s in range(0, len(tone), 1024):
                frame = av.AudioFrame.from_ndarray(np.tile(tone[s:s + 1024], (channels, 1)), format="fltp", layout=layout)
                frame.sample_rate, frame.pts, frame.time_base = rate, s, Fraction(1, rate)
                out.mux(track.encode(frame))
            out.mux(track.encode(None))
    return path


def with_subtitles(src, out_path, tmp_path):
    """``src`` remuxed with a SubRip track (German) added."""
    srt = tmp_path / "subs.srt"
    srt.write_text(SRT)
    with av.open(str(src)) as a, av.open(str(srt)) as s, av.open(str(out_path), "w") as out:
        copies = {st.index: out.add_stream_from_template(st, opaque=True) for st in a.streams}
        sub = out.add_stream_from_template(s.streams.subtitles[0], opaque=True)
        sub.metadata["language"] = "deu"
        for packet in a.demux():
            if packet.size:
                packet.stream = copies[packet.stream_index]
                out.mux(packet)
        for packet in s.demux():
            if packet.size:
                packet.stream = sub
                out.mux(packet)
    return out_path


def with_data_stream(src, out_path):
    """``src`` in MPEG-TS with a binary data stream added (as timecode or telemetry tracks come)."""
    with av.open(str(src)) as a, av.open(str(out_path), "w") as out:
        copies = {st.index: out.add_stream_from_template(st, opaque=True) for st in a.streams}
        data = out.add_data_stream("bin_data")
        for packet in a.demux():
            if packet.size:
                packet.stream = copies[packet.stream_index]
                out.mux(packet)
        packet = av.Packet(b"telemetry")
        packet.stream, packet.pts, packet.dts, packet.time_base = data, 0, 0, data.time_base
        out.mux(packet)
    return out_path


def audio_tracks(path):
    """Per audio stream: (language, [packet bytes])."""
    with av.open(str(path)) as c:
        out = []
        for stream in c.streams.audio:
            out.append(stream.metadata.get("language"))
        packets = {s.index: [] for s in c.streams.audio}
        for packet in c.demux(*c.streams.audio):
            if packet.size:
                packets[packet.stream_index].append(bytes(packet))
        return [(lang, packets[s.index]) for lang, s in zip(out, c.streams.audio)]


def subtitles(path):
    with av.open(str(path)) as c:
        if not c.streams.subtitles:
            return []
        return [(p.pts, bytes(p)) for p in c.demux(c.streams.subtitles[0]) if p.size]


def frame_count(path):
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("streams")
    multi = write_multitrack(root / "multi.mp4")
    return {
        "multi": multi,
        "noface": write_multitrack(root / "noface.mkv", face=False),
        "subs": with_subtitles(write_multitrack(root / "base.mkv"), root / "subs.mkv", root),
        "data": with_data_stream(multi, root / "data.ts"),
    }


def edit(src, out, *extra):
    # the identity's crop pasted back (generate): pixels under the face mask go through warp and paste-back
    return run(["edit", str(src), "--emotion", "happy", "--model", "identity", "--render", "generate", "-q", "-o",
                str(out), *extra])


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_every_audio_track_is_copied_byte_for_byte(media, tmp_path, suffix, capsys):
    out = tmp_path / f"out{suffix}"
    assert edit(media["multi"], out) == 0
    assert capsys.readouterr().err == ""  # nothing lost, nothing to say
    got, src = audio_tracks(out), audio_tracks(media["multi"])
    assert len(got) == 2 and [packets for _, packets in got] == [packets for _, packets in src]
    assert [lang for lang, _ in got] == ["eng", "fra"]
    assert frame_count(out) == 20


def test_every_audio_track_comes_along_in_a_span_edit_and_a_trim(media, tmp_path):
    assert edit(media["multi"], tmp_path / "span.mp4", "--start", "0.2", "--end", "0.4") == 0
    assert [p for _, p in audio_tracks(tmp_path / "span.mp4")] == [p for _, p in audio_tracks(media["multi"])]
    assert edit(media["multi"], tmp_path / "trim.mp4", "--start", "0.2", "--end", "0.4", "--trim") == 0
    trimmed = audio_tracks(tmp_path / "trim.mp4")
    assert len(trimmed) == 2 and all(0 < len(p) < len(q) for (_, p), (_, q) in zip(trimmed, audio_tracks(media["multi"])))


def test_webm_re_encodes_each_track_and_names_it(media, tmp_path, capsys):
    out = tmp_path / "out.webm"
    assert edit(media["multi"], out) == 0
    err = capsys.readouterr().err
    assert "audio stream 1 (aac, language eng) re-encoded to opus" in err
    assert "audio stream 2 (aac, language fra) re-encoded to opus" in err
    with av.open(str(out)) as c:
        assert [s.codec_context.name for s in c.streams.audio] == ["opus", "opus"]


def test_a_face_less_source_is_copied_with_every_track_and_stays_decodable(media, tmp_path, capsys):
    """The copy path (no face anywhere): all tracks bit for bit, and Matroska's B-frame video (whose
    keyframes carry no dts) still decodes."""
    out = tmp_path / "same.mkv"
    assert edit(media["noface"], out) == 0
    assert "the output is the input unchanged" in capsys.readouterr().err
    assert frame_count(out) == frame_count(media["noface"]) == 20
    with av.open(str(media["noface"])) as a, av.open(str(out)) as b:
        assert [bytes(p) for p in a.demux(video=0) if p.size] == [bytes(p) for p in b.demux(video=0) if p.size]
    assert audio_tracks(out) == audio_tracks(media["noface"])


def test_subtitles_are_copied_where_the_container_holds_them(media, tmp_path, capsys):
    out = tmp_path / "out.mkv"
    assert edit(media["subs"], out) == 0
    assert capsys.readouterr().err == ""
    assert subtitles(out) == subtitles(media["subs"]) == [(100, b"Hello"), (500, b"World")]
    with av.open(str(out)) as c:
        assert c.streams.subtitles[0].metadata.get("language") == "deu"


def test_a_stream_the_container_cannot_hold_is_named(media, tmp_path, capsys):
    assert edit(media["subs"], tmp_path / "out.mp4") == 0
    err = capsys.readouterr().err
    assert ("warning: subtitle stream 3 (srt, language deu) is not carried over: the .mp4 container cannot hold "
            "it; an .mkv output keeps it") in err
    assert len(audio_tracks(tmp_path / "out.mp4")) == 2
    assert edit(media["data"], tmp_path / "data.mkv") == 0
    assert "data stream 3 is not carried over: the .mkv container cannot hold it" in capsys.readouterr().err
    assert frame_count(tmp_path / "data.mkv") == 20


# ------------------------------------------------------------------------------------------------ stills


def astronaut_rgba(height=16):
    rgb = skdata.astronaut()
    alpha = np.tile(np.linspace(0, 255, rgb.shape[1]).astype(np.uint8), (rgb.shape[0], 1))
    alpha[:height] = 7  # an exact value to find again
    return rgb, alpha


def write_raw(path, pixels):
    ok, buf = cv2.imencode(path.suffix, pixels)
    assert ok
    buf.tofile(str(path))
    return path


def test_a_stills_alpha_is_kept_exactly(tmp_path, capsys):
    rgb, alpha = astronaut_rgba()
    src = write_raw(tmp_path / "face.png", np.dstack([rgb[..., ::-1], alpha]))
    out = tmp_path / "out.png"
    assert edit(src, out) == 0
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert got.shape == (512, 512, 4) and np.array_equal(got[..., 3], alpha)
    changed = (got[..., :3] != rgb[..., ::-1]).any(axis=-1)
    assert 0 < changed.mean() < 0.25  # the face was edited, the rest kept
    assert capsys.readouterr().err == ""


def test_a_16_bit_still_stays_16_bit_and_exact_outside_the_face(tmp_path):
    rgb16 = (skdata.astronaut().astype(np.uint16) * 257 + 100).clip(0, 65535).astype(np.uint16)  # not a multiple of 257
    src = write_raw(tmp_path / "deep.png", rgb16[..., ::-1])
    still = read_still(src)
    assert still.depth == 16 and still.rgb.dtype == np.uint8
    out = tmp_path / "out.png"
    assert edit(src, out) == 0
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert got.dtype == np.uint16 and got.shape == rgb16.shape
    same = (got == rgb16[..., ::-1]).all(axis=-1)
    assert 0.75 < same.mean() < 1.0  # every pixel the edit left alone keeps its exact 16-bit value
    face = ~same
    assert np.abs(got[face].astype(np.int64) - rgb16[..., ::-1][face]).mean() < 3 * 257  # identity model: close


def test_a_grey_still_stays_grey_and_a_grey_alpha_still_keeps_its_alpha(tmp_path):
    grey = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2GRAY)
    src = write_raw(tmp_path / "grey.png", grey)
    assert edit(src, tmp_path / "out.png") == 0
    got = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert got.ndim == 2 and got.dtype == np.uint8 and 0.75 < (got == grey).mean() < 1.0


@pytest.mark.parametrize("source, out_name, words", [
    ("rgba", "out.jpg", "the .jpg format holds no alpha channel: the transparency was dropped"),
    ("deep", "out.jpg", "the .jpg format holds 8 bits per channel: the 16-bit source was written in 8 bits"),
    ("deep", "out.webp", "the .webp format holds 8 bits per channel"),
])
def test_what_an_output_format_cannot_hold_is_named(tmp_path, capsys, source, out_name, words):
    rgb, alpha = astronaut_rgba()
    if source == "rgba":
        src = write_raw(tmp_path / "in.png", np.dstack([rgb[..., ::-1], alpha]))
    else:
        src = write_raw(tmp_path / "in.png", rgb[..., ::-1].astype(np.uint16) * 257)
    out = tmp_path / out_name
    assert edit(src, out) == 0
    err = capsys.readouterr().err
    assert f"warning: {out}: {words}" in err
    assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).dtype == np.uint8


def test_a_face_less_rgba_still_converted_keeps_its_alpha(tmp_path):
    blank = np.full((120, 160, 3), 200, np.uint8)
    alpha = np.full((120, 160), 33, np.uint8)
    src = write_raw(tmp_path / "blank.png", np.dstack([blank, alpha]))
    assert edit(src, tmp_path / "blank.tiff") == 0
    got = cv2.imread(str(tmp_path / "blank.tiff"), cv2.IMREAD_UNCHANGED)
    assert got.shape == (120, 160, 4) and np.array_equal(got[..., 3], alpha)


@pytest.mark.parametrize("damage", ["crc", "truncated"])
def test_a_corrupt_png_gives_our_line_and_nothing_before_it(tmp_path, damage):
    """libpng and OpenCV write their complaints straight to file descriptor 2: a real process shows them."""
    ok, buf = cv2.imencode(".png", skdata.astronaut())
    data = bytearray(buf.tobytes())
    if damage == "crc":
        data[5000:5100] = b"\0" * 100
    else:
        data = data[:3000]
    src = tmp_path / "bad.png"
    src.write_bytes(bytes(data))
    result = subprocess.run([sys.executable, "-c", "from sserd_cli.cli import main; main()", "edit", str(src),
                             "--emotion", "happy", "--model", "identity", "-o", str(tmp_path / "out.png")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {src}: not an image file this build can read "
                                                  "(png, jpg, bmp, tiff, webp)"], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.png"]


def test_still_writes_leave_no_partial_file(tmp_path):
    write_image(tmp_path / "face.png", skdata.astronaut())
    assert edit(tmp_path / "face.png", tmp_path / "out.bmp") == 0
    assert not [p for p in tmp_path.iterdir() if TEMP_MARK in p.name]
