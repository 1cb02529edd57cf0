"""ArcFace / expression feature nets: tiny ONNX models written with the onnx helper API, run by onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from sserd_cli.errors import SserdError

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def write_conv_net(path, channels=3, size=112, layout="nchw", batch="N", out_ch=8, seed=0):
    """Conv 8x8/8 -> ReLU -> Flatten: a real feature map, different for different images."""
    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.normal(size=(out_ch, channels, 8, 8)).astype(np.float32), "w")
    shape = [batch, channels, size, size] if layout == "nchw" else [batch, size, size, channels]
    nodes = []
    src = "image"
    if layout == "nhwc":
        nodes.append(helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]))
        src = "nchw"
    nodes += [helper.make_node("Conv", [src, "w"], ["c"], kernel_shape=[8, 8], strides=[8, 8]),
              helper.make_node("Relu", ["c"], ["r"]),
              helper.make_node("Flatten", ["r"], ["features"], axis=1)]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("features", TensorProto.FLOAT, None)], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def write_vector_net(path):
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "vec",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 512])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 512])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _faces(n=4, seed=0):
    from skimage.data import astronaut
    import cv2

    base = cv2.resize(astronaut()[20:320, 110:410], (256, 256))
    rng = np.random.default_rng(seed)
    return np.stack([np.clip(base.astype(int) + rng.integers(-20, 20, size=3), 0, 255).astype(np.uint8) for _ in range(n)])


def test_csim_of_identical_inputs_is_one(tmp_path):
    from sserd_cli.metrics.expression import ExpressionFeatures, csim

    net = ExpressionFeatures(write_conv_net(tmp_path / "expr.onnx", size=64))
    crops = _faces(3)
    feats = net.features(crops)
    assert feats.shape == (3, 8 * 8 * 8)
    assert csim(feats[:1], feats[:1]) == pytest.approx(1.0, abs=1e-9)
    other = net.features(np.ascontiguousarray(crops[:, ::-1, :, :]))  # upside-down faces
    assert csim(other, feats) < 0.99


@pytest.mark.parametrize("channels, layout, batch", [(1, "nchw", "N"), (3, "nhwc", 1)])
def test_grey_channels_last_and_fixed_batch_models(tmp_path, channels, layout, batch):
    from sserd_cli.metrics.expression import ExpressionFeatures

    net = ExpressionFeatures(write_conv_net(tmp_path / "e.onnx", channels=channels, size=48, layout=layout, batch=batch))
    feats = net.features(_faces(3))
    assert feats.shape == (3, 8 * 6 * 6) and np.isfinite(feats).all()


def test_arcface_embeddings_are_unit_and_fad_of_same_set_is_zero(tmp_path):
    from sserd_cli.faces.align import canonical_landmarks
    from sserd_cli.metrics.arcface import ArcFaceEmbedder
    from sserd_cli.metrics.frechet import frechet_distance

    arc = ArcFaceEmbedder(write_conv_net(tmp_path / "arc.onnx", size=112, out_ch=2))
    crops = _faces(6)
    template = canonical_landmarks(320) - 32
    views = arc.views(crops, template)
    assert views.shape == (6, 112, 112, 3)
    emb = arc.embed(crops, template)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0)
    assert frechet_distance(emb, emb) == pytest.approx(0.0, abs=1e-8)


def test_bad_models_are_one_line_errors(tmp_path):
    from sserd_cli.metrics.arcface import ArcFaceEmbedder
    from sserd_cli.metrics.expression import ExpressionFeatures

    with pytest.raises(SserdError, match="needs an image input"):
        ExpressionFeatures(write_vector_net(tmp_path / "vec.onnx"))
    with pytest.raises(SserdError, match=r"not found: check --arcface"):
        ArcFaceEmbedder(tmp_path / "w600k_r50.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(SserdError, match="not a loadable ONNX model"):
        ExpressionFeatures(tmp_path / "junk.onnx")
    with pytest.raises(SserdError, match="no output 'logits'"):
        ExpressionFeatures(write_conv_net(tmp_path / "e.onnx"), output="logits")


def test_identity_proxy_scores_same_face_high():
    from sserd_cli.metrics.identity import DlibIdentity, identity_similarity

    proxy = DlibIdentity()
    crops = _faces(2)
    desc = proxy.descriptors(crops)
    assert desc.shape == (2, 128) and np.isfinite(desc).all()
    assert identity_similarity(desc[:1], desc[1:]) > 0.95
    blank = proxy.descriptors(np.zeros((1, 256, 256, 3), np.uint8))
    assert np.isnan(blank).all() and np.isnan(identity_similarity(desc[:1], blank))
