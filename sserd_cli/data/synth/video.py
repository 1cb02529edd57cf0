"""Talking clips: a synthetic speaker in a larger frame, with audio and per-frame ground truth.

A clip is fully described by a :class:`ClipSpec` (speaker seed, clip seed, emotion, intensity,
duration, fps, frame size). Everything except the expression comes from random streams that do
not depend on the emotion, so the same spec with another emotion is the exact "true answer" of
an emotion edit: same identity, head motion, light, background and speech track.

Files written for ``NAME``: ``NAME.mp4`` (H.264 + AAC, PyAV), ``NAME.truth.json`` (the spec, the
identity, the syllables and field names) and ``NAME.truth.npz`` (per-frame expression, speech,
pose and light vectors, the 5 landmarks, the skull-fixed alignment landmarks and the face box).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from ...emotions import EMOTIONS, emotion_index
from .audio import SpeechConfig, SpeechTrack, Syllable, mouth_track, speech_track
from .params import (Expression, FaceState, Identity, Light, Pose, Speech, emotion_expression, field_names,
                     from_vector, to_dict, to_vector)
from .render import RENDERER_VERSION, Rendered, render

TRUTH_VERSION = 1


@dataclass(frozen=True)
class ClipSpec:
    """Everything that determines a clip."""

    speaker_seed: int  # identity and voice
    clip_seed: int  # head motion, light, background, what is said
    emotion: str = "neutral"
    intensity: float = 1.0
    duration: float = 3.0  # seconds
    fps: float = 25.0
    width: int = 640
    height: int = 360
    sample_rate: int = 16000

    @property
    def n_frames(self) -> int:
        return max(1, int(round(self.duration * self.fps)))


def speaker_identity(speaker_seed: int) -> Identity:
    return Identity.random(np.random.default_rng([speaker_seed, 1]))


def _streams(spec: ClipSpec) -> dict[str, np.random.Generator]:
    """Independent random streams per purpose; none depends on the emotion."""
    names = ("motion", "light", "background", "speech", "blink", "placement")
    return {name: np.random.default_rng([spec.speaker_seed, spec.clip_seed, i + 10]) for i, name in enumerate(names)}


def make_background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A soft indoor-looking backdrop: lit wall gradient, a few blurred panels, a floor or desk band."""
    import cv2

    hue = rng.uniform(0, 1)
    base = np.array(cv2.cvtColor(np.uint8([[[hue * 179, rng.uniform(20, 90), rng.uniform(120, 210)]]]),
                                 cv2.COLOR_HSV2RGB)[0, 0], np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    lx, ly = rng.uniform(0, width), rng.uniform(-0.2 * height, 0.5 * height)
    light = 1.0 - 0.35 * np.sqrt(((xx - lx) / width) ** 2 + ((yy - ly) / height) ** 2)
    img = base[None, None, :] * light[..., None]
    for _ in range(int(rng.integers(1, 4))):  # shelves, frames, windows
        w, h = rng.uniform(0.1, 0.35) * width, rng.uniform(0.1, 0.4) * height
        x0, y0 = rng.uniform(-0.1, 1.0) * width, rng.uniform(0.0, 0.6) * height
        col = np.array(cv2.cvtColor(np.uint8([[[rng.uniform(0, 179), rng.uniform(10, 120), rng.uniform(60, 240)]]]),
                                    cv2.COLOR_HSV2RGB)[0, 0], np.float32)
        panel = np.zeros((height, width), np.float32)
        cv2.rectangle(panel, (int(x0), int(y0)), (int(x0 + w), int(y0 + h)), 1.0, -1)
        panel = cv2.GaussianBlur(panel, (0, 0), 0.01 * width + 1) * rng.uniform(0.4, 0.8)
        img = img * (1 - panel[..., None]) + col * panel[..., None]
    floor_y = rng.uniform(0.75, 0.95) * height
    floor = np.clip((yy - floor_y) / 4.0, 0, 1)[..., None]
    img = img * (1 - floor) + img * 0.6 * floor
    noise = cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), 2.0) * 4.0
    return np.clip(img + noise[..., None], 0, 255).astype(np.uint8)


