"""Keyed spread-transform quantization watermark on log band energies (scheme ``ss1``).

The signal is cut into cells: 32 ms chips x 24 bands of 125 Hz over 500-3500 Hz (inside what a
4 kHz low-pass and a 500 Hz high-pass keep). A keyed layout groups cells: a group is 8 bands at
two chips 64 ms apart, with signs balanced within each chip and opposite between the chips, so
its projection (the signed mean of the cells' log power) is unchanged by any gain per band (a
filter, EQ) or per chip (level changes). Each projection is quantized onto a keyed, dithered
lattice (spread-transform dither modulation): sync groups onto the lattice of a 0, payload groups
onto that of their coded bit (half a step apart). Quantizing, unlike adding a pattern, leaves no
host interference: whatever speech puts into a projection is moved, not fought.

Embedding measures the cells exactly as the detector will (8 kHz, phase 0), computes the change
per cell that puts every group on its lattice point (quiet cells take more of it: cheap in
energy), applies it as gains on the clip's STFT at 8 kHz, re-measures once to correct what the
STFT smeared (closed loop) and resamples the mark to the clip's rate (``embedder``). The mark's
energy is capped ``min_snr_db`` below the audio. The layout repeats every ``BLOCK_CHIPS`` chips (3.07 s) and holds 30 sync groups and the
114 bits of the rate-1/3 coded payload, so a 3 s window carries nearly all of it.

Detection resamples to 8 kHz and, at every chip offset and sub-chip phase (8 ms steps, then
2 ms steps around the best few), scores every group by the cosine of its distance to the
lattice (payload groups by the doubled angle, which puts both bit lattices on one): unmarked audio scores zero on average with a known variance, so
the best offset's sum is a z-score. The payload's soft bits at that offset are Viterbi-decoded.
Cells under a floor 40 dB below the clip's loud level (and under the band's background noise)
read as that floor, so room tone, hiss and silence do not move the projections.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy.fft import rfft
from scipy.special import ndtr

from audio_synth_core.audio import resample
from audio_synth_core.watermark import payload as codec
from audio_synth_core.watermark.keys import WatermarkKey

SCHEME = "ss1"
# Every marked band lies under 4 kHz: analysis at 8 kHz sees the same cells as at any higher rate
# for less than half the FFT work of 16 kHz.
DETECT_RATE_HZ = 8000
CHIP_S = 0.032
BAND_LOW_HZ = 500.0
BAND_HIGH_HZ = 3500.0
N_BANDS = 24
BLOCK_CHIPS = 96  # 3.07 s
GROUPS_PER_BIT = 1  # groups per coded bit in a block
GROUP_BANDS = 8  # a group: this many bands x 2 chips
PHASES = 16  # sub-chip phases searched at detection (2 ms steps: a 1 ms slip costs ~15 % of z)
COARSE = 4  # the first pass tries every 4th phase (8 ms) ...
CANDIDATES = 4  # ... and the second 2 ms steps around its best few alignments
FLOOR_DB = -40.0  # band power is floored this far below the clip's loud level: quiet cells
# (and the noise or codec hiss that may fill them) read as a constant
NOISE_PERCENTILE = 5.0
NOISE_FLOOR = 2.0  # cells below this multiple of the band's noise read as the floor


@dataclass(frozen=True)
class Strength:
    """How strongly to mark: quantizer step, how the change is spread, and its limits."""

    step: float = 0.6  # lattice step of a group's projection (nepers of band power)
    shaping: float = 0.75  # a cell's share of its group's change ~ energy ** -shaping
    max_delta_db: float = 6.0  # no cell's power moves by more than this
    min_snr_db: float = 35.0  # the mark stays at least this far below the audio


DEFAULT_STRENGTH = Strength()


@dataclass(frozen=True)
class Detection:
    """What detection found: z-score of the sync, confidence 0..1, decoded payload (None when
    not detected, or when the clip carries too little of the mark to rule out another payload:
    ``payload_margin`` under ``payload.MIN_MARGIN``; ``lookup.resolve`` may still settle it)."""

    detected: bool
    z: float
    confidence: float
    payload: int | None
    offset_s: float | None = None
    payload_margin: float = 0.0
    soft_bits: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, eq=False)
class Pattern:
    """The keyed layout of one block: GROUPS groups of 2 quads of cells (chip, band), each quad
    signed (+, -, -, +) over two chips x two bands, so a group's projection ignores any gain per
    band (filters) and per chip (level changes); each group carries sync or one coded bit."""

    chips: np.ndarray  # (GROUPS, 8) chip of each cell
    bands: np.ndarray  # (GROUPS, 8) band of each cell
    signs: np.ndarray  # (GROUPS, 8) +-1
    dither: np.ndarray  # (GROUPS,) keyed offset of the lattice, in steps (0..1)
    bit: np.ndarray  # (GROUPS,) coded bit carried, -1 for sync


@lru_cache(maxsize=8)
def pattern(key: WatermarkKey) -> Pattern:
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(key.seed(SCHEME))))
    # A group spans two chips two apart (close: both in speech or both not; not adjacent: the
    # STFT does not smear one into the other) and GROUP_BANDS keyed bands. Its signs are
    # balanced within each chip and opposite between the chips, so a gain per chip (level
    # changes, limiting) or per band (filters, EQ) leaves its projection where it was.
    chips, bands, signs = [], [], []
    balanced = np.repeat([1.0, -1.0], GROUP_BANDS // 2)
    for start in range(0, BLOCK_CHIPS, 4):
        for c0 in (start, start + 1):
            for sel in rng.permutation(N_BANDS).reshape(-1, GROUP_BANDS):
                chips.append([c0] * GROUP_BANDS + [c0 + 2] * GROUP_BANDS)
                bands.append([*sel, *sel])
                s = rng.permutation(balanced)
                signs.append([*s, *-s])
    n_groups = len(chips)
    bit = np.full(n_groups, -1, dtype=np.int64)
    n_payload = codec.CODED_BITS * GROUPS_PER_BIT
    bit[rng.permutation(n_groups)[:n_payload]] = np.arange(n_payload) % codec.CODED_BITS
    return Pattern(np.array(chips), np.array(bands), np.array(signs), rng.random(n_groups), bit)


def band_of_bins(n_fft: int, rate: int) -> np.ndarray:
    """Band index of each rfft bin (-1 outside the marked range)."""
    freqs = np.fft.rfftfreq(n_fft, 1 / rate)
    edges = np.linspace(BAND_LOW_HZ, BAND_HIGH_HZ, N_BANDS + 1)
    band = np.searchsorted(edges, freqs, side="right") - 1
    return np.where((freqs >= BAND_LOW_HZ) & (freqs < BAND_HIGH_HZ), band, -1)


def frames_of(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    n = 1 + max(0, (len(x) - win + hop - 1) // hop)
    x = np.pad(x, (0, (n - 1) * hop + win - len(x)))
    return np.lib.stride_tricks.sliding_window_view(x, win)[::hop]


def group_weight(alive: np.ndarray) -> np.ndarray:
    """Weight of a group instance: its share of live cells, 0 below one half (a group mostly
    on the floor cannot be moved and says nothing)."""
    frac = alive.mean(axis=-1)
    return np.where(frac >= 0.5, frac, 0.0)


def log_cells(samples: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Log band power per (chip, band) at phase 0, as the detector measures it, and liveness."""
    feats, live = _log_grid(samples, rate, phases=1)
    return feats[0], live[0]


