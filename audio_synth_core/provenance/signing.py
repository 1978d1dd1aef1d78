"""Ed25519 signatures over a run's file listing (the ``cryptography`` package).

A ``Signer`` holds the private key's PEM bytes and never shows them: its repr names only the public
key's fingerprint, and it does not pickle (a key never travels to a worker by accident).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audio_synth_core.errors import ConfigError

ALGORITHM = "Ed25519"
# Domain separation: a signature over a run listing can never be replayed as another message.
CONTEXT = b"audio-synth run listing v1\n"


def new_private_key_pem() -> bytes:
    """A fresh Ed25519 private key as unencrypted PKCS#8 PEM."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private_key(pem: bytes, source: str = "the signing key") -> Ed25519PrivateKey:
    """The Ed25519 private key in ``pem``; a ConfigError naming ``source`` (never the key) if it
    is not one."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        reason = str(exc).split("\n", 1)[0][:120]
        raise ConfigError(f"{source} is not an unencrypted PEM private key ({reason})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{source} is a {type(key).__name__}, not an Ed25519 key")
    return key


def load_public_key(pem: bytes, source: str = "the public key") -> Ed25519PublicKey:
    """The Ed25519 public key in ``pem`` (ConfigError naming ``source`` when it is not one)."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        reason = str(exc).split("\n", 1)[0][:120]
        raise ConfigError(f"{source} is not a PEM public key ({reason})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{source} is a {type(key).__name__}, not an Ed25519 public key")
    return key


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint(public_key_pem: bytes) -> str:
    """``sha256:<hex>`` of the raw public key: short, stable, safe to print."""
    raw = load_public_key(public_key_pem).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def listing_message(run_id: str, listing_sha256: str) -> bytes:
    """What is signed: the listing file's digest bound to the run it lists."""
    return CONTEXT + f"{run_id}\n{listing_sha256}".encode()


@dataclass(frozen=True)
class Signer:
    """Signs with one Ed25519 key. ``source`` says where the key came from (for logs)."""

    _pem: bytes = field(repr=False)
    source: str = ""

    def __post_init__(self) -> None:
        load_private_key(self._pem, self.source or "the signing key")  # fail now, not at commit

    def __reduce__(self) -> NoReturn:  # a key never travels to a worker by accident
        raise TypeError("a Signer holds a private key and is not pickled")

    def __repr__(self) -> str:
        return f"Signer({self.public_fingerprint}, source={self.source!r})"

    @property
    def public_key_pem(self) -> bytes:
        return public_pem(load_private_key(self._pem).public_key())

    @property
    def public_fingerprint(self) -> str:
        return fingerprint(self.public_key_pem)

    def sign(self, message: bytes) -> str:
        """Base64 of the Ed25519 signature of ``message``."""
        return base64.b64encode(load_private_key(self._pem).sign(message)).decode()


def verify_signature(public_key_pem: bytes, message: bytes, signature_b64: str) -> bool:
    """Whether ``signature_b64`` is ``message`` signed by the key of ``public_key_pem``."""
    key = load_public_key(public_key_pem)
    try:
        key.verify(base64.b64decode(signature_b64, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True
