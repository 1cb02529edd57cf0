"""Procedural speech-like audio and the mouth movements that go with it.

A talk is a schedule of syllables (consonant + vowel) grouped into words and phrases with pauses.
Each syllable is sound and mouth shape at once, so lips and audio are in sync by construction:

* vowels (a, e, i, o, u) are voiced: a glottal harmonic series at a drifting f0 (declination over
  the phrase, jitter) shaped by the vowel's first three formants; they set the mouth opening
  (~F1) and lip rounding (o, u);
* consonants are bilabial (p, b, m: the lips close), fricatives (s, f: noise, mouth nearly shut) or
  alveolar stops (t, d: a short burst); unvoiced ones are filtered noise, voiced ones low hum.

The mouth track is the per-sample target (vowel shape, consonant closure, rest between phrases)
smoothed by a coarticulation filter, then sampled at the video frame times.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# vowel: (F1, F2, F3) Hz (adult averages, Peterson & Barney 1952), mouth opening, lip rounding
VOWELS = {
    "a": ((730, 1090, 2440), 0.95, 0.05),
    "e": ((530, 1840, 2480), 0.55, 0.0),
    "i": ((270, 2290, 3010), 0.25, 0.0),
    "o": ((570, 840, 2410), 0.60, 0.70),
    "u": ((300, 870, 2240), 0.25, 1.0),
}
# consonant: (kind, voiced, mouth opening during it)
CONSONANTS = {
    "p": ("stop", False, 0.0), "b": ("stop", True, 0.0), "m": ("nasal", True, 0.0),
    "t": ("stop", False, 0.15), "d": ("stop", True, 0.15), "s": ("fricative", False, 0.12),
    "f": ("fricative", False, 0.08), "l": ("liquid", True, 0.3), "": ("none", True, None),
}


@dataclass(frozen=True)
class SpeechConfig:
    """How the procedural talker speaks."""

    sample_rate: int = 16000
    syllables_per_second: float = 4.5
    f0_low: float = 95.0  # a speaker's f0 is drawn in [f0_low, f0_high]
    f0_high: float = 230.0
    phrase_syllables: tuple[int, int] = (4, 10)
    pause_s: tuple[float, float] = (0.2, 0.55)
    smoothing_s: float = 0.025  # coarticulation time constant of the mouth


@dataclass(frozen=True)
class Syllable:
    start: float  # seconds
    vowel_start: float
    end: float
    consonant: str
    vowel: str
    f0: float
    loudness: float


@dataclass
class SpeechTrack:
    """Audio samples (float32 mono in [-1, 1]) plus the syllables that made them."""

    audio: np.ndarray
    sample_rate: int
    syllables: list[Syllable] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


def speaker_f0(rng: np.random.Generator, cfg: SpeechConfig = SpeechConfig()) -> float:
    return float(rng.uniform(cfg.f0_low, cfg.f0_high))


def schedule(duration: float, rng: np.random.Generator, f0: float, cfg: SpeechConfig = SpeechConfig()) -> list[Syllable]:
    """Syllables filling ``duration`` seconds: phrases of words with pauses, starting after a short rest."""
    syllables: list[Syllable] = []
    t = float(rng.uniform(0.1, 0.3))
    cons_names = [c for c in CONSONANTS if c]
    while t < duration - 0.3:
        n = int(rng.integers(cfg.phrase_syllables[0], cfg.phrase_syllables[1] + 1))
        phrase_len = n / cfg.syllables_per_second
        phrase_start = t
        for i in range(n):
            length = float(rng.uniform(0.6, 1.4)) / cfg.syllables_per_second
            if t + length > duration - 0.15:
                break
            consonant = "" if rng.random() < 0.2 else str(rng.choice(cons_names))
            vowel = str(rng.choice(list(VOWELS)))
            cons_len = 0.0 if not consonant else float(rng.uniform(0.25, 0.4)) * length
            progress = (t - phrase_start) / max(phrase_len, 1e-3)
            pitch = f0 * (1.08 - 0.16 * progress) * float(np.exp(rng.normal(0, 0.05)))  # declination + accent
            loud = float(rng.uniform(0.6, 1.0)) * (1.0 if i % 3 else 1.15)
            syllables.append(Syllable(t, t + cons_len, t + length, consonant, vowel, pitch, loud))
            t += length
            if rng.random() < 0.3:  # gap between words
                t += float(rng.uniform(0.02, 0.07))
        t += float(rng.uniform(*cfg.pause_s))
    return syllables


def _envelope(n: int, sr: int, attack: float = 0.012, release: float = 0.02) -> np.ndarray:
    env = np.ones(n, np.float64)
    a, r = min(int(attack * sr), n // 2), min(int(release * sr), n // 2)
    if a:
        env[:a] = np.linspace(0, 1, a)
    if r:
        env[n - r:] = np.minimum(env[n - r:], np.linspace(1, 0, r))
    return env


def _voiced(n: int, sr: int, f0: float, formants, rng: np.random.Generator, nasal: bool = False) -> np.ndarray:
    t = np.arange(n) / sr
    f0_t = f0 * (1 + 0.02 * np.sin(2 * np.pi * rng.uniform(3, 6) * t + rng.uniform(0, 6.3))
                 + 0.004 * rng.standard_normal(n).cumsum() / np.sqrt(np.arange(1, n + 1)))
    phase = 2 * np.pi * np.cumsum(f0_t) / sr
    out = np.zeros(n)
    bandwidths = (80.0, 100.0, 140.0) if not nasal else (60.0, 300.0, 400.0)
    peaks = formants if not nasal else (250.0, 1200.0, 2500.0)
    gains = (1.0, 0.6, 0.25) if not nasal else (1.0, 0.1, 0.05)
    k_max = int(min(4000.0, sr / 2 - 200) // f0)
    for k in range(1, max(k_max, 1) + 1):
        fk = k * f0
        amp = sum(g / (1 + ((fk - fp) / bw) ** 2) for fp, bw, g in zip(peaks, bandwidths, gains))
        amp = amp / k**0.3 + 0.01 / k
        out += amp * np.sin(k * phase)
    return out


def _noise(n: int, sr: int, low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / sr)
    spec *= (freqs >= low) & (freqs <= high)
    return np.fft.irfft(spec, n)


def synthesize(syllables: list[Syllable], duration: float, rng: np.random.Generator,
               cfg: SpeechConfig = SpeechConfig()) -> SpeechTrack:
    """Render the audio of a syllable schedule (deterministic given ``rng``'s state)."""
    sr = cfg.sample_rate
    audio = np.zeros(int(round(duration * sr)), np.float64)
    for syl in syllables:
        i0, iv, i1 = (int(round(x * sr)) for x in (syl.start, syl.vowel_start, syl.end))
        i1 = min(i1, len(audio))
        if iv > i0 and syl.consonant:
            kind, voiced, _ = CONSONANTS[syl.consonant]
            n = iv - i0
            if kind == "fricative":
                low, high = (3500, 7800) if syl.consonant == "s" else (1500, 7000)
                seg = 0.25 * _noise(n, sr, low, high, rng) / 0.5
            elif kind == "stop":
                seg = np.zeros(n)
                burst = min(int(0.02 * sr), n)
                seg[n - burst:] = 0.6 * _noise(burst, sr, 1000, 6000, rng) / 0.6
                if voiced:
                    seg += 0.15 * _voiced(n, sr, syl.f0, (250, 1000, 2500), rng, nasal=True)
            else:  # nasal or liquid: voiced, quieter
                seg = 0.35 * _voiced(n, sr, syl.f0, (350, 1200, 2500), rng, nasal=(kind == "nasal"))
            audio[i0:iv] += seg * _envelope(n, sr, 0.005, 0.005) * syl.loudness
        if i1 > iv:
            n = i1 - iv
            formants, _, _ = VOWELS[syl.vowel]
            audio[iv:i1] += _voiced(n, sr, syl.f0, formants, rng) * _envelope(n, sr) * syl.loudness
    peak = np.abs(audio).max()
    if peak > 0:
        audio = audio / peak * 0.7
    return SpeechTrack(audio.astype(np.float32), sr, list(syllables))


def speech_track(duration: float, rng: np.random.Generator, cfg: SpeechConfig = SpeechConfig(),
                 f0: float | None = None) -> SpeechTrack:
    """A fresh talk of ``duration`` seconds."""
    f0 = speaker_f0(rng, cfg) if f0 is None else f0
    return synthesize(schedule(duration, rng, f0, cfg), duration, rng, cfg)


def mouth_track(track: SpeechTrack, fps: float, n_frames: int, cfg: SpeechConfig = SpeechConfig()) -> np.ndarray:
    """Per-frame (mouth_open, lip_round) [n_frames, 2] float32 from the syllables of ``track``."""
    rate = 1000  # the targets are built on a 1 ms grid
    n = int(np.ceil(max(track.duration, n_frames / fps) * rate)) + 1
    opening = np.zeros(n)
    rounding = np.zeros(n)
    for syl in track.syllables:
        i0, iv, i1 = (int(round(x * rate)) for x in (syl.start, syl.vowel_start, syl.end))
        _, vo, vr = VOWELS[syl.vowel]
        if syl.consonant:
            _, _, co = CONSONANTS[syl.consonant]
            opening[i0:iv] = co
            rounding[i0:iv] = 0.5 * vr  # lips anticipate the vowel's rounding
        opening[iv:i1] = vo * (0.75 + 0.25 * syl.loudness)
        rounding[iv:i1] = vr
    # coarticulation: a critically damped (two-pole) smoother run forwards and backwards
    alpha = 1 - np.exp(-1.0 / (cfg.smoothing_s * rate))

    def smooth(x):
        for _ in range(2):  # forwards, then backwards: no lag
            y = np.empty_like(x)
            acc = x[0]
            for i, v in enumerate(x):
                acc += alpha * (v - acc)
                y[i] = acc
            x = y[::-1]
        return x

    opening, rounding = smooth(opening), smooth(rounding)
    times = (np.arange(n_frames) + 0.5) / fps  # the middle of each frame's display interval
    idx = np.clip(np.round(times * rate).astype(int), 0, n - 1)
    return np.clip(np.stack([opening[idx], rounding[idx]], 1), 0, 1).astype(np.float32)
