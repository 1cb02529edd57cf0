"""Where the bundled data lives once installed (wheel or editable)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def bundled_models_dir() -> Path:
    """The shipped ``models/`` folder, installed as the data package ``sserd_cli._models``.

    It is a namespace package (data only, no ``__init__``), so its location is read
    from the import spec rather than ``importlib.resources`` (which would give a
    multiplexed path). Editable installs cannot map a nested namespace package,
    so a source checkout uses the ``models/`` folder beside the package.
    """
    spec = importlib.util.find_spec("sserd_cli._models")
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    checkout = Path(__file__).resolve().parents[1] / "models"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError("the bundled models folder is missing from this installation: reinstall sserd")
