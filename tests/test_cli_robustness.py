"""Inputs a user can give that once lost data or showed a traceback, through the command line: file names
with console markup in them, unwritable output folders in every command, NaN/inf in every float option,
SIGTERM and SIGHUP mid-run (like Ctrl-C: nothing half-written, exit 128+signal), and the small things
(flags shown without a type, `-o dir/`, a batch where everything failed)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
from skimage import data as skdata

from clips import clip_maker
from sserd_cli.cli import run
from sserd_cli.media.atomic import TEMP_MARK
from sserd_cli.media.image import write_image
from test_edit_cli import unwritable_folder


def one_error_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert lines[0].startswith("error:") and "Traceback" not in text
    return lines[0]


def everything_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return clip_maker().write_clip(tmp_path_factory.mktemp("robust") / "clip.mp4", seconds=0.4, size=(320, 240), fps=25)


# --------------------------------------------------------------------------------- names printed as they are


@pytest.mark.parametrize("name", ["Talk [abc123].mp4", "[bold]loud[/bold].mp4", "odd [/] name.mp4", "x [red.mp4"])
def test_names_with_brackets_are_printed_as_they_are(clip, tmp_path, capsys, name):
    src = tmp_path / name  # a name holding "/" also makes folders: "[/]" is then in the path
    src.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(clip, src)
    out = tmp_path / f"out {name}"
    out.parent.mkdir(parents=True, exist_ok=True)
    assert run(["edit", str(src), "--emotion", "happy", "--model", "identity", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"{out}: 10 frames edited" in err and "Traceback" not in err
    assert src.name in err  # the progress bar's label too
    # an error naming the file
    assert run(["edit", str(src), "--emotion", "happy", "--model", "identity", "-o", str(out)]) == 2
    assert one_error_line(capsys.readouterr().err) == f"error: {out}: already exists; pass --overwrite to replace it"
    missing = tmp_path / f"gone {name}"
    assert run(["edit", str(missing), "--emotion", "happy", "-o", str(tmp_path / "o.mp4")]) == 2
    assert one_error_line(capsys.readouterr().err) == f"error: {missing}: no such file"


def test_warnings_and_batch_errors_keep_brackets(clip, tmp_path, capsys):
    folder = tmp_path / "in [2024]"
    folder.mkdir()
    shutil.copy(clip, folder / "good [1].mp4")
    (folder / "broken [x].mp4").write_text("not a video")
    write_image(folder / "blank [b].png", skdata.astronaut()[:40, :40] * 0)
    outdir = tmp_path / "out [v2]"
    assert run(["edit", str(folder), "--emotion", "happy", "--model", "identity", "-o", str(outdir)]) == 2
    err = capsys.readouterr().err
    assert f"error: {folder / 'broken [x].mp4'}: not a video file" in err
    assert f"warning: {folder / 'blank [b].png'}: no face found" in err
    assert f"{outdir / 'good [1].mp4'}: 10 frames edited" in err
    assert "1 of 3 sources failed" in err and "Traceback" not in err


def test_info_shows_a_bundle_path_with_brackets(capsys):
    import tempfile

    from test_edit_model import make_bundle

    with tempfile.TemporaryDirectory(dir="/tmp") as short:  # a path short enough for one table row
        bundle = make_bundle(Path(short) / "[/]" / "tiny [v2] [b]", {"domain": "synthetic"})
        assert run(["info", str(bundle)]) == 0
    out = capsys.readouterr().out
    assert "model bundle tiny [v2] [b]" in out and f"{bundle}" in out


# ---------------------------------------------------------------------------- unwritable output folders


def _commands(tmp_path: Path, locked: Path, clip: Path) -> dict[str, list[str]]:
    weights = tmp_path / "g.pt"
    weights.write_bytes(b"not read before the folder is checked")
    return {
        "import-stylegan": ["import-stylegan", str(weights), "-o", str(locked / "bundle")],
        "train-stylegan": ["train-stylegan", str(tmp_path), "-o", str(locked / "run"), "--quiet"],
        "train-encoder": ["train-encoder", str(tmp_path), "--model", "x", "--size", "32", "-o", str(locked / "run")],
        "train": ["train", str(tmp_path), "--model", "x", "--size", "32", "-o", str(locked / "run")],
        "build-pairs": ["build-pairs", str(tmp_path), "--model", "x", "-o", str(locked / "pairs")],
        "prepare": ["prepare", "folder", str(tmp_path), "-o", str(locked / "data")],
        "synth images": ["synth", "images", "-o", str(locked / "set"), "--count", "2", "--workers", "1"],
        "synth videos": ["synth", "videos", "-o", str(locked / "set"), "--speakers", "1", "--workers", "1"],
        "synth truth": ["synth", "truth", str(clip), "-e", "happy", "-o", str(locked / "truth.mp4")],
        "synth sheet": ["synth", "sheet", "-o", str(locked / "sheet.png")],
        "synth train-oracle": ["synth", "train-oracle", "-o", str(locked / "oracle")],
        "eval real": ["eval", "real", "--model", "identity", "--data", str(tmp_path), "-o", str(locked / "r.json")],
        "eval synthetic": ["eval", "synthetic", "--model", "x", "--json-out", str(locked / "r.json")],
        "edit": ["edit", str(clip), "--emotion", "happy", "--model", "identity", "-o", str(locked / "o.mp4")],
    }


@pytest.mark.parametrize("command", ["import-stylegan", "train-stylegan", "train-encoder", "train", "build-pairs",
                                     "prepare", "synth images", "synth videos", "synth truth", "synth sheet",
                                     "synth train-oracle", "eval real", "eval synthetic", "edit"])
def test_an_unwritable_output_folder_is_one_line_in_every_command(clip, tmp_path, capsys, command):
    locked = unwritable_folder(tmp_path)
    argv = _commands(tmp_path, locked, clip)[command]
    before = everything_under(tmp_path)
    code = run(argv)
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "output folder is not writable" in line, line
    assert everything_under(tmp_path) == before


def test_an_oserror_about_a_path_is_one_line(clip, tmp_path, capsys, monkeypatch):
    """The last net: a path that fails where no check was (a disk that went read-only mid-run)."""
    import sserd_cli.pipeline.batch as batch

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/mnt/media/out.mp4")

    monkeypatch.setattr(batch, "plan_outputs", refuse)
    assert run(["edit", str(clip), "--emotion", "happy", "--model", "identity", "-o", str(tmp_path / "o.mp4")]) == 2
    assert one_error_line(capsys.readouterr().err) == "error: /mnt/media/out.mp4: Permission denied"


# ------------------------------------------------------------------------------------------ every number


@pytest.mark.parametrize("argv, words", [
    (["train-stylegan", "{data}", "-o", "{out}", "--lr", "nan"], "--lr nan: must be a finite number above 0"),
    (["train-stylegan", "{data}", "-o", "{out}", "--lr", "inf"], "--lr inf"),
    (["train-stylegan", "{data}", "-o", "{out}", "--lr", "0"], "--lr 0.0: must be a finite number above 0"),
    (["train-stylegan", "{data}", "-o", "{out}", "--lr", "-0.1"], "--lr -0.1"),
    (["train-stylegan", "{data}", "-o", "{out}", "--mixing", "1.5"], "--mixing 1.5: must be a number from 0 to 1"),
    (["train-stylegan", "{data}", "-o", "{out}", "--time-limit", "nan"], "--time-limit nan"),
    (["train-encoder", "{data}", "--model", "x", "--size", "32", "-o", "{out}", "--alpha", "inf"], "--alpha inf"),
    (["train-encoder", "{data}", "--model", "x", "--size", "32", "-o", "{out}", "--lambda-adv", "-1"], "--lambda-adv -1.0"),
    (["train", "{data}", "--model", "x", "--size", "32", "-o", "{out}", "--lambda-cl", "nan"], "--lambda-cl nan"),
    (["train", "{data}", "--model", "x", "--size", "32", "-o", "{out}", "--real-fraction", "nan"], "--real-fraction nan"),
    (["train", "{data}", "--model", "x", "--size", "32", "-o", "{out}", "--lr", "1e999"], "--lr inf"),
    (["build-pairs", "{data}", "--model", "x", "-o", "{out}", "--svm-c", "nan"], "--svm-c nan"),
    (["build-pairs", "{data}", "--model", "x", "-o", "{out}", "--beta", "inf"], "--beta inf: give a finite positive"),
    (["synth", "videos", "-o", "{out}", "--duration", "nan"], "--duration nan is impossible"),
    (["eval", "real", "--model", "identity", "--data", "{data}", "--strength", "nan"], "--strength nan"),
    (["eval", "real", "--model", "identity", "--data", "{data}", "--strength", "9"], "to 2"),
])
def test_non_finite_and_out_of_range_numbers_are_one_line(tmp_path, capsys, argv, words):
    argv = [a.format(data=tmp_path, out=tmp_path / "out") for a in argv]
    before = everything_under(tmp_path)
    assert run(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert words in line, line
    assert everything_under(tmp_path) == before


# ------------------------------------------------------------------------------------ SIGTERM and SIGHUP


def leftovers(folder: Path):
    return [p for p in folder.iterdir() if TEMP_MARK in p.name]


@pytest.mark.parametrize("signum, code, name", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGHUP, 129, "SIGHUP")])
def test_real_sigterm_and_sighup_mid_edit_remove_the_partial_output(tmp_path, signum, code, name):
    """`timeout`, `kill` or a closed terminal to a running `sserd edit`: as Ctrl-C, no output and no
    temporary file, one line, exit code 128 + the signal."""
    src = clip_maker().write_clip(tmp_path / "long.mp4", seconds=6.0, size=(320, 240), fps=25, audio=False)
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-c", "from sserd_cli.cli import main; main()", "edit", str(src),
                             "--emotion", "happy", "--model", "identity", "-o", str(out), "--quiet"],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not leftovers(tmp_path) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # wait until the edit is writing its temporary file
    if proc.poll() is not None:
        pytest.skip("the edit finished before it could be stopped")
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert f"stopped by {name}" in err and "Traceback" not in err
    assert not out.exists() and leftovers(tmp_path) == []


def _kill_self_on(monkeypatch, module, name, after: int = 1):
    """Replace ``module.name`` by a wrapper that sends this process SIGTERM on its ``after``-th call (after
    the real call has done its work), as `kill` would at that moment."""
    real = getattr(module, name)
    calls = {"n": 0}

    def wrapper(*args, **kwargs):
        result = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == after:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
        return result

    monkeypatch.setattr(module, name, wrapper)
    return calls


def test_sigterm_during_synth_leaves_no_partial_dataset(tmp_path, capsys, monkeypatch):
    import sserd_cli.data.synth.dataset as dataset

    _kill_self_on(monkeypatch, dataset, "render_crop", after=3)
    out = tmp_path / "faces"
    assert run(["synth", "images", "-o", str(out), "--count", "30", "--size", "32", "--workers", "1", "-q"]) == 143
    assert "stopped by SIGTERM" in capsys.readouterr().err
    assert everything_under(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # run() gives the handlers back


def test_sigterm_during_prepare_leaves_no_temporary_file(tmp_path, capsys, monkeypatch):
    """prepare is resumable: what it finished stays, but no file is left half-written (the write that was
    under way when the signal came is removed)."""
    import sserd_cli.data.prepare.crops as crops
    from test_prepare_datasets import write_video

    root = tmp_path / "clips"
    write_video(root / "a.mp4", n=6, seed=0)
    write_video(root / "b.mp4", n=6, seed=1)
    (root / "labels.csv").write_text("path,speaker,emotion\na.mp4,anna,happy\nb.mp4,anna,sad\n")
    real = crops.write_via_temp
    calls = {"n": 0}

    def write_then_kill(path, write):
        def killed_mid_write(tmp):
            write(tmp)
            calls["n"] += 1
            if calls["n"] == 4:  # between writing the temporary file and renaming it
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
        real(path, killed_mid_write)

    monkeypatch.setattr(crops, "write_via_temp", write_then_kill)
    out = tmp_path / "data"
    assert run(["prepare", "folder", str(root), "-o", str(out), "--quiet"]) == 143
    assert "stopped by SIGTERM" in capsys.readouterr().err
    written = everything_under(out)
    assert written and not [p for p in written if p.endswith(".tmp")], written
    monkeypatch.setattr(crops, "write_via_temp", real)
    assert run(["prepare", "folder", str(root), "-o", str(out), "--quiet"]) == 0  # resumes cleanly


def test_sigterm_during_a_training_export_leaves_no_partial_bundle(tmp_path, capsys, monkeypatch):
    import sserd_cli.bundles as bundles
    from test_train_fixtures import TINY_GAN, make_dataset

    data = make_dataset(tmp_path / "data")
    _kill_self_on(monkeypatch, bundles, "save_file", after=1)  # after the first part of the bundle is written
    run_dir = tmp_path / "gan"
    assert run(["train-stylegan", str(data), "-o", str(run_dir), "--iterations", "1", *TINY_GAN]) == 143
    assert "stopped by SIGTERM" in capsys.readouterr().err
    assert not (run_dir / "bundle").exists()
    assert not [p for p in everything_under(run_dir) if "partial" in p], everything_under(run_dir)


def test_sigterm_while_a_checkpoint_is_written_leaves_the_run_resumable(tmp_path, capsys, monkeypatch):
    import sserd_cli.training.run as training_run
    from test_train_fixtures import TINY_GAN, make_dataset

    data = make_dataset(tmp_path / "data")
    _kill_self_on(monkeypatch, training_run, "save_file", after=2)  # the second checkpoint, before its rename
    run_dir = tmp_path / "gan"
    args = ["train-stylegan", str(data), "-o", str(run_dir), "--checkpoint-every", "1", *TINY_GAN]
    assert run([*args, "--iterations", "3"]) == 143
    assert "stopped by SIGTERM" in capsys.readouterr().err
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["iter_00000001.safetensors"]  # no .tmp
    monkeypatch.undo()
    assert run([*args, "--iterations", "3", "--resume"]) == 0


# ------------------------------------------------------------------------------------------- small things


def test_flags_show_no_value_type_in_help(capsys):
    assert run(["edit", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--overwrite" in text and "<bool>" not in text
    assert "<float>" in text  # options that take a value still say what kind
    assert run(["train-stylegan", "--help"]) == 0
    assert "<bool>" not in capsys.readouterr().out


def test_one_source_into_a_new_folder_named_with_a_slash(clip, tmp_path):
    out = str(tmp_path / "edited") + "/"
    assert run(["edit", str(clip), "--emotion", "happy", "--model", "identity", "-q", "-o", out]) == 0
    with av.open(str(tmp_path / "edited" / "clip.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 10


def test_an_output_name_without_extension_says_how_to_name_a_folder(clip, tmp_path, capsys):
    assert run(["edit", str(clip), "--emotion", "happy", "--model", "identity", "-o", str(tmp_path / "edited")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "a video source needs a video output" in line and "end -o with / (edited/)" in line


def test_a_batch_where_every_source_failed_says_nothing_was_written(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.mp4").write_text("no")
    (folder / "b.mp4").write_bytes(b"")
    out = tmp_path / "out"
    assert run(["edit", str(folder), "--emotion", "happy", "--model", "identity", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "all 2 sources failed (see above); nothing was written" in err and "others were written" not in err
    assert list(out.iterdir()) == []
    assert "0/?" not in err  # a failed file's empty progress bar is not left above its error line


def test_a_face_less_source_an_avi_cannot_copy_is_re_encoded_not_refused(tmp_path, capsys):
    from clips import write_flat_clip

    src = write_flat_clip(tmp_path / "odd.mkv", 63, 47, "yuv444p", 3)
    out = tmp_path / "odd.avi"
    assert run(["edit", str(src), "--emotion", "happy", "--model", "identity", "-q", "-o", str(out)]) == 0
    assert "no face found in any frame: the frames were re-encoded unchanged" in capsys.readouterr().err
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 3
    assert not [p for p in tmp_path.iterdir() if TEMP_MARK in p.name]


def test_synth_sheet_wants_a_png_name(tmp_path, capsys):
    assert run(["synth", "sheet", "-o", str(tmp_path / "sheet.txt")]) == 2
    assert "give an -o ending in .png" in one_error_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []
