"""sserd eval real on a tiny prepared MEAD tree: the protocol, the CLI, and missing-weight messages."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sserd_cli.cli import run

pytest.importorskip("onnxruntime")
from test_metrics_onnx import write_conv_net  # noqa: E402
from test_prepare_datasets import make_mead  # noqa: E402


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("real")
    make_mead(tmp / "MEAD")
    assert run(["prepare", "mead", str(tmp / "MEAD"), "-o", str(tmp / "data"), "--speakers", "M003,W015", "--quiet"]) == 0
    from sserd_cli.metrics.syncnet import SyncNet

    torch.save(SyncNet().state_dict(), tmp / "syncnet_v2.model")
    write_conv_net(tmp / "arc.onnx", size=112, out_ch=2, seed=1)
    write_conv_net(tmp / "expr.onnx", size=64, seed=2)
    return tmp


def test_protocol_with_identity_editor(prepared):
    from sserd_cli.metrics.arcface import ArcFaceEmbedder
    from sserd_cli.metrics.expression import ExpressionFeatures
    from sserd_cli.metrics.real import MetricNets, RealEvalConfig, evaluate_real
    from sserd_cli.metrics.syncnet import load_syncnet

    nets = MetricNets(arcface=ArcFaceEmbedder(prepared / "arc.onnx"), syncnet=load_syncnet(prepared / "syncnet_v2.model"),
                      expression=ExpressionFeatures(prepared / "expr.onnx"))
    calls = []

    def no_edit(source, reference):
        calls.append((source.shape, reference.shape))
        return source

    config = RealEvalConfig(settings=("intra",), emotions=("neutral", "angry"))  # cross: see the CLI test
    result = evaluate_real(prepared / "data", no_edit, nets, config)
    from sserd_cli.data.index import read_index

    test_clips = {r.clip for r in read_index(prepared / "data") if r.split == "test"}
    assert len(test_clips) == 4  # one per speaker and emotion (the broken video took no slot)
    # each test clip goes to the one other emotion
    assert len(calls) == len(test_clips) and all(s == (6, 256, 256, 3) for s, _ in calls)
    assert all(r[1:] == (256, 256, 3) and r[0] <= 8 for _, r in calls)
    assert result["dataset"] == "mead" and result["missing"] == {}
    for setting in ("intra",):
        block = result["settings"][setting]
        assert set(block["per_emotion"]) == {"neutral", "angry"}
        assert block["overall"]["clips"] == len(test_clips)
        for row in block["per_emotion"].values():
            assert row["FAD"] >= 0 and -1 <= row["CSIM"] <= 1
    assert result["paper"]["SSERD (paper)"]["intra"]["FAD"] == 0.740
    # the un-edited source against its own emotion's real frames: FAD is the distance of a set to a superset


def test_references_come_from_the_right_speakers(prepared):
    from sserd_cli.data.index import read_meta
    from sserd_cli.metrics.real import _clips, pick_reference

    clips = _clips(prepared / "data", read_meta(prepared / "data"), None)
    source = clips["M003_neutral_level1_001"]
    intra = pick_reference(source, "angry", "intra", clips, seed=0)
    cross = pick_reference(source, "angry", "cross", clips, seed=0)
    assert intra.speaker == "M003" and intra.emotion == "angry" and intra.split == "test"
    assert cross.speaker == "W015" and cross.emotion == "angry" and cross.split == "test"
    assert pick_reference(source, "neutral", "intra", clips, seed=0).clip == "M003_neutral_level1_002"
    assert pick_reference(source, "sad", "intra", clips, seed=0) is None


def test_cli_json_and_table(prepared, capsys):
    args = ["eval", "real", "--model", "identity", "--data", str(prepared / "data"), "--arcface", str(prepared / "arc.onnx"),
            "--expression", str(prepared / "expr.onnx"), "--emotions", "neutral,angry", "--no-id-dlib", "--quiet",
            "--settings", "cross", "--max-frames", "3"]
    assert run(args + ["--json", "-o", str(prepared / "res.json")]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert set(result["settings"]) == {"cross"} and result["model"] == "identity"
    assert "LSE-D" in result["missing"] and "syncnet_v2.model" in captured.err
    assert json.loads((prepared / "res.json").read_text()) == result
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "SSERD (paper)" in out and "2.453" in out and "average" in out


@pytest.mark.parametrize("flag, name, needle", [
    ("--syncnet", "syncnet_v2.model", "LSE-D/LSE-C need syncnet_v2.model"),
    ("--arcface", "w600k_r50.onnx", "FAD (ArcFace features) model"),
    ("--expression", "expr_missing.onnx", "CSIM (expression features) model"),
])
def test_missing_weight_file_is_one_line_exit_2(prepared, capsys, flag, name, needle):
    code = run(["eval", "real", "--model", "identity", "--data", str(prepared / "data"), flag, str(prepared / "absent" / name)])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and name in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_wrong_dataset_and_settings(prepared, capsys):
    assert run(["eval", "real", "--model", "identity", "--data", str(prepared / "nope")]) == 2
    assert run(["eval", "real", "--model", "identity", "--data", str(prepared / "data"), "--settings", "both"]) == 2
    assert "--settings" in capsys.readouterr().err


def test_identity_model_editor_returns_the_crops_exactly():
    from sserd_cli.metrics.real import model_editor
    from sserd_cli.pipeline.models import load_model

    crops = np.random.default_rng(0).integers(0, 255, size=(3, 64, 64, 3), dtype=np.uint8)
    edited = model_editor(load_model("identity"))(crops, crops[:1])
    assert np.array_equal(edited, crops)


def test_cli_with_a_tiny_real_bundle(prepared, tmp_path, capsys):
    """The editing step through the edit pipeline's SSERD model: crops -> E -> CELCL -> G at 64 px and back."""
    from sserd_cli.bundles import save_bundle
    from sserd_cli.nets.celcl import CELCL, CELCLConfig
    from sserd_cli.nets.encoder import EncoderConfig, LatentEncoder
    from sserd_cli.nets.stylegan2 import Generator, GeneratorConfig

    n_latent, dim, size = 10, 32, 64
    g = Generator(GeneratorConfig(size=size, style_dim=dim, n_mlp=2, channel_max=32))
    e = LatentEncoder(EncoderConfig(size=size, n_latent=n_latent, style_dim=dim, backbone="small"))
    e.set_latent_avg(g.mean_latent(64).reshape(-1))
    c = CELCL(CELCLConfig(n_latent=n_latent, style_dim=dim, heads=4, ffn_dim=64, zero_init=False))
    bundle = tmp_path / "tiny"
    save_bundle(bundle, {"name": "tiny", "provenance": {"encoder_data": "test"}}, generator=g, encoder=e, celcl=c,
                latent_avg=g.mean_latent(64).reshape(-1))
    code = run(["eval", "real", "--model", str(bundle), "--data", str(prepared / "data"), "--arcface", str(prepared / "arc.onnx"),
                "--emotions", "neutral,angry", "--settings", "intra", "--max-frames", "2", "--max-clips", "1", "--no-id-dlib", "--quiet",
                "--device", "cpu", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    rows = result["settings"]["intra"]["per_emotion"]
    assert sum(r["clips"] for r in rows.values()) == 2 and all(r["FAD"] > 0 for r in rows.values())