def _log_grid(
    samples: np.ndarray, rate: int, phases: int = PHASES
) -> tuple[np.ndarray, np.ndarray]:
    """Log band power at 8 kHz per (phase, chip, band), one grid per sub-chip phase, and
    which cells are loud enough to carry a mark."""
    # Single precision: powers of cells 35 dB apart are far inside float32's range and precision.
    x = resample(np.asarray(samples, dtype=np.float32), rate, DETECT_RATE_HZ)
    win = round(CHIP_S * DETECT_RATE_HZ)
    hop = win // phases
    frames = frames_of(x, win, hop)
    window = np.hanning(win + 1)[:win].astype(np.float32)
    band = band_of_bins(win, DETECT_RATE_HZ)
    used = band >= 0  # only the marked bands' bins: a third of the spectrum
    spec = rfft(frames * window, axis=1)[:, used]
    # Each band is a contiguous run of bins: sum the runs. (Not a matrix product: a threaded BLAS
    # spins its threads on such small products and doubled the embedder's CPU time in workers.)
    starts = np.flatnonzero(np.diff(np.r_[-1, band[used]]))
    e = np.add.reduceat(spec.real**2 + spec.imag**2, starts, axis=1).astype(np.float64)
    n_chips = len(frames) // phases
    grid = np.stack([e[ph::phases][:n_chips] for ph in range(phases)])
    # The loud level: from cells within 30 dB of the loudest only, so room tone, noise or
    # silence around the speech (however long) does not move it, nor the floor below it.
    active = grid > max(float(grid.max()), 1e-20) * 1e-3
    loud = float(np.percentile(grid[active], 90)) if active.any() else 1.0
    floor = loud * 10 ** (FLOOR_DB / 10)
    if NOISE_PERCENTILE:
        # Background noise per band (its level in the pauses), subtracted before the log: added
        # noise or hiss would otherwise lift every quiet cell and move the projections.
        noise = np.percentile(grid, NOISE_PERCENTILE, axis=(0, 1))
        grid = grid - noise
        floor = np.maximum(floor, NOISE_FLOOR * noise)
    # Relative to the loud level: a change of gain does not move the features.
    return np.log(np.maximum(grid, floor) / loud), grid > 2 * floor


