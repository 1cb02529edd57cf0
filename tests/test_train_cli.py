"""Every training command end to end through the CLI, resume == uninterrupted, and bad input."""

import json
import shutil

import cv2
import pytest
import torch
from safetensors.torch import load_file

from sserd_cli.bundles import load_bundle
from sserd_cli.cli import run
from sserd_cli.data.index import read_index

from test_train_fixtures import TINY_GAN, make_dataset

CPU = ["--device", "cpu", "--workers", "0", "--quiet"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """dataset -> train-stylegan -> train-encoder -> build-pairs -> train, each a few steps."""
    tmp = tmp_path_factory.mktemp("pipeline")
    data = make_dataset(tmp / "data", test_clips=1)
    codes = {}
    codes["gan"] = run(["train-stylegan", str(data), "-o", str(tmp / "gan"), "--iterations", "2",
                        "--checkpoint-every", "1", "--sample-every", "2", *TINY_GAN])
    codes["enc"] = run(["train-encoder", str(data), "--model", str(tmp / "gan" / "bundle"), "-o", str(tmp / "enc"),
                        "--backbone", "small", "--iterations", "2", *CPU])
    codes["pairs"] = run(["build-pairs", str(data), "--model", str(tmp / "enc" / "bundle"), "-o", str(tmp / "pairs"),
                          "--max-sources", "3", *CPU])
    codes["sserd"] = run(["train", str(data), str(tmp / "pairs"), "-o", str(tmp / "sserd"), "--iterations", "2",
                          "--sample-every", "1", *CPU])
    return tmp, data, codes


def _run_dir_complete(run_dir, iterations):
    assert (run_dir / "config.json").is_file() and (run_dir / "train.log").is_file()
    assert (run_dir / "checkpoints" / f"iter_{iterations:08d}.safetensors").is_file()
    samples = sorted((run_dir / "samples").glob("*.png"))
    assert samples and cv2.imread(str(samples[-1])) is not None
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["iterations"] == iterations and summary["world_size"] == 1
    return summary


def test_train_stylegan_writes_run_and_generator_bundle(pipeline):
    tmp, _, codes = pipeline
    assert codes["gan"] == 0
    _run_dir_complete(tmp / "gan", 2)
    assert len(list((tmp / "gan" / "checkpoints").glob("*.safetensors"))) == 2  # every step, keep 3
    bundle = load_bundle(tmp / "gan" / "bundle")
    assert bundle.has("generator") and bundle.has("discriminator") and not bundle.has("encoder")
    G = bundle.generator()
    assert G.size == 32 and G.n_latent == 8
    config = json.loads((tmp / "gan" / "config.json").read_text())
    assert config["stage"] == "stylegan" and config["config"]["channel_max"] == 16
    assert bundle.card["recipe"][-1]["stage"] == "stylegan"


def test_train_encoder_exports_generator_and_encoder(pipeline):
    tmp, _, codes = pipeline
    assert codes["enc"] == 0
    _run_dir_complete(tmp / "enc", 2)
    bundle = load_bundle(tmp / "enc" / "bundle")
    E = bundle.encoder()
    assert E(torch.zeros(1, 3, 32, 32)).shape == (1, 8, 32)
    config = json.loads((tmp / "enc" / "config.json").read_text())
    assert config["run_info"]["perceptual"]["fallback"] is True  # no VGG19 weights here: recorded
    assert [r["stage"] for r in bundle.card["recipe"]] == ["stylegan", "encoder"]
    assert bundle.card["framing"]["zoom"] == 1.25  # the dataset's framing, no further zoom at load time
    assert bundle.card["domain"]["metric"] == "masked_mse" and bundle.card["domain"]["crops"] > 0
    losses = [json.loads(line) for line in (tmp / "enc" / "losses.jsonl").read_text().splitlines()]
    assert {"l2", "perceptual", "adv", "cl", "d"} <= set(losses[-1])


def test_build_pairs_reports_accuracy_and_writes_pair_index(pipeline):
    tmp, _, codes = pipeline
    assert codes["pairs"] == 0
    report = json.loads((tmp / "pairs" / "report.json").read_text())
    assert set(report["svm"]) == {"happy", "angry"}
    for emotion, svm in report["svm"].items():
        assert svm["heldout_from"] == "test split" and 0.0 <= svm["heldout_accuracy"] <= 1.0
        assert report["mouth_change"][emotion]["rest"] >= 0
    rows = read_index(tmp / "pairs")
    assert len(rows) == 3 * 3 and {r.kind for r in rows} == {"synthetic"}  # 3 sources x (neutral + 2 edits)
    assert all((tmp / "pairs" / r.path).is_file() for r in rows)
    latents = load_file(str(tmp / "pairs" / "latents.safetensors"))["codes"]
    assert latents.shape == (9, 8, 32)
    bundle = load_bundle(tmp / "pairs" / "bundle")
    d = bundle.directions()
    assert set(d) == {"happy", "angry"} and abs(float(d["happy"].norm()) - 1) < 1e-4
    # I_t = G(w_s + beta d): the stored target code is the source code moved by beta along the direction
    group = [i for i, r in enumerate(rows) if (r.clip, r.frame) == (rows[0].clip, rows[0].frame)]
    by_emotion = {rows[i].emotion: latents[i] for i in group}
    assert torch.allclose(by_emotion["happy"] - by_emotion["neutral"], 15.0 * d["happy"], atol=1e-4)
    assert set(bundle.mean_codes()) == {"neutral", "happy", "angry"}


def test_build_pairs_auto_beta_steps_by_each_class_separation(pipeline, tmp_path):
    tmp, data, _ = pipeline
    out = tmp_path / "pairs-auto"
    assert run(["build-pairs", str(data), "--model", str(tmp / "enc" / "bundle"), "-o", str(out), "--beta", "auto",
                "--max-sources", "2", "--quiet", *CPU]) == 0
    report = json.loads((out / "report.json").read_text())
    bundle = load_bundle(out / "bundle")
    betas = bundle.card["edit_betas"]
    assert betas == report["beta"] and set(betas) == {"happy", "angry"}
    for emotion, beta in betas.items():
        assert beta == round(report["svm"][emotion]["separation"], 4) and beta > 0
    rows = read_index(out)
    latents = load_file(str(out / "latents.safetensors"))["codes"]
    by_emotion = {r.emotion: latents[i] for i, r in enumerate(rows) if (r.clip, r.frame) == (rows[0].clip, rows[0].frame)}
    d = bundle.directions()
    assert torch.allclose(by_emotion["angry"] - by_emotion["neutral"], betas["angry"] * d["angry"], atol=1e-4)


def test_build_pairs_regression_steps_each_emotion_to_full_intensity(pipeline, tmp_path, capfd):
    tmp, data, _ = pipeline
    out = tmp_path / "pairs-regression"
    assert run(["build-pairs", str(data), "--model", str(tmp / "enc" / "bundle"), "-o", str(out), "--direction",
                "regression", "--beta", "auto", "--max-sources", "2", *CPU]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["direction"] == "regression" and set(report["svm"]) == {"happy", "angry"}
    bundle = load_bundle(out / "bundle")
    d, betas = bundle.directions(), bundle.card["edit_betas"]
    for emotion, fit in report["svm"].items():
        assert betas[emotion] == round(fit["separation"], 4) and betas[emotion] > 0
        assert fit["heldout_from"] == "test split" and 0.0 <= fit["heldout_accuracy"] <= 1.0
        assert abs(float(d[emotion].norm()) - 1) < 1e-4
    assert bundle.card["recipe"][-1]["config"]["direction"] == "regression"
    rows = read_index(out)
    latents = load_file(str(out / "latents.safetensors"))["codes"]
    by_emotion = {r.emotion: latents[i] for i, r in enumerate(rows) if (r.clip, r.frame) == (rows[0].clip, rows[0].frame)}
    assert torch.allclose(by_emotion["happy"] - by_emotion["neutral"], betas["happy"] * d["happy"], atol=1e-4)
    capfd.readouterr()
    bad = tmp_path / "pairs-bad"
    assert run(["build-pairs", str(data), "--model", str(tmp / "enc" / "bundle"), "-o", str(bad), "--direction",
                "lda", *CPU]) == 2
    err = capfd.readouterr().err
    assert "--direction lda: use svm or regression" in err and "Traceback" not in err and not bad.exists()


def test_train_with_the_latent_step_loss_logs_it_and_needs_the_pairs_codes(pipeline, tmp_path, capfd):
    tmp, data, _ = pipeline
    out = tmp_path / "sserd-latent"
    assert run(["train", str(data), str(tmp / "pairs"), "-o", str(out), "--iterations", "3", "--lambda-latent", "1",
                "--latent-warmup", "2", "--latent-batch", "4", "--sample-every", "3", "--log-every", "1", *CPU]) == 0
    losses = [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]
    assert all("lat" in row and row["lat"] >= 0 for row in losses)
    warm, hybrid = losses[:2], losses[2:]
    assert all(set(row) == {"iteration", "sec_per_step", "lat", "total"} for row in warm)  # nothing rendered
    assert hybrid and all("pix" in row and "d" in row for row in hybrid)
    config = json.loads((out / "config.json").read_text())["config"]
    assert (config["lambda_latent"], config["latent_warmup"], config["latent_batch"]) == (1.0, 2, 4)
    capfd.readouterr()
    assert run(["train", str(data), str(tmp / "pairs"), "-o", str(tmp_path / "no-weight"), "--iterations", "2",
                "--latent-warmup", "2", *CPU]) == 2
    err = capfd.readouterr().err
    assert "--latent-warmup" in err and "--lambda-latent" in err and "Traceback" not in err
    assert not (tmp_path / "no-weight").exists()
    pairs = tmp_path / "pairs-without-codes"
    shutil.copytree(tmp / "pairs", pairs)
    (pairs / "latents.safetensors").unlink()
    capfd.readouterr()
    assert run(["train", str(data), str(pairs), "-o", str(tmp_path / "bad"), "--iterations", "2", "--lambda-latent",
                "1", *CPU]) == 2
    err = capfd.readouterr().err
    assert "has no latents.safetensors" in err and "Traceback" not in err
    assert not (tmp_path / "bad").exists()  # nothing left behind


def test_train_sserd_exports_full_bundle(pipeline):
    tmp, _, codes = pipeline
    assert codes["sserd"] == 0
    summary = _run_dir_complete(tmp / "sserd", 2)
    assert {"pix", "lips", "adv", "cl"} <= set(summary["final_losses"])
    bundle = load_bundle(tmp / "sserd" / "bundle")
    for part in ("generator", "encoder", "celcl", "directions", "mean_codes"):
        assert bundle.has(part), part
    w = torch.randn(2, 8, 32)
    assert bundle.celcl()(w, w).shape == (2, 8, 32)
    assert len(list((tmp / "sserd" / "samples").glob("*.png"))) == 2


def _checkpoint_tensors(run_dir, iteration):
    return load_file(str(run_dir / "checkpoints" / f"iter_{iteration:08d}.safetensors"))


def _assert_same_checkpoints(a, b):
    assert a.keys() == b.keys()
    assert any(k.startswith("optim/") for k in a) and any(k.startswith("rng/0/") for k in a)
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:5]


def test_resume_stylegan_is_bit_exact(pipeline, tmp_path):
    _, data, _ = pipeline
    args = [str(data), "--checkpoint-every", "2", "--sample-every", "10", *TINY_GAN]
    assert run(["train-stylegan", "-o", str(tmp_path / "straight"), "--iterations", "4", *args]) == 0
    assert run(["train-stylegan", "-o", str(tmp_path / "split"), "--iterations", "2", *args]) == 0
    assert run(["train-stylegan", "-o", str(tmp_path / "split"), "--iterations", "4", "--resume", *args]) == 0
    _assert_same_checkpoints(_checkpoint_tensors(tmp_path / "straight", 4), _checkpoint_tensors(tmp_path / "split", 4))
    assert "resumed from iter_00000002" in (tmp_path / "split" / "train.log").read_text()


def test_resume_sserd_is_bit_exact(pipeline, tmp_path):
    """Split inside the latent warm-up (steps 1-3 code-only), ending in the hybrid steps: the bank's draws and
    the image losses both continue as in the straight run."""
    tmp, data, _ = pipeline
    args = [str(data), str(tmp / "pairs"), "--checkpoint-every", "2", "--sample-every", "10", "--lambda-latent", "1",
            "--latent-warmup", "3", "--latent-batch", "4", *CPU]
    assert run(["train", "-o", str(tmp_path / "straight"), "--iterations", "4", *args]) == 0
    assert run(["train", "-o", str(tmp_path / "split"), "--iterations", "2", *args]) == 0
    assert run(["train", "-o", str(tmp_path / "split"), "--iterations", "4", "--resume", *args]) == 0
    a, b = _checkpoint_tensors(tmp_path / "straight", 4), _checkpoint_tensors(tmp_path / "split", 4)
    assert any(k.startswith("extra/code_cache") for k in a)
    _assert_same_checkpoints(a, b)


def test_ablation_modes_run(pipeline, tmp_path):
    tmp, data, _ = pipeline
    assert run(["train", str(data), "-o", str(tmp_path / "unpaired"), "--model", str(tmp / "pairs" / "bundle"),
                "--data", "unpaired", "--no-contrastive", "--iterations", "1", *CPU]) == 0
    summary = json.loads((tmp_path / "unpaired" / "summary.json").read_text())
    assert summary["final_losses"]["pix"] == 0.0 and summary["final_losses"]["cl"] == 0.0
    assert summary["final_losses"]["synthetic"] == 0.0 and summary["contrastive"] is False
    assert run(["train", str(data), str(tmp / "pairs"), "-o", str(tmp_path / "paired"), "--data", "paired",
                "--iterations", "1", *CPU]) == 0
    assert json.loads((tmp_path / "paired" / "summary.json").read_text())["final_losses"]["synthetic"] == 1.0


def _fails_with(capsys, argv, *needles):
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error:" in err
    for needle in needles:
        assert needle in " ".join(err.split()), err
    return err


def test_bad_input_gives_one_clear_line(pipeline, tmp_path, capsys):
    tmp, data, _ = pipeline
    _fails_with(capsys, ["train-stylegan", str(tmp_path / "nope"), "-o", str(tmp_path / "r1"), *TINY_GAN], "does not exist")
    assert not (tmp_path / "r1").exists()
    # a generator-only bundle cannot feed build-pairs (no encoder)
    _fails_with(capsys, ["build-pairs", str(data), "--model", str(tmp / "gan" / "bundle"), "-o", str(tmp_path / "p"),
                         *CPU], "has no encoder", "train-encoder")
    assert not (tmp_path / "p").exists()
    only_emotions = make_dataset(tmp_path / "no_neutral", emotions=("happy", "angry"))
    _fails_with(capsys, ["build-pairs", str(only_emotions), "--model", str(tmp / "enc" / "bundle"), "-o",
                         str(tmp_path / "p"), *CPU], "no neutral")
    assert not (tmp_path / "p").exists()
    neutral_only = make_dataset(tmp_path / "neutral_only", emotions=("neutral",))
    _fails_with(capsys, ["train-encoder", str(neutral_only), "--model", str(tmp / "gan" / "bundle"), "-o",
                         str(tmp_path / "r0"), *CPU], "only 'neutral' frames", "--no-contrastive")
    one_speaker = make_dataset(tmp_path / "one_speaker", speakers=1)
    _fails_with(capsys, ["train", str(one_speaker), str(tmp / "pairs"), "-o", str(tmp_path / "r2"), *CPU], "r2")
    assert not (tmp_path / "r2").exists()
    _fails_with(capsys, ["train-encoder", str(data), "--model", str(tmp / "gan" / "bundle"), "-o", str(tmp_path / "r3"),
                         "--size", "64", *CPU], "renders 32x32", "--size 32")
    _fails_with(capsys, ["train", str(data), "-o", str(tmp_path / "r4"), "--model", str(tmp / "enc" / "bundle"), *CPU],
                "paired set")
    _fails_with(capsys, ["train-stylegan", str(data), "-o", str(tmp / "gan"), *TINY_GAN], "already exists", "--resume")
    _fails_with(capsys, ["train-stylegan", str(data), "-o", str(tmp_path / "r5"), "--resume", *TINY_GAN], "cannot resume")
    _fails_with(capsys, ["train-encoder", str(data), "--model", str(tmp / "enc"), "-o", str(tmp_path / "r6"), *CPU],
                "not a model bundle")
    for name in ("r0", "r2", "r3", "r4", "r6"):
        assert not (tmp_path / name).exists()


def test_resume_after_moving_the_run_reads_the_new_paths(pipeline, tmp_path, monkeypatch, capsys):
    tmp, data, _ = pipeline
    old, new = tmp_path / "old", tmp_path / "new"
    for name in ("data", "pairs"):
        shutil.copytree(tmp / name, old / name)
    monkeypatch.chdir(old)  # relative paths, as a user types them: the saved config holds them as given
    args = ["data", "pairs", "-o", "sserd", "--checkpoint-every", "2", "--sample-every", "10", *CPU]
    assert run(["train", "--iterations", "2", *args]) == 0
    shutil.move(str(old), str(new))
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    moved = ["new/data", "new/pairs", "-o", "new/sserd", "--checkpoint-every", "2", "--sample-every", "10", *CPU]
    assert run(["train", "--iterations", "4", "--resume", *moved]) == 0
    assert "keeps the run's saved" not in capsys.readouterr().err
    config = json.loads((new / "sserd" / "config.json").read_text())["config"]
    assert (config["data"], config["pairs"], config["model"], config["run_dir"]) == (
        "new/data", "new/pairs", "new/pairs/bundle", "new/sserd")
    straight = ["train", str(data), str(tmp / "pairs"), "-o", str(tmp_path / "straight"), "--iterations", "4",
                "--checkpoint-every", "2", "--sample-every", "10", *CPU]
    assert run(straight) == 0
    _assert_same_checkpoints(_checkpoint_tensors(tmp_path / "straight", 4), _checkpoint_tensors(new / "sserd", 4))


def test_time_limit_checkpoints_exports_and_resumes_bit_exact(pipeline, tmp_path):
    _, data, _ = pipeline
    args = [str(data), "--checkpoint-every", "100", "--sample-every", "100", "--log-every", "1", *TINY_GAN]
    assert run(["train-stylegan", "-o", str(tmp_path / "straight"), "--iterations", "3", *args]) == 0
    # a limit already spent after the first step: it stops there, as if --iterations had been 1
    assert run(["train-stylegan", "-o", str(tmp_path / "limited"), "--iterations", "3", "--time-limit", "1e-6", *args]) == 0
    summary = json.loads((tmp_path / "limited" / "summary.json").read_text())
    assert summary["iterations"] == 1
    assert summary["stopped"] == {"reason": "time limit", "time_limit_min": 1e-6, "target_iterations": 3}
    assert load_bundle(tmp_path / "limited" / "bundle").has("generator")
    assert "time limit" in (tmp_path / "limited" / "train.log").read_text()
    # the limit holds for one invocation: a plain --resume runs on to --iterations
    assert run(["train-stylegan", "-o", str(tmp_path / "limited"), "--resume", *args]) == 0
    assert "stopped" not in json.loads((tmp_path / "limited" / "summary.json").read_text())
    _assert_same_checkpoints(_checkpoint_tensors(tmp_path / "straight", 3), _checkpoint_tensors(tmp_path / "limited", 3))


def test_negative_time_limit_is_one_clear_line(pipeline, tmp_path, capsys):
    _, data, _ = pipeline
    assert run(["train-stylegan", str(data), "-o", str(tmp_path / "gan"), "--time-limit", "-1", *TINY_GAN]) != 0
    err = capsys.readouterr().err
    assert "--time-limit must be >= 0" in err and "Traceback" not in err
    assert not (tmp_path / "gan").exists()


def test_resume_warns_only_about_options_it_ignores(pipeline, tmp_path, capsys):
    _, data, _ = pipeline
    args = [str(data), "-o", str(tmp_path / "gan"), "--checkpoint-every", "1", "--sample-every", "10", *TINY_GAN]
    assert run(["train-stylegan", "--iterations", "1", *args]) == 0
    capsys.readouterr()
    assert run(["train-stylegan", "--iterations", "2", "--resume", *args]) == 0
    assert "keeps the run's saved" not in capsys.readouterr().err  # the same command line again: nothing to say
    bare = [str(data), "-o", str(tmp_path / "gan"), "--device", "cpu", "--quiet"]  # options left out keep the run's
    assert run(["train-stylegan", "--iterations", "3", "--resume", *bare]) == 0
    assert "keeps the run's saved" not in capsys.readouterr().err
    assert run(["train-stylegan", "--iterations", "4", "--resume", "--lr", "0.001", *args]) == 0
    assert "keeps the run's saved lr" in capsys.readouterr().err
