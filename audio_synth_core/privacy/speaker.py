"""Speaker embeddings with resemblyzer's bundled encoder (GE2E d-vectors, 256 dims, L2-normed).

The weights ship inside the resemblyzer package (``pretrained.pt``, 17 MB): nothing is downloaded.
The encoder is loaded lazily, once per process, on the CPU. Input at any sample rate is resampled
to 16 kHz, raised to resemblyzer's -30 dBFS volume and stripped of long silences exactly as
``resemblyzer.preprocess_wav`` does (but vectorized: its VAD packing is a slow Python loop).

``embed_many`` batches the 1.6 s partial windows of many clips into one LSTM forward pass, which is
what makes it several times faster than calling ``VoiceEncoder.embed_utterance`` per clip.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import librosa
import numpy as np

from audio_synth_core.errors import AudioSynthError

if TYPE_CHECKING:
    from resemblyzer import VoiceEncoder

SAMPLE_RATE_HZ = 16000
EMBEDDING_DIM = 256
# resemblyzer's own preprocessing constants (resemblyzer/hparams.py), restated so the vectorized
# preprocessing below cannot silently drift from them: a test compares the two.
_NORM_DBFS = -30.0
_VAD_WINDOW_MS = 30
_VAD_AVERAGE_WIDTH = 8
_VAD_MAX_SILENCE = 6
_PARTIAL_FRAMES = 160  # 1.6 s of 10 ms mel frames per partial utterance
_HOP = SAMPLE_RATE_HZ // 100
_PARTIAL_RATE = 1.3  # partials per second (resemblyzer's default)
_MIN_COVERAGE = 0.75
# Clips with less voiced audio than this give unstable embeddings: refuse them instead.
MIN_VOICED_S = 0.3
# Partials per LSTM forward pass: bounds memory (~160 x 40 floats each) while keeping batches big.
_MAX_BATCH = 256
# Environment override for worker processes (the pipeline can set it without code changes).
THREADS_ENV = "AUDIO_SYNTH_TORCH_THREADS"

_lock = threading.Lock()
_encoder: VoiceEncoder | None = None


class SpeakerEmbeddingError(AudioSynthError):
    """A clip has too little voiced audio to embed (silent, empty or shorter than MIN_VOICED_S)."""


def configure_threads(num_threads: int | None) -> None:
    """Cap torch's intra-op threads for this process (None: leave torch's default, i.e. all cores).

    torch's default grabs every core, which oversubscribes a machine that runs one worker process
    per core; the pipeline passes 1 there. The setting is process-wide, like torch's own.
    """
    if num_threads is None:
        env = os.environ.get(THREADS_ENV)
        num_threads = int(env) if env else None
    if num_threads is not None:
        import torch

        if num_threads < 1:
            raise ValueError(f"torch threads must be >= 1, got {num_threads}")
        torch.set_num_threads(num_threads)


def encoder() -> VoiceEncoder:
    """The process-wide resemblyzer encoder on the CPU (loaded on first use, ~0.1 s)."""
    global _encoder
    with _lock:
        if _encoder is None:
            from resemblyzer import VoiceEncoder

            # CPU on purpose: per-clip LSTM work is tiny; a GPU is better left to generators.
            _encoder = VoiceEncoder(device="cpu", verbose=False)
            _encoder.eval()
        return _encoder


def _trim_long_silences(wav: np.ndarray) -> np.ndarray:
    """resemblyzer.audio.trim_long_silences, with the int16 packing done by numpy."""
    import webrtcvad
    from scipy.ndimage import binary_dilation

    window = _VAD_WINDOW_MS * SAMPLE_RATE_HZ // 1000
    wav = wav[: len(wav) - (len(wav) % window)]
    if len(wav) == 0:
        return wav
    pcm = np.round(wav * (2**15 - 1)).astype(np.int16).tobytes()
    vad = webrtcvad.Vad(3)
    flags = np.array(
        [
            vad.is_speech(pcm[start * 2 : (start + window) * 2], sample_rate=SAMPLE_RATE_HZ)
            for start in range(0, len(wav), window)
        ],
        dtype=float,
    )
    width = _VAD_AVERAGE_WIDTH
    padded = np.concatenate((np.zeros((width - 1) // 2), flags, np.zeros(width // 2)))
    cumsum = np.cumsum(padded)
    cumsum[width:] = cumsum[width:] - cumsum[:-width]
    mask = np.round(cumsum[width - 1 :] / width).astype(bool)
    mask = binary_dilation(mask, np.ones(_VAD_MAX_SILENCE + 1))
    return wav[np.repeat(mask, window)]


def preprocess(audio: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """16 kHz, volume raised to -30 dBFS (never lowered), long silences removed (float32)."""
    wav = np.asarray(audio, dtype=np.float32)
    if wav.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {wav.shape}")
    if sample_rate_hz != SAMPLE_RATE_HZ:
        wav = librosa.resample(wav, orig_sr=sample_rate_hz, target_sr=SAMPLE_RATE_HZ)
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if wav.size else 0.0
    if rms <= 1e-8:
        raise SpeakerEmbeddingError("clip is silent or empty: no speaker to embed")
    change_db = _NORM_DBFS - 20.0 * np.log10(rms)
    if change_db > 0:
        wav = wav * np.float32(10 ** (change_db / 20))
    wav = _trim_long_silences(wav)
    if len(wav) < MIN_VOICED_S * SAMPLE_RATE_HZ:
        raise SpeakerEmbeddingError(
            f"clip has {len(wav) / SAMPLE_RATE_HZ:.2f} s of voiced audio; "
            f"at least {MIN_VOICED_S} s is needed for a speaker embedding"
        )
    return wav.astype(np.float32)


def _partial_mels(wav: np.ndarray) -> np.ndarray:
    """Mel windows of 1.6 s at 1.3 per second, as resemblyzer's embed_utterance cuts them."""
    from resemblyzer.audio import wav_to_mel_spectrogram
    from resemblyzer.voice_encoder import VoiceEncoder

    wav_slices, mel_slices = VoiceEncoder.compute_partial_slices(
        len(wav), _PARTIAL_RATE, _MIN_COVERAGE
    )
    needed = wav_slices[-1].stop
    if needed >= len(wav):
        wav = np.pad(wav, (0, needed - len(wav)))
    mel = wav_to_mel_spectrogram(wav)
    return np.stack([mel[s] for s in mel_slices])


