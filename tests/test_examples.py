"""The examples a new user runs: the batch script, the bundled clips and references, and their size budget."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import av

from sserd_cli.emotions import EMOTIONS
from sserd_cli.media.probe import probe_video

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_examples_stay_small():
    total = sum(p.stat().st_size for p in EXAMPLES.rglob("*") if p.is_file())
    assert total <= 5 * 2**20, f"examples/ holds {total / 2**20:.1f} MiB (budget 5 MiB)"


def test_example_clips_have_audio_and_one_has_a_non_integer_rate():
    rates = set()
    for clip in sorted((EXAMPLES / "clips").glob("*.mp4")):
        info = probe_video(clip)
        rates.add(info.rate)
        with av.open(str(clip)) as c:
            assert c.streams.audio, f"{clip.name} has no audio"
        assert clip.with_suffix(".truth.json").is_file()  # so an edit of it can be scored
    assert len(rates) >= 2 and any(r.denominator != 1 for r in rates)


def test_reference_images_are_reproducible(tmp_path):
    made = _module("make_synthetic_examples").write_references(tmp_path)
    assert sorted(p.stem for p in made) == sorted(EMOTIONS)
    for path in made:
        assert path.read_bytes() == (EXAMPLES / "refs" / path.name).read_bytes(), path.name


def test_batch_edit_makes_every_clip_in_every_emotion(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    with av.open(str(EXAMPLES / "clips" / "speaker_b.mp4")) as c:
        first = c.streams.video[0].frames
    shutil.copy(EXAMPLES / "clips" / "speaker_b.mp4", clips / "b.mp4")
    env = {**os.environ, "REFS": str(EXAMPLES / "refs")}
    result = subprocess.run(["bash", str(EXAMPLES / "batch_edit.sh"), str(clips), str(tmp_path / "out"),
                             "--model", "identity", "--quiet", "--end", "0.5"],
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for emotion in EMOTIONS:
        out = tmp_path / "out" / emotion / "b.mp4"
        assert out.is_file(), emotion
        assert 0 < probe_video(out).frames <= first
