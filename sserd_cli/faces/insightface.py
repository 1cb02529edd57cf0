"""Optional face detector: insightface's SCRFD (ONNX) run with onnxruntime.

Nothing is downloaded: the user points at a model directory (e.g. an unpacked
insightface model pack such as ``buffalo_l``, which holds ``det_10g.onnx``) or
at an ``.onnx`` file.  The ``insightface`` package itself is not needed (it pulls
the GUI OpenCV and downloads at run time); only ``onnxruntime``
(``pip install "sserd[insightface]"``).

SCRFD in brief (Guo et al., ICLR 2022, as exported by insightface): input
[1, 3, S, S] RGB normalised as (x - 127.5) / 128, the frame letterboxed into the
square (scaled to fit, padded right/bottom); outputs per feature stride
(8, 16, 32 with 2 anchors per cell, or 8..128 with 1): a score per anchor, box
distances (left, top, right, bottom) and 5 keypoint offsets, both in units of
the stride, measured from the anchor's cell corner.  Keypoints are
(left eye, right eye, nose tip, left mouth corner, right mouth corner), the
same layout as :class:`~sserd_cli.faces.face.Face`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import SserdError
from .face import Face, check_frame

_MODEL_GLOBS = ("det_*.onnx", "scrfd*.onnx", "*.onnx")


def find_scrfd_model(model_dir: str | Path) -> Path:
    """The SCRFD ``.onnx`` file in ``model_dir`` (or ``model_dir`` itself when it is a file)."""
    path = Path(model_dir)
    if path.is_file():
        return path
    if not path.is_dir():
        raise SserdError(f"insightface model directory not found: {path}: point at a folder with an SCRFD .onnx file")
    for pattern in _MODEL_GLOBS:
        found = sorted(path.glob(pattern))
        if found:
            return found[0]
    raise SserdError(f"no SCRFD .onnx file in {path}: expected e.g. det_10g.onnx or scrfd_10g_bnkps.onnx")


class InsightFaceDetector:
    """SCRFD detector: ``detect(frame_rgb) -> list[Face]`` (largest first), like :class:`DlibDetector`.

    ``detect_size``: side of the square network input when the model does not fix it;
    ``score_threshold`` / ``nms_threshold``: insightface's defaults (0.5 / 0.4).
    """

    def __init__(
        self,
        model_dir: str | Path,
        detect_size: int = 640,
        score_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        providers: list[str] | None = None,
    ):
        try:
            import onnxruntime
        except ImportError:
            raise SserdError(
                "the insightface detector needs onnxruntime: pip install 'sserd[insightface]' (or onnxruntime)"
            ) from None
        model_path = find_scrfd_model(model_dir)
        try:
            self._session = onnxruntime.InferenceSession(
                str(model_path), providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise SserdError(f"cannot load {model_path} as an ONNX model: {exc}") from None
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        shape = inp.shape
        fixed = len(shape) == 4 and isinstance(shape[2], int) and isinstance(shape[3], int)
        self.input_size = (int(shape[3]), int(shape[2])) if fixed else (int(detect_size), int(detect_size))
        n_out = len(self._session.get_outputs())
        if n_out not in (9, 15):
            raise SserdError(
                f"{model_path.name} has {n_out} outputs: sserd needs an SCRFD model with keypoints "
                "(9 or 15 outputs, e.g. det_10g.onnx or scrfd_*_bnkps.onnx)"
            )
        self.strides = (8, 16, 32) if n_out == 9 else (8, 16, 32, 64, 128)
        self.num_anchors = 2 if n_out == 9 else 1
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.model_path = model_path

    def detect(self, frame_rgb: np.ndarray, near: np.ndarray | None = None) -> list[Face]:
        """Faces in an RGB uint8 frame, largest first (``near`` is accepted and unused: SCRFD scans fast)."""
        frame_rgb = check_frame(frame_rgb)
        blob, det_scale = self._letterbox(frame_rgb)
        outputs = self._session.run(None, {self._input_name: blob})
        boxes, kps, scores = self._decode(outputs)
        if len(scores) == 0:
            return []
        keep = nms(boxes, scores, self.nms_threshold)
        faces = [
            Face(
                box=(boxes[i] / det_scale).astype(np.float32),
                landmarks=(kps[i] / det_scale).astype(np.float32),
                score=float(scores[i]),
            )
            for i in keep
        ]
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces

    def _letterbox(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        w_in, h_in = self.input_size
        h, w = frame.shape[:2]
        det_scale = min(w_in / w, h_in / h)
        nw, nh = max(1, int(round(w * det_scale))), max(1, int(round(h * det_scale)))
        canvas = np.zeros((h_in, w_in, 3), np.uint8)
        interp = cv2.INTER_AREA if det_scale < 1 else cv2.INTER_LINEAR
        canvas[:nh, :nw] = cv2.resize(frame, (nw, nh), interpolation=interp)
        blob = (canvas.astype(np.float32) - 127.5) / 128.0
        return blob.transpose(2, 0, 1)[None].copy(), det_scale

    def _decode(self, outputs: list[np.ndarray]):
        levels = len(self.strides)
        w_in, h_in = self.input_size
        all_boxes, all_kps, all_scores = [], [], []
        for k, stride in enumerate(self.strides):
            scores = np.asarray(outputs[k]).reshape(-1)
            dist = np.asarray(outputs[k + levels]).reshape(-1, 4) * stride
            kps = np.asarray(outputs[k + 2 * levels]).reshape(-1, 10) * stride
            fh, fw = h_in // stride, w_in // stride
            if len(scores) != fh * fw * self.num_anchors:
                raise SserdError(
                    f"{self.model_path.name}: output {k} has {len(scores)} scores, expected "
                    f"{fh * fw * self.num_anchors} for stride {stride}: not an SCRFD export"
                )
            ys, xs = np.mgrid[0:fh, 0:fw]
            centres = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) * stride
            centres = np.repeat(centres, self.num_anchors, axis=0)
            sel = scores >= self.score_threshold
            c = centres[sel]
            d = dist[sel]
            all_boxes.append(np.concatenate([c - d[:, :2], c + d[:, 2:]], axis=1))
            all_kps.append((kps[sel].reshape(-1, 5, 2) + c[:, None, :]))
            all_scores.append(scores[sel])
        return np.concatenate(all_boxes), np.concatenate(all_kps), np.concatenate(all_scores)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Greedy non-maximum suppression: indices kept, highest score first."""
    order = np.argsort(-scores, kind="stable")
    x0, y0, x1, y1 = boxes.T
    areas = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
    keep = []
    while len(order):
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        iw = np.maximum(0.0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]))
        ih = np.maximum(0.0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]))
        inter = iw * ih
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-12)
        order = rest[iou <= threshold]
    return keep
