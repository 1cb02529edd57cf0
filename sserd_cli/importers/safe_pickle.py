"""Restricted unpicklers: read tensors out of foreign checkpoints without running code from them.

A pickle is a small program: every ``GLOBAL`` it names is imported and may be
called.  Both readers here resolve names through an allow-list of plain data
builders (tensor rebuild functions, ``OrderedDict``, numeric NumPy scalars) and
refuse every other name with a :class:`~sserd_cli.errors.SserdError` *before*
anything is called.  Objects that only carry data in their pickled state
(``argparse.Namespace``, ``dnnlib.EasyDict``, NVlabs ``torch_utils.persistence``
modules) are rebuilt as plain containers; in particular the ``module_src``
text an NVlabs pickle embeds is kept as a string and never executed.
"""

from __future__ import annotations

import collections
import io
import pickle
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import SserdError


class UnsafePickle(SserdError):
    """The file asked for something other than data while loading."""


class DataDict(dict):
    """Stands in for a data-only class (``argparse.Namespace``, ``dnnlib.EasyDict``): keeps its fields as items."""

    def __setstate__(self, state: Any) -> None:  # BUILD with the object's __dict__
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slots state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if state:
            self.update(state)


@dataclass
class PersistentObject:
    """What an NVlabs ``torch_utils.persistence`` object becomes: its class name and its ``__dict__``.

    ``module_src`` is the class's source text as the pickle stores it; it is
    kept for provenance only and never compiled or executed.
    """

    class_name: str
    state: dict
    module_src: str = field(default="", repr=False)

    @property
    def init_kwargs(self) -> dict:
        """The keyword arguments the network was built with (persistence keeps them as ``_init_kwargs``)."""
        return dict(self.state.get("_init_kwargs") or {})

    def get(self, name: str, default: Any = None) -> Any:
        """A plain attribute of the module (``img_resolution``, ``architecture``...)."""
        return self.state.get(name, default)

    def child(self, name: str) -> "PersistentObject | None":
        value = self.children().get(name)
        return value if isinstance(value, PersistentObject) else None

    def children(self) -> dict:
        return dict(self.state.get("_modules") or {})

    def tensors(self) -> dict[str, torch.Tensor]:
        """This module's own parameters and buffers, like ``nn.Module.state_dict(recurse=False)``."""
        out: dict[str, torch.Tensor] = {}
        for group in ("_parameters", "_buffers"):
            for name, value in (self.state.get(group) or {}).items():
                if isinstance(value, torch.Tensor):
                    out[name] = value
        return out

    def state_dict(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Flattened ``name -> tensor`` over the whole module tree, with the same keys ``nn.Module`` would use."""
        out = {prefix + k: v for k, v in self.tensors().items()}
        for name, child in self.children().items():
            if isinstance(child, PersistentObject):
                out.update(child.state_dict(f"{prefix}{name}."))
        return out


# --- data builders the pickles may call ---------------------------------------------------------

def _check_storage(storage: Any) -> None:
    if not isinstance(storage, (torch.storage.TypedStorage, torch.UntypedStorage)):
        raise UnsafePickle(f"a tensor in the file is built from a {type(storage).__name__}, not a storage")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    # hooks and metadata are dropped: a hook is a callable, and we only want values
    _check_storage(storage)
    return torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, False, collections.OrderedDict())


def _rebuild_tensor(storage, storage_offset, size, stride):
    _check_storage(storage)
    return torch._utils._rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not isinstance(data, torch.Tensor):
        raise UnsafePickle(f"a parameter in the file wraps a {type(data).__name__}, not a tensor")
    return data


class _TensorTypeName(str):
    """Stands in for the classes ``torch.Tensor`` / ``torch.nn.Parameter``: a name, so a pickle cannot call it."""


_SAFE_TENSOR_TYPES = (_TensorTypeName("torch.Tensor"), _TensorTypeName("torch.nn.Parameter"))


def _rebuild_from_type_v2(func, new_type, args, state):
    if func not in (_rebuild_tensor_v2, _rebuild_tensor, _rebuild_parameter) or new_type not in _SAFE_TENSOR_TYPES:
        raise UnsafePickle("the file rebuilds a tensor subclass through an unexpected function")
    return func(*args)


def _storage_loader(source: str):
    def _load_storage_from_bytes(data: bytes):
        """``torch.storage._load_from_bytes``: the bytes are a ``torch.save``'d storage; read them weights-only."""
        if not isinstance(data, (bytes, bytearray)):
            raise UnsafePickle(f"{source}: a tensor storage is not stored as bytes")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TypedStorage deprecation noise
            try:
                storage = torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)
            except pickle.UnpicklingError as exc:
                found = re.search(r"GLOBAL ([\w.]+)", str(exc))
                what = f"'{found.group(1)}'" if found else "more than tensor data"
                raise UnsafePickle(f"{source}: a tensor storage inside the file asks to load {what}: refused, sserd "
                                   "reads only tensors and plain data from weight files") from None
        _check_storage(storage)
        return storage

    return _load_storage_from_bytes


