"""Talking clips: frame count, fps, audio, determinism, ground truth, and exact true answers."""

import dataclasses
from fractions import Fraction

import av
import numpy as np
import pytest

from sserd_cli.data.synth.params import Expression, emotion_expression
from sserd_cli.data.synth.truth import render_true_answer, true_answer_plan
from sserd_cli.data.synth.video import ClipSpec, load_truth, plan_clip, render_plan, write_clip
from sserd_cli.errors import SserdError

SPEC = ClipSpec(speaker_seed=11, clip_seed=5, emotion="neutral", intensity=1.0, duration=1.2, fps=25.0,
                width=256, height=144)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip")
    write_clip(SPEC, root / "a.mp4")
    write_clip(SPEC, root / "b.mp4")
    return root


def test_video_has_the_frames_rate_and_audio_of_the_spec(clip):
    with av.open(str(clip / "a.mp4")) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == "h264" and a.codec_context.name == "aac"
        assert v.average_rate == Fraction(25) and (v.width, v.height) == (256, 144)
        assert a.sample_rate == SPEC.sample_rate
        frames = [f for f in c.decode(video=0)]
    assert len(frames) == SPEC.n_frames == 30
    assert [f.pts for f in frames] == sorted(f.pts for f in frames)
    with av.open(str(clip / "a.mp4")) as c:
        samples = sum(f.samples for f in c.decode(audio=0))
    # audio and video last as long (AAC adds at most one 1024-sample frame of padding)
    video_s = SPEC.n_frames / SPEC.fps
    assert abs(samples / SPEC.sample_rate - video_s) <= 1024 / SPEC.sample_rate + 1e-6


def test_same_spec_gives_identical_files(clip):
    for suffix in (".mp4", ".truth.npz"):
        assert (clip / f"a{suffix}").read_bytes() == (clip / f"b{suffix}").read_bytes()


def test_truth_round_trips_every_parameter(clip):
    truth = load_truth(clip / "a.mp4")
    plan = plan_clip(SPEC)
    assert truth.n_frames == SPEC.n_frames and truth.spec == SPEC
    rebuilt = truth.plan()
    assert rebuilt.states == plan.states
    assert truth.arrays["landmarks"].shape == (SPEC.n_frames, 5, 2)
    assert truth.arrays["box"].shape == (SPEC.n_frames, 4)
    assert load_truth(clip / "a.truth.json").n_frames == SPEC.n_frames
    with pytest.raises(SserdError, match="no ground truth"):
        load_truth(clip / "missing.mp4")


def test_changing_the_emotion_changes_only_the_expression():
    neutral = plan_clip(SPEC)
    angry = plan_clip(dataclasses.replace(SPEC, emotion="angry"))
    assert [s.speech for s in angry.states] == [s.speech for s in neutral.states]
    assert [s.pose for s in angry.states] == [s.pose for s in neutral.states]
    assert [s.light for s in angry.states] == [s.light for s in neutral.states]
    assert all(s.expression == emotion_expression("angry") for s in angry.states)
    assert np.array_equal(angry.speech.audio, neutral.speech.audio)
    # speech is really moving, emotion is constant
    mouth = np.array([s.speech.mouth_open for s in neutral.states])
    assert mouth.max() - mouth.min() > 0.3
    # and a different clip seed changes the speech but not the expression controls
    other = plan_clip(dataclasses.replace(SPEC, clip_seed=6, emotion="angry"))
    assert [s.expression for s in other.states] == [s.expression for s in angry.states]
    assert [s.speech for s in other.states] != [s.speech for s in angry.states]


def test_true_answer_equals_a_fresh_render_with_the_target_emotion(clip):
    truth = load_truth(clip / "a.mp4")
    answer = list(render_true_answer(truth, "happy"))
    fresh = list(render_plan(plan_clip(dataclasses.replace(SPEC, emotion="happy"))))
    assert len(answer) == len(fresh) == SPEC.n_frames
    for x, y in zip(answer, fresh):
        assert np.array_equal(x.image, y.image)
        assert np.array_equal(x.align_landmarks, y.align_landmarks)
    # the pair differs from the source only in the expression controls
    src, tgt = truth.plan(), true_answer_plan(truth, "happy")
    assert all(a.speech == b.speech and a.pose == b.pose and a.light == b.light and a.identity == b.identity
               for a, b in zip(src.states, tgt.states))
    assert all(a.expression == Expression() and b.expression != Expression() for a, b in zip(src.states, tgt.states))


def _audio_packets(path):
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(audio=0) if p.size]


def test_truth_command_writes_the_answer_with_the_source_audio(clip, tmp_path):
    from sserd_cli.cli import run

    out = tmp_path / "happy.mp4"
    assert run(["synth", "truth", str(clip / "a.mp4"), "-e", "happy", "-o", str(out)]) == 0
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == SPEC.n_frames
    assert _audio_packets(out) == _audio_packets(clip / "a.mp4")
    assert run(["synth", "truth", str(clip / "a.mp4"), "-e", "happy", "-o", str(out)]) == 2  # no silent overwrite
    assert run(["synth", "truth", str(clip / "a.mp4"), "-e", "happy", "-o", str(clip / "a.mp4"), "--overwrite"]) == 2