def embed_many(audios: Sequence[np.ndarray], sample_rate_hz: int | Sequence[int]) -> np.ndarray:
    """Embeddings (n, 256), float32, unit length, one per clip; same values as resemblyzer's
    ``embed_utterance(preprocess_wav(x))`` up to float rounding.

    Raises ``SpeakerEmbeddingError`` naming the first clip that cannot be embedded; callers that
    want per-clip failures embed clips one at a time (``embed``) or pre-filter.
    """
    rates = (
        [int(sample_rate_hz)] * len(audios)
        if isinstance(sample_rate_hz, int | np.integer)
        else [int(r) for r in sample_rate_hz]
    )
    if len(rates) != len(audios):
        raise ValueError(f"{len(audios)} clips but {len(rates)} sample rates")
    if not audios:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    wavs = []
    for i, (audio, rate) in enumerate(zip(audios, rates, strict=True)):
        try:
            wavs.append(preprocess(audio, rate))
        except SpeakerEmbeddingError as exc:
            raise SpeakerEmbeddingError(f"clip {i}: {exc}") from exc
    return embed_preprocessed(wavs)


def embed_preprocessed(wavs: Sequence[np.ndarray]) -> np.ndarray:
    """Embeddings (n, 256) of clips already through ``preprocess``: one batched LSTM pass."""
    import torch

    if not wavs:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    partials = [_partial_mels(wav) for wav in wavs]
    owner = np.repeat(np.arange(len(wavs)), [len(p) for p in partials])
    stacked = np.concatenate(partials)
    model = encoder()
    outs = []
    with torch.inference_mode():
        for start in range(0, len(stacked), _MAX_BATCH):
            batch = torch.from_numpy(stacked[start : start + _MAX_BATCH])
            outs.append(model(batch).numpy())
    partial_embeds = np.concatenate(outs)
    # Utterance embedding = L2-normed mean of its partial embeddings (resemblyzer's definition).
    sums = np.zeros((len(wavs), EMBEDDING_DIM), dtype=np.float64)
    np.add.at(sums, owner, partial_embeds)
    return normalize(sums).astype(np.float32)


def embed(audio: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """Embedding (256,) float32 of one clip (see ``embed_many``)."""
    return embed_many([audio], sample_rate_hz)[0]


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 length (a zero row stays zero)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def centroid(embeddings: np.ndarray) -> np.ndarray:
    """A speaker's embedding from several of its utterances: L2-normed mean (as embed_speaker)."""
    return normalize(np.mean(np.asarray(embeddings, dtype=np.float64), axis=0)).astype(np.float32)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors in [-1, 1] (resemblyzer embeddings give [0, 1])."""
    return float(normalize(a) @ normalize(b))


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarities (len(a), len(b)) between the rows of ``a`` and the rows of ``b``."""
    return normalize(np.atleast_2d(a)) @ normalize(np.atleast_2d(b)).T
