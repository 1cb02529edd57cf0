"""Model bundles: bit-exact round trip, partial bundles, bundled names, atomic save, clear errors."""

from __future__ import annotations

import json
import os

import pytest
import torch

import sserd_cli.bundles as bundles
from sserd_cli.bundles import PARTS, load_bundle, save_bundle
from sserd_cli.cli import run
from sserd_cli.errors import SserdError
from sserd_cli.nets.celcl import CELCL, CELCLConfig
from sserd_cli.nets.encoder import EncoderConfig, LatentEncoder
from sserd_cli.nets.stylegan2 import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig

SIZE, D = 32, 16
N_LATENT = 8


def tiny_generator(channel_max=8):
    return Generator(GeneratorConfig(size=SIZE, style_dim=D, n_mlp=2, channel_max=channel_max))


def tiny_parts():
    torch.manual_seed(1)
    gen = tiny_generator()
    with torch.no_grad():  # non-default values everywhere, so a dropped tensor would show
        for p in gen.parameters():
            p.add_(0.1 * torch.randn_like(p))
    enc = LatentEncoder(EncoderConfig(size=SIZE, n_latent=N_LATENT, style_dim=D, backbone="small"))
    enc.set_latent_avg(torch.randn(D))
    celcl = CELCL(CELCLConfig(n_latent=N_LATENT, style_dim=D, heads=2, ffn_dim=32, zero_init=False))
    disc = Discriminator(DiscriminatorConfig(size=SIZE, channel_max=8))
    directions = {e: torch.randn(N_LATENT, D) for e in ("happy", "angry")}
    mean_codes = {e: torch.randn(N_LATENT, D) for e in ("neutral", "happy", "angry")}
    return dict(generator=gen, encoder=enc, celcl=celcl, discriminator=disc, directions=directions,
                mean_codes=mean_codes)


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) and sa[k].dtype == sb[k].dtype for k in sa)


def test_full_bundle_round_trip_is_bit_exact(tmp_path):
    parts = tiny_parts()
    latent_avg = torch.randn(D)
    card = {"recipe": {"stage": "train", "iterations": 10}, "metrics": {"emotion_accuracy": 0.5},
            "provenance": {"dataset": "synthetic"}}
    bundle = save_bundle(tmp_path / "full", card, latent_avg=latent_avg, **parts)
    assert bundle.parts == list(PARTS)
    again = load_bundle(tmp_path / "full")
    assert again.card == bundle.card
    assert again.resolution == SIZE and again.n_latent == N_LATENT and again.style_dim == D
    assert again.card["emotions"] == ["neutral", "happy", "angry"]  # the project's order
    assert again.card["recipe"]["iterations"] == 10 and again.card["metrics"]["emotion_accuracy"] == 0.5
    for part in ("generator", "encoder", "celcl", "discriminator"):
        loaded = getattr(again, part)()
        assert type(loaded) is type(parts[part])
        assert _same_state(loaded, parts[part]), part
        assert not loaded.training
    assert torch.equal(again.latent_avg(), latent_avg)
    for name in ("directions", "mean_codes"):
        got = getattr(again, name)()
        assert got.keys() == parts[name].keys()
        assert all(torch.equal(got[k], parts[name][k]) for k in got)
    # the loaded networks compute what the saved ones computed
    w = torch.randn(1, N_LATENT, D)
    with torch.no_grad():
        assert torch.equal(again.generator().synthesis(w), parts["generator"].synthesis(w))


def test_half_bundle_stores_float16(tmp_path):
    gen = tiny_generator()
    bundle = save_bundle(tmp_path / "h", {}, generator=gen, half=True)
    raw = bundle.tensors("generator")
    assert all(t.dtype == torch.float16 for t in raw.values() if t.is_floating_point())
    assert bundle.card["dtype"] == "float16"
    loaded = bundle.generator()
    for key, value in gen.state_dict().items():
        assert loaded.state_dict()[key].dtype == torch.float32
        assert torch.equal(loaded.state_dict()[key], value.half().float()), key
    full = save_bundle(tmp_path / "f", {}, generator=gen)
    size = lambda b: (b.path / "generator.safetensors").stat().st_size  # noqa: E731
    assert size(bundle) < 0.6 * size(full)


def test_generator_only_bundle_names_each_missing_part(tmp_path):
    bundle = save_bundle(tmp_path / "g", {}, generator=tiny_generator())
    assert bundle.has("generator") and not bundle.has("encoder")
    assert bundle.latent_avg().shape == (D,)  # estimated from the mapping network when not given
    expected = {"encoder": "sserd train-encoder", "celcl": "sserd train", "directions": "sserd build-pairs",
                "mean_codes": "sserd build-pairs", "discriminator": "train-stylegan"}
    for part, command in expected.items():
        with pytest.raises(SserdError) as err:
            getattr(bundle, part)()
        message = str(err.value)
        assert f"has no {part}" in message and command in message and "\n" not in message


def test_encoder_only_bundle_says_how_to_get_a_generator(tmp_path):
    enc = LatentEncoder(EncoderConfig(size=SIZE, n_latent=N_LATENT, style_dim=D, backbone="small"))
    bundle = save_bundle(tmp_path / "e", {}, encoder=enc)
    assert bundle.parts == ["encoder"] and bundle.resolution == SIZE
    with pytest.raises(SserdError, match="import-stylegan"):
        bundle.generator()


