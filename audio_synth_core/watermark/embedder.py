"""The embedder of scheme ``ss1`` (see ``scheme``): a closed loop at the detector's rate.

Each group's projection of the detector's own features is moved onto its lattice point: the
change per cell is applied as gains on the clip's STFT, re-measured through the detector's front
end and corrected once (the STFT smears a change into neighbouring cells). The loop runs at 8 kHz
on what the detector will see; the finished mark is resampled to the clip's rate and added.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft

from audio_synth_core.audio import resample
from audio_synth_core.watermark import payload as codec
from audio_synth_core.watermark.keys import WatermarkKey
from audio_synth_core.watermark.scheme import (
    BLOCK_CHIPS,
    CHIP_S,
    DEFAULT_STRENGTH,
    DETECT_RATE_HZ,
    N_BANDS,
    Pattern,
    Strength,
    band_of_bins,
    frames_of,
    group_weight,
    log_cells,
    pattern,
)

ITERATIONS = 2  # closed-loop passes: the second corrects what the STFT smeared in the first


def embed(
    samples: np.ndarray,
    rate: int,
    key: WatermarkKey,
    payload: int,
    strength: Strength = DEFAULT_STRENGTH,
) -> np.ndarray:
    """``samples`` (mono float) with the watermark carrying ``payload`` added, at ``rate``.

    Each group's projection of the detector's own features is moved onto its lattice point
    (closed loop: the change is applied, re-measured through the detector's front end and
    corrected), so what speech puts into a projection never hides the mark."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"embed takes mono audio, got shape {x.shape}")
    if len(x) < rate * CHIP_S * 4 or not np.any(x):
        return np.asarray(samples, dtype=np.float32)
    # The loop runs at the detector's rate, on what the detector will see: the mark is made
    # there (every marked band is under 4 kHz) and resampled to the clip's rate once, at the end.
    x8 = resample(x, rate, DETECT_RATE_HZ).astype(np.float64)
    synth = _Synth(x8, DETECT_RATE_HZ)
    p = pattern(key)
    coded = codec.encode(payload)
    change = np.zeros((synth.n_chips, N_BANDS))
    mark8 = np.zeros_like(x8)
    for _ in range(ITERATIONS):
        feats, live = log_cells(x8 + mark8, DETECT_RATE_HZ)
        n = min(len(feats), synth.n_chips)
        step = _group_changes(feats[:n], live[:n], p, coded, strength)
        change[:n] += step
        lim = strength.max_delta_db / 10 * np.log(10)
        np.clip(change, -lim, lim, out=change)
        mark8 = synth.mark(change)
    mark = resample(mark8, DETECT_RATE_HZ, rate).astype(np.float64)
    mark = np.pad(mark, (0, max(0, len(x) - len(mark))))[: len(x)]
    budget = float(np.sum(x**2)) * 10 ** (-strength.min_snr_db / 10)
    energy = float(np.sum(mark**2))
    if energy > budget:
        mark *= np.sqrt(budget / energy)
    return (x + mark).astype(np.float32)


class _Synth:
    """The clip's STFT, to turn a change of band power per cell into audio."""

    def __init__(self, x: np.ndarray, rate: int) -> None:
        # A window near one chip long whose length FFTs fast (256 at 8 kHz).
        self.win = win = 4 * next_fast_len(round(CHIP_S * rate / 4))
        self.hop = hop = win // 4
        self.pad = win
        self.length = len(x)
        # Single precision: the mark is 35 dB under the audio, far above float32's resolution.
        frames = frames_of(np.pad(x, (win, win)).astype(np.float32), win, hop)
        self.window = np.hanning(win + 1)[:win].astype(np.float32)
        band = band_of_bins(win, rate)
        inside = np.flatnonzero(band >= 0)  # the marked bins: one contiguous run
        self.bins = slice(int(inside[0]), int(inside[-1]) + 1)
        self.cols = band[self.bins]
        # Only the marked bins are kept: the mark is the clip's own in-band content, re-weighted.
        self.spec = rfft(frames * self.window, axis=1)[:, self.bins]
        centre_s = (np.arange(len(frames)) * hop - win + win / 2) / rate
        self.chip = np.floor(centre_s / CHIP_S).astype(np.int64)
        self.valid = (centre_s >= 0) & (centre_s < len(x) / rate)
        self.n_chips = int(self.chip[self.valid].max()) + 1

    def mark(self, change: np.ndarray) -> np.ndarray:
        """Audio that moves each cell's band power by ``change`` nepers (added to the clip)."""
        rows = np.clip(self.chip, 0, self.n_chips - 1)
        per_cell = np.expm1(change / 2).astype(np.float32)  # power -> magnitude
        gain = per_cell[rows][:, self.cols] * self.valid[:, None]
        moved = np.flatnonzero(gain.any(axis=1))  # frames with no change (pauses) add nothing
        # Bins above the marked ones are left out: irfft pads them with zeros.
        spec = np.zeros((len(moved), self.bins.stop), dtype=self.spec.dtype)
        spec[:, self.bins] = self.spec[moved] * gain[moved]
        frames = np.zeros((len(gain), self.win), dtype=np.float32)
        frames[moved] = irfft(spec, n=self.win, axis=1) * self.window
        out = _overlap_add(frames, self.hop, self.length + 2 * self.pad)
        return out[self.pad : self.pad + self.length]


def _group_changes(
    feats: np.ndarray, live: np.ndarray, p: Pattern, coded: np.ndarray, strength: Strength
) -> np.ndarray:
    """Change of log band power per cell that puts each group's projection on its lattice."""
    n_chips = len(feats)
    reps = -(-n_chips // BLOCK_CHIPS)
    chips = p.chips[None, :, :] + BLOCK_CHIPS * np.arange(reps)[:, None, None]  # (reps, G, L)
    bands = np.broadcast_to(p.bands, chips.shape)
    inside = (chips < n_chips).all(axis=2)
    chips = np.minimum(chips, n_chips - 1)
    f = feats[chips, bands]
    alive = live[chips, bands]
    ok = inside & (group_weight(alive) > 0)
    proj = (f * p.signs).mean(axis=2)  # (reps, G)
    offset = (p.dither + np.where(p.bit >= 0, coded[np.maximum(p.bit, 0)], 0) * 0.5) * strength.step
    c = proj - offset
    c = np.round(c / strength.step) * strength.step - c  # to the nearest lattice point
    c = np.where(ok, c, 0.0)
    # Only cells above the floor can move; quiet ones take more of the change (cheap in
    # energy), loud ones less.
    w = np.where(alive, np.exp(-strength.shaping * f), 0.0)
    share = w / np.maximum(w.sum(axis=2, keepdims=True), 1e-30) * f.shape[2]
    cell_change = c[:, :, None] * share * p.signs
    out = np.zeros_like(feats)
    np.add.at(out, (chips[ok], bands[ok]), cell_change[ok])
    return out


def _overlap_add(frames: np.ndarray, hop: int, length: int) -> np.ndarray:
    win = frames.shape[1]
    k = win // hop  # hop divides the window: every k-th frame abuts the previous one
    out = np.zeros(max(length, (len(frames) - 1) * hop + win))
    for i in range(k):
        run = frames[i::k].ravel()  # frames i, i + k, ... laid end to end from i * hop
        out[i * hop : i * hop + run.size] += run
    # Hann analysis x Hann synthesis at 75 % overlap sums to 1.5.
    return out[:length] / 1.5
