"""Smoothing over time in `sserd edit` (pipeline.temporal): centred windows that never reach across a frame
without a face, the edit's codes averaged except the rows that carry the mouth, the mouth probe, items in
order with a bounded look-ahead, and the CLI's --smooth."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from clips import clip_maker
from sserd_cli.cli import run
from sserd_cli.cli.timeline import SMOOTH_RADIUS
from sserd_cli.faces.align import warp_to_crop
from sserd_cli.faces.mask import face_mask, mouth_mask
from sserd_cli.faces.paste import apply_color_shift, color_shift, match_colors
from sserd_cli.pipeline.edit import FrameItem
from sserd_cli.pipeline.faces import crop_and_paste
from sserd_cli.pipeline.models import SserdModel, Target, load_model
from sserd_cli.pipeline.temporal import CentredWindow, SmoothSettings, TemporalEditor, gaussian_weights, mouth_changes
from test_edit_model import SIZE, make_bundle

FRAME = 96
M = np.array([[SIZE / FRAME, 0.0, 0.0], [0.0, SIZE / FRAME, 0.0]])  # frame -> crop: the whole frame


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    m = load_model(str(make_bundle(tmp_path_factory.mktemp("t") / "tiny", {"domain": "synthetic"})), "cpu")
    m.set_target(Target(emotion="happy"))
    return m


def frames(n: int, still: bool = False) -> list[np.ndarray]:
    """A face-sized pattern that drifts and flickers a little per frame (or stays put with ``still``)."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:FRAME, 0:FRAME].astype(np.float32)
    out = []
    for t in range(n):
        shift = 0.0 if still else 3.0 * t
        base = 120 + 60 * np.sin((xx + shift) / 9.0)[..., None] * np.array([1.0, 0.7, 0.4])
        noise = 0 if still else rng.normal(0, 12, base.shape)
        out.append(np.clip(base + noise, 0, 255).astype(np.uint8))
    return out


def items_of(images, faced=None) -> list[FrameItem]:
    faced = faced if faced is not None else [True] * len(images)
    return [FrameItem(i, None, img if f else None, M.copy() if f else None) for i, (img, f) in enumerate(zip(images, faced))]


def run_editor(model, items, settings, batch=4, color_match=False):
    editor = TemporalEditor(model, settings, batch, color_match)
    out, held = [], 0
    for pushed, item in enumerate(items, 1):
        out += editor.push(item)
        held = max(held, pushed - len(out))
    out += editor.finish()
    return out, held


def test_window_gives_gaussian_means_once_its_look_ahead_is_in():
    r = 2
    x = np.random.default_rng(0).normal(size=(9, 3))
    window = CentredWindow(r)
    out = []
    for i, v in enumerate(x):
        came = window.push(i, v)
        assert [key for key, _, _ in came] == ([i - r] if i >= r else [])  # value t leaves when t + r is in
        out += came
    out += window.end()
    g = gaussian_weights(r)
    assert [key for key, _, _ in out] == list(range(9))
    for i, own, mean in out:
        lo, hi = max(0, i - r), min(len(x), i + r + 1)
        w = g[lo - i + r:hi - i + r]
        np.testing.assert_allclose(mean, (w[:, None] * x[lo:hi]).sum(0) / w.sum())
        np.testing.assert_array_equal(own, x[i])
    assert len(window.values) == 0


def test_window_never_reaches_across_the_end_of_a_stretch():
    window = CentredWindow(3)
    for v in (0.0, 0.0):
        window.push("a", np.array([v]))
    first = window.end()
    for v in (10.0, 10.0, 10.0):
        window.push("b", np.array([v]))
    second = window.end()
    assert [float(m[0]) for _, _, m in first] == [0.0, 0.0]
    np.testing.assert_allclose([float(m[0]) for _, _, m in second], [10.0, 10.0, 10.0])


def test_radius_zero_edits_as_the_batch_path_does(model):
    images = frames(6)
    plain = items_of(images)
    for start in range(0, 6, 4):
        crop_and_paste(plain[start:start + 4], model)
    out, _ = run_editor(model, items_of(images), SmoothSettings(radius=0))
    for a, b in zip(out, plain):
        np.testing.assert_array_equal(a.edited, b.edited)


def test_a_still_face_is_left_as_it_is(model):
    images = frames(7, still=True)
    smooth, _ = run_editor(model, items_of(images), SmoothSettings(radius=2))
    plain, _ = run_editor(model, items_of(images), SmoothSettings(radius=0))
    for a, b in zip(smooth, plain):  # the mean of equal codes is the code: at most a rounding step apart
        assert np.abs(a.edited.astype(int) - b.edited.astype(int)).max() <= 1


def test_items_come_out_in_order_with_a_bounded_look_ahead(model):
    faced = [True] * 9 + [False] * 2 + [True] * 6 + [False] + [True] * 3
    images = frames(len(faced))
    out, held = run_editor(model, items_of(images, faced), SmoothSettings(radius=2), batch=4)
    assert [item.index for item in out] == list(range(len(faced)))
    assert [item.edited is not None for item in out] == faced
    assert held <= 2 * 4 + 2 * 2  # a batch waiting for E, the look-ahead, a batch waiting for G


