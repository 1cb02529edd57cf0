"""A Keras CNN kept the project's way: its layer graph as JSON data in a card, its weights in safetensors.

A Keras HDF5 file needs h5py to read, and the project keeps every weight file it ships in one format,
safetensors (tensors only, nothing executed on load). So a Keras model the project ships is converted once (:func:`save_keras_graph`, from what :func:`~sserd_cli.faces.fer.read_keras_h5`
reads) into ``NAME.json`` (the card: the layer list in Keras's own layout, pruned of training-only settings, plus
whatever the converter records) and ``NAME.safetensors`` (one float32 tensor per layer weight, keyed
``layer/weight``), and :func:`load_keras_graph` gives back the same ``(layers, weights)`` pair for
:class:`~sserd_cli.faces.fer.KerasNet`. The graph is data: only the layer types that runner knows can run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import SserdError

CARD_FORMAT = "sserd-keras-graph"
CARD_VERSION = 1
# config entries that only matter to Keras's training loop (how weights were initialised, regularised, frozen)
TRAINING_ONLY_SUFFIXES = ("_initializer", "_regularizer", "_constraint")
TRAINING_ONLY_KEYS = ("trainable", "momentum", "activity_regularizer")


def runtime_layers(layers: list[dict]) -> list[dict]:
    """The layer list with what running it needs: type, name, inbound layers and the config the runner reads."""
    kept = []
    for layer in layers:
        config = {k: v for k, v in layer["config"].items()
                  if k not in TRAINING_ONLY_KEYS and not k.endswith(TRAINING_ONLY_SUFFIXES)}
        kept.append({"class_name": layer["class_name"], "config": config,
                     "inbound_nodes": layer.get("inbound_nodes") or []})
    return kept


def pair_paths(path: str | Path) -> tuple[Path, Path]:
    """``(NAME.json, NAME.safetensors)`` from either file of the pair, or from a folder holding one pair."""
    path = Path(path)
    if path.is_dir():
        cards = [p for p in sorted(path.glob("*.json")) if p.with_suffix(".safetensors").is_file()]
        if len(cards) != 1:
            raise SserdError(f"{path}: expected one NAME.json beside NAME.safetensors, found {len(cards)}")
        path = cards[0]
    return path.with_suffix(".json"), path.with_suffix(".safetensors")


def save_keras_graph(layers: list[dict], weights: dict[str, dict[str, np.ndarray]], card_path: str | Path,
                     card: dict) -> tuple[Path, Path]:
    """Write ``card_path`` (``card`` + the runtime layer list) and the weights beside it; both paths back."""
    from safetensors.numpy import save_file

    card_path, weights_path = pair_paths(Path(card_path).with_suffix(".json"))
    tensors = {f"{layer}/{name}": np.ascontiguousarray(value, dtype=np.float32)
               for layer, named in weights.items() for name, value in named.items()}
    card = {"format": CARD_FORMAT, "version": CARD_VERSION, **card, "layers": runtime_layers(layers)}
    card_path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(weights_path))
    card_path.write_text(json.dumps(card, indent=1) + "\n")
    return card_path, weights_path


def load_keras_graph(path: str | Path) -> tuple[list[dict], dict[str, dict[str, np.ndarray]], dict]:
    """``(layers, weights, card)`` of a pair written by :func:`save_keras_graph`."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    card_path, weights_path = pair_paths(path)
    try:
        card = json.loads(card_path.read_text())
        tensors = load_file(str(weights_path))
    except (OSError, ValueError, SafetensorError) as exc:
        raise SserdError(f"{card_path.parent}: cannot read the converted Keras model ({exc})") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT or not isinstance(card.get("layers"), list):
        raise SserdError(f"{card_path}: not a {CARD_FORMAT} card")
    if card.get("version", 0) > CARD_VERSION:
        raise SserdError(f"{card_path}: card version {card['version']} is newer than this sserd reads "
                         f"({CARD_VERSION}): update sserd")
    weights: dict[str, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        layer, _, name = key.rpartition("/")
        weights.setdefault(layer, {})[name] = value
    return card["layers"], weights, card


__all__ = ["save_keras_graph", "load_keras_graph", "runtime_layers", "pair_paths", "CARD_FORMAT"]
