"""train-features and train-autoencoder: G and E trained together, through the CLI and unit by unit."""

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from sserd_cli.bundles import load_bundle
from sserd_cli.cli import run
from sserd_cli.data.labels import read_param_labels
from sserd_cli.data.index import read_index
from sserd_cli.faces.align import canonical_landmarks
from sserd_cli.faces.mask import parts_mask
from sserd_cli.losses.domain_features import DomainFeatureLoss, gaussian_blur
from sserd_cli.losses.reconstruction import weighted_pixel_loss
from sserd_cli.nets.features import FeatureNet, FeatureNetConfig, load_feature_net
from sserd_cli.training import distributed
from sserd_cli.training.autoencoder import AutoencoderCoach
from sserd_cli.training.config import AutoencoderConfig

from test_train_fixtures import TINY_GAN, make_dataset

CPU = ["--device", "cpu", "--workers", "0", "--quiet"]
TINY_AE = ["--channel-max", "16", "--style-dim", "32", "--batch-size", "2", "--feat-ramp", "2", *CPU]


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory):
    """A real `sserd synth images` dataset at 32 px: crops, index and labels.jsonl."""
    root = tmp_path_factory.mktemp("ae") / "data"
    assert run(["synth", "images", "-o", str(root), "--count", "21", "--size", "32", "--speakers", "10",
                "--workers", "1", "--quiet"]) == 0
    return root


@pytest.fixture(scope="module")
def features(synth_data):
    out = synth_data.parent / "features"
    assert run(["train-features", str(synth_data), "-o", str(out), "--iterations", "3", "--batch-size", "4",
                "--log-every", "1", *CPU]) == 0
    return out


def test_param_labels_follow_the_index(synth_data):
    rows = read_index(synth_data)
    names, values = read_param_labels(synth_data, [r.path for r in rows])
    assert values.shape == (len(rows), len(names)) and np.isfinite(values).all()
    assert "speech.mouth_open" in names and "expression.brow_raise" in " ".join(names) or len(names) > 20
    assert not any(n.startswith("light.") for n in names)
    assert read_param_labels(make_dataset(synth_data.parent / "plain"), ["x.png"]) is None  # no labels file


def test_train_features_exports_a_readable_network(features, synth_data):
    net, card = load_feature_net(features)  # the run folder is accepted as well as its bundle
    assert card["param_names"] and net.config.n_params == len(card["param_names"])
    assert card["size"] == 32 and 0.0 <= card["metrics"]["emotion_accuracy"] <= 1.0
    out = net(torch.zeros(2, 3, 32, 32))
    assert out["emotion"].shape == (2, 7) and out["params"].shape == (2, net.config.n_params)
    losses = [json.loads(line) for line in (features / "losses.jsonl").read_text().splitlines()]
    assert {"ce", "params"} <= set(losses[0]) and all(np.isfinite(v) for r in losses for v in r.values())


