"""Training building blocks: state flattening, RNG capture, data sharding, SVM directions, eq. 14's indicator."""

import dataclasses
import random

import numpy as np
import pytest
import torch

from sserd_cli.training.dataset import FrameSet, HybridSampler, shard_positions
from sserd_cli.training.pairs import fit_direction, fit_regression, layer_mask, parse_layers, speech_labels
from sserd_cli.training.sserd import hybrid_objective
from sserd_cli.training.state import capture_rng, flatten, restore_rng, unflatten
from sserd_cli.data.index import read_index, write_index
from sserd_cli.emotions import EMOTIONS
from sserd_cli.errors import SserdError

from test_train_fixtures import make_dataset


def test_optimizer_state_round_trips_through_flat_tensors():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.9))
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    tensors = {}
    tree = flatten(opt.state_dict(), "optim/x", tensors)
    assert all(isinstance(v, torch.Tensor) for v in tensors.values())
    import json
    back = unflatten(json.loads(json.dumps(tree)), tensors)
    original = opt.state_dict()
    assert back["param_groups"] == original["param_groups"]  # tuples (betas) stay tuples, int keys stay ints
    assert set(back["state"]) == set(original["state"]) == {0, 1}
    for k in original["state"]:
        for name, value in original["state"][k].items():
            assert torch.equal(back["state"][k][name], value)


def test_rng_capture_restores_every_stream():
    gen = torch.Generator().manual_seed(5)
    state = capture_rng(torch.device("cpu"), {"g": gen})
    first = (torch.rand(3), np.random.rand(2), random.random(), torch.rand(2, generator=gen))
    restore_rng(state, torch.device("cpu"), {"g": gen})
    second = (torch.rand(3), np.random.rand(2), random.random(), torch.rand(2, generator=gen))
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert first[2] == second[2] and torch.equal(first[3], second[3])


def test_shards_cover_each_epoch_once_and_ranks_do_not_overlap():
    n, batch, world = 10, 2, 2
    seen = []
    for it in range(5):  # 5 iterations x 2 ranks x 2 = 20 = two epochs
        a = shard_positions(n, 3, it, batch, 0, world)
        b = shard_positions(n, 3, it, batch, 1, world)
        assert not set(a) & set(b) or it == 2  # an epoch boundary may fall inside a global batch
        seen += a + b
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:]) == list(range(10))
    assert shard_positions(n, 3, 4, batch) == shard_positions(n, 3, 4, batch)  # pure function of its arguments


def test_svm_direction_recovers_a_planted_direction():
    rng = np.random.default_rng(0)
    n_latent, dim = 4, 16
    planted = rng.normal(size=(n_latent, dim))
    planted[2:] = 0  # lives in rows 0-1 only
    planted /= np.linalg.norm(planted)
    neutral = rng.normal(size=(400, n_latent, dim))
    emotion = rng.normal(size=(400, n_latent, dim)) + 3.0 * planted
    fit = fit_direction(neutral, emotion, emotion="happy", seed=0)
    d = fit.direction.numpy()
    assert abs(np.linalg.norm(d) - 1) < 1e-5
    assert float((d * planted).sum()) > 0.75  # points towards the emotion (a random unit vector: ~0.1)
    assert fit.heldout_accuracy is not None and fit.heldout_accuracy > 0.8 and fit.heldout_source == "holdout"
    restricted = fit_direction(neutral, emotion, layers=[0, 1], seed=0).direction.numpy()
    assert np.all(restricted[2:] == 0) and float((restricted * planted).sum()) > 0.85
    assert abs(fit.separation - 3.0) < 0.6  # the class means lie 3 apart along the planted direction


def test_svm_direction_follows_the_real_difference_not_a_near_constant_dimension():
    """More dimensions than codes: a dimension that barely varies but separates the classes perfectly must
    not take over the direction (G hardly reacts to it); the wide shift the classes really differ by must."""
    rng = np.random.default_rng(1)
    n, n_latent, dim = 60, 8, 64
    shift = np.zeros((n_latent, dim))
    shift[0, :8] = 1.5  # a large, noisy difference
    neutral = rng.normal(size=(n, n_latent, dim))
    emotion = rng.normal(size=(n, n_latent, dim)) + shift
    neutral[:, 7, 0], emotion[:, 7, 0] = 0.0, 1e-3  # near-constant, perfectly separating
    fit = fit_direction(neutral, emotion, emotion="sad", seed=0, holdout=0)
    d = fit.direction.numpy()
    assert float((d * shift).sum() / np.linalg.norm(shift)) > 0.5  # the sample mean difference itself reaches ~0.7
    assert abs(d[7, 0]) < 0.05
    assert fit.separation > 2.0  # most of the 4.2 mean distance lies along it


