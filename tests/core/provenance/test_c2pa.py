"""C2PA manifests on real speech: embedded in WAV and MP3, a sidecar for FLAC, read back with
c2pa.Reader and the audio still decoded by a real decoder."""

from __future__ import annotations

import base64
import hashlib
import io

import av
import numpy as np
import pytest
import soundfile as sf

from audio_synth_core.provenance import c2pa as prov_c2pa
from audio_synth_core.provenance.records import item_record, parse_record
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from tests.factories import speech

PAYLOAD = 0x1234_5678_9A


@pytest.fixture(scope="module")
def clip():
    return speech("This clip was made by a machine.")


def _mp3(samples: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout="mono")
        stream.bit_rate = 64000
        frame = av.AudioFrame.from_ndarray(
            (samples[None, :] * 32767).astype("int16"), format="s16", layout="mono"
        )
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return buf.getvalue()


def _encode(fmt: str, samples: np.ndarray, rate: int) -> bytes:
    if fmt == "mp3":
        return _mp3(samples, rate)
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt.upper())
    return buf.getvalue()


def _decode(fmt: str, data: bytes) -> np.ndarray:
    if fmt != "mp3":
        return sf.read(io.BytesIO(data), dtype="float32")[0]
    with av.open(io.BytesIO(data)) as container:
        frames = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
    return np.concatenate(frames)


def _record(data: bytes, fmt: str) -> dict:
    row = {
        "id": "item0001",
        "generator": "espeak",
        "generator_version": "1.52",
        "generator_params": "{}",
        "voice": "en-us",
        "seed": 7,
        "watermark_payload": PAYLOAD,
        "watermark_scheme": "spread-spectrum-v1",
        "sha256": hashlib.sha256(data).hexdigest(),
        "audio_format": fmt,
        "created_at": "2026-12-02T10:00:00+00:00",
    }
    return parse_record(item_record(row))


def _assertion(manifest: dict, label: str) -> dict:
    return next(a["data"] for a in manifest["assertions"] if a["label"] == label)


@pytest.mark.parametrize("fmt", ["wav", "mp3", "flac"])
def test_manifest_attached_read_back_and_audio_intact(tmp_path, signer, clip, fmt):
    samples, rate = clip
    store = Store(str(tmp_path))
    rel = layout.audio("item0001", fmt)
    original = _encode(fmt, samples, rate)
    store.write_bytes(rel, original)
    material = prov_c2pa.material_from_signer(signer)
    sha = prov_c2pa.attach_c2pa(store, rel, _record(original, fmt), material)
    stored = store.read_bytes(rel)
    assert sha == hashlib.sha256(stored).hexdigest()
    if fmt == "flac":  # a sidecar; the FLAC is byte for byte what was written
        assert stored == original and store.exists(layout.c2pa_sidecar(rel))
    else:
        assert stored != original and len(stored) > len(original)
    # The audio decodes to the same samples as before (the manifest is metadata only).
    before, after = _decode(fmt, original), _decode(fmt, stored)
    assert len(after) == len(before) and np.array_equal(after, before)

    read = prov_c2pa.read_c2pa(store, rel, material.trust_anchor_pem)
    assert read["validation_state"] == "Trusted", read["failures"]
    assert read["failures"] == []
    assert prov_c2pa.read_c2pa(store, rel)["validation_state"] == "Valid"  # no trust anchor
    manifest = read["manifest"]
    (action,) = _assertion(manifest, "c2pa.actions.v2")["actions"]
    assert action["action"] == "c2pa.created"
    assert action["digitalSourceType"].endswith("/trainedAlgorithmicMedia")
    assert action["softwareAgent"] == {"name": "espeak", "version": "1.52"}
    binding = _assertion(manifest, "c2pa.soft-binding")
    assert binding["alg"] == "org.audio-synth.watermark.spread-spectrum-v1"
    assert int.from_bytes(base64.b64decode(binding["blocks"][0]["value"]), "big") == PAYLOAD
    record = prov_c2pa.provenance_of(manifest)
    assert record["item_id"] == "item0001" and record["seed"] == 7


def test_changed_audio_breaks_the_manifest_and_chain_is_stable(tmp_path, signer, clip):
    samples, rate = clip
    store = Store(str(tmp_path))
    rel = layout.audio("item0002", "wav")
    data = _encode("wav", samples, rate)
    store.write_bytes(rel, data)
    material = prov_c2pa.material_from_signer(signer)
    prov_c2pa.attach_c2pa(store, rel, _record(data, "wav"), material)
    signed = bytearray(store.read_bytes(rel))
    signed[200] ^= 0x40  # a sample inside the data chunk
    store.write_bytes(rel, bytes(signed))
    read = prov_c2pa.read_c2pa(store, rel, material.trust_anchor_pem)
    assert "assertion.dataHash.mismatch" in read["failures"]
    # The same signing key always gives the same certificates (one trust anchor per key).
    assert prov_c2pa.material_from_signer(signer) == material
    with pytest.raises(Exception, match="no C2PA support"):
        prov_c2pa.attach_c2pa(store, "audio/x/y.ogg", {}, material)
