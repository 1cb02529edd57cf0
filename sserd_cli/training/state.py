"""Nested training state (optimiser state dicts, code caches, RNG states) <-> safetensors + JSON.

Checkpoints must not be pickles, but optimiser state dicts are nested dicts/lists of tensors
and Python scalars. :func:`flatten` moves every tensor into a flat ``{key: tensor}`` map (for
safetensors) and leaves a JSON tree that names them; :func:`unflatten` puts them back. Dict
keys keep their type (optimisers index state by int) and tuples stay tuples, so a loaded
state dict is identical to the saved one.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from ..errors import SserdError


def flatten(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Return a JSON-able tree for ``obj``; its tensors are stored in ``tensors`` under ``prefix/...``."""
    if isinstance(obj, torch.Tensor):
        key = prefix
        tensors[key] = obj.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"cannot store a dict key of type {type(k).__name__}")
            items.append([k, flatten(v, f"{prefix}/{k}", tensors)])
        return {"__dict__": items}
    if isinstance(obj, tuple):
        return {"__tuple__": [flatten(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot store a value of type {type(obj).__name__} in a checkpoint")


def unflatten(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            try:
                return tensors[tree["__tensor__"]]
            except KeyError:
                raise SserdError(f"checkpoint is damaged: tensor {tree['__tensor__']} is missing") from None
        if "__dict__" in tree:
            return {k: unflatten(v, tensors) for k, v in tree["__dict__"]}
        if "__tuple__" in tree:
            return tuple(unflatten(v, tensors) for v in tree["__tuple__"])
        raise SserdError("checkpoint is damaged: unknown entry in its state tree")
    if isinstance(tree, list):
        return [unflatten(v, tensors) for v in tree]
    return tree


def capture_rng(device: torch.device, extra: dict[str, torch.Generator] | None = None) -> dict[str, torch.Tensor]:
    """Every random stream of this process as tensors of fixed shape (so ranks can all-gather them)."""
    out = {"torch_cpu": torch.get_rng_state()}
    if device.type == "cuda":
        out["torch_cuda"] = torch.cuda.get_rng_state(device)
    _, key, pos, has_gauss, gauss = np.random.get_state()
    out["numpy_key"] = torch.from_numpy(np.asarray(key, dtype=np.int64))
    out["numpy_pos"] = torch.tensor([pos, has_gauss], dtype=torch.int64)
    out["numpy_gauss"] = torch.tensor([gauss], dtype=torch.float64)
    version, internal, py_gauss = random.getstate()
    out["python_state"] = torch.tensor(list(internal), dtype=torch.int64)
    out["python_gauss"] = torch.tensor([0.0 if py_gauss is None else 1.0, py_gauss or 0.0], dtype=torch.float64)
    out["python_version"] = torch.tensor([version], dtype=torch.int64)
    for name, gen in (extra or {}).items():
        out[f"gen_{name}"] = gen.get_state()
    return out


def restore_rng(state: dict[str, torch.Tensor], device: torch.device, extra: dict[str, torch.Generator] | None = None) -> None:
    torch.set_rng_state(state["torch_cpu"])
    if device.type == "cuda" and "torch_cuda" in state:
        torch.cuda.set_rng_state(state["torch_cuda"], device)
    pos, has_gauss = (int(v) for v in state["numpy_pos"].tolist())
    np.random.set_state(("MT19937", state["numpy_key"].numpy().astype(np.uint32), pos, has_gauss,
                         float(state["numpy_gauss"][0])))
    has_py_gauss, py_gauss = state["python_gauss"].tolist()
    random.setstate((int(state["python_version"][0]), tuple(int(v) for v in state["python_state"].tolist()),
                     py_gauss if has_py_gauss else None))
    for name, gen in (extra or {}).items():
        if f"gen_{name}" in state:
            gen.set_state(state[f"gen_{name}"])
