"""`sserd eval synthetic --model`: the held-out synthetic benchmark of editors side by side (a tiny real
bundle, 2 held-out speakers, 5-frame clips, all 7 targets, both kinds of reference)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from sserd_cli.cli import run
from sserd_cli.data.synth.dataset import speaker_seed
from sserd_cli.emotions import EMOTIONS
from sserd_cli.metrics.benchmark import HELDOUT_SEED_BASE, BenchmarkConfig
from test_edit_model import make_bundle


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    bundle = make_bundle(root / "tiny", {"domain": "synthetic"})
    code = run(["eval", "synthetic", "--model", f"mine={bundle}", "--speakers", "2", "--duration", "0.2",
                "--set", str(root / "set"), "--sheet", str(root / "sheet.png"), "--json-out", str(root / "r.json")])
    return {"code": code, "root": root, "bundle": bundle, "json": json.loads((root / "r.json").read_text())}


def test_every_method_scores_every_clip_and_target_with_both_references(bench):
    assert bench["code"] == 0
    summary = bench["json"]["summary"]
    assert set(summary) == {"intra", "cross"}
    for kind in ("intra", "cross"):
        assert list(summary[kind]) == ["true answer", "no edit", "reconstruction", "direction edit", "mine (transfer)",
                                         "mine"]
        for row in summary[kind].values():
            assert row["cases"] == 2 * len(EMOTIONS)
            assert set(row["accuracy_by_emotion"]) == set(EMOTIONS)
            assert 0.0 <= row["emotion_accuracy"] <= 1.0
    cases = bench["json"]["cases"]["cross"]
    assert {c["frames"] for c in cases} == {5}
    # the source scored against its own true answer for the neutral target: the same pixels up to the codec
    no_edit = [c for c in cases if c["label"] == "no edit" and c["emotion"] == "neutral"]
    assert all(c["psnr"] == "inf" or c["psnr"] > 35 for c in no_edit)
    # a 64 px random generator pasted into the frame changes the face: lower PSNR than the source itself
    recon = [c for c in cases if c["label"] == "reconstruction" and c["emotion"] == "neutral"]
    assert all(r["psnr"] < 30 for r in recon)
    assert bench["json"]["models"] == {"mine (transfer)": str(bench["bundle"]), "mine": str(bench["bundle"])}
    assert bench["json"]["smooth"] == 2  # the edits are smoothed over time as sserd edit's are


def test_the_true_answer_row_is_the_ceiling_and_speech_is_scored_against_it(bench):
    """Speech against the true answer (the same phonemes with the target emotion's mouth): the truth's own row
    has no error there and agrees with itself; no edit keeps the source's mouth and changes nothing."""
    rows = bench["json"]["summary"]["cross"]
    truth, no_edit = rows["true answer"], rows["no edit"]
    assert truth["mouth_open_vs_truth"] == 0.0 and truth["lip_round_vs_truth"] == 0.0
    assert truth["agreement"] == 1.0 and truth["emotion_accuracy"] == 1.0
    assert no_edit["agreement"] == 0.0 and no_edit["mouth_open_vs_truth"] > 0.0
    for row in rows.values():
        assert set(row["by_emotion"]) == set(EMOTIONS)
        assert row["by_emotion"]["neutral"]["agreement"] is None  # the truth of the source's own emotion: no change


def test_smooth_zero_scores_per_frame_codes(bench, tmp_path):
    out = tmp_path / "r0.json"
    assert run(["eval", "synthetic", "--model", f"mine={bench['bundle']}", "--speakers", "2", "--duration", "0.2",
                "--set", str(bench["root"] / "set"), "--smooth", "0", "--json-out", str(out)]) == 0
    per_frame = json.loads(out.read_text())
    assert per_frame["smooth"] == 0
    # the source does not depend on the smoothing; a latent editor's frames do
    smooth, plain = bench["json"]["summary"]["cross"], per_frame["summary"]["cross"]
    assert smooth["no edit"]["flicker"] == plain["no edit"]["flicker"]
    assert smooth["mine"]["flicker"] != plain["mine"]["flicker"]


def test_contact_sheet_has_a_row_per_target_and_a_column_per_method(bench):
    sheet = cv2.imread(str(bench["root"] / "sheet.png"))
    # columns: source, reference, no edit, reconstruction, direction edit, mine (transfer), mine, true answer
    assert sheet.shape == (24 + 128 * len(EMOTIONS), 128 * 8, 3)


def test_held_out_clips_are_kept_and_reused(bench):
    clips = sorted((bench["root"] / "set").glob("*.mp4"))
    assert [c.name for c in clips] == ["heldout00_neutral.mp4", "heldout01_neutral.mp4"]
    assert all(c.with_suffix(".truth.json").is_file() for c in clips)


def test_held_out_identities_are_out_of_reach_of_synth_seeds():
    heldout = set(BenchmarkConfig(speakers=100).speaker_seeds())
    used = {speaker_seed(seed, k) for seed in range(100) for k in range(100_000)}
    assert not heldout & used
    assert min(heldout) == HELDOUT_SEED_BASE


@pytest.mark.parametrize("args, message", [
    (["eval", "synthetic"], "nothing to score"),
    (["eval", "synthetic", "x.mp4"], "needs --clip"),
    (["eval", "synthetic", "x.mp4", "--model", "m"], "not both"),
    (["eval", "synthetic", "--model", "m", "--speakers", "1"], "--speakers 1"),
    (["eval", "synthetic", "--model", "m", "--sheet", "s.jpg"], "give a .png"),
    (["eval", "synthetic", "--model", "m", "--json-out", "/no/such/folder/r.json"], "does not exist"),
])
def test_bad_benchmark_arguments_are_one_line_errors(args, message, capsys):
    assert run(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_bundle_without_celcl_is_named(bench, tmp_path, capsys):
    from sserd_cli.bundles import load_bundle, save_bundle

    b = load_bundle(bench["bundle"])
    save_bundle(tmp_path / "gen-enc", {"name": "gen-enc"}, generator=b.generator(), encoder=b.encoder(),
                latent_avg=b.latent_avg())
    assert run(["eval", "synthetic", "--model", str(tmp_path / "gen-enc"), "--speakers", "2"]) == 2
    assert "celcl" in capsys.readouterr().err
