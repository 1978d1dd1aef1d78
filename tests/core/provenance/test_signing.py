"""Ed25519 keys and signatures: round trip, wrong key, altered message, clear errors."""

from __future__ import annotations

import pickle

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from audio_synth_core.errors import ConfigError
from audio_synth_core.provenance.signing import (
    Signer,
    fingerprint,
    listing_message,
    new_private_key_pem,
    verify_signature,
)


def test_signature_round_trip_and_what_breaks_it(signer):
    other = Signer(new_private_key_pem(), "other")
    message = listing_message("run-1", "ab" * 32)
    sig = signer.sign(message)
    assert verify_signature(signer.public_key_pem, message, sig)
    assert not verify_signature(other.public_key_pem, message, sig)
    assert not verify_signature(signer.public_key_pem, listing_message("run-2", "ab" * 32), sig)
    assert not verify_signature(signer.public_key_pem, message, "bm90IGEgc2lnbmF0dXJl")
    assert not verify_signature(signer.public_key_pem, message, "%%% not base64")
    assert fingerprint(signer.public_key_pem) == signer.public_fingerprint
    assert signer.public_fingerprint != other.public_fingerprint


def test_signer_never_shows_or_pickles_its_key(signer):
    body = signer._pem.decode().splitlines()[1]  # the key's base64 line
    assert body not in repr(signer) and body not in str(signer)
    assert signer.public_fingerprint in repr(signer)
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(signer)


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        (b"not a key at all", "not an unencrypted PEM private key"),
        (
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            "not an Ed25519 key",
        ),
    ],
)
def test_bad_keys_are_clear_config_errors(pem, message):
    with pytest.raises(ConfigError, match=message) as info:
        Signer(pem, "environment variable X")
    assert "environment variable X" in str(info.value)
