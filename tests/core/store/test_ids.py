"""The one id recipe: canonical JSON of the parts, hashed."""

from audio_synth_core.store import ids


def test_ids_are_canonical_and_sized():
    assert ids.digest({"b": 1, "a": 2}) == ids.digest({"a": 2, "b": 1})
    assert ids.digest("a", 1) != ids.digest("a", "1")
    assert len(ids.content_id("x")) == 20 and ids.content_id("x") == ids.digest("x")[:20]
    assert 0 <= ids.seed_of("x", 1) < 2**31
    assert ids.run_id("demo", ids.digest("x")) == f"demo-{ids.digest('x')[:12]}"


def test_stream_digest_matches_one_concatenation():
    import hashlib

    parts = ["ab", "cd", "ef"]
    expected = hashlib.sha256(b"abcdef|4|1").hexdigest()
    assert ids.stream_digest(iter(parts), 4, "1") == expected