@dataclass
class ClipPlan:
    """The per-frame states of a clip plus what is shared by all its frames (no pixels yet)."""

    spec: ClipSpec
    identity: Identity
    states: list[FaceState]
    center: np.ndarray  # [N, 2] head centre in frame pixels
    unit_px: float
    speech: SpeechTrack
    background_seed: list[int]

    def background(self) -> np.ndarray:
        return make_background(self.spec.width, self.spec.height, np.random.default_rng(self.background_seed))

    def with_emotion(self, emotion: str, intensity: float | None = None) -> "ClipPlan":
        """The same clip with another emotion: only the expression controls change."""
        intensity = self.spec.intensity if intensity is None else intensity
        expression = emotion_expression(emotion, intensity)
        return replace(self, spec=replace(self.spec, emotion=EMOTIONS[emotion_index(emotion)], intensity=intensity),
                       states=[s.with_expression(expression) for s in self.states])


def _smooth_noise(rng: np.random.Generator, t: np.ndarray, amplitude: float, freqs=(0.1, 0.6)) -> np.ndarray:
    out = np.zeros_like(t)
    for _ in range(3):
        f = rng.uniform(*freqs)
        out += np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.3, 1.0)
    return amplitude * out / 2.0


def plan_clip(spec: ClipSpec, speech_cfg: SpeechConfig | None = None) -> ClipPlan:
    """Draw the identity, motion, light, placement and speech of ``spec`` (deterministic)."""
    emotion_index(spec.emotion)
    if spec.width < 64 or spec.height < 64:
        raise ValueError(f"frame size must be at least 64x64, got {spec.width}x{spec.height}")
    if not 0.0 <= spec.intensity <= 1.0:
        raise ValueError(f"emotion intensity must be in 0..1, got {spec.intensity}")
    streams = _streams(spec)
    identity = speaker_identity(spec.speaker_seed)
    n, fps = spec.n_frames, spec.fps
    t = np.arange(n) / fps
    cfg = speech_cfg or SpeechConfig(sample_rate=spec.sample_rate)
    voice = np.random.default_rng([spec.speaker_seed, 2])
    f0 = float(voice.uniform(cfg.f0_low, cfg.f0_high))
    track = speech_track(n / fps, streams["speech"], cfg, f0=f0)
    mouth = mouth_track(track, fps, n, cfg)

    m = streams["motion"]
    yaw = m.uniform(-5, 5) + _smooth_noise(m, t, 5.0)
    pitch = m.uniform(-3, 3) + _smooth_noise(m, t, 3.0)
    roll = m.uniform(-3, 3) + _smooth_noise(m, t, 2.5)
    pitch = pitch + 2.0 * mouth[:, 0]  # talking nods a little
    tx, ty = _smooth_noise(m, t, 0.04, (0.05, 0.3)), _smooth_noise(m, t, 0.03, (0.05, 0.3))
    scale = 1 + _smooth_noise(m, t, 0.03, (0.05, 0.2))
    gx, gy = _smooth_noise(m, t, 0.25, (0.1, 0.4)), _smooth_noise(m, t, 0.15, (0.1, 0.4))

    b = streams["blink"]
    blink = np.zeros(n)
    tb = b.uniform(0.3, 2.5)
    while tb < n / fps:
        blink += np.clip(1 - np.abs(t - tb) / 0.09, 0, 1)  # ~180 ms blinks
        tb += b.uniform(1.5, 5.0)
    blink = np.clip(blink, 0, 1)

    light0 = Light.random(streams["light"])
    flicker = 1 + _smooth_noise(streams["light"], t, 0.02, (0.2, 1.0))

    p = streams["placement"]
    unit_px = float(p.uniform(0.15, 0.2) * spec.height)
    cx0, cy0 = spec.width * (0.5 + p.uniform(-0.15, 0.15)), spec.height * p.uniform(0.42, 0.5)
    center = np.stack([np.full(n, cx0), np.full(n, cy0)], 1)

    expression = emotion_expression(spec.emotion, spec.intensity)
    states = []
    for i in range(n):
        pose = Pose(yaw=float(yaw[i]), pitch=float(pitch[i]), roll=float(roll[i]), tx=float(tx[i]), ty=float(ty[i]),
                    scale=float(scale[i]), blink=float(blink[i]), gaze_x=float(gx[i]), gaze_y=float(gy[i]))
        light = replace(light0, intensity=light0.intensity * float(flicker[i]))
        states.append(FaceState(identity, expression, Speech(float(mouth[i, 0]), float(mouth[i, 1])), pose, light))
    return ClipPlan(spec, identity, states, center, unit_px, track, [spec.speaker_seed, spec.clip_seed, 99])


