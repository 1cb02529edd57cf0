"""The training loops learn: encoder inversion of two fixed generator renders drives the L2 loss down."""

import json

import cv2
import torch

from sserd_cli.bundles import load_bundle
from sserd_cli.cli import run
from sserd_cli.data.index import IndexRow, write_index
from sserd_cli.training.dataset import to_uint8

from test_train_fixtures import make_dataset, tiny_gan_bundle


def test_encoder_inversion_loss_falls(tmp_path):
    gan = tiny_gan_bundle(tmp_path, make_dataset(tmp_path / "faces", frames=1))
    G = load_bundle(gan).generator()
    with torch.no_grad():  # two images G can render exactly: a trivially learnable inversion
        w = G.mapping(torch.randn(2, G.style_dim, generator=torch.Generator().manual_seed(1)))
        images = to_uint8(G.synthesis(w[:, None].expand(-1, G.n_latent, -1)))
    data = tmp_path / "renders"
    (data / "crops").mkdir(parents=True)
    rows = []
    for i, (image, emotion) in enumerate(zip(images, ("neutral", "happy"))):
        cv2.imwrite(str(data / "crops" / f"{i}.png"), image[:, :, ::-1])
        rows.append(IndexRow(f"crops/{i}.png", "s0", emotion, 1.0, f"c{i}", 0, "train"))
    write_index(data, rows, {"size": 32})
    assert run(["train-encoder", str(data), "--model", str(gan), "-o", str(tmp_path / "enc"), "--backbone", "small",
                "--load-size", "32", "--iterations", "12", "--log-every", "2", "--lr", "1e-3",
                "--device", "cpu", "--workers", "0", "--quiet"]) == 0
    curve = [json.loads(line) for line in (tmp_path / "enc" / "losses.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in curve] == [2, 4, 6, 8, 10, 12]
    # (the first logged step may spike while RAdam warms up; from then on the loss must fall clearly)
    assert curve[-1]["l2"] < 0.8 * curve[1]["l2"], curve
    assert curve[-1]["l2"] < curve[0]["l2"], curve
    assert curve[-1]["total"] < curve[1]["total"], curve
