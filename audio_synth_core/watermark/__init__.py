"""Watermarking generated audio: a keyed, inaudible mark carrying a 32-bit payload per item.

``mark(samples, rate, settings, item_id)`` embeds; ``detect(samples, rate, key)`` finds it on
any audio (any rate, lossy copies, crops). The scheme is in ``scheme``, the payload and its code
in ``payload``, keys in ``keys``; docs/watermark.md has the method and its measured robustness.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from audio_synth_core.watermark import embedder, scheme
from audio_synth_core.watermark import payload as payload_codec
from audio_synth_core.watermark.keys import WatermarkKey, key_from_text, new_key_text
from audio_synth_core.watermark.scheme import Detection, Strength

# z-score of the sync above which a file counts as marked: chosen on the benchmark so that at
# most 0.1 % of unmarked clips pass (docs/watermark.md).
THRESHOLD_Z = 5.0
SCHEME_ID = f"audio-synth-{scheme.SCHEME}"


@dataclass(frozen=True)
class WatermarkSettings:
    """What a worker needs to mark clips. Its ``repr`` shows the key's fingerprint only."""

    key: WatermarkKey = field(repr=False)
    strength: Strength = field(default_factory=Strength)
    threshold_z: float = THRESHOLD_Z

    @property
    def fingerprint(self) -> str:
        return self.key.fingerprint

    @property
    def marks(self) -> str:
        """Identity of what marking does to a clip (scheme, strength, key fingerprint): part of
        every item id, so a new key or strength regenerates the audio."""
        s = self.strength
        return (
            f"{SCHEME_ID}:{s.step}:{s.shaping}:{s.max_delta_db}:{s.min_snr_db}:{self.fingerprint}"
        )

    def __repr__(self) -> str:
        return f"WatermarkSettings(scheme={SCHEME_ID}, key={self.fingerprint}, {self.strength})"


def mark(
    samples: np.ndarray, rate: int, settings: WatermarkSettings, item_id: str
) -> tuple[np.ndarray, int]:
    """``samples`` marked with the payload of ``item_id``, and that payload."""
    value = payload_codec.payload_of(item_id)
    return embedder.embed(samples, rate, settings.key, value, settings.strength), value


def detect(
    samples: np.ndarray,
    rate: int,
    key: WatermarkKey,
    threshold_z: float = THRESHOLD_Z,
    strength: Strength = Strength(),  # noqa: B008 - frozen, shared
) -> Detection:
    """Look for the mark of ``key`` in ``samples`` (mono or (n, channels), any rate)."""
    return scheme.detect(samples, rate, key, threshold_z, strength.step)


__all__ = [
    "SCHEME_ID",
    "THRESHOLD_Z",
    "Detection",
    "Strength",
    "WatermarkKey",
    "WatermarkSettings",
    "detect",
    "key_from_text",
    "mark",
    "new_key_text",
    "payload_codec",
]