def detect(
    samples: np.ndarray,
    rate: int,
    key: WatermarkKey,
    threshold_z: float,
    step: float = Strength().step,
) -> Detection:
    """Find the watermark of ``key`` in ``samples`` (any rate; any crop of at least ~1.6 s)."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    p = pattern(key)
    grid, live = _log_grid(x, rate)
    if grid.shape[1] < BLOCK_CHIPS // 2:
        return Detection(False, 0.0, 0.0, None)
    sync = p.bit < 0
    # Coarse to fine: every chip offset at 8 ms phases, then 2 ms steps around the best few.
    # An alignment ``at`` is chip offset * PHASES + phase; a pass scores many at once (the
    # coarse one phase by phase: its temporaries grow with the file's length).
    coarse_phases = np.arange(0, PHASES, COARSE)
    tables = _phase_sums(grid, live, p, coarse_phases)
    at = np.arange(BLOCK_CHIPS)[None, :] * PHASES + coarse_phases[:, None]
    z = np.concatenate([_score(*_group_cos(tables, p, step, row), sync) for row in at])
    best_first = sorted(zip(z.tolist(), at.ravel().tolist(), strict=True))[-CANDIDATES:]
    fine = list(
        dict.fromkeys(
            (start + d) % (BLOCK_CHIPS * PHASES)
            for _, start in best_first
            for d in range(-(COARSE - 1), COARSE)
        )
    )
    at = np.array(fine)
    cos, w = _group_cos(_phase_sums(grid, live, p, np.unique(at % PHASES)), p, step, at)
    z = _score(cos, w, sync)
    k = int(np.argmax(z))
    col, ph = divmod(int(at[k]), PHASES)
    z, cos = float(z[k]), cos[:, k] * w[:, k]
    n_tests = PHASES * BLOCK_CHIPS
    confidence = float(max(0.0, 1.0 - n_tests * ndtr(-z)))
    detected = z >= threshold_z
    on = ~sync
    # Positive soft value: the projection sits on the lattice of a 1 (half a step off).
    soft = np.bincount(p.bit[on], (-cos[:, on]).sum(axis=0), minlength=codec.CODED_BITS)
    value, margin = codec.decode_margin(soft) if detected else (None, 0.0)
    certain = value if margin >= codec.MIN_MARGIN else None
    # Column ``col`` holds the instances whose block starts at chip col - BLOCK_CHIPS.
    offset_s = ((col * PHASES + ph) % (BLOCK_CHIPS * PHASES)) * CHIP_S / PHASES
    return Detection(detected, z, confidence, certain, offset_s, margin, soft)


def _score(cos: np.ndarray, w: np.ndarray, sync: np.ndarray) -> np.ndarray:
    """z-score per column of group scores (reps, columns, G) and their weights."""
    # Sync groups sit on the lattice of a 0; payload groups on that of a 0 or a 1, half a step
    # apart: doubling their angle puts both on one lattice, so they count too.
    fit = np.where(sync, cos, 2 * cos**2 - 1)
    num = (w * fit).sum(axis=(0, 2))
    norm = (w**2).sum(axis=(0, 2))
    return np.where(norm > 0, num / np.sqrt(np.maximum(norm, 1e-30) / 2), 0.0)


def _group_cos(
    tables: tuple, p: Pattern, step: float, at: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """cos(2 pi (projection / step - dither)) and weight of every group instance at each
    alignment ``at`` (chip offset * PHASES + phase, the phase among the tables'): (reps,
    len(at), G) each; column k holds the blocks that start at a chip = at[k] // PHASES mod
    BLOCK_CHIPS."""
    reps, phases, sums, lives, inside = tables
    n_rows, n_groups = sums.shape[1], len(p.bit)
    cols, ph = np.divmod(np.asarray(at), PHASES)
    slot = np.searchsorted(phases, ph)  # where each alignment's phase sits in the tables
    starts = np.arange(reps)[:, None] * BLOCK_CHIPS + cols[None, :]  # (reps, K), padded
    bases = starts[:, :, None] + p.chips[None, None, :, 0]  # (reps, K, G): first chip
    # Flat indices into the (phase, row, group) tables: one gather per table and chip.
    flat = (slot[None, :, None] * n_rows + bases) * n_groups + np.arange(n_groups)
    later = flat + 2 * n_groups  # the group's second chip, two rows on
    sums, lives = sums.ravel(), lives.ravel()
    proj = (sums[flat] - sums[later]) / p.chips.shape[1]
    frac = (lives[flat] + lives[later]) / p.chips.shape[1]
    w = np.where(frac >= 0.5, frac, 0.0) * (inside[bases] * inside[bases + 2])
    dither = p.dither.astype(np.float32)
    cos = np.where(w > 0, np.cos(np.float32(2 * np.pi) * (proj / np.float32(step) - dither)), 0)
    return cos, w


def _phase_sums(grid: np.ndarray, live: np.ndarray, p: Pattern, phases: np.ndarray) -> tuple:
    """For each of ``phases``: padded per-chip signed band sums and live counts of every group
    ((len(phases), rows, G) each), and which rows are inside the clip (rows,)."""
    n_chips = grid.shape[1]
    reps = -(-n_chips // BLOCK_CHIPS) + 1
    # A group's projection is its first chip's signed band sum minus its second's (same bands,
    # opposite signs): one matrix product gives every chip's sum for every group.
    signed, count = _band_weights(p)
    rows = BLOCK_CHIPS + reps * BLOCK_CHIPS + 2  # a block of padding before, the tail after
    inner = slice(BLOCK_CHIPS, BLOCK_CHIPS + n_chips)
    # Single precision: projections are a few nepers, compared with a lattice step of 0.6.
    sums = np.zeros((len(phases), rows, len(p.bit)), dtype=np.float32)
    lives = np.zeros_like(sums)
    sums[:, inner] = grid[phases].astype(np.float32) @ signed
    lives[:, inner] = live[phases].astype(np.float32) @ count
    inside = np.zeros(rows)
    inside[inner] = 1.0
    return reps, np.asarray(phases), sums, lives, inside


@lru_cache(maxsize=8)
def _band_weights(p: Pattern) -> tuple[np.ndarray, np.ndarray]:
    """Per group: the signs of its first chip's bands and which bands it uses (N_BANDS, G)."""
    signed = np.zeros((len(p.bit), N_BANDS))
    half = p.chips.shape[1] // 2
    rows = np.arange(len(p.bit))[:, None]
    signed[rows, p.bands[:, :half]] = p.signs[:, :half]
    # Contiguous (N_BANDS, G): a threaded BLAS is slow on a transposed view of a small matrix.
    return (
        np.ascontiguousarray(signed.T, dtype=np.float32),
        np.ascontiguousarray((signed != 0).T, dtype=np.float32),
    )
