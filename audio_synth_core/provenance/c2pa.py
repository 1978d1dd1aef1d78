"""C2PA manifests for deliverables (c2pa-python): embedded in WAV and MP3, a sidecar for FLAC.

Each manifest says the audio was created by a trained algorithm (``c2pa.actions.v2``:
``c2pa.created`` with digitalSourceType trainedAlgorithmicMedia, the generator as software agent),
names the watermark and its payload as the soft binding (``c2pa.soft-binding``), and carries the
item's provenance record (``org.audio-synth.provenance``).

The certificate chain is derived from the run signing key: the leaf is the Ed25519 signing key
itself, the CA key is derived from it by hashing, and both certificates have fixed validity and
serials, so the same key always gives the same chain (Ed25519 signatures are deterministic) and
the CA certificate can be handed out once as the trust anchor (``trust_anchor_pem``).

FLAC: c2pa-rs 0.91.3 binds a FLAC manifest (embedded or not) to the file with a 10-byte empty
ID3v2.4 header in front of it, which libsndfile (soundfile) refuses to open. So the FLAC stays
byte for byte as written, the manifest goes to ``<name>.c2pa`` next to it, and ``read_c2pa``
validates it against the file with that header prepended (docs/provenance.md).

Catalog and dataset items are signed in the worker that made them, in memory, before the audio is
written (``sign_audio``; pipeline/generate.py): one signing context per key and process, the
bytes already in hand, no re-read. The audiobook signs its finished files (``attach_c2pa``).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import io
import json
import os
import wave
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from audio_synth_core.errors import ConfigError
from audio_synth_core.provenance.signing import Signer, load_private_key
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
PROVENANCE_LABEL = "org.audio-synth.provenance"
SOFT_BINDING_ALG = "org.audio-synth.watermark"
EMBEDDED = {"wav": "audio/wav", "mp3": "audio/mpeg"}
SIDECAR = {"flac": "audio/flac"}
# Part of an item's identity (its id and the plan key) when its audio carries a manifest: turning
# C2PA on or off makes new items, as a new watermark key does (an embedded manifest is new bytes).
MARK = "c2pa/1"
# What c2pa-rs puts in front of a FLAC it binds a manifest to (an empty ID3v2.4 tag).
FLAC_ID3_PREFIX = b"ID3\x04\x00\x00\x00\x00\x00\x00"
# Fixed, so the same signing key always gives byte-identical certificates.
_NOT_BEFORE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
_NOT_AFTER = dt.datetime(2125, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class C2paMaterial:
    """What signs a C2PA manifest: the certificate chain (leaf first) and the leaf's key. Holds a
    private key: hand it to workers sealed (flows.credentials), never as a flow parameter."""

    cert_chain_pem: bytes
    private_key_pem: bytes = field(repr=False)
    trust_anchor_pem: bytes = b""
    alg: str = "ed25519"


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
    )


def _key_usage(sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not sign,
        crl_sign=not sign,
        encipher_only=False,
        decipher_only=False,
    )


def material_from_signer(signer: Signer, organization: str = "audio-synth") -> C2paMaterial:
    """A C2PA certificate chain for the run signing key (see the module's note)."""
    key = load_private_key(signer._pem)
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    ca_key = Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(b"audio-synth c2pa ca v1\n" + raw).digest()
    )
    ca_name = _name(f"{organization} provenance CA", organization)
    serial = int(hashlib.sha256(raw).hexdigest()[:30], 16)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(serial)
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(sign=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, None)
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{organization} synthetic audio signer", organization))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(serial + 1)
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(sign=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, None)
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    return C2paMaterial(
        cert_chain_pem=leaf.public_bytes(serialization.Encoding.PEM) + ca_pem,
        private_key_pem=signer._pem,
        trust_anchor_pem=ca_pem,
    )


def _payload_b64(payload: int) -> str:
    return base64.b64encode(int(payload).to_bytes(8, "big", signed=False)).decode()


def manifest_definition(record: dict[str, Any], title: str) -> dict[str, Any]:
    """The manifest for one deliverable from its provenance record (records.item_record)."""
    generator = record.get("generator") or {}
    agent = {"name": str(generator.get("name") or "unknown")}
    if generator.get("version"):
        agent["version"] = str(generator["version"])
    assertions: list[dict[str, Any]] = [
        {
            "label": "c2pa.actions.v2",
            "data": {
                "actions": [
                    {
                        "action": "c2pa.created",
                        "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                        "softwareAgent": agent,
                    }
                ]
            },
        },
    ]
    mark = record.get("watermark")
    if mark and mark.get("payload") is not None:
        scheme = mark.get("scheme") or "audio-synth"
        assertions.append(
            {
                "label": "c2pa.soft-binding",
                "data": {
                    "alg": f"{SOFT_BINDING_ALG}.{scheme}",
                    "blocks": [{"scope": {}, "value": _payload_b64(mark["payload"])}],
                },
            }
        )
    assertions.append({"label": PROVENANCE_LABEL, "data": record})
    return {
        "claim_generator_info": [{"name": "audio-synth"}],
        "title": title,
        "assertions": assertions,
    }


def _format_of(rel: str) -> str:
    fmt = rel.rsplit(".", 1)[-1].lower()
    if fmt not in EMBEDDED and fmt not in SIDECAR:
        raise ConfigError(
            f"no C2PA support for {rel!r}: {', '.join([*EMBEDDED, *SIDECAR])} files only"
        )
    return fmt


# Signing re-reads and re-validates what it just signed by default: a quarter to a third of a
# catalog clip's manifest, spent checking c2pa-rs against itself. check_signing reads one back
# before a run's work instead, and the tests read every manifest back.
_SIGN_SETTINGS = {"verify": {"verify_after_sign": False}}


