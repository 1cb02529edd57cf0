"""Test helper (not a test module): the example clip maker, examples/make_astronaut_clip.py, as a module.

Tests build their real-face videos (the astronaut photo under small affine jitter, with audio)
with its ``write_clip``, the same code that made examples/astronaut_talking.mp4. ``write_flat_clip`` makes
face-less clips in a chosen pixel format (odd sizes, 10-bit).
"""

import importlib.util
from functools import lru_cache
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def clip_maker():
    spec = importlib.util.spec_from_file_location("make_astronaut_clip", ROOT / "examples" / "make_astronaut_clip.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_flat_clip(path, width, height, pix_fmt, frames):
    """H.264 frames of flat grey levels at 25 fps, in the given pixel format."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = width, height, pix_fmt
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 40 * i % 256, np.uint8), format="rgb24")
            frame.pts = i
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    return path