def test_bundled_name_is_found_in_the_models_dir(tmp_path, monkeypatch):
    save_bundle(tmp_path / "tiny-synthetic", {}, generator=tiny_generator())
    (tmp_path / "not-a-bundle").mkdir()
    monkeypatch.setattr(bundles, "bundled_models_dir", lambda: tmp_path)
    assert bundles.list_bundled() == ["tiny-synthetic"]
    bundle = load_bundle("tiny-synthetic")
    assert bundle.path == tmp_path / "tiny-synthetic" and bundle.name == "tiny-synthetic"
    with pytest.raises(SserdError, match="tiny-synthetic"):  # the message lists what is bundled
        load_bundle("no-such-model")
    with pytest.raises(SserdError, match="not found"):
        load_bundle(tmp_path / "elsewhere")  # a path that does not exist
    with pytest.raises(SserdError, match="identity"):
        load_bundle("identity")


def test_save_is_atomic_and_never_overwrites_silently(tmp_path, monkeypatch):
    target = tmp_path / "b"
    save_bundle(target, {"metrics": {"v": 1}}, generator=tiny_generator())
    with pytest.raises(SserdError, match="already exists"):
        save_bundle(target, {}, generator=tiny_generator())

    calls = {"n": 0}
    real_save = bundles.save_file

    def failing_save(*args, **kwargs):  # the disk fills up while writing the second file
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("No space left on device")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(bundles, "save_file", failing_save)
    with pytest.raises(OSError):
        save_bundle(target, {"metrics": {"v": 2}}, generator=tiny_generator(),
                    directions={"happy": torch.zeros(N_LATENT, D)}, overwrite=True)
    assert load_bundle(target).card["metrics"] == {"v": 1}  # the old bundle is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no temp directories left behind
    umask = os.umask(0)
    os.umask(umask)  # the bundle gets the usual modes, not the owner-only ones of temp files
    assert (target / "generator.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask
    assert target.stat().st_mode & 0o777 == 0o777 & ~umask
    monkeypatch.setattr(bundles, "save_file", real_save)
    replaced = save_bundle(target, {"metrics": {"v": 3}}, generator=tiny_generator(), overwrite=True)
    assert replaced.card["metrics"] == {"v": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def _user_error(path) -> str:
    with pytest.raises(SserdError) as err:
        bundle = load_bundle(path)
        bundle.generator()
    message = str(err.value)
    assert "\n" not in message
    return message


def test_damaged_bundles_give_clear_errors(tmp_path):
    good = save_bundle(tmp_path / "good", {}, generator=tiny_generator()).path
    card = json.loads((good / "model.json").read_text())

    assert "not found" in _user_error(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    assert "model.json is missing" in _user_error(tmp_path / "empty")

    def variant(name, mutate_card=None, card_text=None, weights=None):
        path = tmp_path / name
        path.mkdir()
        (path / "model.json").write_text(card_text if card_text is not None else json.dumps(mutate_card(dict(card))))
        if weights is not None:
            (path / "generator.safetensors").write_bytes(weights)
        return path

    blob = (good / "generator.safetensors").read_bytes()
    assert "not valid JSON" in _user_error(variant("corrupt", card_text='{"format": "sserd-bundle", '))
    assert "format" in _user_error(variant("foreign", lambda c: {**c, "format": "other"}, weights=blob))
    assert "upgrade sserd" in _user_error(variant("future", lambda c: {**c, "version": 99}, weights=blob))
    assert "generator.safetensors is missing" in _user_error(variant("nofile", lambda c: c))
    assert "truncated or corrupt" in _user_error(variant("truncated", lambda c: c, weights=blob[: len(blob) // 2]))
    assert "truncated or corrupt" in _user_error(variant("garbage", lambda c: c, weights=b"\x00" * 64))
    # weights of a different network than the card describes
    wider = save_bundle(tmp_path / "wider", {}, generator=tiny_generator(channel_max=16)).path
    mismatch = variant("mismatch", lambda c: c, weights=(wider / "generator.safetensors").read_bytes())
    message = _user_error(mismatch)
    assert "does not match the generator config" in message and "[" in message


def test_codes_with_the_wrong_shape_are_refused(tmp_path):
    with pytest.raises(SserdError, match="expected"):
        save_bundle(tmp_path / "x", {}, generator=tiny_generator(), directions={"happy": torch.zeros(3, D)})
    assert not (tmp_path / "x").exists()


def test_info_prints_the_card_and_json(tmp_path, capsys):
    parts = tiny_parts()
    path = tmp_path / "model"
    save_bundle(path, {"recipe": {"stage": "train"}, "metrics": {"fad": 12.5}}, generator=parts["generator"],
                directions=parts["directions"])
    assert run(["info", str(path)]) == 0
    out = capsys.readouterr().out
    for text in ("generator", "no encoder", "32x32", "W+ [8, 16]", "fad: 12.5", "stage: train"):
        assert text in out, text
    assert run(["info", str(path), "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["parts"] == ["generator", "directions"] and card["metrics"] == {"fad": 12.5}
    assert run(["info", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
