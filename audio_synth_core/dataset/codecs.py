"""Codec round trips in memory: MP3 (LAME) and Opus through PyAV's bundled FFmpeg, and a
telephone channel (8 kHz, 300-3400 Hz band-pass, G.711 mu-law).

Each returns audio at the input's rate and exactly the input's length (FFmpeg removes the
encoders' delay and padding, measured: lag 0 for both). Decoding is deterministic: the same input
and bitrate give the same samples (Opus's Ogg container carries a random stream serial, so the
encoded bytes differ between calls, but the decoded audio does not).
"""

from __future__ import annotations

import io

import numpy as np

from audio_synth_core.audio import resample

CODEC_KINDS = ("mp3", "opus", "telephone")
# (FFmpeg encoder, container, rates the encoder accepts)
_ENCODERS = {
    "mp3": ("libmp3lame", "mp3", (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)),
    "opus": ("libopus", "ogg", (8000, 12000, 16000, 24000, 48000)),
}
TELEPHONE_RATE_HZ = 8000
TELEPHONE_BAND_HZ = (300.0, 3400.0)
_MU = 255.0


def round_trip(samples: np.ndarray, rate: int, kind: str, bitrate_kbps: int | None) -> np.ndarray:
    """``samples`` after encoding with ``kind`` and decoding again (same rate and length)."""
    x = np.asarray(samples, dtype=np.float32)
    if kind == "telephone":
        return telephone(x, rate)
    encoder, container, rates = _ENCODERS[kind]
    codec_rate = rate if rate in rates else min((r for r in rates if r >= rate), default=48000)
    coded = _encode_decode(
        resample(x, rate, codec_rate), codec_rate, encoder, container, bitrate_kbps
    )
    out = resample(coded, codec_rate, rate)
    return _fit(out, len(x))


def _encode_decode(
    x: np.ndarray, rate: int, encoder: str, container: str, bitrate_kbps: int | None
) -> np.ndarray:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(encoder, rate=rate, layout="mono")
        if bitrate_kbps:
            stream.bit_rate = int(bitrate_kbps) * 1000
        frame = av.AudioFrame.from_ndarray(
            np.clip(x, -1.0, 1.0).astype(np.float32)[None, :], format="flt", layout="mono"
        )
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    chunks = []
    with av.open(io.BytesIO(buf.getvalue()), "r") as inp:
        for decoded in inp.decode(audio=0):
            arr = decoded.to_ndarray()
            # Planar formats come as (channels, n), packed as (1, n * channels): mono either way.
            chunks.append(arr.reshape(-1).astype(np.float32))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


def telephone(samples: np.ndarray, rate: int) -> np.ndarray:
    """A narrow-band telephone channel: resampled to 8 kHz, band-passed to 300-3400 Hz
    (audiomentations ``BandPassFilter``, 4th-order zero-phase Butterworth), mu-law companded to
    8 bits as in G.711, and resampled back to ``rate``."""
    from audiomentations import BandPassFilter

    x = resample(np.asarray(samples, dtype=np.float32), rate, TELEPHONE_RATE_HZ)
    low, high = TELEPHONE_BAND_HZ
    band = BandPassFilter(zero_phase=True, p=1.0)
    # Fixed parameters, frozen: audiomentations would otherwise draw them from the global RNG.
    band.parameters = {
        "should_apply": True,
        "center_freq": (low + high) / 2.0,
        "bandwidth": high - low,
        "rolloff": 24,
    }
    band.freeze_parameters()
    x = band(np.asarray(x, dtype=np.float32), TELEPHONE_RATE_HZ)
    x = _mu_law(np.clip(x, -1.0, 1.0))
    return _fit(resample(x, TELEPHONE_RATE_HZ, rate), len(samples))


def _mu_law(x: np.ndarray) -> np.ndarray:
    """G.711-style mu-law: compress, quantize to 8 bits, expand."""
    compressed = np.sign(x) * np.log1p(_MU * np.abs(x)) / np.log1p(_MU)
    quantized = np.round(compressed * 127.0) / 127.0
    return (np.sign(quantized) * np.expm1(np.abs(quantized) * np.log1p(_MU)) / _MU).astype(
        np.float32
    )


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    """Exactly ``n`` samples: resampling can be off by one, an encoder can pad."""
    if len(x) >= n:
        return x[:n]
    return np.concatenate([x, np.zeros(n - len(x), dtype=x.dtype)])