@functools.lru_cache(maxsize=4)
def _signing_context(material: C2paMaterial, pid: int) -> Any:
    """One C2PA context (settings + signer) per key and process: parsing the chain and key once,
    not per file. ``pid`` keys it too: a forked child cannot use its parent's native handles."""
    import c2pa

    info = c2pa.C2paSignerInfo(
        material.alg, material.cert_chain_pem, material.private_key_pem, None
    )
    signer = c2pa.Signer.from_info(info)
    return c2pa.Context(c2pa.Settings.from_dict(_SIGN_SETTINGS), signer)


def sign_audio(
    data: bytes, fmt: str, record: dict[str, Any], material: C2paMaterial, title: str
) -> tuple[bytes, bytes | None]:
    """Sign one deliverable in memory: (its bytes as they are to be stored, the sidecar manifest
    or None). WAV and MP3 come back with the manifest embedded; FLAC comes back unchanged with its
    sidecar (``layout.c2pa_sidecar``). Raises ``c2pa.C2paError`` when the bytes cannot be signed."""
    import c2pa

    fmt = _format_of(fmt)  # a name or a bare format
    context = _signing_context(material, os.getpid())
    builder = c2pa.Builder(manifest_definition(record, title), context=context)
    out = io.BytesIO()
    if fmt in EMBEDDED:
        builder.sign(EMBEDDED[fmt], io.BytesIO(data), out)
        return out.getvalue(), None
    builder.set_no_embed()
    return data, bytes(builder.sign(SIDECAR[fmt], io.BytesIO(data), out))


def takes_sidecar(rel: str) -> bool:
    """Whether the audio file ``rel`` keeps its manifest in a sidecar (FLAC), not embedded."""
    return rel.rsplit(".", 1)[-1] in SIDECAR


def check_signing(material: C2paMaterial) -> None:
    """Sign a tiny WAV with ``material`` and read it back, before any work: bindings that do not
    load here, a chain c2pa-rs refuses or a key that does not match it (signing no longer checks
    its own output) become one clear ConfigError instead of every item's failure or bad manifest."""
    import c2pa

    buf = io.BytesIO()
    with wave.open(buf, "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(16000)
        clip.writeframes(bytes(320))
    try:
        record = {"generator": {"name": "check"}}
        signed, _ = sign_audio(buf.getvalue(), "wav", record, material, "check.wav")
        with c2pa.Reader(EMBEDDED["wav"], io.BytesIO(signed)) as reader:
            state = reader.get_validation_state()
            results = reader.get_validation_results() or {}
    except Exception as exc:  # ImportError, OSError loading the library, C2paError
        raise ConfigError(
            f"C2PA signing does not work here ({type(exc).__name__}: {exc}): install "
            "c2pa-python as pinned in pyproject.toml, or set provenance.c2pa: false"
        ) from None
    if state not in ("Valid", "Trusted"):
        codes = [f.get("code") for f in (results.get("activeManifest") or {}).get("failure", [])]
        raise ConfigError(f"C2PA manifests signed with this key do not validate: {codes}")


def attach_c2pa(
    store: Store, rel: str, record: dict[str, Any], signer_material: C2paMaterial
) -> str:
    """Attach a C2PA manifest to the deliverable at ``rel``: embedded in WAV and MP3 (the file is
    rewritten), a sidecar ``layout.c2pa_sidecar(rel)`` for FLAC (the file is untouched). Returns
    the sha256 of the audio file as it is stored afterwards (the item's new ``sha256``)."""
    fmt = _format_of(rel)
    stored, sidecar = sign_audio(
        store.read_bytes(rel), fmt, record, signer_material, rel.rsplit("/", 1)[-1]
    )
    if sidecar is None:
        store.write_bytes(rel, stored)
    else:
        store.write_bytes(layout.c2pa_sidecar(rel), sidecar)
    return hashlib.sha256(stored).hexdigest()


def read_c2pa(store: Store, rel: str, trust_anchor_pem: bytes | None = None) -> dict[str, Any]:
    """The active C2PA manifest of the deliverable at ``rel`` (its sidecar for FLAC), with the
    validation state (``Valid``; ``Trusted`` when ``trust_anchor_pem`` is its CA) and the codes
    of failed checks."""
    import c2pa

    fmt = _format_of(rel)
    data = store.read_bytes(rel)
    context = None
    if trust_anchor_pem:
        settings = {
            "verify": {"verify_trust": True},
            "trust": {"trust_anchors": trust_anchor_pem.decode()},
        }
        context = c2pa.Context.from_dict(settings)
    if fmt in EMBEDDED:
        reader = c2pa.Reader(EMBEDDED[fmt], io.BytesIO(data), context=context)
    else:
        sidecar = store.read_bytes(layout.c2pa_sidecar(rel))
        stream = io.BytesIO(FLAC_ID3_PREFIX + data)
        reader = c2pa.Reader(SIDECAR[fmt], stream, sidecar, context=context)
    with reader:
        results = reader.get_validation_results() or {}
        failures = (results.get("activeManifest") or {}).get("failure") or []
        return {
            "manifest": reader.get_active_manifest(),
            "validation_state": reader.get_validation_state(),
            "failures": [f.get("code") for f in failures],
            "embedded": fmt in EMBEDDED,
        }


def provenance_of(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The audio-synth provenance record inside a C2PA manifest, if it has one."""
    for assertion in manifest.get("assertions") or []:
        if assertion.get("label") == PROVENANCE_LABEL:
            data = assertion.get("data")
            return json.loads(data) if isinstance(data, str) else data
    return None