def render_plan(plan: ClipPlan, supersample: int = 2) -> Iterator[Rendered]:
    """Frames of ``plan`` in order."""
    background = plan.background()
    for state, c in zip(plan.states, plan.center):
        yield render(state, (plan.spec.width, plan.spec.height), center=(float(c[0]), float(c[1])),
                     unit_px=plan.unit_px, background=background, supersample=supersample)


# ---------------------------------------------------------------------------------------------- truth files

def truth_paths(video_path: Path) -> tuple[Path, Path]:
    video_path = Path(video_path)
    stem = video_path.with_suffix("")
    return stem.with_name(stem.name + ".truth.json"), stem.with_name(stem.name + ".truth.npz")


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)


def save_truth(video_path: Path, plan: ClipPlan, frames: list[Rendered]) -> tuple[Path, Path]:
    """Write the ground truth of a rendered clip beside ``video_path``."""
    json_path, npz_path = truth_paths(video_path)
    meta = {
        "format": "sserd-synth-truth", "version": TRUTH_VERSION, "renderer_version": RENDERER_VERSION,
        "video": Path(video_path).name,
        "spec": asdict(plan.spec),
        "identity": to_dict(plan.identity),
        "unit_px": plan.unit_px,
        "background_seed": plan.background_seed,
        "n_frames": len(plan.states),
        "fields": {"expression": field_names(Expression), "speech": field_names(Speech), "pose": field_names(Pose),
                   "light": field_names(Light)},
        "landmarks": ["left_eye", "right_eye", "nose_tip", "left_mouth_corner", "right_mouth_corner"],
        "syllables": [asdict(s) for s in plan.speech.syllables],
    }
    arrays = {
        "expression": np.stack([to_vector(s.expression) for s in plan.states]),
        "speech": np.stack([to_vector(s.speech) for s in plan.states]),
        "pose": np.stack([to_vector(s.pose) for s in plan.states]),
        "light": np.stack([to_vector(s.light) for s in plan.states]),
        "center": plan.center.astype(np.float64),
        "landmarks": np.stack([f.landmarks for f in frames]).astype(np.float32),
        "align_landmarks": np.stack([f.align_landmarks for f in frames]).astype(np.float32),
        "box": np.stack([f.box for f in frames]).astype(np.float32),
    }
    _atomic_write_bytes(json_path, (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    _atomic_write_bytes(npz_path, buf.getvalue())
    return json_path, npz_path


@dataclass
class ClipTruth:
    """Ground truth of one clip as read from disk."""

    meta: dict
    arrays: dict[str, np.ndarray]

    @property
    def spec(self) -> ClipSpec:
        return ClipSpec(**self.meta["spec"])

    @property
    def n_frames(self) -> int:
        return int(self.meta["n_frames"])

    def plan(self) -> ClipPlan:
        """The clip's plan rebuilt from the stored parameters (not from the seeds)."""
        from ...errors import SserdError

        if self.meta.get("renderer_version") != RENDERER_VERSION:
            raise SserdError(f"this clip was rendered by synthetic renderer version {self.meta.get('renderer_version')}, "
                             f"this sserd has version {RENDERER_VERSION}: its true answers would not be exact, "
                             "re-render the clips with 'sserd synth videos'")
        spec = self.spec
        identity = Identity(**self.meta["identity"])
        a = self.arrays
        states = [FaceState(identity, from_vector(Expression, a["expression"][i]), from_vector(Speech, a["speech"][i]),
                            from_vector(Pose, a["pose"][i]), from_vector(Light, a["light"][i]))
                  for i in range(self.n_frames)]
        syllables = [Syllable(**s) for s in self.meta["syllables"]]
        track = SpeechTrack(np.zeros(0, np.float32), spec.sample_rate, syllables)
        return ClipPlan(spec, identity, states, a["center"].astype(np.float64), float(self.meta["unit_px"]), track,
                        list(self.meta["background_seed"]))


def load_truth(path: Path) -> ClipTruth:
    """Read the ground truth of a clip: ``path`` is the video, its ``.truth.json``, or the ``.truth.npz``."""
    from ...errors import SserdError

    path = Path(path)
    name = path.name
    for suffix in (".truth.json", ".truth.npz"):
        if name.endswith(suffix):
            path = path.with_name(name[: -len(suffix)] + ".mp4")
    json_path, npz_path = truth_paths(path)
    if not json_path.is_file() or not npz_path.is_file():
        raise SserdError(f"no ground truth for {path} (expected {json_path.name} and {npz_path.name} beside it): "
                         "use a clip written by 'sserd synth videos'")
    try:
        meta = json.loads(json_path.read_text())
        with np.load(npz_path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError) as exc:
        raise SserdError(f"cannot read the ground truth of {path} ({exc}): re-render the clip") from None
    if meta.get("format") != "sserd-synth-truth":
        raise SserdError(f"{json_path} is not an sserd synthetic ground-truth file")
    return ClipTruth(meta, arrays)


# ---------------------------------------------------------------------------------------------- video files

def write_video(path: Path, frames: Iterator[np.ndarray], audio: np.ndarray, fps: float, sample_rate: int,
                crf: int = 18) -> None:
    """Encode RGB frames (H.264, yuv420p) and mono float audio (AAC) into an MP4, atomically.

    Single-threaded encoders so that the same input gives the same bytes.
    """
    import av

    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    rate = Fraction(fps).limit_denominator(1001)
    audio = np.asarray(audio, np.float32)
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            vstream = None
            astream = container.add_stream("aac", rate=sample_rate, layout="mono")
            astream.codec_context.thread_count = 1
            block = 1024
            a_pos = 0
            for i, frame in enumerate(frames):
                if vstream is None:
                    vstream = container.add_stream("libx264", rate=rate)
                    vstream.width, vstream.height = frame.shape[1], frame.shape[0]
                    vstream.pix_fmt = "yuv420p"
                    vstream.codec_context.thread_count = 1
                    vstream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                vf.pts = i
                vf.time_base = 1 / rate
                for packet in vstream.encode(vf):
                    container.mux(packet)
                # keep the audio up to this frame's end, so the two streams interleave
                a_end = min(len(audio), int(round((i + 1) / float(rate) * sample_rate)))
                while a_pos + block <= a_end or (a_pos < a_end and a_end == len(audio)):
                    chunk = audio[a_pos:a_pos + block]
                    af = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
                    af.sample_rate = sample_rate
                    af.pts = a_pos
                    af.time_base = Fraction(1, sample_rate)
                    for packet in astream.encode(af):
                        container.mux(packet)
                    a_pos += len(chunk)
            if vstream is not None:
                for packet in vstream.encode():
                    container.mux(packet)
            for packet in astream.encode():
                container.mux(packet)
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_clip(spec: ClipSpec, video_path: Path, supersample: int = 2, on_frame=None) -> tuple[ClipPlan, list[Rendered]]:
    """Render ``spec`` to ``video_path`` (MP4) with its truth files beside it.

    Returns the plan and the frames' geometry (``image`` left empty to bound memory; ``on_frame``
    sees every full frame as it is rendered).
    """
    plan = plan_clip(spec)
    frames: list[Rendered] = []

    def images():
        for r in render_plan(plan, supersample):
            frames.append(replace(r, image=np.empty(0, np.uint8)))  # keep the geometry, not the pixels
            if on_frame is not None:
                on_frame(r)
            yield r.image

    n_audio = int(round(spec.n_frames / spec.fps * spec.sample_rate))
    audio = np.zeros(n_audio, np.float32)
    audio[: min(n_audio, len(plan.speech.audio))] = plan.speech.audio[:n_audio]
    write_video(video_path, images(), audio, spec.fps, spec.sample_rate)
    save_truth(video_path, plan, frames)
    return plan, frames
