"""SCRFD (insightface) detector on a format-faithful tiny ONNX model: 9 outputs, strides 8/16/32."""

import sys

import numpy as np
import pytest

from sserd_cli.errors import SserdError

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from sserd_cli.faces.insightface import InsightFaceDetector, nms  # noqa: E402

S = 320  # network input side of the fixture
STRIDES = (8, 16, 32)


def _anchor(stride: int, cx_cell: int, cy_cell: int, anchor: int) -> int:
    return (cy_cell * (S // stride) + cx_cell) * 2 + anchor


def _build(path, with_kps=True):
    """SCRFD-shaped graph whose outputs are constants (plus 0 x the input, so the input is used)."""
    scores = {s: np.full(((S // s) ** 2 * 2, 1), 0.01, np.float32) for s in STRIDES}
    boxes = {s: np.zeros(((S // s) ** 2 * 2, 4), np.float32) for s in STRIDES}
    kps = {s: np.zeros(((S // s) ** 2 * 2, 10), np.float32) for s in STRIDES}
    # one face at stride 16, cell (10, 8) = centre (160, 128) in network pixels
    a = _anchor(16, 10, 8, 0)
    scores[16][a] = 0.9
    boxes[16][a] = [2.0, 2.5, 2.0, 3.0]                     # left, top, right, bottom in strides
    kps[16][a] = [-0.8, -0.7, 0.8, -0.7, 0.0, 0.3, -0.6, 1.2, 0.6, 1.2]
    # a weaker duplicate of it (suppressed by NMS) and a small second face at stride 8
    scores[16][a + 1] = 0.7
    boxes[16][a + 1] = [2.1, 2.5, 1.9, 3.0]
    b = _anchor(8, 30, 5, 1)
    scores[8][b] = 0.6
    boxes[8][b] = [1.0, 1.0, 1.0, 1.2]
    kps[8][b] = [-0.4, -0.3, 0.4, -0.3, 0.0, 0.1, -0.3, 0.6, 0.3, 0.6]
    groups = [scores, boxes] + ([kps] if with_kps else [])
    nodes, inits, outs = [], [], []
    nodes.append(helper.make_node("ReduceMean", ["input.1"], ["m"], keepdims=0))
    inits.append(numpy_helper.from_array(np.array(0.0, np.float32), "zero"))
    nodes.append(helper.make_node("Mul", ["m", "zero"], ["z"]))
    for g, group in enumerate(groups):
        for s in STRIDES:
            name = f"out_{g}_{s}"
            inits.append(numpy_helper.from_array(group[s], f"c_{name}"))
            nodes.append(helper.make_node("Add", [f"c_{name}", "z"], [name]))
            outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(group[s].shape)))
    graph = helper.make_graph(nodes, "scrfd_fixture",
                              [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, S, S])],
                              outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_decodes_boxes_and_keypoints_in_frame_pixels(tmp_path):
    _build(tmp_path / "det_10g.onnx")
    det = InsightFaceDetector(tmp_path)
    assert det.input_size == (S, S)
    frame = np.zeros((360, 640, 3), np.uint8)  # letterboxed: scale 0.5 into 320x180
    faces = det.detect(frame)
    assert len(faces) == 2  # the duplicate is suppressed
    big, small = faces
    scale = 0.5
    np.testing.assert_allclose(big.box, np.array([160 - 32, 128 - 40, 160 + 32, 128 + 48]) / scale, atol=1e-3)
    expected_kps = np.array([[160 - 12.8, 128 - 11.2], [160 + 12.8, 128 - 11.2], [160, 128 + 4.8],
                             [160 - 9.6, 128 + 19.2], [160 + 9.6, 128 + 19.2]]) / scale
    np.testing.assert_allclose(big.landmarks, expected_kps, atol=1e-3)
    assert big.score == pytest.approx(0.9)
    assert big.landmarks.dtype == np.float32 and big.landmarks.shape == (5, 2)
    np.testing.assert_allclose(small.box, np.array([240 - 8, 40 - 8, 240 + 8, 40 + 9.6]) / scale, atol=1e-3)


def test_model_without_keypoints_is_refused(tmp_path):
    _build(tmp_path / "scrfd_500m.onnx", with_kps=False)
    with pytest.raises(SserdError, match="keypoints"):
        InsightFaceDetector(tmp_path / "scrfd_500m.onnx")


def test_missing_or_empty_model_dir(tmp_path):
    with pytest.raises(SserdError, match="not found"):
        InsightFaceDetector(tmp_path / "nope")
    with pytest.raises(SserdError, match="no SCRFD"):
        InsightFaceDetector(tmp_path)
    (tmp_path / "det.onnx").write_bytes(b"not a model")
    with pytest.raises(SserdError, match="cannot load"):
        InsightFaceDetector(tmp_path / "det.onnx")


def test_missing_onnxruntime_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(SserdError, match="pip install"):
        InsightFaceDetector(tmp_path)


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]], np.float32)
    assert nms(boxes, np.array([0.8, 0.9, 0.5]), 0.4) == [1, 2]


def test_create_detector_by_name(tmp_path):
    from sserd_cli.faces.detect import DlibDetector, create_detector

    _build(tmp_path / "det_10g.onnx")
    assert isinstance(create_detector("insightface", tmp_path), InsightFaceDetector)
    assert isinstance(create_detector("dlib", detect_width=320), DlibDetector)
    with pytest.raises(SserdError, match="unknown face detector"):
        create_detector("mtcnn")
    with pytest.raises(SserdError, match="model directory"):
        create_detector("insightface")
