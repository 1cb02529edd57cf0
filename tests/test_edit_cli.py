"""`sserd edit` as a user meets it: stills, batches, no-face videos, trimming, messages, and every bad input
giving one clear line, a non-zero exit and nothing half-written (Ctrl-C included)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from skimage import data as skdata

from clips import clip_maker, write_flat_clip
from sserd_cli.cli import run
from sserd_cli.media.atomic import TEMP_MARK
from sserd_cli.media.image import read_image, write_image
from sserd_cli.media.probe import probe_video
from sserd_cli.pipeline.edit import EditOptions, edit_path
from sserd_cli.pipeline.models import IdentityModel, Target



def no_face_frame(i, fps, w, h):
    yy, xx = np.mgrid[0:h, 0:w]
    r = (xx * 255 // w + 3 * i) % 256
    return np.stack([r, yy * 255 // h, np.full_like(r, 90)], axis=-1).astype(np.uint8)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    make = clip_maker()
    root = tmp_path_factory.mktemp("cli")
    paths = {
        "clip": make.write_clip(root / "clip.mp4", seconds=0.8, size=(320, 240), fps=25),
        "noface": make.write_clip(root / "noface.mp4", seconds=0.6, size=(320, 240), fps=25, frame_fn=no_face_frame),
    }
    write_image(root / "astronaut.png", skdata.astronaut())
    write_image(root / "blank.png", no_face_frame(0, 25, 200, 150))
    paths["face_png"] = root / "astronaut.png"
    paths["blank_png"] = root / "blank.png"
    return paths


def identity_args(*extra):
    return ["edit", *map(str, extra), "--model", "identity", "--quiet"]


def leftovers(folder: Path):
    return [p for p in folder.iterdir() if TEMP_MARK in p.name]


def frame_count(path):
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def one_error_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert lines[0].startswith("error:") and "Traceback" not in text
    return lines[0]


def test_still_image_in_image_out(media, tmp_path):
    out = tmp_path / "out.png"
    assert run(identity_args(media["face_png"], "--emotion", "angry", "-o", out)) == 0
    src, got = read_image(media["face_png"]), read_image(out)
    assert np.array_equal(got, src)  # transfer (the default) of a model that moves nothing: the input exactly
    assert run(identity_args(media["face_png"], "--emotion", "angry", "--render", "generate", "-o", out,
                             "--overwrite")) == 0
    got = read_image(out)
    assert got.shape == src.shape
    changed = (src != got).any(axis=-1)
    assert 0 < changed.mean() < 0.25  # only the face region went through warp + paste-back
    ys, xs = np.nonzero(changed)
    assert 120 < xs.mean() < 320 and 40 < ys.mean() < 240  # the astronaut's face (about x=215, y=120)
    jpg = tmp_path / "out.jpg"
    write_image(tmp_path / "in.jpg", src)
    assert run(identity_args(tmp_path / "in.jpg", "--emotion", "sad", "-o", jpg)) == 0
    assert jpg.read_bytes()[:2] == b"\xff\xd8"


def test_still_without_face_is_copied_with_a_warning(media, tmp_path, capsys):
    out = tmp_path / "same.png"
    assert run(identity_args(media["blank_png"], "--emotion", "happy", "-o", out)) == 0
    assert out.read_bytes() == media["blank_png"].read_bytes()
    assert "no face found" in capsys.readouterr().err


def test_video_without_faces_comes_out_equal_with_a_warning(media, tmp_path, capsys):
    out = tmp_path / "same.mp4"
    assert run(identity_args(media["noface"], "--emotion", "happy", "-o", out)) == 0
    assert "warning:" in capsys.readouterr().err
    with av.open(str(media["noface"])) as a, av.open(str(out)) as b:
        pa = [(p.stream.type, p.pts, bytes(p)) for p in a.demux() if p.size]
        pb = [(p.stream.type, p.pts, bytes(p)) for p in b.demux() if p.size]
    assert sorted(pa, key=repr) == sorted(pb, key=repr)


def test_batch_over_a_folder_reports_one_failure_and_continues(media, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("clip", "noface"):
        (folder / media[name].name).write_bytes(media[name].read_bytes())
    (folder / "broken.mp4").write_text("not a video")
    outdir = tmp_path / "out"
    code = run(identity_args(folder, "--emotion", "happy", "-o", outdir))
    err = capsys.readouterr().err
    assert code == 2
    assert sorted(p.name for p in outdir.iterdir()) == ["clip.mp4", "noface.mp4"]
    assert frame_count(outdir / "clip.mp4") == 20
    assert "broken.mp4" in err and "1 of 3 sources failed" in err


def test_summary_line_and_quiet(media, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    assert run(["edit", str(media["clip"]), "--emotion", "happy", "--model", "identity", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "20 frames edited, 0 passed through" in captured.err and captured.out == ""
    assert run(identity_args(media["clip"], "--emotion", "happy", "-o", out, "--overwrite")) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_trim_start_end(media, tmp_path):
    out = tmp_path / "cut.mp4"
    assert run(identity_args(media["clip"], "--emotion", "happy", "-o", out, "--start", "0.2", "--end", "0:00.6",
                             "--trim")) == 0
    assert frame_count(out) == 10


def test_reference_image_and_video(media, tmp_path):
    assert run(identity_args(media["clip"], "--ref", media["face_png"], "-o", tmp_path / "a.mp4")) == 0
    assert run(identity_args(media["clip"], "--ref", media["clip"], "-o", tmp_path / "b.mp4")) == 0


@pytest.mark.parametrize("case,words", [
    ("missing", "no such file"),
    ("not a video", "not a video"),
    ("truncated", "damaged"),
    ("corrupt", "damaged"),
    ("empty", "empty"),
    ("zero-length", "zero-length"),
    ("reference without face", "no face found in the reference"),
    ("unknown emotion", "unknown emotion 'furious'"),
    ("both ref and emotion", "exactly one of --ref"),
    ("unwritable folder", "not writable"),
    ("existing output", "--overwrite"),
    ("output is source", "overwrite the source"),
    ("image to video", "needs an image output"),
    ("bad time", "not a time"),
])
def test_bad_input_one_line_nonzero_nothing_written(media, tmp_path, capsys, case, words):
    data = media["clip"].read_bytes()
    src, out, extra = tmp_path / "in.mp4", tmp_path / "out.mp4", ["--emotion", "happy"]
    src.write_bytes(data)
    if case == "missing":
        src.unlink()
    elif case == "not a video":
        src.write_text("hello\n" * 100)
    elif case == "truncated":
        src.write_bytes(data[: len(data) // 2])
    elif case == "corrupt":
        bad = bytearray(data)
        bad[len(data) // 3: len(data) // 3 + 15000] = np.random.default_rng(0).integers(0, 255, 15000, dtype=np.uint8).tobytes()
        src.write_bytes(bytes(bad))
    elif case == "empty":
        src.write_bytes(b"")
    elif case == "zero-length":
        src.unlink()
        with av.open(str(src), "w") as c:
            s = c.add_stream("libx264", rate=25)
            s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
            c.start_encoding()
    elif case == "reference without face":
        extra = ["--ref", str(media["blank_png"])]
    elif case == "unknown emotion":
        extra = ["--emotion", "furious"]
    elif case == "both ref and emotion":
        extra = ["--emotion", "happy", "--ref", str(media["face_png"])]
    elif case == "unwritable folder":
        out = unwritable_folder(tmp_path) / "sserd-out.mp4"
    elif case == "existing output":
        out.write_bytes(b"keep me")
    elif case == "output is source":
        out = src
    elif case == "image to video":
        src = media["face_png"]
    elif case == "bad time":
        extra += ["--start", "1:xx"]
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    code = run(identity_args(src, *extra, "-o", out))
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and words in line, line
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before  # nothing new, nothing touched
    if case == "existing output":
        assert out.read_bytes() == b"keep me"
    if out.parent.exists():
        assert not any(TEMP_MARK in p.name for p in out.parent.iterdir())


def unwritable_folder(tmp_path):
    """A folder this user cannot create files in: a read-only one, or sysfs when running as root."""
    import os

    locked = tmp_path / "locked"
    locked.mkdir(exist_ok=True)
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):  # root ignores permission bits
        locked.chmod(0o700)
        locked.rmdir()
        return Path("/sys")
    return locked


class InterruptingModel(IdentityModel):
    """Raises KeyboardInterrupt (what Ctrl-C raises) from inside the pipeline after ``after`` frames."""

    def __init__(self, after: int):
        super().__init__()
        self.after, self.seen = after, 0

    def edit(self, crops, weights=None):
        self.seen += len(crops)
        if self.seen > self.after:
            raise KeyboardInterrupt
        return crops


def test_ctrl_c_mid_run_leaves_no_output(media, tmp_path):
    model = InterruptingModel(after=8)
    model.set_target(Target(emotion="happy"))
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        edit_path(media["clip"], out, model, EditOptions(batch_size=4))
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_through_the_cli_exits_130(media, tmp_path, monkeypatch, capsys):
    calls = {"n": 0}

    def interrupting(self, crops, weights=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return crops

    monkeypatch.setattr(IdentityModel, "edit", interrupting)
    out = tmp_path / "out.mp4"
    assert run(identity_args(media["clip"], "--emotion", "happy", "-o", out, "--batch-size", "4")) == 130
    assert "interrupted" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_default_model_missing_says_what_to_do(media, tmp_path, capsys, monkeypatch):
    import sserd_cli.resources

    monkeypatch.setattr(sserd_cli.resources, "bundled_models_dir", lambda: tmp_path / "no-models")  # a broken install
    code = run(["edit", str(media["clip"]), "--emotion", "happy", "-o", str(tmp_path / "o.mp4")])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "'sserd-synthetic' is missing" in line and "--model identity" in line
    assert not (tmp_path / "o.mp4").exists()


def test_real_sigint_mid_run_removes_the_partial_output(tmp_path):
    """Ctrl-C (SIGINT) to a running `sserd edit` process: exit 130, no output, no temporary file."""
    import signal
    import subprocess
    import sys
    import time

    src = clip_maker().write_clip(tmp_path / "long.mp4", seconds=6.0, size=(320, 240), fps=25, audio=False)
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-c", "from sserd_cli.cli import main; main()", "edit", str(src),
                             "--emotion", "happy", "--model", "identity", "-o", str(out), "--quiet"],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not leftovers(tmp_path) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # wait until the edit is writing its temporary file
    if proc.poll() is not None:
        pytest.skip("the edit finished before it could be interrupted")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not out.exists() and leftovers(tmp_path) == []


def test_insightface_detector_is_used_when_given_a_model_folder(media, tmp_path, capsys):
    """--face-detector insightface runs the user's SCRFD model: the fixture model 'sees' a face in every
    frame of the no-face clip, so every frame is edited (dlib would pass them all through)."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from test_faces_insightface import _build

    models = tmp_path / "scrfd"
    models.mkdir()
    _build(models / "det_10g.onnx")
    out = tmp_path / "out.mp4"
    assert run(["edit", str(media["noface"]), "--emotion", "happy", "--model", "identity", "-o", str(out),
                "--face-detector", "insightface", "--face-models", str(models)]) == 0
    assert "15 frames edited, 0 passed through" in capsys.readouterr().err


