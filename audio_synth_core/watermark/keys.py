"""Watermark keys: the secret bytes, what is derived from them, and a fingerprint safe to show.

Nothing here prints, logs or stores the key. The fingerprint is an HMAC of a fixed label, so it
names a key (a different key regenerates the audio) without revealing anything usable about it.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass, field

from audio_synth_core.errors import ConfigError

MIN_KEY_BYTES = 16


@dataclass(frozen=True)
class WatermarkKey:
    """A watermark key. ``repr`` and ``str`` never show the secret."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_KEY_BYTES:
            raise ConfigError(
                f"the watermark key is too short ({len(self.secret)} bytes): use at least "
                f"{MIN_KEY_BYTES} random bytes (e.g. `python -c 'import secrets; "
                "print(secrets.token_hex(32))'`)"
            )

    @property
    def fingerprint(self) -> str:
        """16 hex characters naming the key (not the key, and not reversible to it)."""
        return hmac.new(self.secret, b"audio-synth watermark fingerprint", "sha256").hexdigest()[
            :16
        ]

    def seed(self, label: str) -> list[int]:
        """Entropy for a numpy SeedSequence: a keyed, labelled derivation (one per pattern)."""
        d = hmac.new(self.secret, f"audio-synth watermark {label}".encode(), "sha256").digest()
        return [int.from_bytes(d[i : i + 4], "little") for i in range(0, len(d), 4)]

    def __str__(self) -> str:
        return f"WatermarkKey(fingerprint={self.fingerprint})"


def key_from_text(text: str) -> WatermarkKey:
    """A key from its text form (hex when it parses as hex, else the UTF-8 bytes of the text)."""
    text = text.strip()
    if not text:
        raise ConfigError("the watermark key is empty")
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = text.encode()
    return WatermarkKey(secret)


def new_key_text() -> str:
    """A fresh random key in its text form (64 hex characters: 256 bits)."""
    return secrets.token_hex(32)


def default_key_path(home: str | None = None) -> str:
    """Where runs create the key when none is configured: $AUDIO_SYNTH_HOME/keys/watermark.key
    (the same place flows.watermarking uses)."""
    root = home or os.environ.get("AUDIO_SYNTH_HOME", ".audio-synth")
    return os.path.join(os.path.abspath(root), "keys", "watermark.key")


def load_key(key_env: str, key_file: str | None) -> WatermarkKey:
    """The key from ``key_env``, else ``key_file``, else the default key file; never created."""
    value = os.environ.get(key_env)
    if value:
        return key_from_text(value)
    path = os.path.expanduser(key_file) if key_file else default_key_path()
    try:
        with open(path) as fh:
            return key_from_text(fh.read())
    except FileNotFoundError:
        raise ConfigError(
            f"no watermark key: {key_env} is unset and {path!r} does not exist"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the watermark key file {path!r}: {exc}") from None
