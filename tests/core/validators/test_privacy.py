"""PrivacyValidator and speaker embeddings on real speech: flite voices of recorded speakers (the
protected references) and espeak-ng voices. Needs the Debian package ``flite``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from audio_synth_core.audio import encode
from audio_synth_core.privacy import speaker
from audio_synth_core.privacy.attack import flite_available, flite_speech
from audio_synth_core.validators.base import Clip, ValidationContext
from audio_synth_core.validators.privacy import (
    SIMILARITY_CHECK,
    SIMILARITY_LIMITS,
    PrivacyValidator,
    ReferenceSetError,
    load_references,
    speaker_of,
)
from tests.factories import SENTENCES, silence, speech

pytestmark = pytest.mark.skipif(
    not flite_available(), reason="flite is not installed (apt-get install flite)"
)

PROTECTED = ("slt", "kal")
REF_TEXTS = SENTENCES[:3]
NEW_TEXT = SENTENCES[5]  # a sentence no reference says


@pytest.fixture(scope="module")
def ref_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """refs/<speaker>/<n>.flac: three sentences by each protected flite voice."""
    root = tmp_path_factory.mktemp("refs")
    for voice in PROTECTED:
        (root / voice).mkdir()
        for i, text in enumerate(REF_TEXTS):
            audio, rate = flite_speech(text, voice)
            (root / voice / f"{i}.flac").write_bytes(encode(audio, rate))
    return root


@pytest.fixture(scope="module")
def validator(ref_dir: Path) -> PrivacyValidator:
    v = PrivacyValidator(reference_url=str(ref_dir), level="medium")
    v.prepare(ValidationContext())
    return v


def _clip(audio: np.ndarray, rate: int, name: str = "x") -> Clip:
    return Clip(id=name, audio=audio, sample_rate_hz=rate)


@pytest.mark.parametrize("voice", PROTECTED)
def test_new_sentence_by_a_protected_voice_is_flagged(validator: PrivacyValidator, voice: str):
    metrics = validator.measure(_clip(*flite_speech(NEW_TEXT, voice)))
    assert metrics["nearest_reference"] == voice
    assert metrics["max_similarity"] > SIMILARITY_LIMITS["medium"]
    (failed,) = validator.check(metrics)
    assert failed.check == SIMILARITY_CHECK and failed.check in validator.flag_checks
    assert failed.limit == SIMILARITY_LIMITS["medium"]
    assert failed.value == pytest.approx(metrics["max_similarity"])
    assert repr(voice) in failed.message and "medium limit 0.80" in failed.message


@pytest.mark.parametrize(
    ("engine", "voice"),
    [
        ("flite", "awb"),
        ("flite", "rms"),
        ("espeak", "en-us"),
        ("espeak", "en-us+f3"),
        ("espeak", "en-us+m7"),
    ],
)
def test_other_voices_pass(validator: PrivacyValidator, engine: str, voice: str):
    audio, rate = flite_speech(NEW_TEXT, voice) if engine == "flite" else speech(NEW_TEXT, voice)
    metrics = validator.measure(_clip(audio, rate))
    assert metrics["privacy_status"] == "ok"
    assert metrics["max_similarity"] < SIMILARITY_LIMITS["medium"], metrics["nearest_reference"]
    assert validator.check(metrics) == []


def test_metrics_match_fields_and_fit_arrow(validator: PrivacyValidator):
    metrics = validator.measure(_clip(*flite_speech(NEW_TEXT, "awb")))
    assert set(metrics) == {f.name for f in validator.fields}
    emb = np.asarray(metrics["speaker_embedding"])
    assert emb.shape == (speaker.EMBEDDING_DIM,)
    assert np.linalg.norm(emb) == pytest.approx(1.0, abs=1e-5)
    schema = pa.schema([f.to_arrow() for f in validator.fields])
    table = pa.Table.from_pylist([metrics], schema=schema)
    assert table.schema.field("speaker_embedding").type == pa.list_(pa.float32())


def test_silence_is_no_speech_and_not_a_failure(validator: PrivacyValidator):
    metrics = validator.measure(_clip(silence(1.0), 16000))
    assert metrics["privacy_status"] == "no_speech" and metrics["max_similarity"] is None
    assert validator.check(metrics) == []
    bad = validator.measure(_clip(np.zeros(0, dtype=np.float32), 16000))
    assert bad["privacy_status"] == "unreadable_audio"
    assert [f.check for f in validator.check(bad)] == [SIMILARITY_CHECK]


def test_measure_many_batches_like_measure_and_keeps_statuses(validator: PrivacyValidator):
    """One batched encoder pass gives each clip what measure gives it alone, and a silent or
    empty clip in the batch keeps its own status without touching the others."""
    clips = [
        _clip(*flite_speech(NEW_TEXT, "slt"), "slt"),
        _clip(silence(1.0), 16000, "quiet"),
        _clip(*speech(NEW_TEXT, "en-us+f3"), "espeak"),
        _clip(np.zeros(0, dtype=np.float32), 16000, "empty"),
    ]
    batched = validator.measure_many(clips)
    assert [m["privacy_status"] for m in batched] == ["ok", "no_speech", "ok", "unreadable_audio"]
    for clip, many in zip(clips, batched, strict=True):
        one = validator.measure(clip)
        assert many["nearest_reference"] == one["nearest_reference"]
        if one["max_similarity"] is not None:
            assert many["max_similarity"] == pytest.approx(one["max_similarity"], abs=1e-5)
            np.testing.assert_allclose(
                many["speaker_embedding"], one["speaker_embedding"], atol=1e-5
            )
    # The same numbers as the public embedding function (resemblyzer's definition).
    expected = speaker.embed(clips[2].audio, clips[2].sample_rate_hz)
    np.testing.assert_allclose(batched[2]["speaker_embedding"], expected, atol=1e-5)


def test_precomputed_embeddings_and_prefix_layout_agree(ref_dir: Path, tmp_path: Path):
    folder = load_references(str(ref_dir))
    assert folder.speakers == ("kal", "slt") and folder.counts == (3, 3)
    # Prefix layout: files at the root, speaker before "__".
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in sorted(ref_dir.glob("*/*.flac")):
        (flat / f"{path.parent.name}__{path.stem}.flac").write_bytes(path.read_bytes())
    np.testing.assert_allclose(load_references(str(flat)).centroids, folder.centroids, atol=1e-6)
    # Precomputed: the same utterance embeddings as .npz and as .parquet.
    names = [p.parent.name for p in sorted(ref_dir.glob("*/*.flac"))]
    audio = [load_flac(p) for p in sorted(ref_dir.glob("*/*.flac"))]
    emb = speaker.embed_many([a for a, _ in audio], [r for _, r in audio])
    np.savez(tmp_path / "refs.npz", speaker=np.array(names), embedding=emb)
    table = pa.table({"speaker": names, "embedding": [e.tolist() for e in emb]})
    pq.write_table(table, tmp_path / "refs.parquet")
    for name in ("refs.npz", "refs.parquet"):
        refs = load_references(str(tmp_path / name))
        assert refs.speakers == folder.speakers
        np.testing.assert_allclose(refs.centroids, folder.centroids, atol=1e-5)


def load_flac(path: Path) -> tuple[np.ndarray, int]:
    from audio_synth_core.audio import decode

    return decode(path.read_bytes())


def test_references_are_cached_per_url(ref_dir: Path):
    assert load_references(str(ref_dir)) is load_references(str(ref_dir))


def test_bad_references_fail_fast(tmp_path: Path):
    with pytest.raises(ReferenceSetError, match="does not exist"):
        load_references(str(tmp_path / "missing"))
    with pytest.raises(ReferenceSetError, match="no reference audio"):
        load_references(str(tmp_path))
    (tmp_path / "x.npz").write_bytes(b"not an npz file")
    with pytest.raises(ReferenceSetError, match=r"x\.npz"):
        load_references(str(tmp_path))


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({}, "reference_url"),
        ({"reference_url": "x", "level": "extreme"}, "level"),
        ({"reference_url": "x", "treshold": 0.5}, "treshold"),
        ({"reference_url": "x", "max_similarity": 1.5}, "max_similarity"),
    ],
)
def test_params_are_checked(params: dict, problem: str):
    with pytest.raises(ValueError, match=problem):
        PrivacyValidator(**params)


@pytest.mark.parametrize(
    ("params", "similarity", "expected"),
    [
        ({"quarantine": True}, 0.81, True),
        ({"quarantine": True}, 0.79, False),
        ({"quarantine": False}, 0.99, False),
        ({"quarantine": True, "level": "low"}, 0.84, False),
        ({"quarantine": True, "level": "high"}, 0.76, True),
        ({"quarantine": True, "max_similarity": 0.6}, 0.61, True),
        ({"quarantine": True}, None, False),
    ],
)
def test_quarantine(params: dict, similarity: float | None, expected: bool):
    validator = PrivacyValidator(reference_url="x", **params)
    assert validator.quarantine({"max_similarity": similarity}) is expected


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("alice/001.wav", "alice"),
        ("bob__take2.flac", "bob"),
        ("carol.wav", "carol"),
        ("dan/sub/x.wav", "dan"),
    ],
)
def test_speaker_of(path: str, name: str):
    assert speaker_of(path) == name


def test_embedding_matches_resemblyzer_reference():
    from resemblyzer import preprocess_wav

    audio, rate = flite_speech(NEW_TEXT, "rms")
    expected = speaker.encoder().embed_utterance(preprocess_wav(audio, rate))
    np.testing.assert_allclose(speaker.embed(audio, rate), expected, atol=1e-5)
