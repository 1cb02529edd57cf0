"""`sserd edit --model identity` must reproduce its input: same frames, pts and audio bytes; the face region
within 40 dB PSNR of the source after warp + paste-back; every pixel outside the pasted mask unchanged."""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from clips import clip_maker
from sserd_cli.cli import run
from sserd_cli.faces.mask import face_mask
from sserd_cli.media.encode import EncodeSettings
from sserd_cli.pipeline.edit import EditOptions, edit_path
from sserd_cli.pipeline.models import IdentityModel, Target



CLIPS = {
    "25fps": dict(seconds=1.0, size=(320, 240), fps=25),
    "ntsc": dict(seconds=1.0, size=(320, 240), fps=Fraction(30000, 1001)),
    "silent": dict(seconds=0.6, size=(320, 240), fps=25, audio=False),
    "portrait": dict(seconds=0.6, size=(240, 320), fps=25, rotation=90),
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    make = clip_maker()
    root = tmp_path_factory.mktemp("identity")
    return {name: make.write_clip(root / f"{name}.mp4", **kw) for name, kw in CLIPS.items()}


def decoded(path):
    """Upright RGB frames (rotation applied, as a player shows them) and their pts."""
    frames, pts = [], []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            frames.append(np.rot90(f.to_ndarray(format="rgb24"), (f.rotation // 90) % 4))
            pts.append(f.pts)
    return frames, pts


def audio_packets(path):
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size] if c.streams.audio else []


def identity():
    model = IdentityModel()
    model.set_target(Target(emotion="happy"))
    return model


@pytest.mark.parametrize("name", list(CLIPS))
def test_identity_edit_reproduces_input_exactly_outside_the_mask(clips, tmp_path, name):
    src = clips[name]
    alignments = {}
    out = tmp_path / "exact.mp4"
    model = identity()
    report = edit_path(src, out, model, EditOptions(encode=EncodeSettings(lossless=True)),
                       observer=lambda i, m: alignments.__setitem__(i, m))
    a, pts_a = decoded(src)
    b, pts_b = decoded(out)
    assert len(b) == len(a) == report.frames and pts_b == pts_a
    assert audio_packets(out) == audio_packets(src)
    assert report.edited == len(a), "the astronaut's face is found in every frame"
    mask = face_mask(model.resolution)
    for i, (x, y) in enumerate(zip(a, b)):
        h, w = x.shape[:2]
        alpha = cv2.warpAffine(mask, alignments[i], (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        changed = (x != y).any(axis=-1)
        assert not (changed & (alpha == 0)).any(), f"frame {i}: pixels outside the mask changed"
        face = alpha > 0.5
        mse = np.mean((x[face].astype(np.float64) - y[face]) ** 2)
        assert 10 * np.log10(255.0**2 / max(mse, 1e-12)) > 40.0, f"frame {i}: face region PSNR too low"


@pytest.mark.parametrize("name", ["ntsc", "portrait"])
def test_cli_default_encode_keeps_frames_pts_audio_rotation(clips, tmp_path, name):
    src = clips[name]
    out = tmp_path / "out.mp4"
    assert run(["edit", str(src), "--emotion", "happy", "--model", "identity", "-o", str(out), "--quiet"]) == 0
    a, pts_a = decoded(src)
    b, pts_b = decoded(out)
    assert pts_b == pts_a and audio_packets(out) == audio_packets(src)
    assert b[0].shape == a[0].shape  # upright size equal: the rotation metadata was kept
    psnr = [10 * np.log10(255.0**2 / np.mean((x.astype(np.float64) - y) ** 2)) for x, y in zip(a, b)]
    assert min(psnr) > 35.0  # whole frame, through the lossy default encoder (crf 18)


def test_frames_without_a_face_pass_through_exactly(tmp_path):
    """A clip whose face leaves the picture half-way: those frames are reported as passed through and come
    out exactly as decoded; the face frames are edited."""
    make = clip_maker()

    def half_face(i, fps, w, h):
        frame = make.astronaut_frame(i, fps, w, h)
        return frame if i < 12 else np.full_like(frame, 90)

    src = make.write_clip(tmp_path / "half.mp4", seconds=1.0, size=(320, 240), fps=25, frame_fn=half_face)
    out = tmp_path / "out.mp4"
    report = edit_path(src, out, identity(), EditOptions(encode=EncodeSettings(lossless=True)))
    assert report.frames == 25 and report.edited == 12 and report.passed == 13
    a, pts_a = decoded(src)
    b, pts_b = decoded(out)
    assert pts_a == pts_b
    assert all(np.array_equal(x, y) for x, y in zip(a[12:], b[12:]))
