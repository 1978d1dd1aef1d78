"""Synthetic speakers: deterministic from the seed, attributes from the voices, clear errors."""

from __future__ import annotations

import pytest

from audio_synth_core.config.dataset import SpeakerPool
from audio_synth_core.dataset.speakers import build_speakers
from audio_synth_core.errors import ConfigError
from audio_synth_core.generators.espeak import EspeakGenerator

POOL = SpeakerPool(
    voices=["en-us", "en-gb-scotland"],
    variants=["m1", "f2"],
    count=6,
    params={"pitch": {"min": 30, "max": 70}, "rate_wpm": {"min": 140, "max": 200}},
)


def test_speakers_are_deterministic_and_drawn_within_ranges():
    gen = EspeakGenerator()
    a = build_speakers(POOL, gen, seed=5, languages=["en"])
    b = build_speakers(POOL, gen, seed=5, languages=["en"])
    c = build_speakers(POOL, gen, seed=6, languages=["en"])
    assert a == b and a != c
    assert len({s.speaker_id for s in a}) == 6
    for s in a:
        assert 30 <= s.params["pitch"] <= 70 and isinstance(s.params["pitch"], int)
        assert 140 <= s.params["rate_wpm"] <= 200
        assert s.params["volume"] == 100  # the generator's own settings are kept
        assert s.language == "en"


def test_attributes_come_from_voice_and_variant():
    speakers = build_speakers(POOL, EspeakGenerator(), seed=5, languages=["en"])
    by_voice = {s.voice: s for s in speakers}
    assert {v.split("+")[1] for v in by_voice} == {"m1", "f2"}
    for voice, s in by_voice.items():
        assert s.gender == ("female" if voice.endswith("+f2") else "male")
        assert s.accent == voice.split("+")[0]
        assert s.age_band == "unknown"


def test_speaker_params_make_different_audio():
    gen = EspeakGenerator()
    from audio_synth_core.generators.base import SynthesisRequest

    s1, s2 = build_speakers(POOL, gen, seed=5, languages=["en"])[:2]
    out = gen.generate(
        [SynthesisRequest("stop", s.voice, "en", 0, {k: v for k, v in s.params.items()})
         for s in (s1, s2)]
    )  # fmt: skip
    assert all(not isinstance(o, Exception) and o.size > 1000 for o in out)
    assert out[0].size != out[1].size or (out[0] != out[1]).any()


@pytest.mark.parametrize(
    ("pool", "message"),
    [
        ({"voices": ["xx-nowhere"]}, "unknown voice 'xx-nowhere'"),
        ({"voices": ["en-us"], "variants": ["nosuchvariant"]}, "unknown voice variant"),
        ({"voices": ["en-us"], "params": {"speed": {"min": 1, "max": 2}}}, "cannot vary ['speed']"),
        ({"voices": ["en-us"], "params": {"pitch": {"min": 50, "max": 150}}}, "pitch"),
        ({"voices": ["de"]}, "no voice of the pool speaks ['en']"),
    ],
)
def test_bad_pools_are_clear_errors(pool, message):
    with pytest.raises(ConfigError, match="speakers") as err:
        build_speakers(SpeakerPool(**pool), EspeakGenerator(), seed=0, languages=["en"])
    assert message in str(err.value)
