"""`sserd edit --start/--end/--span/--ramp/--trim` as an editor uses them: the whole video comes back with
only the spans changed (every frame, pts and audio packet kept), the edit fades in and out, several spans
with their own targets go in one pass, and every malformed time, strength or span is one clear line."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from skimage import data as skdata

from clips import ROOT, clip_maker
from sserd_cli.cli import run
from sserd_cli.errors import SserdError
from sserd_cli.media.image import write_image
from sserd_cli.pipeline.models import IdentityModel
from sserd_cli.pipeline.spans import Span, Timeline

BUNDLED = ROOT / "examples" / "clips" / "speaker_a.mp4"  # 3 s, 25 fps, 75 frames, AAC audio


class TintModel(IdentityModel):
    """A model whose edit is plain to see: each target adds its own colour, in proportion to its weight
    (target 0 reddens, target 1 blues). Records the targets and the weights it was given."""

    def __init__(self):
        super().__init__(resolution=128)
        self.calls = []

    def edit(self, crops, weights=None):
        w = np.zeros((len(crops), 2)) if weights is None else np.asarray(weights, dtype=float)
        self.calls.append(w.copy())
        out = crops.astype(np.float64)
        out[..., 0] += 120 * w[:, 0, None, None]
        if w.shape[1] > 1:
            out[..., 2] += 120 * w[:, 1, None, None]
        return np.clip(out, 0, 255).astype(np.uint8)


@pytest.fixture()
def tint(monkeypatch):
    """`sserd edit --model tint` loads a TintModel (the CLI asks pipeline.models.load_model)."""
    import sserd_cli.pipeline.models as models

    made = []
    real = models.load_model

    def load(name, *args, **kwargs):
        if name != "tint":
            return real(name, *args, **kwargs)
        made.append(TintModel())
        return made[-1]

    monkeypatch.setattr(models, "load_model", load)
    return made


def frames_pts(path):
    with av.open(str(path)) as c:
        frames, pts = [], []
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="rgb24").astype(np.int16))
            pts.append(f.pts)
    return frames, pts


def audio_packets(path):
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def one_error_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert lines[0].startswith("error:") and "Traceback" not in text
    return lines[0]


# ------------------------------------------------------------------------------------------ the timeline


def test_timeline_is_full_inside_a_span_and_fades_over_the_ramp():
    line = Timeline((Span(1.0, 2.0, 0, 0.8),), ramp=0.5)
    assert line.at(0.4) == (0.0, pytest.approx([0.0]))  # before the ramp: not reached
    assert line.at(1.0)[0] == 1.0 and line.at(1.5)[1] == pytest.approx([0.8])
    assert line.at(2.6)[0] == 0.0  # after the ramp out
    rise = [line.at(t)[0] for t in np.linspace(0.5, 1.0, 11)]
    fall = [line.at(t)[0] for t in np.linspace(2.0, 2.5, 11)]
    assert rise[0] == 0.0 and rise == sorted(rise) and fall == sorted(fall, reverse=True)
    assert 0.45 < line.at(0.75)[0] < 0.55  # smoothstep is half way half way
    assert line.at(0.75)[1] == pytest.approx([0.8 * line.at(0.75)[0]])  # strength grows with the fade
    assert Timeline((Span(1.0, 2.0),), ramp=0.0).at(0.999)[0] == 0.0  # no ramp: a cut


def test_neighbouring_ramps_cross_from_one_target_to_the_other():
    line = Timeline((Span(0.0, 1.0, 0), Span(1.2, 2.0, 1)), ramp=0.4, n_targets=2)
    presence, weights = line.at(1.1)  # in both ramps
    assert presence == 1.0 and weights.sum() == pytest.approx(1.0) and weights[0] == pytest.approx(weights[1])
    assert line.at(0.5)[1] == pytest.approx([1.0, 0.0]) and line.at(1.5)[1] == pytest.approx([0.0, 1.0])


def test_overlapping_spans_are_refused():
    with pytest.raises(SserdError, match="overlap"):
        Timeline((Span(0.0, 2.0), Span(1.0, 3.0)))
    with pytest.raises(SserdError, match="overlap"):
        Timeline((Span(0.0, None), Span(5.0, 6.0)))
    with pytest.raises(SserdError, match="after the start"):
        Span(2.0, 1.0)


# ------------------------------------------------------------------------------------- a span, whole video


def test_span_edit_of_the_bundled_clip_keeps_every_frame_and_the_audio(tint, tmp_path, capsys):
    """--start 1 --end 2 of the bundled 3-s clip: 75 frames out with the source's pts and audio bytes;
    frames before 0.7 s and from 2.3 s on are exactly the source's (lossless), the span is edited at full
    strength, and the 0.3-s ramps on each side rise and fall."""
    out = tmp_path / "span.mp4"
    code = run(["edit", str(BUNDLED), "--emotion", "happy", "--model", "tint", "--start", "0:01", "--end", "0:02",
                "--lossless", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    src, src_pts = frames_pts(BUNDLED)
    got, got_pts = frames_pts(out)
    assert len(got) == len(src) == 75 and got_pts == src_pts
    assert audio_packets(out) == audio_packets(BUNDLED)
    change = np.array([np.abs(a - b).sum() for a, b in zip(src, got)])
    # the lossless encoder gives back exactly the source's pixels where nothing was edited
    untouched = [i for i in range(75) if not 0.7 < i / 25 < 2.3]
    assert all(change[i] == 0 for i in untouched), change
    inside = change[25:50]
    assert inside.min() > 0 and inside.min() > 0.9 * inside.max()  # full strength over the whole span
    ramp_in, ramp_out = change[18:25], change[50:58]
    assert list(ramp_in) == sorted(ramp_in) and ramp_in[0] < inside.min() / 2
    assert list(ramp_out) == sorted(ramp_out, reverse=True) and ramp_out[-1] < inside.min() / 2
    assert "passed through" in err  # the summary line


def test_ramp_zero_edits_exactly_the_span(tint, tmp_path):
    out = tmp_path / "cut.mp4"
    assert run(["edit", str(BUNDLED), "--emotion", "happy", "--model", "tint", "--start", "1", "--end", "2",
                "--ramp", "0", "--lossless", "-o", str(out), "-q"]) == 0
    src, _ = frames_pts(BUNDLED)
    got, _ = frames_pts(out)
    changed = [i for i, (a, b) in enumerate(zip(src, got)) if (a != b).any()]
    assert changed == list(range(25, 50))


def test_trim_writes_only_the_span_as_before(tint, tmp_path):
    out = tmp_path / "trim.mp4"
    assert run(["edit", str(BUNDLED), "--emotion", "happy", "--model", "tint", "--start", "1", "--end", "2",
                "--trim", "-o", str(out), "-q"]) == 0
    got, pts = frames_pts(out)
    assert len(got) == 25 and pts[0] == 0
    assert 0 < len(audio_packets(out)) < len(audio_packets(BUNDLED))


def test_several_spans_with_their_own_targets_in_one_pass(tint, tmp_path, capsys):
    """Two spans, two emotions, the second at half strength: red in the first, half as much blue in the
    second, nothing between them beyond the ramps, one model call per batch."""
    out = tmp_path / "timeline.mp4"
    code = run(["edit", str(BUNDLED), "--model", "tint", "--span", "0:00.4-0:01=happy", "--span",
                "0:02-0:02.6=sad@0.5", "--ramp", "0", "--lossless", "--render", "generate", "-o", str(out), "-q"])
    assert code == 0, capsys.readouterr().err
    src, _ = frames_pts(BUNDLED)
    got, _ = frames_pts(out)
    red = np.array([(b - a)[..., 0].clip(0).sum() for a, b in zip(src, got)])
    blue = np.array([(b - a)[..., 2].clip(0).sum() for a, b in zip(src, got)])
    # (warp and paste-back resample the face: a colour the target did not add moves by a little too)
    assert (red[10:25] > 20 * blue[10:25]).all() and (blue[50:65] > 20 * red[50:65]).all()
    for quiet in (slice(0, 10), slice(25, 50), slice(65, 75)):
        assert red[quiet].sum() == 0 and blue[quiet].sum() == 0
    assert 0.4 < blue[50:65].mean() / red[10:25].mean() < 0.85  # @0.5 (bright pixels clip at full strength)
    model = tint[-1]
    assert [t.emotion for t in model.targets] == ["happy", "sad"]
    weights = np.concatenate(model.calls)
    assert weights.shape[1] == 2 and set(np.round(weights.max(axis=1), 3)) <= {1.0, 0.5}


def test_a_reference_image_per_span(tint, tmp_path):
    ref = tmp_path / "smile.png"
    write_image(ref, skdata.astronaut())
    out = tmp_path / "refs.mp4"
    assert run(["edit", str(BUNDLED), "--model", "tint", "--span", f"0:01-0:01.4={ref}", "--span", "0:02-=angry",
                "-o", str(out), "-q"]) == 0
    targets = tint[-1].targets
    assert targets[0].reference is not None and targets[0].reference.ndim == 4  # aligned crops of the photo
    assert targets[1].emotion == "angry"
    got, _ = frames_pts(out)
    assert len(got) == 75


def test_spans_default_to_the_command_target_and_strength(tint, tmp_path):
    out = tmp_path / "o.mp4"
    assert run(["edit", str(BUNDLED), "--model", "tint", "--emotion", "sad", "--strength", "0.25",
                "--span", "1-1.2", "--span", "2-2.2=happy@1.5", "-o", str(out), "-q"]) == 0
    model = tint[-1]
    assert [t.emotion for t in model.targets] == ["sad", "happy"]
    weights = np.concatenate(model.calls)
    assert np.isclose(weights[:, 0].max(), 0.25) and np.isclose(weights[:, 1].max(), 1.5)


def test_sserd_model_mixes_targets_per_crop():
    """The latent edit of several targets: each crop's code moves towards each target by its weight, as the
    one-target edit of that target at that strength does."""
    from test_edit_model import SIZE, make_bundle

    from sserd_cli.pipeline.models import Target, load_model

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        bundle = make_bundle(Path(tmp) / "tiny", {"domain": "synthetic"})
        model = load_model(str(bundle), "cpu")
        crops = np.random.default_rng(0).integers(0, 255, (3, SIZE, SIZE, 3), dtype=np.uint8)
        w_s = model.encode(crops)
        model.set_targets([Target(emotion="happy"), Target(emotion="neutral")])
        mixed = model.codes(w_s, np.array([[1.0, 0.0], [0.0, 0.5], [0.0, 0.0]]))
        model.set_target(Target(emotion="happy"))
        happy = model.codes(w_s)
        model.set_target(Target(emotion="neutral"))
        model.strength = 0.5
        neutral_half = model.codes(w_s)
    import torch

    assert torch.allclose(mixed[0], happy[0], atol=1e-5)
    assert torch.allclose(mixed[1], neutral_half[1], atol=1e-5)
    assert torch.equal(mixed[2], w_s[2])  # weight 0: the source code itself


# --------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("extra, words", [
    (["--strength", "nan"], "--strength nan: must be a number from 0"),
    (["--strength", "inf"], "from 0 (keep the source) to 2"),
    (["--strength", "1e9"], "to 2"),
    (["--strength", "-0.5"], "to 2"),
    (["--start", "nan"], "--start 'nan' is not a time"),
    (["--start", "inf"], "not a time"),
    (["--end", "1e999"], "--end '1e999' is not a time"),
    (["--start", "-1"], "not a time"),
    (["--start", "2", "--end", "1"], "must be after --start"),
    (["--ramp", "nan"], "--ramp nan"),
    (["--ramp", "-1"], "--ramp -1.0"),
    (["--span", "0:01"], "is not START-END"),
    (["--span", "2-1=happy"], "the end must come after the start"),
    (["--span", "0-1=furious"], "neither an emotion"),
    (["--span", "0-1=happy@nan"], "strength"),
    (["--span", "0-1=happy@5"], "to 2"),
    (["--span", "0-1@x"], "is not a strength"),
    (["--span", "0-nan=happy"], "is not a time"),
    (["--span", "0-2", "--span", "1-3"], "overlap"),
    (["--span", "0-1", "--start", "2"], "either --start/--end or --span"),
    (["--trim"], "--trim needs --start/--end or --span"),
    (["--start", "9"], "no frame lies in the span 9-"),
])
def test_bad_times_strengths_and_spans_are_one_line(media_clip, tmp_path, capsys, extra, words):
    out = tmp_path / "out.mp4"
    code = run(["edit", str(media_clip), "--emotion", "happy", "--model", "identity", "-q", "-o", str(out), *extra])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and words in line, line
    assert list(tmp_path.iterdir()) == []


def test_a_span_needs_a_target(media_clip, tmp_path, capsys):
    assert run(["edit", str(media_clip), "--model", "identity", "--span", "0-1", "-o", str(tmp_path / "o.mp4")]) == 2
    assert "a target in every --span" in one_error_line(capsys.readouterr().err)


def test_a_still_has_no_time(tmp_path, capsys):
    png = tmp_path / "face.png"
    write_image(png, skdata.astronaut())
    out = tmp_path / "out.png"
    assert run(["edit", str(png), "--emotion", "happy", "--model", "identity", "--start", "1", "-o", str(out)]) == 2
    assert "a still image has no time" in one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_a_span_past_the_end_is_named_and_the_rest_edited(media_clip, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    assert run(["edit", str(media_clip), "--model", "identity", "--span", "0-0.2=happy", "--span", "5-6=sad",
                "-o", str(out), "-q"]) == 0
    assert "no frame lies in the span 5-6: nothing edited there" in capsys.readouterr().err
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 20


@pytest.fixture(scope="module")
def media_clip(tmp_path_factory):
    return clip_maker().write_clip(tmp_path_factory.mktemp("spans") / "clip.mp4", seconds=0.8, size=(320, 240), fps=25)


def test_times_count_from_the_first_frame_when_the_stream_starts_late(tint, tmp_path):
    """A stream whose first frame has pts 2 s (cut from a longer recording): --start 0.2 means 0.2 s into
    what a player shows, for the span edit and for --trim alike."""
    from fractions import Fraction

    make = clip_maker()
    src = tmp_path / "late.mkv"
    with av.open(str(src), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(make.astronaut_frame(i, 25, 320, 240), format="rgb24")
            frame.pts, frame.time_base = 50 + i, Fraction(1, 25)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    span, cut = tmp_path / "span.mkv", tmp_path / "cut.mkv"
    edit = ["edit", str(src), "--emotion", "happy", "--model", "tint", "--start", "0.2", "--end", "0.4", "-q"]
    assert run([*edit, "--ramp", "0", "--lossless", "-o", str(span)]) == 0
    a, _ = frames_pts(src)
    b, _ = frames_pts(span)
    assert [i for i, (x, y) in enumerate(zip(a, b)) if (x != y).any()] == [5, 6, 7, 8, 9]
    assert run([*edit, "--trim", "-o", str(cut)]) == 0
    frames, pts = frames_pts(cut)
    assert len(frames) == 5 and pts[0] == 0


def test_no_face_in_the_span_hands_back_the_source_and_says_where_it_looked(tmp_path, capsys):
    from clips import write_flat_clip

    src = write_flat_clip(tmp_path / "flat.mp4", 64, 48, "yuv420p", 10)
    out = tmp_path / "out.mp4"
    assert run(["edit", str(src), "--emotion", "happy", "--model", "identity", "-q", "--start", "0", "--end", "0.2",
                "-o", str(out)]) == 0
    assert f"{src}: no face found in the span 0-0.2: the output is the input unchanged" in capsys.readouterr().err
    with av.open(str(src)) as a, av.open(str(out)) as b:
        assert [bytes(p) for p in a.demux(video=0) if p.size] == [bytes(p) for p in b.demux(video=0) if p.size]