_NUMERIC_DTYPE_KINDS = set("biufc")  # bool, int, uint, float, complex: never object or void


def _numpy_dtype(spec, align=False, copy=False):
    dtype = np.dtype(spec) if isinstance(spec, str) else None
    if dtype is None or dtype.kind not in _NUMERIC_DTYPE_KINDS:
        raise UnsafePickle(f"the file holds a NumPy value of type {spec!r}; only numeric types are read")
    return dtype


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.kind not in _NUMERIC_DTYPE_KINDS or not isinstance(data, bytes):
        raise UnsafePickle("the file holds a NumPy scalar that is not a plain number")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _numpy_reconstruct(cls, shape, dtype_code):
    if cls is not np.ndarray:
        raise UnsafePickle("the file rebuilds a NumPy array subclass")
    return np.ndarray.__new__(np.ndarray, shape, np.dtype(np.uint8))


def _codecs_encode(text, encoding="utf-8", errors="strict"):
    # protocol-2 pickles store bytes as _codecs.encode(str, "latin1")
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickle("the file encodes bytes in an unexpected way")
    return text.encode("latin1")


def _persistent_object(meta):
    """``torch_utils.persistence._reconstruct_persistent_obj``: keep the state tree, never run ``module_src``."""
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("state"), dict):
        raise UnsafePickle("an NVlabs persistent object in the file has an unexpected layout")
    return PersistentObject(class_name=str(meta.get("class_name", "")), state=meta["state"],
                            module_src=str(meta.get("module_src", "")))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# Names every reader accepts: (module, name) -> safe builder.
_TENSOR_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch.nn.parameter", "Parameter"): _SAFE_TENSOR_TYPES[1],
    ("torch", "Tensor"): _SAFE_TENSOR_TYPES[0],
    ("torch", "Size"): torch.Size,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("_codecs", "encode"): _codecs_encode,
    ("argparse", "Namespace"): DataDict,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy", "ndarray"): np.ndarray,
}
for _dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int32, torch.uint8,
               torch.int8, torch.int16, torch.bool):
    _TENSOR_GLOBALS[("torch", str(_dtype).split(".")[-1])] = _dtype

# Only the NVlabs reader: plain pickles whose storages are torch.save'd blobs and whose modules are persistent.
_NVLABS_GLOBALS: dict[tuple[str, str], Any] = {
    **_TENSOR_GLOBALS,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_object,
    ("dnnlib.util", "EasyDict"): DataDict,
    ("dnnlib", "EasyDict"): DataDict,
}

_HINTS = {
    "dnnlib.tflib.network": "this is a TensorFlow StyleGAN pickle: convert it to the PyTorch format with "
                            "NVlabs stylegan2-ada-pytorch's legacy.py first",
}


def _refuse(source: str, module: str, name: str) -> UnsafePickle:
    hint = _HINTS.get(module)
    if hint:
        return UnsafePickle(f"{source}: {hint}")
    return UnsafePickle(f"{source} asks to load '{module}.{name}' while unpickling: refused, sserd reads only "
                        "tensors and plain data from weight files (the file is not a StyleGAN2 checkpoint "
                        "or it was tampered with)")


def _make_unpickler(allowed: dict[tuple[str, str], Any], source: str) -> type[pickle.Unpickler]:
    class RestrictedUnpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            try:
                return allowed[(module, name)]
            except KeyError:
                raise _refuse(source, module, name) from None

    return RestrictedUnpickler


class _PickleModule:
    """A ``pickle``-like module for ``torch.load(pickle_module=...)`` whose Unpickler is restricted."""

    __name__ = "sserd_restricted_pickle"

    def __init__(self, allowed: dict[tuple[str, str], Any], source: str):
        self.Unpickler = _make_unpickler(allowed, source)
        self.UnpicklingError = pickle.UnpicklingError

    def load(self, file, **kwargs):
        return self.Unpickler(file, **kwargs).load()

    def loads(self, data: bytes, **kwargs):
        return self.Unpickler(io.BytesIO(data), **kwargs).load()


def load_torch_checkpoint(path, source: str | None = None) -> Any:
    """Read a ``torch.save`` file (zip or legacy format) that may hold non-tensor data such as an argparse Namespace.

    ``torch.load(weights_only=True)`` refuses a Namespace, and ``weights_only=False``
    with the stock pickle would execute whatever the file names.  Instead torch
    reads the container and our restricted pickle module resolves every global:
    storages come from torch's own record reader, everything else must be on
    the allow-list, a Namespace becomes a plain dict.
    """
    module = _PickleModule(_TENSOR_GLOBALS, source or str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # weights_only=False is safe here ONLY because pickle_module is the restricted one above
        return torch.load(path, map_location="cpu", pickle_module=module, weights_only=False)


def load_nvlabs_pickle(file, source: str) -> Any:
    """Read an NVlabs network pickle (a plain pickle) through the restricted unpickler."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        allowed = {**_NVLABS_GLOBALS, ("torch.storage", "_load_from_bytes"): _storage_loader(source)}
        return _make_unpickler(allowed, source)(file).load()

