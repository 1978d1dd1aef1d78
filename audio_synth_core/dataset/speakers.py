"""Synthetic speakers: a generator voice + a variant + parameters (pitch, rate, ...) drawn from
the spec's ranges, all deterministic from the seed.

The (voice, variant) combinations of the pool are dealt to speakers in a seeded order, so a pool of
8 speakers over 4 voices x 4 variants uses 8 distinct combinations; each speaker then draws every
ranged parameter uniformly (rounded to integers where the generator takes integers) from its own
seed. A speaker's id is a hash of what makes it sound the way it does, so the same spec gives the
same speakers on every machine. Attributes (gender, age band, accent, language) come from the
generator's ``VoiceInfo`` and, for espeak, the variant's gender.

A persona in the pool is a speaker with the persona's voice, parameters and attributes (the voice's
where the persona leaves one out); its id is ``persona-<name>``, the same for every version, so a
new version keeps its split and its share and regenerates only its own clips.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from audio_synth_core.config.dataset import SpeakerPool
from audio_synth_core.errors import ConfigError, UnknownVoiceError
from audio_synth_core.generators.base import Generator
from audio_synth_core.store import ids
from audio_synth_core.voices.personas import PersonaChoices, PersonaError

UNKNOWN = "unknown"


@dataclass(frozen=True)
class SyntheticSpeaker:
    speaker_id: str
    voice: str  # what the generator is asked for: "<voice>[+<variant>]"
    language: str  # the dataset language it speaks (primary subtag of the voice's)
    gender: str
    age_band: str
    accent: str
    params: dict[str, Any]  # generator parameters of this speaker (its overrides included)
    persona: str | None = None  # "name@version" of the persona this speaker is

    def attributes(self) -> dict[str, str]:
        return {
            "speaker": self.speaker_id,
            "gender": self.gender,
            "age_band": self.age_band,
            "accent": self.accent,
            "language": self.language,
        }


def primary_language(tag: str) -> str:
    return tag.replace("_", "-").split("-")[0].lower()


def _integer_params(generator: Generator) -> set[str]:
    """Parameters the generator records as integers (espeak's settings): draws are rounded."""
    return {
        k for k, v in generator.params.items() if isinstance(v, int) and not isinstance(v, bool)
    }


def check_pool(pool: SpeakerPool, generator: Generator, languages: list[str]) -> None:
    """Fail with a ConfigError before any work: unknown voices or variants, parameters the
    generator cannot vary per item, or a language no voice of the pool speaks."""
    unsupported = sorted(set(pool.params) - generator.per_request_params)
    if unsupported:
        raise ConfigError(
            f"speakers.params: generator {generator.name!r} cannot vary {unsupported} per item "
            f"(it can vary: {sorted(generator.per_request_params) or 'nothing'})"
        )
    spoken = set()
    for voice in pool.voices:
        try:  # the voice alone first: an error names what the user wrote
            generator.resolve_voice(voice, None)
        except UnknownVoiceError as exc:
            raise ConfigError(f"speakers: {exc}") from None
        for variant in pool.variants or [""]:
            name = f"{voice}+{variant}" if variant else voice
            try:
                info = generator.resolve_voice(name, None)
            except UnknownVoiceError as exc:
                raise ConfigError(f"speakers: {exc}") from None
            spoken.add(primary_language(info.language))
    missing = [lang for lang in languages if primary_language(lang) not in spoken]
    if missing:
        raise ConfigError(
            f"speakers: no voice of the pool speaks {missing} (voices: {pool.voices})"
        )
    try:  # the extremes of every range must be valid settings for the generator
        for edge in ("min", "max"):
            values = {k: getattr(r, edge) for k, r in pool.params.items()}
            ints = _integer_params(generator)
            values = {k: round(v) if k in ints else v for k, v in values.items()}
            type(generator)(**{**generator.params, **values})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"speakers.params: {exc}") from None


