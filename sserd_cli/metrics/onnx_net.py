"""A user-supplied image network in ONNX, run with onnxruntime, as a feature extractor.

The input layout is read from the model: rank 4, NCHW or NHWC, 1 (grey) or
3 channels, fixed or free spatial size (then ``default_size`` is used).
Pixels are fed as ``(x - mean) / std`` in RGB (or BGR when asked) order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SserdError


@dataclass(frozen=True)
class OnnxInput:
    """How to feed the network: layout, channels, size and pixel normalisation."""

    mean: float = 127.5
    std: float = 127.5
    bgr: bool = False
    default_size: int = 112


class OnnxFeatureNet:
    """Batched features [N, D] of RGB uint8 images [N, H, W, 3] through an ONNX model."""

    def __init__(self, path: str | Path | None, role: str, option: str, spec: OnnxInput = OnnxInput(),
                 output: str | None = None):
        if path is None:
            raise SserdError(f"{role} needs an ONNX model: pass it with {option} FILE.onnx")
        path = Path(path)
        if not path.is_file():
            raise SserdError(f"{role} model {path} not found: check {option}")
        try:
            import onnxruntime
        except ImportError:
            raise SserdError(f"{role} runs its ONNX model with onnxruntime, which is not installed: "
                             "pip install 'sserd[insightface]' (or pip install onnxruntime)") from None
        try:
            self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise SserdError(f"{path} is not a loadable ONNX model ({type(exc).__name__}): check {option}") from None
        self.path, self.role, self.spec = path, role, spec
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise SserdError(f"{path} has {len(inputs)} inputs; {role} needs a network with one image input")
        shape = list(inputs[0].shape)
        if len(shape) != 4:
            raise SserdError(f"{path} takes input of shape {shape}; {role} needs an image input [N, C, H, W] or [N, H, W, C]")
        self.input_name = inputs[0].name
        if shape[1] in (1, 3):
            self.channels_last, channels, height, width = False, shape[1], shape[2], shape[3]
        elif shape[3] in (1, 3):
            self.channels_last, channels, height, width = True, shape[3], shape[1], shape[2]
        else:
            raise SserdError(f"{path} takes input of shape {shape}: {role} needs 1 or 3 colour channels")
        self.channels = int(channels)
        self.height = int(height) if isinstance(height, int) and height > 0 else spec.default_size
        self.width = int(width) if isinstance(width, int) and width > 0 else spec.default_size
        self.fixed_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
        names = [o.name for o in self.session.get_outputs()]
        if output is not None and output not in names:
            raise SserdError(f"{path} has no output '{output}' (outputs: {', '.join(names)})")
        self.output_name = output or names[0]

    @property
    def size(self) -> tuple[int, int]:
        return self.height, self.width

    def _blob(self, images: np.ndarray) -> np.ndarray:
        import cv2

        batch = []
        for image in images:
            if image.shape[:2] != (self.height, self.width):
                interp = cv2.INTER_AREA if image.shape[0] > self.height else cv2.INTER_LINEAR
                image = cv2.resize(image, (self.width, self.height), interpolation=interp)
            if self.channels == 1:
                image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[:, :, None]
            elif self.spec.bgr:
                image = image[:, :, ::-1]
            batch.append(image)
        blob = (np.stack(batch).astype(np.float32) - self.spec.mean) / self.spec.std
        return blob if self.channels_last else blob.transpose(0, 3, 1, 2)

    def features(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Flattened outputs [N, D] (float64) of RGB uint8 images [N, H, W, 3]."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"need RGB images [N, H, W, 3], got {images.shape}")
        step = self.fixed_batch or batch_size
        out = []
        for start in range(0, len(images), step):
            chunk = images[start:start + step]
            blob = self._blob(chunk)
            if self.fixed_batch and len(chunk) < self.fixed_batch:  # models exported with batch 1
                blob = np.concatenate([blob, np.repeat(blob[-1:], self.fixed_batch - len(chunk), axis=0)])
            try:
                result = self.session.run([self.output_name], {self.input_name: blob})[0]
            except Exception as exc:
                raise SserdError(f"{self.path} failed on input {blob.shape} ({type(exc).__name__}): "
                                 f"is it a {self.role} image network?") from None
            out.append(np.asarray(result, dtype=np.float64).reshape(blob.shape[0], -1)[:len(chunk)])
        return np.concatenate(out) if out else np.zeros((0, 0))


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of [N, D] and [N, D] (or [D] broadcast)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    num = (a * b).sum(axis=-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return num / np.maximum(den, 1e-12)