def test_regression_direction_is_the_intensity_slope_with_the_speech_slope_projected_out():
    """Codes move by intensity * D_e plus mouth_open * S: the regression direction is D_e without its S part,
    its auto step |D_e - proj_S D_e| (a step to intensity 1), and the held-out codes lie on its two sides."""
    rng = np.random.default_rng(2)
    n_latent, dim, n = 4, 8, 1200
    speech_dir = rng.normal(size=(n_latent, dim))
    happy = rng.normal(size=(n_latent, dim)) + 0.5 * speech_dir  # the planted slope shares a part with speech
    emotions = rng.choice(["neutral", "happy"], size=n)
    intensity = np.where(emotions == "happy", rng.uniform(0.3, 1.0, n), 0.0)
    mouth = rng.uniform(0, 1, n)
    codes = (intensity[:, None, None] * happy + mouth[:, None, None] * speech_dir
             + 0.05 * rng.normal(size=(n, n_latent, dim)))
    train = np.arange(n) < 1000
    fits = fit_regression(codes, emotions, intensity, ["happy"], speech=mouth[:, None], train=train)
    s = speech_dir.ravel() / np.linalg.norm(speech_dir)
    expected = happy.ravel() - s * (s @ happy.ravel())
    d = fits["happy"].direction.numpy().ravel()
    assert abs(np.linalg.norm(d) - 1) < 1e-5 and abs(d @ s) < 0.01  # nothing of the speech slope is left
    assert d @ expected / np.linalg.norm(expected) > 0.999
    assert abs(fits["happy"].separation - np.linalg.norm(expected)) < 0.02 * np.linalg.norm(expected)
    assert fits["happy"].heldout_accuracy > 0.95 and fits["happy"].heldout_source == "test split"
    assert 0 < fits["happy"].speech_share < 1
    plain = fit_regression(codes, emotions, intensity, ["happy"], train=train, layers=[1])["happy"]
    assert plain.speech_share is None and np.all(plain.direction.numpy()[[0, 2, 3]] == 0)


def test_speech_labels_are_the_varying_speech_controls_of_a_labels_file(tmp_path):
    import json

    states = [{"expression": {"jaw_drop": 0.1 * k}, "speech": {"mouth_open": 0.2 * k, "lip_round": 0.5}}
              for k in range(3)]
    (tmp_path / "labels.jsonl").write_text("".join(json.dumps({"path": f"c{k}.png", "state": st}) + "\n"
                                                   for k, st in enumerate(states)))
    names, values = speech_labels(tmp_path, ["c2.png", "c0.png"])
    assert names == ["speech.mouth_open"] and np.allclose(values[:, 0], [0.4, 0.0])  # lip_round never varies
    assert speech_labels(tmp_path / "nowhere", ["c0.png"]) == (None, None)  # no labels file: plain regression


def test_layers_are_parsed_and_checked():
    assert parse_layers("0-2,5") == [0, 1, 2, 5]
    assert layer_mask(6, [1]).tolist() == [False, True, False, False, False, False]
    with pytest.raises(SserdError, match="W\\+ rows"):
        layer_mask(6, [9])
    with pytest.raises(SserdError):
        parse_layers("a-b")