def persona_speakers(
    refs: list[str], choices: PersonaChoices, generator: Generator, languages: list[str]
) -> list[SyntheticSpeaker]:
    """One speaker per persona reference; a PersonaError names one that cannot be used
    (unknown, another generator, a language the dataset does not have)."""
    wanted = {primary_language(lang) for lang in languages}
    out = []
    for ref in refs:
        chosen = choices.choose(ref)
        if isinstance(chosen, str):
            raise PersonaError(f"speakers.personas: {ref!r}: {chosen}")
        persona, voice, language, params = chosen
        lang = primary_language(language)
        if lang not in wanted:
            raise PersonaError(
                f"speakers.personas: {persona.ref} speaks {lang!r}, not one of {sorted(wanted)}"
            )
        info, a = generator.resolve_voice(voice, None), persona.attributes
        out.append(
            SyntheticSpeaker(
                speaker_id=f"persona-{persona.name}",
                voice=voice,
                language=lang,
                gender=a.gender or info.gender or UNKNOWN,
                age_band=a.age_band or info.age_band or UNKNOWN,
                accent=a.accent or info.accent or info.attributes.get("base_voice", info.name),
                params=json.loads(params),
                persona=persona.ref,
            )
        )
    return out


def build_speakers(
    pool: SpeakerPool,
    generator: Generator,
    seed: int,
    languages: list[str],
    choices: PersonaChoices | None = None,
) -> list[SyntheticSpeaker]:
    """``pool.count`` synthetic speakers, deterministic from ``seed``, then the pool's personas
    (``choices`` resolves them: needed when the pool lists any)."""
    if pool.personas and choices is None:
        raise PersonaError("speakers.personas: no persona registry is configured")
    own = persona_speakers(pool.personas, choices, generator, languages) if choices else []
    if not pool.voices:
        return own
    # Languages a persona speaks need no voice of the pool.
    check_pool(
        pool,
        generator,
        [g for g in languages if primary_language(g) not in {s.language for s in own}],
    )
    wanted = {primary_language(lang) for lang in languages}
    combos = []
    for voice in pool.voices:
        for variant in pool.variants or [""]:
            name = f"{voice}+{variant}" if variant else voice
            info = generator.resolve_voice(name, None)
            if primary_language(info.language) in wanted:
                combos.append((name, info))
    if not combos:
        raise ConfigError(f"speakers: no voice of the pool speaks {languages} ({pool.voices})")
    order = np.random.default_rng(ids.seed_of(seed, "speaker-combos")).permutation(len(combos))
    ints = _integer_params(generator)
    speakers, taken = [], set()
    # A draw that repeats an earlier speaker (narrow ranges) is skipped and the next one drawn,
    # up to ten tries a speaker: the pool then holds as many distinct speakers as it can.
    for i in range(pool.count * 10):
        if len(speakers) == pool.count:
            break
        name, info = combos[order[i % len(combos)]]
        rng = np.random.default_rng(ids.seed_of(seed, "speaker", i))
        params = dict(generator.params)
        for key in sorted(pool.params):
            r = pool.params[key]
            value = float(rng.uniform(r.min, r.max))
            params[key] = round(value) if key in ints else round(value, 4)
        base = info.attributes.get("base_voice", info.name)
        speaker_id = "spk-" + ids.digest(name, params, generator.name)[:10]
        if speaker_id in taken:
            continue
        taken.add(speaker_id)
        speakers.append(
            SyntheticSpeaker(
                speaker_id=speaker_id,
                voice=name,
                language=primary_language(info.language),
                gender=info.gender or UNKNOWN,
                age_band=info.age_band or UNKNOWN,
                accent=info.accent or base,
                params=params,
            )
        )
    return speakers + own


def speaker_params_json(speaker: SyntheticSpeaker) -> str:
    """The item's ``generator_params`` column: the generator's params with the speaker's draws."""
    return json.dumps(speaker.params, sort_keys=True)
