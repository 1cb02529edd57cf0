"""`sserd edit --render`: transfer (the default) carries the model's edit onto the source's own pixels; a real
face is edited by the shipped default without a refusal, pixels away from the face stay exactly the source's,
and the flags that do not go with it say so in one line."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from sserd_cli.cli import run

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "examples" / "astronaut_talking.mp4"


def frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_unknown_render_mode_and_colour_match_with_transfer_are_one_line(tmp_path, capsys):
    out = tmp_path / "out.mp4"
    base = ["edit", str(ASTRONAUT), "--emotion", "angry", "--model", "identity", "-o", str(out), "-q"]
    assert run(base + ["--render", "paint"]) == 2
    assert "unknown --render 'paint'" in one_error(capsys)
    assert run(base + ["--color-match"]) == 2
    assert "--render generate" in one_error(capsys)
    assert list(tmp_path.iterdir()) == []
    assert run(base + ["--color-match", "--render", "generate", "--end", "0.2", "--trim"]) == 0


def test_the_default_edits_a_real_face_and_leaves_the_rest_exact(tmp_path, capsys):
    """The astronaut is a real face the default model cannot reconstruct: transfer edits it anyway (no
    refusal, no warning), and outside the face's neighbourhood every pixel equals the pass-through's."""
    cut = ["--end", "0.4", "--trim", "--lossless", "-q"]
    edited, plain = tmp_path / "edited.mp4", tmp_path / "plain.mp4"
    assert run(["edit", str(ASTRONAUT), "--emotion", "angry", "-o", str(edited), *cut]) == 0
    assert capsys.readouterr().err == ""
    assert run(["edit", str(ASTRONAUT), "--emotion", "angry", "--model", "identity", "-o", str(plain), *cut]) == 0
    a, b = frames(plain), frames(edited)
    assert len(a) == len(b) == 10
    changed = np.stack([(x != y).any(axis=2) for x, y in zip(a, b)])
    assert changed.any(), "the edit moved nothing"
    ys, xs = np.nonzero(changed.any(axis=0))
    h, w = changed.shape[1:]
    # the face (about 100 px tall in this 640x360 clip) and its feathered edge, nothing else
    assert xs.max() - xs.min() < 0.35 * w and ys.max() - ys.min() < 0.6 * h
    assert changed.mean() < 0.05


def test_the_paste_stage_carries_out_exactly_what_transfer_would():
    """The pipeline hands each item's renders to a paste stage of its own (DeferredTransfer): the frame it
    makes there is the one Transfer.paste makes at once."""
    from skimage import data as skdata

    from sserd_cli.faces.align import estimate_alignment, warp_to_crop
    from sserd_cli.pipeline.edit import FrameItem
    from sserd_cli.pipeline.faces import DeferredTransfer, Transfer
    from sserd_cli.pipeline.models import IdentityModel

    rgb = skdata.astronaut()
    m = estimate_alignment(np.array([[186, 112], [244, 112], [214, 150], [192, 178], [238, 178]], float), 64)
    crop = warp_to_crop(rgb, m, 64)
    edited = np.roll(crop, 1, axis=0)  # a small downward shift: some motion to carry
    model = IdentityModel(64)
    # a decoded frame the pipeline owns is edited in place; a caller's frame (a benchmark's clip) is left as it was
    own = rgb.copy()
    now, later = FrameItem(0, None, own, m, owns_rgb=True), FrameItem(0, None, rgb, m)
    Transfer(model).paste(now, crop, edited, crop)
    assert now.edited is own
    deferred = DeferredTransfer(model)
    deferred.paste(later, crop, edited, crop)
    assert later.edited is None and later.transfer_job is not None
    deferred.finish(later)
    assert later.transfer_job is None and np.array_equal(later.edited, now.edited)
    assert not np.array_equal(now.edited, rgb) and np.array_equal(rgb, skdata.astronaut())
    x0, y0, x1, y1 = now.changed  # every changed pixel lies in the rectangle the encoder converts back
    outside = np.ones(rgb.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(now.edited[outside], rgb[outside])


def test_a_card_that_records_the_mouth_rows_spares_the_probe(monkeypatch):
    """The default bundle's card records which W+ rows move the mouth: the editor uses them and renders no
    probe; a card without them (or with a wrong length) is probed as before."""
    import sserd_cli.pipeline.temporal as temporal
    from sserd_cli.pipeline.models import load_model

    model = load_model("sserd-synthetic", "cpu")
    shares = temporal.card_mouth_shares(model)
    assert shares is not None and len(shares) == model.bundle.card["n_latent"] and shares.max() == 1.0
    assert int(np.argmax(shares)) == 6  # the jaw's row of the default generator
    editor = temporal.TemporalEditor(model)
    assert not editor.probing and np.array_equal(editor.shares, shares)
    card = dict(model.bundle.card, smoothing={"mouth_shares": [1.0, 0.5]})
    monkeypatch.setattr(model.bundle, "card", card)
    assert temporal.card_mouth_shares(model) is None and temporal.TemporalEditor(model).probing


def test_a_span_edited_by_transfer_leaves_every_other_frame_exact(tmp_path):
    """Transfer with a span and no ramp: frames outside the span are the pass-through's exactly, frames inside
    are moved (the Quick start clip, the shipped default)."""
    clip = ROOT / "examples" / "clips" / "speaker_a.mp4"
    edited, plain = tmp_path / "span.mp4", tmp_path / "plain.mp4"
    span = ["--span", "0.4-0.8", "--ramp", "0", "--lossless", "-q"]
    assert run(["edit", str(clip), "--emotion", "angry", "-o", str(edited), *span]) == 0
    assert run(["edit", str(clip), "--emotion", "angry", "--model", "identity", "-o", str(plain), *span]) == 0
    a, b = frames(plain), frames(edited)
    assert len(a) == len(b) == 75
    moved = [i for i, (x, y) in enumerate(zip(a, b)) if (x != y).any()]
    assert moved == list(range(10, 20))


def test_the_transfer_check_judges_the_models_own_edit_not_the_users_strength(tmp_path):
    """At --strength 2 the field is twice as long, but the check measures the model's edit at strength 1: the
    strength a user asks for is not a reason to refuse."""
    out = tmp_path / "strong.mp4"
    assert run(["edit", str(ASTRONAUT), "--emotion", "surprised", "--strength", "2", "--end", "0.3", "--trim",
                "-o", str(out), "-q"]) == 0


def test_the_report_says_how_long_each_pipeline_stage_worked(tmp_path):
    """The speed profile: every stage thread's busy time (its wall time less its waits on the pipes), the
    paste stage among them with transfer; none longer than the edit itself."""
    from sserd_cli.pipeline.edit import EditOptions, edit_path
    from sserd_cli.pipeline.models import Target, load_model

    model = load_model("sserd-synthetic", "cpu")
    model.set_target(Target(emotion="angry"))
    report = edit_path(ROOT / "examples" / "clips" / "speaker_a.mp4", tmp_path / "out.mp4", model,
                       EditOptions(end=0.6))
    assert set(report.stages) == {"decode", "faces", "model", "paste", "encode"}
    assert all(0.0 <= s <= report.seconds for s in report.stages.values())
    assert report.stages["model"] > 0.0 and report.stages["paste"] > 0.0
    generate = edit_path(ROOT / "examples" / "clips" / "speaker_a.mp4", tmp_path / "gen.mp4", model,
                         EditOptions(end=0.6, render="generate"))
    assert "paste" not in generate.stages