def test_parts_mask_covers_eyes_and_mouth_only():
    size, zoom = 64, 1.25
    m = parts_mask(size, zoom)
    assert m.shape == (size, size) and m.min() >= 0 and m.max() == pytest.approx(1.0)
    for x, y in canonical_landmarks(size, zoom)[[0, 1, 3, 4]]:  # eyes and mouth corners
        assert m[int(round(y)), int(round(x))] > 0.9
    assert m[2, 2] == 0 and m[size // 8, size // 2] < 0.05  # border, hair
    assert m.mean() < 0.35
    unzoomed = parts_mask(size, 1.0)
    assert unzoomed[size - 4, size // 2] < 0.05 and unzoomed.mean() < m.mean()  # the chin; the boxes follow the zoom


def test_weighted_pixel_loss_is_l1_plus_l2_and_weights_regions():
    a, b = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    d = a - b
    assert weighted_pixel_loss(a, b, torch.ones(8, 8)) == pytest.approx(float((d.abs() + d ** 2).mean()), rel=1e-6)
    w = torch.ones(8, 8)
    w[:4] = 10
    only_top = b.clone()
    only_top[:, :, :4] += 0.5
    only_bottom = b.clone()
    only_bottom[:, :, 4:] += 0.5
    assert weighted_pixel_loss(only_top, b, w) > 5 * weighted_pixel_loss(only_bottom, b, w)


def test_domain_feature_loss_grads_reach_the_fake_only_and_blur_hides_speckle():
    torch.manual_seed(0)
    net = FeatureNet(FeatureNetConfig(size=32, n_params=3))
    loss = DomainFeatureLoss(net, blur=1.0)
    real = gaussian_blur(torch.rand(2, 3, 32, 32) * 2 - 1, 2.0) * 3  # a smooth picture
    fake = real.clone().requires_grad_(True)
    acts, heads = loss(fake, real)
    assert acts.item() == pytest.approx(0.0, abs=1e-6) and heads.item() == pytest.approx(0.0, abs=1e-6)
    speckle = torch.randn(2, 3, 32, 32) * 0.3
    shifted = torch.roll(real, 3, dims=3)  # a change of shape: the features move
    loud = sum(DomainFeatureLoss(net, blur=0.0)(real + speckle, real)).item()
    quiet = sum(loss(real + speckle, real)).item()
    assert quiet < 0.5 * loud
    acts, heads = loss(fake + 0.1 * shifted, real)
    (acts + heads).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())
    assert gaussian_blur(real, 0).equal(real)


def _coach(data, run_dir, features=None, **kw):
    config = AutoencoderConfig(data=str(data), run_dir=str(run_dir), size=32, batch_size=2, channel_max=16,
                               style_dim=32, n_mlp=2, device="cpu", workers=0, features=str(features or ""),
                               feat_ramp=1, **kw)
    return AutoencoderCoach(config, distributed.setup("cpu"))


def test_one_step_has_finite_losses_and_gradients_in_g_and_e(synth_data, features, tmp_path):
    coach = _coach(synth_data, tmp_path / "r", features, lambda_adv=0.05, lambda_params=0.5)
    losses = coach.step(0)
    assert {"pix", "feat", "heads", "adv", "aux", "d", "l2"} <= set(losses)
    assert all(np.isfinite(v) for v in losses.values())
    g_grads = [p.grad for n, p in coach.G.named_parameters() if not n.startswith("style.")]
    assert all(g is not None for g in g_grads) and sum(float(g.abs().sum()) for g in g_grads) > 0
    assert all(p.grad is None for n, p in coach.G.named_parameters() if n.startswith("style."))  # mapping untouched
    assert sum(float(p.grad.abs().sum()) for p in coach.E.parameters() if p.grad is not None) > 0
    assert coach.params is not None and coach.aux.out_features == 7 + coach.params.shape[1]


def test_a_few_steps_lower_the_reconstruction_error(synth_data, tmp_path):
    coach = _coach(synth_data, tmp_path / "r", lambda_adv=0.0, lambda_aux=0.0, lr=3e-3)
    first = np.mean([coach.step(i)["l2"] for i in range(3)])
    for i in range(3, 40):
        coach.step(i)
    last = np.mean([coach.step(i)["l2"] for i in range(40, 43)])
    assert last < 0.8 * first


def test_cli_trains_from_scratch_and_from_a_bundle_and_resumes_bit_exactly(synth_data, features, tmp_path):
    straight = tmp_path / "straight"
    assert run(["train-autoencoder", str(synth_data), "-o", str(straight), "--features", str(features),
                "--iterations", "4", "--checkpoint-every", "2", "--lambda-adv", "0.05", *TINY_AE]) == 0
    bundle = load_bundle(straight / "bundle")
    assert bundle.has("generator") and bundle.has("encoder") and bundle.has("discriminator")
    assert bundle.card["recipe"][-1]["stage"] == "autoencoder" and bundle.card["framing"]["zoom"] == 1.25
    E, G = bundle.encoder(), bundle.generator()
    assert G.synthesis(E(torch.zeros(1, 3, 32, 32))).shape == (1, 3, 32, 32)

    parted = tmp_path / "parted"
    assert run(["train-autoencoder", str(synth_data), "-o", str(parted), "--features", str(features),
                "--iterations", "2", "--checkpoint-every", "2", "--lambda-adv", "0.05", *TINY_AE]) == 0
    assert run(["train-autoencoder", str(synth_data), "-o", str(parted), "--iterations", "4", "--resume", *CPU]) == 0
    a = load_file(str(straight / "checkpoints" / "iter_00000004.safetensors"))
    b = load_file(str(parted / "checkpoints" / "iter_00000004.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    fine = tmp_path / "fine"  # continue from the exported bundle: its generator, encoder and D start the run
    assert run(["train-autoencoder", str(synth_data), "-o", str(fine), "--model", str(straight / "bundle"),
                "--iterations", "1", "--lambda-adv", "0.05", *CPU]) == 0
    assert load_bundle(fine / "bundle").card["recipe"][-2]["stage"] == "autoencoder"


def test_bad_input_gets_one_line_and_exit_2(synth_data, features, tmp_path, capsys):
    def fails(args, *needles):
        capsys.readouterr()
        assert run(args) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and all(n in err for n in needles), err

    base = ["train-autoencoder", str(synth_data), "-o", str(tmp_path / "x"), "--iterations", "1", *TINY_AE]
    fails(base + ["--features", str(tmp_path / "nowhere")], "no feature network", "train-features")
    fails(base + ["--size", "64"], "32-px crops", "--size 64")
    fails(base + ["--region-weight", "0.5"], "--region-weight")
    fails(base + ["--lambda-feat", "nan"], "--lambda-feat")
    fails(base + ["--lr", "inf"], "--lr")
    gan = tmp_path / "gan"
    assert run(["train-stylegan", str(make_dataset(tmp_path / "d40")), "-o", str(gan), "--iterations", "1",
                *TINY_GAN]) == 0
    no_generator = tmp_path / "no-generator"  # a bundle that holds only a discriminator
    shutil.copytree(gan / "bundle", no_generator)
    (no_generator / "generator.safetensors").unlink()
    fails(base + ["--model", str(no_generator)], "generator")
    fails(["train-features", str(tmp_path / "missing"), "-o", str(tmp_path / "f")], "does not exist")
    assert not (tmp_path / "x").exists()


def test_default_run_trains_no_discriminator_and_records_its_inputs(synth_data, features, tmp_path):
    out = tmp_path / "plain"
    assert run(["train-autoencoder", str(synth_data), "-o", str(out), "--features", str(features),
                "--iterations", "1", *TINY_AE]) == 0
    bundle = load_bundle(out / "bundle")
    assert bundle.has("encoder") and not bundle.has("discriminator")  # none was trained: none is shipped
    step = bundle.card["recipe"][-1]
    assert step["init"] == "scratch" and step["features"]["path"] == str(features)
    assert step["config"]["lambda_adv"] == 0.0 and step["data"]["params"] > 0
    domain = bundle.card["domain"]  # G(E(x))'s usual error on held-out faces, for sserd edit's domain check
    assert domain["split"] == "test" and domain["crops"] == len([r for r in read_index(synth_data) if r.split == "test"]) and 0 < domain["q50"] <= domain["q95"] <= domain["max"]