@pytest.mark.parametrize("extra, words", [
    (["--face-detector", "mtcnn"], "unknown --face-detector"),
    (["--face-detector", "insightface"], "--face-models"),
])
def test_face_detector_options_are_checked(media, tmp_path, capsys, extra, words):
    out = tmp_path / "out.mp4"
    assert run(identity_args(media["clip"], "--emotion", "happy", "-o", out, *extra)) == 2
    assert words in one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_missing_source_is_reported_before_the_model(tmp_path, capsys):
    """A typo in the file name is the error a user sees, not a complaint about the (default) model."""
    assert run(["edit", str(tmp_path / "nothere.mp4"), "--emotion", "happy", "-o", str(tmp_path / "o.mp4")]) == 2
    assert "nothere.mp4: no such file" in one_error_line(capsys.readouterr().err)


def test_ten_bit_source_is_said_to_become_8_bit_only_when_re_encoded(tmp_path, capsys):
    src = write_flat_clip(tmp_path / "p10.mkv", 64, 48, "yuv420p10le", 4)
    assert probe_video(src).bit_depth == 10
    edit = ["edit", str(src), "--model", "identity", "--emotion", "happy", "--quiet"]
    # no face anywhere: the source's own streams are copied, nothing is lost
    assert run([*edit, "-o", str(tmp_path / "copy.mkv")]) == 0
    assert "8-bit" not in capsys.readouterr().err
    # trimmed: the frames are re-encoded, in 8 bits, and the user is told
    assert run([*edit, "--end", "0.1", "--trim", "-o", str(tmp_path / "trim.mkv")]) == 0
    assert f"{src}: the source is 10-bit video; the output is 8-bit (yuv420p)" in capsys.readouterr().err
    with av.open(str(tmp_path / "trim.mkv")) as c:
        assert c.streams.video[0].format.name == "yuv420p"
    assert probe_video(tmp_path / "trim.mkv").bit_depth == 8