def test_indicator_removes_pixel_terms_of_real_sources():
    out1 = torch.randn(2, 3, 8, 8, requires_grad=True)
    out2 = torch.randn(2, 3, 8, 8, requires_grad=True)
    target = torch.randn(2, 3, 8, 8)
    percept = lambda a, b: (a - b).abs().mean()  # noqa: E731
    real = hybrid_objective(out1, out2, target, torch.tensor([False, False]), percept, 0.8)
    assert real["supervised"].item() == 0.0
    real["supervised"].backward()
    assert float(out1.grad.abs().sum()) == 0.0
    out1.grad = None
    mixed = hybrid_objective(out1, out2, target, torch.tensor([True, False]), percept, 0.8)
    mixed["supervised"].backward()
    assert float(out1.grad[1].abs().sum()) == 0.0 and float(out1.grad[0].abs().sum()) > 0
    expected_pix = 0.5 * (((out1[0] - target[0]) ** 2).mean() + ((out2[0] - target[0]) ** 2).mean())
    assert torch.allclose(mixed["pix"], expected_pix)


def test_hybrid_sampler_picks_valid_references(tmp_path):
    data = make_dataset(tmp_path / "d", clips=2, frames=1)
    real = FrameSet(data, 32, 40, workers=0)
    sampler = HybridSampler(real, None, "unpaired", 0.5, seed=0)
    for it in range(5):
        for item in sampler.batch(it, 4):
            src, r1, r2 = real.rows[item.source], real.rows[item.r1], real.rows[item.r2]
            assert not item.synthetic and item.target == -1
            assert r1.speaker == src.speaker and r1.clip != src.clip
            assert r2.speaker != src.speaker and r1.emotion == r2.emotion
    one_clip = make_dataset(tmp_path / "one", clips=1, frames=2)
    rows = [dataclasses.replace(r, clip="s0_all") if r.speaker == "s0" else r for r in read_index(one_clip)]
    write_index(one_clip, rows, {"size": 40})
    real = FrameSet(one_clip, 32, 40, workers=0)
    sampler = HybridSampler(real, None, "unpaired", 0.5, seed=0)
    assert sampler.single_clip_speakers == ["s0"]  # no r1 for it: never a source, still an r2 for s1
    items = [item for it in range(5) for item in sampler.batch(it, 4)]
    assert {real.rows[i.source].speaker for i in items} == {"s1"}
    assert {real.rows[i.r2].speaker for i in items} == {"s0"}
    only_lonely = make_dataset(tmp_path / "lonely", clips=1, frames=2)
    write_index(only_lonely, [dataclasses.replace(r, clip=f"{r.speaker}_all") for r in read_index(only_lonely)],
                {"size": 40})
    with pytest.raises(SserdError, match="no speaker has two clips"):
        HybridSampler(FrameSet(only_lonely, 32, 40, workers=0), None, "unpaired", 0.5, seed=0)
    one_speaker = make_dataset(tmp_path / "spk", speakers=1)
    with pytest.raises(SserdError, match="r2"):
        HybridSampler(FrameSet(one_speaker, 32, 40, workers=0), None, "unpaired", 0.5, seed=0)


def test_cross_speaker_references_are_every_other_speakers_frames_of_the_emotion(tmp_path):
    data = make_dataset(tmp_path / "d", speakers=3, clips=2, frames=2)
    real = FrameSet(data, 32, 40, workers=0)
    sampler = HybridSampler(real, None, "unpaired", 0.5, seed=0)
    for speaker in real.speakers:
        for emotion in EMOTIONS:
            # the definition: in (speaker, row) order, every frame of the emotion whose speaker is another one
            expected = [i for s in real.speakers if s != speaker for i in real.by_speaker_emotion.get((s, emotion), [])]
            got = sampler._r2_candidates(speaker, emotion)
            assert list(got) == expected and len(got) == len(expected)
            with pytest.raises(IndexError):
                got[len(expected)]


def test_ema_half_life_ramps_up_then_stays_at_ema_kimg():
    from types import SimpleNamespace

    from sserd_cli.training.config import StyleGANConfig
    from sserd_cli.training.distributed import DistContext
    from sserd_cli.training.stylegan import StyleGANCoach

    coach = SimpleNamespace(config=StyleGANConfig(batch_size=16), ctx=DistContext())
    early, late = StyleGANCoach.ema_decay(coach, 0), StyleGANCoach.ema_decay(coach, 1_000_000)
    assert early < 1e-6  # the first steps copy G: half-life 0.05 x 16 images seen
    assert late == pytest.approx(0.5 ** (16 / 10_000))  # then the 10k-image half-life of StyleGAN2
