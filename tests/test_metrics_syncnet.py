import pickle

import numpy as np
import pytest
import torch

from sserd_cli.errors import SserdError
from sserd_cli.metrics import syncnet as sn
from sserd_cli.metrics.mfcc import mfcc


def test_towers_give_1024_features_and_weights_round_trip(tmp_path):
    net = sn.SyncNet().eval()
    with torch.no_grad():
        assert net.forward_aud(torch.zeros(2, 1, 13, 20)).shape == (2, 1024)
        assert net.forward_lip(torch.zeros(2, 3, 5, 224, 224)).shape == (2, 1024)
    # the public file comes from old PyTorch: legacy format, no num_batches_tracked counters
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "syncnet_v2.model"
    torch.save(state, path, _use_new_zipfile_serialization=False)
    loaded = sn.load_syncnet(path)
    for key, value in state.items():
        assert torch.equal(loaded.state_dict()[key], value)
    assert "netcnnlip.0.weight" in state and "netfcaud.3.bias" in state  # syncnet_python's names


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_loader_refuses_code_and_names_the_file(tmp_path, capsys):
    evil = tmp_path / "syncnet_v2.model"
    evil.write_bytes(pickle.dumps({"x": _Evil()}))
    with pytest.raises(SserdError, match="not a plain SyncNet state dict"):
        sn.load_syncnet(evil)
    assert "must never run" not in capsys.readouterr().out
    with pytest.raises(SserdError, match="syncnet_v2.model"):
        sn.load_syncnet(tmp_path / "missing.model")
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(SserdError, match="not a SyncNet state dict"):
        sn.load_syncnet(tmp_path / "other.pt")


def test_scores_find_planted_offset_on_features():
    rng = np.random.default_rng(0)
    feats = torch.from_numpy(rng.normal(size=(80, 16))).float()
    video = feats[20:60]
    audio = feats[20 - 7:60 - 7]  # audio window i holds what video shows at i - 7
    result = sn.sync_scores(video, audio, vshift=15)
    assert result.offset == -7
    # windows whose matching audio lies past the end meet zero padding, as in syncnet_python
    expected = float(video[33:].norm(dim=1).sum() / 40)
    assert result.lse_d == pytest.approx(expected, abs=1e-3) and result.lse_c > 1.0


@pytest.mark.parametrize("planted", [4, -9])
def test_full_protocol_with_random_weights_finds_planted_offset(monkeypatch, planted):
    """Frames and MFCC windows carry their time index; the towers map it to a shared embedding table."""
    net = sn.SyncNet().eval()
    table = torch.randn(200, 1024)
    n_frames = 40
    frames = np.zeros((n_frames, 224, 224, 3), np.uint8)
    for t in range(n_frames):
        frames[t] = t
    audio = np.random.default_rng(1).normal(scale=1000, size=n_frames * sn.SAMPLES_PER_FRAME)
    windows_seen = []
    original_windows = sn.mfcc_windows

    def lip(x):  # x: [B, 3, 5, 224, 224]; its first frame's value is the window start
        return table[x[:, 0, 0, 0, 0].long() + 50]

    def aud(x):  # x: [B, 1, 13, 20] filled with the window index by the patched mfcc_windows
        return table[x[:, 0, 0, 0].long() + 50 - planted]

    def fake_windows(signal, n_windows):
        windows_seen.append(n_windows)
        real = original_windows(signal, n_windows)
        assert real.shape == (n_windows, 1, 13, 20)
        return torch.arange(n_windows, dtype=torch.float32)[:, None, None, None].expand(n_windows, 1, 13, 20).clone()

    monkeypatch.setattr(sn, "mfcc_windows", fake_windows)
    monkeypatch.setattr(net, "forward_lip", lip)
    monkeypatch.setattr(net, "forward_aud", aud)
    result = sn.evaluate_sync(net, frames, audio, vshift=15, batch_size=7)
    assert windows_seen == [n_frames - 5] and result.n_windows == n_frames - 5
    assert result.offset == -planted
    n = n_frames - 5
    outside = [i for i in range(n) if not 0 <= i + planted < n]
    expected = float(sum(table[i + 50].norm() for i in outside) / n)
    assert result.lse_d == pytest.approx(expected, abs=1e-3) and result.lse_c > 1.0


def test_real_towers_run_end_to_end():
    net = sn.SyncNet().eval()
    frames = np.random.default_rng(2).integers(0, 255, size=(12, 224, 224, 3), dtype=np.uint8)
    audio = np.random.default_rng(3).normal(scale=3000, size=12 * 640)
    result = sn.evaluate_sync(net, frames, audio)
    assert result.n_windows == 7 and np.isfinite(result.lse_d) and result.lse_c >= 0 and -15 <= result.offset <= 15
    with pytest.raises(SserdError, match="too short"):
        sn.evaluate_sync(net, frames[:5], audio)


def test_mfcc_layout_matches_the_original_protocol():
    t = np.arange(16000) / 16000
    signal = 8000 * np.sin(2 * np.pi * 300 * t)
    cep = mfcc(signal)
    assert cep.shape == (99, 13)  # 1 + ceil((16000 - 400) / 160) frames at 100 Hz
    frame = signal[160:560]
    emphasised = np.append(signal[:1], signal[1:] - 0.97 * signal[:-1])[160:560]
    energy = (np.abs(np.fft.rfft(emphasised, 512)) ** 2 / 512).sum()
    assert cep[1, 0] == pytest.approx(np.log(energy))  # first coefficient = log frame energy
    assert frame.shape == (400,)


def test_views_and_25fps_resampling():
    from sserd_cli.faces.align import canonical_landmarks

    crops = np.full((3, 256, 256, 3), 200, np.uint8)
    views = sn.syncnet_views(crops, canonical_landmarks(320) - 32)
    assert views.shape == (3, 224, 224, 3) and views.dtype == np.uint8
    assert (views[:, -1] == sn.PAD_VALUE).all()  # below the crop: syncnet_python's grey padding
    assert (views[:, 100, 112] == 200).all()
    # 30 fps -> 25 fps: 30 frames (1 s) give 25 ticks, frame k*30/25 each
    assert sn.resample_to_25fps(list(range(30)), 30.0, 30) == [int(k * 30 / 25) for k in range(25)]
    # a missing frame takes its nearest neighbour
    assert sn.resample_to_25fps([0, 1, 3], 25.0, 4) == [0, 1, 1, 2] or sn.resample_to_25fps([0, 1, 3], 25.0, 4) == [0, 1, 2, 2]


def test_mfcc_equals_python_speech_features_when_installed():
    reference = pytest.importorskip("python_speech_features")
    signal = (np.random.default_rng(4).normal(size=16000) * 3000).astype(np.int16)
    np.testing.assert_allclose(mfcc(signal), reference.mfcc(signal, 16000), atol=1e-8)
