"""Per-crop parameter labels beside a dataset index (``labels.jsonl``, written by ``sserd synth images``).

Each line holds a crop's path and its renderer state (identity, expression, speech, pose and light
controls). Training stages that can use more than the emotion label (``train-features``,
``train-autoencoder``'s auxiliary head) read the groups below as one flat vector per crop. A dataset made
by ``sserd prepare`` has no such file: those stages then use the emotion label alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import SserdError

# the controls a person sees in a face; light is left out: it is a property of the scene, not of the face
PARAM_GROUPS = ("expression", "speech", "pose", "identity")


def read_param_labels(root: str | Path, paths: Sequence[str]) -> tuple[list[str], np.ndarray] | None:
    """(parameter names, float32 [len(paths), P]) for the crops ``paths`` of dataset ``root``, or None when
    the dataset has no labels file. A crop the file does not list is an error (a damaged dataset)."""
    root = Path(root)
    meta_file = root / "dataset.json"
    name = "labels.jsonl"
    if meta_file.is_file():
        name = json.loads(meta_file.read_text()).get("labels") or name
    file = root / name
    if not file.is_file():
        return None
    states: dict[str, dict] = {}
    for n, line in enumerate(file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            states[record["path"]] = record["state"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise SserdError(f"{file} line {n} is not a label record: re-run the command that made the dataset") from None
    if not states:
        return None
    first = next(iter(states.values()))
    names = [f"{g}.{k}" for g in PARAM_GROUPS if isinstance(first.get(g), dict) for k in sorted(first[g])]
    values = np.zeros((len(paths), len(names)), np.float32)
    for i, p in enumerate(paths):
        state = states.get(p)
        if state is None:
            raise SserdError(f"{file} has no labels for {p}: re-run the command that made the dataset")
        values[i] = [float(state[g][k]) for g, k in (n.split(".", 1) for n in names)]
    return names, values


__all__ = ["PARAM_GROUPS", "read_param_labels", "standardised_param_labels", "crop_size"]


def standardised_param_labels(root: str | Path, paths: Sequence[str]):
    """(names, values [N, P] in standard deviations, mean [P], std [P]) of the parameters that vary across ``paths``
    (a control that never varies in a dataset cannot be read from it), or None without a labels file."""
    labels = read_param_labels(root, paths)
    if labels is None:
        return None
    names, values = labels
    mean, std = values.mean(0), values.std(0)
    keep = std > 1e-6
    return ([n for n, k in zip(names, keep) if k], (values[:, keep] - mean[keep]) / std[keep], mean[keep], std[keep])


def crop_size(meta: dict) -> int | None:
    """The crop side a dataset's ``dataset.json`` records (``sserd synth``: crop_size; ``sserd prepare``: its framing)."""
    found = meta.get("crop_size") or (meta.get("framing") or {}).get("crop_size")
    return int(found) if found else None
