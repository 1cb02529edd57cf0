"""The examples a new user runs: the batch script, the bundled clips and references, and their size budget."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import av
import pytest

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
                             "--model", "identity", "--quiet", "--end", "0.5", "--trim"],
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for emotion in EMOTIONS:
        out = tmp_path / "out" / emotion / "b.mp4"
        assert out.is_file(), emotion
        assert 0 < probe_video(out).frames <= first


# the default recipe at a size that runs in about a minute: every stage, the ablations, the packing and the benchmark
TINY_RECIPE = {"SIZE": "32", "CH_MAX": "16", "STYLE_DIM": "32", "GAN_STEPS": "2", "ENC_STEPS": "2", "SSERD_STEPS": "2",
               "WARMUP": "1", "GAN_BATCH": "2", "ENC_BATCH": "2", "SSERD_BATCH": "2", "COUNT": "280", "SPEAKERS": "20",
               "INV_COUNT": "280", "INV_SPEAKERS": "20", "FEAT_STEPS": "2", "AE_STEPS": "2", "AE_BATCH": "2",
               "GATE_FACES": "1", "SOURCES": "20", "WORKERS": "0", "EVAL_SPEAKERS": "2", "EVAL_SECONDS": "0.2",
               "OMP_NUM_THREADS": "2"}


@pytest.mark.slow
def test_train_default_recipe_runs_end_to_end_then_resumes(tmp_path):
    work, packed = tmp_path / "work", tmp_path / "packed"
    env = {**os.environ, **TINY_RECIPE, "OUT": str(packed)}
    script = ["bash", str(EXAMPLES / "train_default.sh"), str(work)]
    first = subprocess.run(script, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "held-out clips" in first.stdout  # the benchmark's table
    card = json.loads((packed / "model.json").read_text())
    assert card["name"] == "sserd-synthetic" and card["dtype"] == "float16"
    stages = card["training"]["stages"]
    assert stages["encoder"]["iterations"] == stages["autoencoder"]["iterations"] == stages["sserd"]["iterations"] == 2
    pairs = next(stage for stage in card["recipe"] if stage["stage"] == "build-pairs")
    assert pairs["config"]["layers"] is None and pairs["config"]["direction"] == "regression"
    sserd = next(stage for stage in card["recipe"] if stage["stage"] == "sserd")
    assert (sserd["config"]["latent_warmup"], sserd["config"]["lambda_latent"]) == (1, 100.0)
    assert (work / "inversion" / "gates.json").is_file()  # the inversion's gates ran inside the recipe
    rows = card["metrics"]["synthetic_benchmark"]["summary"]["cross"]
    assert set(rows) == {"no edit", "reconstruction", "direction edit", "hybrid", "no-contrastive", "paired",
                         "unpaired", "shipped"}
    # run again as it is: every stage and the benchmark are done, only the packing is redone
    same = subprocess.run(script, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert same.returncode == 0, same.stderr[-3000:]
    assert f"{work}/benchmark.json: done" in same.stdout and "held-out clips" not in same.stdout
    assert json.loads((packed / "model.json").read_text())["metrics"]["synthetic_benchmark"]["summary"]["cross"] == rows
    # run again towards more train steps: finished stages are skipped, the four train runs resume
    again = subprocess.run(script, env={**env, "SSERD_STEPS": "3", "PACK": "0"}, capture_output=True, text=True,
                           cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{work}/gan: done (2 steps)" in again.stdout and f"{work}/enc: done (2 steps)" in again.stdout
    assert f"{work}/inversion/ae: done (2 steps)" in again.stdout
    for run_dir in (work / "sserd", *(work / "ablations" / name for name in ("no-contrastive", "paired", "unpaired"))):
        assert json.loads((run_dir / "summary.json").read_text())["iterations"] == 3
        assert "resumed from iter_00000002" in (run_dir / "train.log").read_text()


@pytest.mark.slow
def test_train_inversion_recipe_runs_end_to_end_then_resumes(tmp_path):
    work = tmp_path / "work"
    env = {**os.environ, "SIZE": "32", "COUNT": "70", "SPEAKERS": "10", "FEAT_STEPS": "2", "AE_STEPS": "2",
           "AE_BATCH": "2", "ENC_CHANNELS": "8", "WORKERS": "0", "GATE_FACES": "1", "OMP_NUM_THREADS": "2",
           "INIT": ""}  # from scratch: the default starts from train_default.sh's encoder stage (1.5 h)
    script = ["bash", str(EXAMPLES / "train_inversion.sh"), str(work)]
    first = subprocess.run(script, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    gates = json.loads((work / "gates.json").read_text())["results"][0]
    assert gates["faces"] == 7 and 0.0 <= gates["G1"]["accuracy"] <= 1.0 and (work / "gates_sheet.png").is_file()
    assert "G1 mouth-opening MAE" in first.stdout
    again = subprocess.run(script, env={**env, "AE_STEPS": "3"}, capture_output=True, text=True, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{work}/features: done (2 steps)" in again.stdout
    assert "resumed from iter_00000002" in (work / "ae" / "train.log").read_text()
    assert json.loads((work / "ae" / "summary.json").read_text())["iterations"] == 3


def test_train_inversion_refuses_an_init_that_is_not_a_bundle(tmp_path):
    env = {**os.environ, "INIT": str(tmp_path / "nowhere")}
    done = subprocess.run(["bash", str(EXAMPLES / "train_inversion.sh"), str(tmp_path / "work")], env=env,
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and "is not a bundle" in done.stderr
    assert not (tmp_path / "work" / "data").exists()
