"""Test helper (not a test module): the example clip maker, examples/make_astronaut_clip.py, as a module.

Tests build their real-face videos (the astronaut photo under small affine jitter, with audio)
with its ``write_clip``, the same code that made examples/astronaut_talking.mp4.
"""

import importlib.util
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def clip_maker():
    spec = importlib.util.spec_from_file_location("make_astronaut_clip", ROOT / "examples" / "make_astronaut_clip.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
