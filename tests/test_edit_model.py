"""The SSERD model adapter of `sserd edit` on a tiny real bundle (real networks, tiny sizes): crops -> E ->
CELCL -> G at the bundle's resolution, reference codes averaged, mean codes per emotion, and the
warning for bundles that only know synthetic faces."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from skimage import data as skdata

from clips import clip_maker
from sserd_cli.bundles import save_bundle
from sserd_cli.cli import run
from sserd_cli.emotions import EMOTIONS
from sserd_cli.errors import SserdError
from sserd_cli.media.image import write_image
from sserd_cli.nets.celcl import CELCL, CELCLConfig
from sserd_cli.nets.encoder import EncoderConfig, LatentEncoder
from sserd_cli.nets.stylegan2 import Generator, GeneratorConfig
from sserd_cli.pipeline.models import DirectionModel, ReconstructionModel, SserdModel, Target, load_model

N_LATENT, DIM, SIZE = 10, 32, 64


def make_bundle(path: Path, provenance: dict) -> Path:
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(size=SIZE, style_dim=DIM, n_mlp=2, channel_max=32))
    e = LatentEncoder(EncoderConfig(size=SIZE, n_latent=N_LATENT, style_dim=DIM, backbone="small"))
    e.set_latent_avg(g.mean_latent(64).reshape(-1))
    c = CELCL(CELCLConfig(n_latent=N_LATENT, style_dim=DIM, heads=4, ffn_dim=64, zero_init=False))
    codes = {"happy": torch.randn(N_LATENT, DIM), "neutral": torch.randn(N_LATENT, DIM)}
    directions = {e: torch.nn.functional.normalize(torch.randn(N_LATENT * DIM), dim=0).reshape(N_LATENT, DIM)
                  for e in EMOTIONS[1:]}
    save_bundle(path, {"name": path.name, "provenance": provenance, "framing": {"template": "ffhq5", "zoom": 1.25}},
                generator=g, encoder=e, celcl=c, directions=directions,
                mean_codes=codes, latent_avg=g.mean_latent(64).reshape(-1))
    return path


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("model")
    make = clip_maker()
    write_image(root / "face.png", skdata.astronaut())
    return {
        "synthetic": make_bundle(root / "tiny-synth", {"domain": "synthetic"}),
        "real": make_bundle(root / "tiny-real", {"encoder_data": "/data/mead-prepared"}),
        "clip": make.write_clip(root / "clip.mp4", seconds=0.4, size=(320, 240), fps=25),
        "face": root / "face.png",
    }


def test_model_edits_crops_at_bundle_resolution(assets):
    warnings = []
    model = load_model(str(assets["synthetic"]), "cpu", strength=1.0, warn=warnings.append)
    assert isinstance(model, SserdModel) and model.resolution == SIZE
    assert model.zoom == 1.25  # crops are framed as the bundle was trained
    assert len(warnings) == 1 and "only on synthetic faces" in warnings[0] and "import-stylegan" in warnings[0]
    crops = np.random.default_rng(0).integers(0, 255, (3, SIZE, SIZE, 3), dtype=np.uint8)
    model.set_target(Target(emotion="happy"))
    happy = model.edit(crops)
    assert happy.shape == crops.shape and happy.dtype == np.uint8
    model.set_target(Target(emotion="neutral"))
    assert not np.array_equal(model.edit(crops), happy)  # the reference code reaches the output
    no_warn = []
    load_model(str(assets["real"]), "cpu", warn=no_warn.append)
    assert no_warn == []


def test_reference_codes_are_averaged_and_missing_emotions_refused(assets):
    model = load_model(str(assets["synthetic"]), "cpu")
    refs = np.random.default_rng(1).integers(0, 255, (4, SIZE, SIZE, 3), dtype=np.uint8)
    model.set_target(Target(reference=refs))
    expected = torch.cat([model.encode(refs[i:i + 1]) for i in range(4)]).mean(0, keepdim=True)
    assert torch.allclose(model.w_r[0], expected, atol=1e-5)
    with pytest.raises(SserdError, match="no mean code for 'sad'"):
        model.set_target(Target(emotion="sad"))


def test_cli_mistyped_reference_is_one_line_without_the_model_warning(assets, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    code = run(["edit", str(assets["clip"]), "--model", str(assets["synthetic"]), "--ref", str(tmp_path / "angyr.png"),
                "--device", "cpu", "-o", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines() == [f"error: {tmp_path / 'angyr.png'}: no such file"]
    assert not out.exists()


def test_cli_transfer_refuses_an_untrained_models_tearing_field_in_one_line(assets, tmp_path, capsys):
    """An untrained generator's two renders differ by noise, not by an edit: its motion field would tear the
    face, so transfer (the default) refuses before anything is written; --force edits anyway and says so."""
    out = tmp_path / "out.mp4"
    args = ["edit", str(assets["clip"]), "--model", str(assets["synthetic"]), "--ref", str(assets["face"]),
            "--device", "cpu", "--batch-size", "4", "-o", str(out), "--quiet"]
    assert run(args) == 2
    err = capsys.readouterr().err
    line = [x for x in err.strip().splitlines() if x.startswith("error:")]
    assert len(line) == 1 and "cannot carry its edit onto this face" in line[0] and "--render generate" in line[0]
    assert "Traceback" not in err and list(tmp_path.iterdir()) == []
    assert run(args + ["--force"]) == 0
    err = capsys.readouterr().err
    assert out.is_file() and err.count("cannot carry its edit onto this face") == 1 and "(--force)" in err


def test_cli_edit_with_a_bundle(assets, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    code = run(["edit", str(assets["clip"]), "--model", str(assets["synthetic"]), "--ref", str(assets["face"]),
                "--device", "cpu", "--batch-size", "4", "--strength", "0.5", "--render", "generate", "-o", str(out),
                "--quiet"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert err.count("only on synthetic faces") == 1
    with av.open(str(assets["clip"])) as a, av.open(str(out)) as b:
        src = [f.to_ndarray(format="rgb24") for f in a.decode(video=0)]
        got = [f.to_ndarray(format="rgb24") for f in b.decode(video=0)]
    assert len(got) == len(src) == 10
    # an untrained generator paints noise into the face region: the edit is visible there and only there
    diff = np.abs(got[0].astype(int) - src[0]).max(axis=-1) > 30
    ys, xs = np.nonzero(diff)
    assert diff.mean() > 0.02 and 100 < xs.mean() < 220 and 40 < ys.mean() < 160


def test_baseline_editors_reconstruct_and_step_along_directions(assets):
    from sserd_cli.bundles import load_bundle

    bundle = load_bundle(assets["synthetic"])
    crops = np.random.default_rng(2).integers(0, 255, (2, SIZE, SIZE, 3), dtype=np.uint8)
    recon = ReconstructionModel(bundle, "cpu")
    recon.set_target(Target(emotion="happy"))
    direction = DirectionModel(bundle, "cpu", beta=15.0)
    direction.set_target(Target(emotion="neutral"))  # a neutral target keeps the source code
    assert np.array_equal(direction.edit(crops), recon.edit(crops))
    direction.set_target(Target(emotion="sad"))
    w_s = recon.encode(crops)
    expected = w_s + 15.0 * bundle.directions()["sad"]
    assert torch.allclose(direction.codes(w_s), expected)
    assert not np.array_equal(direction.edit(crops), recon.edit(crops))
    with pytest.raises(SserdError, match="needs an emotion name"):
        direction.set_target(Target(reference=crops))
    assert DirectionModel(bundle, "cpu").betas == {}  # no build-pairs record in the card: the default step
    direction = DirectionModel(bundle, "cpu")
    direction.set_target(Target(emotion="sad"))
    assert torch.allclose(direction.codes(w_s), expected)


def test_float32_precision_renders_the_generators_own_numbers_and_auto_stays_close(assets):
    """--precision float32 is the generator's float32 render (the NHWC memory order changes only rounding), as
    auto is on a CPU; bfloat16 renders a few grey levels from it, and only where the CPU runs it natively."""
    from sserd_cli.pipeline.models import _to_uint8
    from sserd_cli.runtime import cpu_runs_bfloat16

    model = load_model(str(assets["synthetic"]), "cpu", precision="float32")
    w = model.encode(np.random.default_rng(1).integers(0, 255, (3, SIZE, SIZE, 3), dtype=np.uint8))
    with torch.inference_mode():
        plain = model.generator.synthesis(w, noise_mode="const")
        nhwc = model.generator.synthesis(w, noise_mode="const", channels_last=True)
    assert nhwc.is_contiguous(memory_format=torch.channels_last)
    assert (nhwc - plain).abs().max() < 1e-4
    exact = model.render(w)
    assert np.abs(exact.astype(int) - _to_uint8(plain).astype(int)).max() <= 1
    model.set_precision("auto")
    assert np.array_equal(model.render(w), exact)
    if cpu_runs_bfloat16():
        model.set_precision("bfloat16")
        fast = model.render(w)
        assert fast.shape == exact.shape and np.abs(fast.astype(int) - exact.astype(int)).mean() < 2.0
    else:
        with pytest.raises(SserdError, match="does not run bfloat16 natively"):
            model.set_precision("bfloat16")
    with pytest.raises(SserdError, match="unknown precision 'half'"):
        model.set_precision("half")


def test_cli_checks_the_precision_option(assets, tmp_path, capsys):
    code = run(["edit", str(assets["clip"]), "--model", "identity", "--emotion", "happy", "--precision", "half",
                "-o", str(tmp_path / "o.mp4"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unknown --precision 'half'" in err[0] and "float32" in err[0]
    assert not (tmp_path / "o.mp4").exists()
