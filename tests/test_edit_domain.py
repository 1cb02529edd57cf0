"""`sserd edit`'s domain check: a model refuses a face it cannot reconstruct (one error line, exit 2, nothing
written), the bundled examples pass silently, --force goes on, and a bundle trained on `sserd prepare` data
accepts held-out clips of its own speakers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clips import clip_maker
from sserd_cli.bundles import load_bundle
from sserd_cli.cli import run
from sserd_cli.pipeline.domain import FACTOR, DomainCheck, DomainGate, card_statistics
from sserd_cli.pipeline.edit import EditOptions, edit_path
from sserd_cli.pipeline.models import ReconstructionModel, Target, load_model
from test_train_fixtures import TINY_GAN

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "examples" / "astronaut_talking.mp4"
CPU = ["--device", "cpu", "--workers", "0", "--quiet"]


def test_the_default_card_records_its_held_out_range():
    stats = card_statistics(load_bundle("sserd-synthetic").card)
    assert stats is not None and stats["split"] == "test" and stats["crops"] >= 100
    assert 0 < stats["q50"] < stats["q99"] <= stats["max"]
    assert card_statistics({"domain": "synthetic"}) is None  # an older card's word, no statistics


def test_real_face_refused_by_the_default_with_one_line_and_nothing_written(tmp_path, capsys):
    out = tmp_path / "out.mp4"
    assert run(["edit", str(ASTRONAUT), "--emotion", "happy", "--render", "generate", "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err
    for words in ("does not know this face", "masked MSE", "99th percentile", "--force"):
        assert words in lines[0]
    assert list(tmp_path.iterdir()) == []  # no output, no temporary file left


def test_force_edits_anyway_and_says_what_was_measured(tmp_path, capsys):
    out = tmp_path / "out.mp4"
    assert run(["edit", str(ASTRONAUT), "--emotion", "happy", "--end", "0.3", "--trim", "--force", "--render",
                "generate", "-o", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert out.is_file() and err.count("does not know this face") == 1 and "edited anyway (--force)" in err


@pytest.mark.parametrize("clip", ["speaker_a", "speaker_b"])
def test_bundled_examples_pass_silently(clip, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    assert run(["edit", str(ROOT / "examples" / "clips" / f"{clip}.mp4"), "--ref", str(ROOT / "examples" / "refs" / "angry.png"),
                "--end", "0.4", "--trim", "-o", str(out), "--quiet"]) == 0
    assert capsys.readouterr().err == ""  # no warning at all: the Quick start prints nothing but its result


def test_gate_measures_the_crops_and_compares_with_the_card():
    model = load_model("sserd-synthetic", "cpu")
    stats = card_statistics(model.bundle.card)
    check = DomainCheck("m", FACTOR * stats["q99"] * 1.01, 4, stats)
    assert not check.known and "above its limit" in check.describe("clip.mp4")
    assert DomainCheck("m", stats["q99"], 4, stats).known
    gate = DomainGate(model, force=False, source="x", count=2)
    noise = np.random.default_rng(0).integers(0, 255, (model.resolution, model.resolution, 3), dtype=np.uint8)

    class Item:  # an aligned frame: the identity alignment, the crop is the frame
        rgb, m = noise, np.array([[1.0, 0, 0], [0, 1.0, 0]])

    from sserd_cli.errors import SserdError

    with pytest.raises(SserdError, match="does not know this face"):
        gate.see([Item(), Item()])  # noise is no face of any training set
    assert not DomainGate(load_model("identity"), source="x").pending  # nothing to check without a card


def _speaker_frame(speaker: int, offset: int):
    make = clip_maker()

    def frame(i, fps, w, h):
        rgb = make.astronaut_frame(i + offset, fps, w, h)  # each clip its own stretch of the jitter
        return rgb if speaker == 0 else np.ascontiguousarray(rgb[:, ::-1, ::-1])  # a mirrored, re-tinted speaker
    return frame


@pytest.fixture(scope="module")
def prepared_bundle(tmp_path_factory):
    """Clips of two speakers -> sserd prepare (one held-out clip each) -> train-stylegan -> train-encoder."""
    tmp = tmp_path_factory.mktemp("prepared")
    make = clip_maker()
    (tmp / "clips").mkdir()
    rows = ["path,speaker,emotion,split"]
    for s in range(2):
        for k, split in enumerate(("train", "train", "test")):
            name = f"s{s}_{k}.mp4"
            make.write_clip(tmp / "clips" / name, seconds=0.2, size=(320, 240), audio=False,
                            frame_fn=_speaker_frame(s, 9 * k))
            rows.append(f"{name},s{s},{'happy' if k == 1 else 'neutral'},{split}")
    (tmp / "clips" / "labels.csv").write_text("\n".join(rows) + "\n")
    data = tmp / "data"
    assert run(["prepare", "folder", str(tmp / "clips"), "-o", str(data), "--size", "32", "--resize", "40",
                "--quiet"]) == 0
    assert run(["train-stylegan", str(data), "-o", str(tmp / "gan"), "--iterations", "2", *TINY_GAN]) == 0
    assert run(["train-encoder", str(data), "--model", str(tmp / "gan" / "bundle"), "-o", str(tmp / "enc"),
                "--backbone", "small", "--iterations", "2", *CPU]) == 0
    return tmp


def test_a_bundle_trained_on_prepared_clips_accepts_held_out_clips_of_its_speakers(prepared_bundle, tmp_path):
    bundle = load_bundle(prepared_bundle / "enc" / "bundle")
    assert card_statistics(bundle.card)["split"] == "test"
    model = ReconstructionModel(bundle, "cpu")  # G(E(x)): the check needs only G and E
    model.set_target(Target(emotion="happy"))
    for s in range(2):
        report = edit_path(prepared_bundle / "clips" / f"s{s}_2.mp4", tmp_path / f"{s}.mp4", model, EditOptions())
        assert report.edited > 0 and not report.notes  # accepted, nothing said