def test_each_face_code_row_is_smoothed_as_far_as_it_does_not_move_the_mouth(model, monkeypatch):
    images = frames(10)
    rendered = []
    original = SserdModel.render

    def spy(self, w):
        rendered.append(w.clone())
        return original(self, w)

    items = items_of(images)
    # one batch, so one probe: the shares (the largest of the first probes) hold from the first frame on
    editor = TemporalEditor(model, SmoothSettings(radius=2, emotion=False), batch_size=10)
    monkeypatch.setattr(SserdModel, "render", spy)
    for item in items:
        editor.push(item)
    editor.finish()
    codes = torch.cat([w for w in rendered if len(w) == 10])  # the edits; the probe renders other batch sizes
    assert len(codes) == 10
    crops = np.stack([warp_to_crop(item.rgb, item.m, SIZE) for item in items])
    with torch.inference_mode():
        w_s = model.encode(crops).float()
        per_frame = model.codes(w_s)
    g = torch.from_numpy(gaussian_weights(2)).float()
    smoothed = torch.stack([(g[max(0, 2 - t):5 - max(0, t + 3 - 10), None, None] * w_s[max(0, t - 2):t + 3]).sum(0)
                            / g[max(0, 2 - t):5 - max(0, t + 3 - 10)].sum() for t in range(10)])
    shares = editor.shares
    assert shares.shape == (w_s.shape[1],) and shares.max() == 1.0 and shares.min() < 1.0
    top = int(np.argmax(shares))
    torch.testing.assert_close(codes[:, top], per_frame[:, top], atol=1e-5, rtol=1e-5)  # the mouth's row: its own
    keep = torch.from_numpy(shares).float()[:, None]
    expected = smoothed + keep * (w_s - smoothed) + (per_frame - w_s)  # and the frame's own emotion code
    torch.testing.assert_close(codes, expected, atol=1e-5, rtol=1e-5)


class _MouthWorld:
    """A fake latent model: row ``k`` paints the mouth, row 0 the whole face."""

    resolution, zoom, device = 64, 1.0, torch.device("cpu")

    def __init__(self, k: int):
        self.k = k
        self.mouth = torch.from_numpy(np.array(mouth_mask(64))) > 0.5

    def render(self, w):
        image = torch.full((len(w), 64, 64, 3), 100.0) + 20 * w[:, 0, :1, None, None].tanh()
        image[:, self.mouth] += 80 * w[:, self.k, :1].tanh()[:, None, :]
        return image.clamp(0, 255).round().byte().numpy()


def test_mouth_probe_finds_the_row_that_moves_the_mouth():
    torch.manual_seed(0)
    w = torch.randn(8, 6, 4)
    for k in (2, 5):
        changes = mouth_changes(_MouthWorld(k), w)
        assert np.argmax(changes) == k and 0 < changes[0] < changes[k]  # row 0 moves the whole face, the mouth too
        assert np.delete(changes, [0, k]).max() == 0.0


def test_colour_shift_is_what_match_colors_applies():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    reference = np.clip(image.astype(int) + 30, 0, 255).astype(np.uint8)
    weight = np.ones((32, 32), np.float32)
    np.testing.assert_array_equal(match_colors(image, reference, weight),
                                  apply_color_shift(image, color_shift(image, reference, weight)))
    assert color_shift(image, reference, np.zeros((32, 32), np.float32)) is None


def test_colour_match_is_smoothed_too(model):
    images = frames(8)
    for i in range(1, 8, 2):  # the frame's exposure flickers: a per-frame colour match follows it
        images[i] = np.clip(images[i].astype(int) + 25, 0, 255).astype(np.uint8)
    smooth, _ = run_editor(model, items_of(images), SmoothSettings(radius=2), color_match=True)
    plain, _ = run_editor(model, items_of(images), SmoothSettings(radius=2, colors=False), color_match=True)
    mask = face_mask(SIZE, model.zoom) > 0.5

    def face_means(out):
        return np.array([warp_to_crop(item.edited, M, SIZE)[mask].mean() for item in out])

    # the source's own flicker is kept outside the face; inside, the smoothed match jumps less
    assert np.abs(np.diff(face_means(smooth))).mean() < np.abs(np.diff(face_means(plain))).mean()


def test_cli_default_is_the_pipelines():
    assert SMOOTH_RADIUS == SmoothSettings().radius


def test_cli_smooth_option(tmp_path, model, capsys):
    bundle = model.bundle.path
    clip = clip_maker().write_clip(tmp_path / "clip.mp4", seconds=0.4, size=(320, 240), fps=25)
    assert run(["edit", str(clip), "--model", str(bundle), "--emotion", "happy", "--smooth", "13",
                "-o", str(tmp_path / "bad.mp4")]) == 2
    assert not (tmp_path / "bad.mp4").exists()
    for radius in ("0", "3"):
        out = tmp_path / f"r{radius}.mp4"
        assert run(["edit", str(clip), "--model", str(bundle), "--emotion", "happy", "--smooth", radius, "--force",
                    "-q", "-o", str(out)]) == 0
        with av.open(str(out)) as container:
            assert sum(1 for _ in container.decode(video=0)) == 10
