"""sserd prepare on tiny MEAD / RAVDESS / folder trees made of real (PyAV-encoded) videos of a real face."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from sserd_cli.cli import run
from sserd_cli.data.index import read_index, read_meta

FRAMES = 6
FPS = 25


def _face_frames(n: int, seed: int) -> list[np.ndarray]:
    """The astronaut photo (a real face dlib finds) shifted a little per frame inside a 256x192 frame."""
    from skimage.data import astronaut
    import cv2

    face = cv2.resize(astronaut(), (192, 192), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        canvas = np.full((192, 256, 3), 40, np.uint8)
        dx = int(rng.integers(20, 44))
        canvas[:, dx:dx + 192] = face
        frames.append(canvas)
    return frames


def write_video(path: Path, n: int = FRAMES, seed: int = 0, audio: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 256, 192, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        astream = None
        if audio:
            astream = container.add_stream("aac", rate=16000)
            astream.layout = "mono"
        for frame_rgb in _face_frames(n, seed):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame_rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if astream is not None:
            t = np.arange(int(16000 * n / FPS)) / 16000
            samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            aframe = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            aframe.sample_rate = 16000
            for packet in astream.encode(aframe):
                container.mux(packet)
            for packet in astream.encode():
                container.mux(packet)



def make_mead(root: Path) -> dict:
    """Two speakers; neutral level_1 and angry level_3 with 2 clips each; a contempt folder; one corrupt clip."""
    for s_index, speaker in enumerate(["M003", "W015"]):
        front = root / speaker / "video" / "front"
        for e_index, (emotion, level) in enumerate([("neutral", 1), ("angry", 3)]):
            for clip in range(2):
                write_video(front / emotion / f"level_{level}" / f"{clip + 1:03d}.mp4", seed=s_index * 10 + e_index * 2 + clip,
                            audio=clip == 0)
        write_video(front / "contempt" / "level_1" / "001.mp4", seed=99, audio=False)
    broken = root / "M003" / "video" / "front" / "angry" / "level_3" / "003.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)  # an mp4 header, then garbage
    (root / "M099").mkdir()  # a speaker folder we did not ask for
    return {"broken": broken}


def make_ravdess(root: Path) -> None:
    actor = root / "Actor_01"
    names = [
        "01-01-01-01-01-01-01",  # full AV, speech, neutral
        "02-01-01-01-01-01-01",  # video-only twin of the same take: deduplicated
        "01-01-02-02-01-01-01",  # calm, strong -> neutral (or dropped)
        "01-01-05-02-01-01-01",  # angry strong
        "01-01-05-01-02-01-01",  # angry normal
        "01-02-03-01-01-01-01",  # song: skipped
        "03-01-03-01-01-01-01",  # audio only: skipped
    ]
    for i, name in enumerate(names):
        write_video(actor / f"{name}.mp4", n=4, seed=i, audio=not name.startswith("02"))
    write_video(root / "Actor_02" / "01-01-04-01-01-01-02.mp4", n=4, seed=20)  # sad, actor 2


def test_mead_index_splits_report_and_resume(tmp_path, capsys):
    root, out = tmp_path / "MEAD", tmp_path / "data"
    make_mead(root)
    code = run(["prepare", "mead", str(root), "-o", str(out), "--speakers", "M003,W015", "--quiet", "--seed", "1"])
    assert code == 0
    err = capsys.readouterr().err
    assert "1 broken video" in err and "003.mp4" in err
    rows = read_index(out)
    assert {r.speaker for r in rows} == {"M003", "W015"}
    assert {r.emotion for r in rows} == {"neutral", "angry"}  # contempt skipped
    clips = {r.clip for r in rows}
    assert len(clips) == 8 and "M003_angry_level3_001" in clips
    assert len(rows) == 8 * FRAMES
    for clip in clips:  # every frame found, numbered as in the video
        assert sorted(r.frame for r in rows if r.clip == clip) == list(range(FRAMES))
    assert {r.intensity for r in rows if r.emotion == "angry"} == {1.0}
    assert {round(r.intensity, 3) for r in rows if r.emotion == "neutral"} == {0.333}
    # 90/10 per speaker and emotion with 2 clips each: one test clip per group
    for speaker in ("M003", "W015"):
        for emotion in ("neutral", "angry"):
            splits = {r.clip: r.split for r in rows if r.speaker == speaker and r.emotion == emotion}
            assert sorted(splits.values()) == ["test", "train"]
    from skimage.io import imread
    crop = imread(out / rows[0].path)
    assert crop.shape == (256, 256, 3)
    meta = read_meta(out)
    assert meta["framing"]["align_size"] == 320 and meta["framing"]["crop_size"] == 256
    assert [b["clip"] for b in meta["broken"]] == ["M003_angry_level3_003"]
    with_audio = [c for c, m in meta["clips"].items() if m["audio"]]
    assert sorted(with_audio) == sorted(c for c in clips if c.endswith("_001"))
    assert (out / meta["clips"]["W015_neutral_level1_001"]["audio"]).is_file()

    # resume: delete one clip's part and one crop of another; only those are redone, the rest untouched
    before = {p: p.stat().st_mtime_ns for p in (out / "crops").rglob("*.png")}
    (out / "parts" / "W015_angry_level3_002.json").unlink()
    (out / "crops" / "M003" / "M003_neutral_level1_001" / "000002.png").unlink()
    assert run(["prepare", "mead", str(root), "-o", str(out), "--speakers", "M003,W015", "--quiet", "--seed", "1"]) == 0
    assert "6 resumed" in capsys.readouterr().err
    again = read_index(out)
    assert again == rows
    changed = {p for p in (out / "crops").rglob("*.png") if before.get(p) != p.stat().st_mtime_ns}
    assert {p.parent.name for p in changed} == {"W015_angry_level3_002", "M003_neutral_level1_001"}


def test_mead_selection_and_every_n(tmp_path):
    root, out = tmp_path / "MEAD", tmp_path / "data"
    make_mead(root)
    code = run(["prepare", "mead", str(root), "-o", str(out), "--speakers", "W015", "--emotions", "angry",
                "--every-n-frames", "2", "--size", "128", "--resize", "160", "--quiet"])
    assert code == 0
    rows = read_index(out)
    assert {(r.speaker, r.emotion) for r in rows} == {("W015", "angry")}
    assert sorted({r.frame for r in rows}) == [0, 2, 4]
    from skimage.io import imread
    assert imread(out / rows[0].path).shape == (128, 128, 3)
    # resuming with another framing would mix two crops: refused
    assert run(["prepare", "mead", str(root), "-o", str(out), "--speakers", "W015", "--quiet"]) == 2


def test_ravdess_codes_calm_and_dedup(tmp_path):
    root = tmp_path / "RAVDESS"
    make_ravdess(root)
    out = tmp_path / "rav"
    assert run(["prepare", "ravdess", str(root), "-o", str(out), "--speakers", "1,2", "--workers", "2", "--quiet"]) == 0
    rows = read_index(out)
    clips = {r.clip: (r.speaker, r.emotion, r.intensity) for r in rows}
    assert clips == {
        "Actor_01_01-01-01-01-01-01-01": ("Actor_01", "neutral", 0.5),
        "Actor_01_01-01-02-02-01-01-01": ("Actor_01", "neutral", 1.0),
        "Actor_01_01-01-05-02-01-01-01": ("Actor_01", "angry", 1.0),
        "Actor_01_01-01-05-01-02-01-01": ("Actor_01", "angry", 0.5),
        "Actor_02_01-01-04-01-01-01-02": ("Actor_02", "sad", 0.5),
    }
    assert all(sorted(r.frame for r in rows if r.clip == c) == [0, 1, 2, 3] for c in clips)
    dropped = tmp_path / "rav2"
    assert run(["prepare", "ravdess", str(root), "-o", str(dropped), "--speakers", "1", "--drop-calm", "--quiet"]) == 0
    assert "Actor_01_01-01-02-02-01-01-01" not in {r.clip for r in read_index(dropped)}


def test_folder_layout_with_fixed_split(tmp_path):
    write_video(tmp_path / "clips" / "a.mp4", n=3, seed=1, audio=False)
    write_video(tmp_path / "clips" / "b.mp4", n=3, seed=2, audio=False)
    (tmp_path / "clips" / "labels.csv").write_text("path,speaker,emotion,split\na.mp4,anna,Happiness,train\nb.mp4,anna,fearful,test\n")
    out = tmp_path / "data"
    assert run(["prepare", "folder", str(tmp_path / "clips"), "-o", str(out), "--quiet"]) == 0
    rows = read_index(out)
    assert {(r.clip, r.emotion, r.split) for r in rows} == {("anna_a", "happy", "train"), ("anna_b", "fear", "test")}
    assert len(rows) == 6


@pytest.mark.parametrize("argv, needle", [
    (["prepare", "mead", "{tmp}/nothing", "-o", "{tmp}/o"], "does not exist"),
    (["prepare", "mead", "{tmp}", "-o", "{tmp}/o"], "does not look like MEAD"),
    (["prepare", "ravdess", "{tmp}", "-o", "{tmp}/o"], "does not look like RAVDESS"),
    (["prepare", "folder", "{tmp}", "-o", "{tmp}/o"], "no labels.csv"),
    (["prepare", "mead", "{tmp}", "-o", "{tmp}/o", "--emotions", "contempt"], "unknown emotion"),
])
def test_bad_roots_are_one_line_errors(tmp_path, capsys, argv, needle):
    (tmp_path / "stuff").mkdir()
    code = run([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err


def test_unknown_layout_is_rejected(tmp_path, capsys):
    assert run(["prepare", "voxceleb", str(tmp_path), "-o", str(tmp_path / "o")]) == 2
