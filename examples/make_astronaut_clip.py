"""Make a short talking-head test clip from scikit-image's astronaut photo (a real, public-domain face).

The photo is moved by a small, smooth affine jitter (as a hand-held camera would) and paired with a
generated speech-like audio track (voiced harmonics with a syllable-rate envelope). It is the input of
README's Quick start and of the tests and benchmarks, which import :func:`write_clip` from this file.

    python examples/make_astronaut_clip.py                      # -> examples/astronaut_talking.mp4
    python examples/make_astronaut_clip.py out.mkv --seconds 10 --size 1280x720
"""

from __future__ import annotations

import argparse
import math
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data as skdata

HERE = Path(__file__).resolve().parent


def speech_like_audio(seconds: float, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Mono float32 in [-1, 1]: a gliding voiced pitch with harmonics, gated at about 4 syllables/s."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    pitch = 140.0 + 25.0 * np.sin(2 * np.pi * 0.7 * t) + 10.0 * np.sin(2 * np.pi * 2.3 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    voice = sum((0.6 / k) * np.sin(k * phase) for k in range(1, 8))
    syllables = np.clip(np.sin(2 * np.pi * 4.1 * t + 0.8 * np.sin(2 * np.pi * 0.9 * t)), 0.0, None) ** 1.5
    noise = 0.03 * rng.standard_normal(t.shape)  # breath / fricatives
    signal = (voice * syllables + noise * (0.3 + syllables)) * 0.5
    return np.clip(signal, -1.0, 1.0).astype(np.float32)


def astronaut_frame(index: int, fps: float, width: int, height: int) -> np.ndarray:
    """One RGB frame: the astronaut photo scaled to the frame height, with a slow affine jitter."""
    photo = skdata.astronaut()  # 512x512 RGB, the face sits at about (x=215, y=110)
    t = index / fps
    scale = height / 512 * 1.1 * (1.0 + 0.03 * math.sin(2 * math.pi * 0.45 * t))
    angle = 3.0 * math.sin(2 * math.pi * 0.6 * t + 0.4)
    face = (215.0, 120.0)  # rotate / scale about the face so it stays in the frame
    centre = (width * 0.5 + 8.0 * math.sin(2 * math.pi * 0.8 * t), height * 0.36 + 5.0 * math.cos(2 * math.pi * 0.5 * t))
    m = cv2.getRotationMatrix2D(face, angle, scale)
    m[:, 2] += np.array(centre) - np.array(face)
    return cv2.warpAffine(photo, m, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(96, 104, 118))


def write_clip(
    path: str | Path,
    seconds: float = 3.0,
    size: tuple[int, int] = (640, 360),
    fps: Fraction | int = 25,
    audio: bool = True,
    rotation: int = 0,
    crf: int = 23,
    frame_fn=None,
) -> Path:
    """Write the clip; ``rotation`` (0/90/180/270, counter-clockwise) stores the frames turned the other way
    and sets the stream's display matrix, as phones do for portrait video. ``frame_fn(i, fps, w, h)``
    replaces the astronaut (e.g. a face-free picture)."""
    path = Path(path)
    fps = Fraction(fps)
    width, height = size
    n_frames = int(round(seconds * fps))
    frame_fn = frame_fn or astronaut_frame
    turns = (rotation // 90) % 4
    coded = (height, width) if turns % 2 else (width, height)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264" if path.suffix != ".webm" else "libvpx-vp9", rate=fps)
        video.width, video.height = coded
        video.pix_fmt = "yuv420p"
        video.options = {"crf": str(crf), "preset": "veryfast"} if video.codec_context.name == "libx264" else {}
        if path.suffix == ".avi":
            video.options = {"crf": str(crf), "preset": "veryfast", "bf": "0"}  # AVI cannot reorder frames
        if turns:
            video.set_display_rotation(rotation)
        sound = None
        if audio:
            sound = out.add_stream("aac" if path.suffix != ".webm" else "libopus", rate=48000 if path.suffix == ".webm" else 16000)
            sound.layout = "mono"
            if sound.codec_context.name == "aac":
                sound.bit_rate = 48000
        samples = speech_like_audio(seconds, sound.codec_context.sample_rate) if sound is not None else None
        sent = 0  # audio samples sent so far: keep audio in step with video so the file is interleaved
        for i in range(n_frames):
            rgb = frame_fn(i, float(fps), width, height)
            # the displayed picture is `rgb`; the stored one is turned back so that applying `rotation` shows it
            stored = np.ascontiguousarray(np.rot90(rgb, -turns)) if turns else rgb
            frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
            frame.pts = i
            frame.time_base = 1 / fps
            out.mux(video.encode(frame))
            if samples is not None:
                until = min(len(samples), int((i + 1) / fps * sound.codec_context.sample_rate))
                sent = _send_audio(out, sound, samples, sent, until)
        out.mux(video.encode(None))
        if samples is not None:
            _send_audio(out, sound, samples, sent, len(samples))
            out.mux(sound.encode(None))
    return path


def _send_audio(out, sound, samples: np.ndarray, start: int, until: int, block: int = 1024) -> int:
    rate = sound.codec_context.sample_rate
    while start < until:
        chunk = samples[start:min(start + block, until)][None, :]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="flt", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        out.mux(sound.encode(frame))
        start += chunk.shape[1]
    return start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(HERE / "astronaut_talking.mp4"))
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--size", default="640x360", help="WIDTHxHEIGHT")
    parser.add_argument("--fps", default="25", help="e.g. 25 or 30000/1001")
    parser.add_argument("--no-audio", action="store_true")
    parser.add_argument("--rotation", type=int, default=0, choices=(0, 90, 180, 270))
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    out = write_clip(args.out, args.seconds, (w, h), Fraction(args.fps), not args.no_audio, args.rotation)
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
