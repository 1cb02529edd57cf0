"""Where the bundled data lives once installed (wheel or editable)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def bundled_models_dir() -> Path:
    """The shipped ``models/`` folder, installed as the data package ``sserd_cli._models``."""
    return Path(str(resources.files("sserd_cli._models")))
