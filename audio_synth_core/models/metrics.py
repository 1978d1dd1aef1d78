"""Objective distances between a reference clip and a resynthesized one (same timing).

Used to compare vocoders by copy synthesis (analyse real audio into log-mel, vocode it back) and as
the vocoder's auxiliary training loss (``multi_resolution_stft_loss``). Lower is better for every
distance; STOI (0-1) is higher-is-better. Frame-level distances use only the reference's active
frames (within ``ACTIVE_DB`` of its loudest frame): synthetic speech has stretches of digital
silence that would otherwise dominate the averages.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from audio_synth_core.models.features import MelConfig, log_mel

ACTIVE_DB = 40.0
LSD_FLOOR_DB = 80.0
STFT_RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))  # (n_fft, hop)
_EPS = 1e-7


def _stft_magnitude(audio: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """``[B, T]`` -> ``[B, frames, bins]`` magnitude (Hann window, centred)."""
    window = torch.hann_window(n_fft, device=audio.device, dtype=audio.dtype)
    spec = torch.stft(audio, n_fft, hop, window=window, center=True, return_complex=True)
    return spec.abs().transpose(1, 2).clamp(min=_EPS)


def multi_resolution_stft_loss(
    reference: torch.Tensor, test: torch.Tensor, resolutions=STFT_RESOLUTIONS
) -> torch.Tensor:
    """Spectral convergence + log-magnitude L1, averaged over resolutions (Parallel WaveGAN)."""
    total = reference.new_zeros(())
    for n_fft, hop in resolutions:
        r = _stft_magnitude(reference, n_fft, hop)
        t = _stft_magnitude(test, n_fft, hop)
        sc = torch.linalg.norm(r - t) / torch.linalg.norm(r).clamp(min=_EPS)
        mag = F.l1_loss(torch.log(t), torch.log(r))
        total = total + sc + mag
    return total / len(resolutions)


def _pair(reference: np.ndarray, test: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    n = min(len(reference), len(test))
    return (
        torch.as_tensor(np.asarray(reference[:n], dtype=np.float32)),
        torch.as_tensor(np.asarray(test[:n], dtype=np.float32)),
    )


def _active(log_energy: torch.Tensor) -> torch.Tensor:
    """Frames within ACTIVE_DB of the loudest frame (natural-log energies in)."""
    db = log_energy * (20.0 / math.log(10.0))
    return db > db.max() - ACTIVE_DB


def mel_cepstral_distortion(
    reference: np.ndarray, test: np.ndarray, config: MelConfig | None = None, n_coeffs: int = 24
) -> float:
    """MCD in dB from cepstra of the 80-bin natural-log mel (c1..c24, c0 excluded).

    ``c_n = (1/N) sum_k log|X_k| cos(pi n (k + 1/2) / N)``, the scaling the MCD formula assumes, on
    the mel axis instead of SPTK's all-pass warping: good for comparing systems measured the same
    way, not for comparison with published MCD figures.
    """
    r, t = _pair(reference, test)
    mr, mt = log_mel(r, config).T, log_mel(t, config).T  # [frames, n_mels]
    n = mr.shape[1]
    k = torch.arange(n, dtype=torch.float32)
    basis = torch.cos(math.pi / n * (k.unsqueeze(1) + 0.5) * k.unsqueeze(0)) / n
    cr, ct = mr @ basis, mt @ basis
    active = _active(torch.logsumexp(mr, dim=1) - math.log(n))
    diff = (cr - ct)[active, 1 : n_coeffs + 1]
    mcd = (10.0 / math.log(10.0)) * torch.sqrt(2.0 * (diff**2).sum(1))
    return float(mcd.mean())


def log_spectral_distance(
    reference: np.ndarray, test: np.ndarray, n_fft: int = 1024, hop: int = 256
) -> float:
    """LSD in dB: per-frame RMS over bins of the log-power difference, averaged over frames.

    Powers are floored at ``LSD_FLOOR_DB`` below the reference's peak bin, so empty bins (digital
    silence, nothing above the mel's f_max) count as a bounded error instead of hundreds of dB.
    """
    r, t = _pair(reference, test)
    pr = _stft_magnitude(r.unsqueeze(0), n_fft, hop)[0].pow(2)
    pt = _stft_magnitude(t.unsqueeze(0), n_fft, hop)[0].pow(2)
    floor = pr.max() * 10 ** (-LSD_FLOOR_DB / 10)
    pr, pt = pr.clamp(min=floor), pt.clamp(min=floor)
    active = _active(0.5 * torch.log(pr.mean(1)))
    diff = 10.0 * torch.log10(pr[active]) - 10.0 * torch.log10(pt[active])
    return float(torch.sqrt((diff**2).mean(1)).mean())


def log_mel_l1(reference: np.ndarray, test: np.ndarray, config: MelConfig | None = None) -> float:
    """Mean absolute difference of natural-log mels over the reference's active frames."""
    r, t = _pair(reference, test)
    mr, mt = log_mel(r, config), log_mel(t, config)
    active = _active(torch.logsumexp(mr, dim=0) - math.log(mr.shape[0]))
    return float((mr - mt)[:, active].abs().mean())


def stft_distance(reference: np.ndarray, test: np.ndarray) -> float:
    """Multi-resolution STFT distance (spectral convergence + log-magnitude L1)."""
    r, t = _pair(reference, test)
    return float(multi_resolution_stft_loss(r.unsqueeze(0), t.unsqueeze(0)))


def stoi(reference: np.ndarray, test: np.ndarray, sample_rate_hz: int) -> float | None:
    """Short-time objective intelligibility (pystoi); None where pystoi is not installed."""
    try:
        from pystoi import stoi as _stoi
    except ImportError:
        return None
    r, t = _pair(reference, test)
    return float(_stoi(r.numpy().astype(np.float64), t.numpy().astype(np.float64), sample_rate_hz))


def copy_synthesis_metrics(
    reference: np.ndarray, test: np.ndarray, sample_rate_hz: int, config: MelConfig | None = None
) -> dict[str, float | None]:
    """Every distance above for one clip pair."""
    return {
        "mcd_db": mel_cepstral_distortion(reference, test, config),
        "lsd_db": log_spectral_distance(reference, test),
        "log_mel_l1": log_mel_l1(reference, test, config),
        "mrstft": stft_distance(reference, test),
        "stoi": stoi(reference, test, sample_rate_hz),
    }
