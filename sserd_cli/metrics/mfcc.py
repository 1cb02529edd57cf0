"""MFCC features as SyncNet's original protocol computes them.

Chung & Zisserman's syncnet_python feeds ``python_speech_features.mfcc`` of
16 kHz mono int16-scaled audio: 25 ms frames every 10 ms (100 Hz), rectangular
window, pre-emphasis 0.97, 512-point FFT, 26 mel filters, 13 cepstra, lifter 22,
the first cepstrum replaced by the log frame energy. This module computes the
same numbers with NumPy so no extra package is needed.
"""

from __future__ import annotations

import math

import numpy as np

SAMPLE_RATE = 16000
MFCC_RATE = 100  # frames per second (10 ms step)


def _round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))


def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)


def mel_filterbank(n_filters: int = 26, n_fft: int = 512, sample_rate: int = SAMPLE_RATE,
                   low_hz: float = 0.0, high_hz: float | None = None) -> np.ndarray:
    """Triangular mel filters [n_filters, n_fft//2+1] on FFT bins (the python_speech_features layout)."""
    high_hz = high_hz or sample_rate / 2
    mel_points = np.linspace(_hz_to_mel(low_hz), _hz_to_mel(high_hz), n_filters + 2)
    bins = np.floor((n_fft + 1) * _mel_to_hz(mel_points) / sample_rate).astype(int)
    bank = np.zeros((n_filters, n_fft // 2 + 1))
    for j in range(n_filters):
        left, centre, right = bins[j], bins[j + 1], bins[j + 2]
        for i in range(left, centre):
            bank[j, i] = (i - left) / (centre - left)
        for i in range(centre, right):
            bank[j, i] = (right - i) / (right - centre)
    return bank


def _dct_ortho(x: np.ndarray, n_out: int) -> np.ndarray:
    """DCT-II with orthonormal scaling along the last axis, first ``n_out`` coefficients."""
    n = x.shape[-1]
    k = np.arange(n_out)[:, None]
    basis = np.cos(np.pi * k * (2 * np.arange(n)[None, :] + 1) / (2 * n))
    out = x @ basis.T * np.sqrt(2.0 / n)
    out[..., 0] /= np.sqrt(2.0)
    return out


def mfcc(signal: np.ndarray, sample_rate: int = SAMPLE_RATE, win_len: float = 0.025, win_step: float = 0.01,
         n_cep: int = 13, n_filters: int = 26, n_fft: int = 512, preemph: float = 0.97,
         lifter: int = 22) -> np.ndarray:
    """MFCC [n_frames, n_cep] of a mono signal (int16 scale, as SyncNet was trained)."""
    signal = np.asarray(signal, dtype=np.float64).reshape(-1)
    emphasised = np.append(signal[:1], signal[1:] - preemph * signal[:-1])
    frame_len, frame_step = _round_half_up(win_len * sample_rate), _round_half_up(win_step * sample_rate)
    if len(emphasised) <= frame_len:
        n_frames = 1
    else:
        n_frames = 1 + int(math.ceil((len(emphasised) - frame_len) / frame_step))
    padded = np.zeros((n_frames - 1) * frame_step + frame_len)
    padded[: len(emphasised)] = emphasised
    index = np.arange(frame_len)[None, :] + frame_step * np.arange(n_frames)[:, None]
    frames = padded[index]  # rectangular window, as the original default
    power = np.abs(np.fft.rfft(frames, n_fft)) ** 2 / n_fft
    energy = power.sum(axis=1)
    energy = np.where(energy == 0, np.finfo(float).eps, energy)
    feats = power @ mel_filterbank(n_filters, n_fft, sample_rate).T
    feats = np.where(feats == 0, np.finfo(float).eps, feats)
    cep = _dct_ortho(np.log(feats), n_cep)
    if lifter > 0:
        cep *= 1 + (lifter / 2.0) * np.sin(np.pi * np.arange(n_cep) / lifter)
    cep[:, 0] = np.log(energy)
    return cep
