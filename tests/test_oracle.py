"""The shipped oracle reads emotions and mouth shapes from fresh renders; synthetic metrics behave at their limits."""

import json
import math

import numpy as np
import pytest

from sserd_cli.cli import run
from sserd_cli.data.synth.dataset import crop_frame_size, random_face, render_crop
from sserd_cli.data.synth.truth import read_video_frames, render_true_answer
from sserd_cli.data.synth.video import ClipSpec, make_background, write_clip
from sserd_cli.emotions import EMOTIONS
from sserd_cli.errors import SserdError
from sserd_cli.metrics.oracle import Oracle
from sserd_cli.metrics.synthetic import EditCase, SyntheticEvaluator, psnr_ssim, summarize

SPEC = ClipSpec(speaker_seed=77, clip_seed=3, emotion="neutral", intensity=1.0, duration=0.6, fps=25.0,
                width=256, height=144)


@pytest.fixture(scope="module")
def oracle():
    return Oracle.load()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "src.mp4"
    write_clip(SPEC, path)
    return path


def test_shipped_oracle_is_small_and_carries_its_card(oracle):
    weights = oracle.path / "oracle.safetensors"
    assert weights.stat().st_size < 5 * 2**20
    held = oracle.card["held_out"]
    assert held["n"] > 100 and 0 <= held["emotion_accuracy"] <= 1
    assert oracle.card["outputs"]["emotion"] == list(EMOTIONS)


def test_oracle_reads_fresh_renders_far_above_chance(oracle):
    # new identities (a seed the oracle never saw), 3 renders per emotion at full intensity
    crops, emotions, mouths = [], [], []
    for i in range(21):
        rng = np.random.default_rng([999, i])
        emotion = EMOTIONS[i % 7]
        _, _, state = random_face(rng, 999, 50, emotion, 1.0)
        crop, _ = render_crop(state, 128, make_background(crop_frame_size(128), crop_frame_size(128), rng))
        crops.append(crop)
        emotions.append(i % 7)
        mouths.append(state.speech.mouth_open)
    reading = oracle.read(np.stack(crops))
    accuracy = (reading.emotion == np.array(emotions)).mean()
    assert accuracy >= 0.8  # chance is 1/7
    assert np.abs(reading.speech[:, 0] - np.array(mouths)).mean() <= 0.1  # <= 10% of the 0..1 range


def test_missing_oracle_is_a_clear_error(tmp_path):
    with pytest.raises(SserdError, match="train-oracle"):
        Oracle.load(tmp_path)


def test_metrics_on_the_true_answer_are_at_their_limits(oracle, clip):
    evaluator = SyntheticEvaluator(oracle, crop_size=128)
    answer = np.stack([r.image for r in render_true_answer(clip, "happy")])
    perfect = evaluator.evaluate(EditCase(clip, "happy", answer, "truth"))
    assert math.isinf(perfect.psnr) and perfect.ssim == pytest.approx(1.0)
    assert perfect.frechet == pytest.approx(0.0, abs=1e-6)
    assert perfect.flicker == pytest.approx(1.0)  # moves exactly as the truth does
    assert perfect.identity_cosine == pytest.approx(1.0, abs=1e-5)
    unedited = evaluator.evaluate(EditCase(clip, "happy", read_video_frames(clip), "no edit"))
    assert unedited.psnr < 40 and unedited.ssim < 1
    assert perfect.emotion_accuracy > unedited.emotion_accuracy
    assert perfect.target_probability > unedited.target_probability
    # the unedited clip keeps the speech as well as the truth does
    assert unedited.mouth_open_mae < 0.15 and perfect.mouth_open_mae < 0.15
    table = summarize([perfect, unedited])
    assert set(table) == {"truth", "no edit"} and table["truth"]["cases"] == 1
    with pytest.raises(SserdError, match="frames"):
        evaluator.evaluate(EditCase(clip, "happy", answer[:-1]))


def test_flicker_counts_frame_to_frame_shimmer_against_the_truth(oracle, clip):
    evaluator = SyntheticEvaluator(oracle, crop_size=128)
    answer = np.stack([r.image for r in render_true_answer(clip, "sad")])
    rng = np.random.default_rng(0)
    shimmer = np.clip(answer.astype(np.int16) + rng.integers(-12, 13, answer.shape[:3])[..., None], 0, 255).astype(np.uint8)
    noisy = evaluator.evaluate(EditCase(clip, "sad", shimmer, "shimmer"))
    assert noisy.flicker > 1.5  # the truth's own motion is 1.0 (test above)
    assert "flicker" in summarize([noisy])["shimmer"]


def test_psnr_ssim_of_different_images():
    a = np.zeros((2, 32, 32, 3), np.uint8)
    b = a.copy()
    b[:, :16] = 10
    psnr, ssim = psnr_ssim(a, b)
    assert psnr == pytest.approx(10 * math.log10(255**2 / 50.0))
    assert ssim < 1


def test_eval_synthetic_cli_prints_json_rows(clip, capsys):
    code = run(["eval", "synthetic", str(clip), "--clip", str(clip), "-e", "happy", "--baselines", "--json",
                "--crop-size", "96"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    labels = [r["label"] for r in data["results"]]
    assert labels == ["src.mp4", "no edit", "true answer"]
    truth_row = data["results"][2]
    assert truth_row["psnr"] == "inf" and truth_row["ssim"] == pytest.approx(1.0)
    assert run(["eval", "synthetic", str(clip), "--clip", str(clip), "-e", "furious"]) == 2


@pytest.mark.slow
def test_oracle_held_out_accuracy_meets_the_bar(oracle):
    """The issue's bar, measured afresh: >= 95% emotion accuracy and mouth-opening MAE <= 0.1 on 700 clean
    renders of identities the oracle never saw (another seed's speaker pool)."""
    from sserd_cli.metrics.oracle import OracleTrainConfig, evaluate, render_oracle_set

    tcfg = OracleTrainConfig(seed=12345, workers=2, config=oracle.config)
    crops, labels = render_oracle_set(700, "test", tcfg)
    metrics = evaluate(oracle, crops, labels)
    assert metrics["emotion_accuracy"] >= 0.95
    assert metrics["mouth_open_mae"] <= 0.1
