"""Procedural speech: deterministic, speech-like, and the mouth follows it."""

import numpy as np

from sserd_cli.data.synth.audio import SpeechConfig, mouth_track, speech_track


def test_speech_is_deterministic_and_has_the_requested_length():
    a = speech_track(2.0, np.random.default_rng(4))
    b = speech_track(2.0, np.random.default_rng(4))
    assert np.array_equal(a.audio, b.audio)
    assert len(a.audio) == 2 * SpeechConfig().sample_rate and a.audio.dtype == np.float32
    assert np.abs(a.audio).max() <= 1.0


def test_speech_has_syllable_rhythm_pauses_and_voicing():
    track = speech_track(6.0, np.random.default_rng(1))
    sr = track.sample_rate
    rate = len(track.syllables) / 6.0
    assert 2.0 < rate < 6.0  # syllables per second of conversational speech
    frame = sr // 100  # 10 ms energy frames
    energy = (track.audio[: len(track.audio) // frame * frame].reshape(-1, frame) ** 2).mean(axis=1)
    silent = energy < 1e-4 * energy.max()
    assert 0.05 < silent.mean() < 0.6  # pauses exist, but it is mostly talking
    # voiced vowels carry low-frequency harmonics, fricatives high-frequency noise
    vowel = next(s for s in track.syllables if s.vowel == "a" and s.end - s.vowel_start > 0.08)
    seg = track.audio[int(vowel.vowel_start * sr): int(vowel.end * sr)]
    spec = np.abs(np.fft.rfft(seg))
    freqs = np.fft.rfftfreq(len(seg), 1 / sr)
    assert spec[freqs < 1500].sum() > spec[freqs > 3000].sum()


def test_mouth_closes_for_bilabials_and_opens_for_vowels():
    track = speech_track(8.0, np.random.default_rng(2))
    fps = 100.0  # fine sampling to look inside syllables
    mouth = mouth_track(track, fps, int(8.0 * fps))
    assert mouth.shape == (800, 2) and mouth.min() >= 0 and mouth.max() <= 1
    t = (np.arange(800) + 0.5) / fps
    for syl in track.syllables:
        if syl.consonant in ("p", "b", "m") and syl.vowel_start - syl.start > 0.06:
            mid = (syl.start + syl.vowel_start) / 2
            assert mouth[np.argmin(np.abs(t - mid)), 0] < 0.35
        if syl.vowel == "a" and syl.end - syl.vowel_start > 0.12:
            mid = (syl.vowel_start + syl.end) / 2
            assert mouth[np.argmin(np.abs(t - mid)), 0] > 0.45
        if syl.vowel == "u" and syl.end - syl.vowel_start > 0.12:
            mid = (syl.vowel_start + syl.end) / 2
            assert mouth[np.argmin(np.abs(t - mid)), 1] > 0.6
    # silence before the first syllable: mouth at rest
    assert mouth[0, 0] < 0.05
