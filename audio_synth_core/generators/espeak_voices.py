"""espeak-ng's voice table: every base voice under a unique name, the aliases and languages that
resolve to it, and the variants; ``resolve_voice`` turns a voice name (``en-us``, ``gmw/en-US``,
``en-us+f3``) or a language tag (``de_DE``) into a ``VoiceInfo`` and the selector
``espeak_SetVoiceByName`` takes. Built once per process from the engine's lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from audio_synth_core.errors import UnknownVoiceError
from audio_synth_core.generators.base import VoiceInfo
from audio_synth_core.generators.espeak_engine import LOCK, Engine, VariantInfo, engine


@dataclass(frozen=True)
class VoiceCatalog:
    """Voice names and aliases, built once from the engine's lists."""

    voices: tuple[VoiceInfo, ...]
    by_alias: dict[str, VoiceInfo]
    by_language: dict[str, VoiceInfo]
    variants: dict[str, VariantInfo]  # lower-cased name -> variant


def build_catalog(engine: Engine) -> VoiceCatalog:
    voices: list[VoiceInfo] = []
    taken: set[str] = set()
    for v in engine.voices:
        ident = v["identifier"]
        base = ident.rsplit("/", 1)[-1].lower()
        name = v["languages"][0] if v["languages"] else base
        if name in taken:
            # Two voices share a first language (yue, yue-Latn-jyutping): use the file name.
            name = base
        taken.add(name)
        voices.append(
            VoiceInfo(
                name=name,
                language=v["languages"][0] if v["languages"] else name,
                gender=v["gender"],
                attributes={
                    "identifier": ident,
                    "display_name": v["display_name"],
                    "languages": ",".join(v["languages"]),
                },
            )
        )
    by_alias: dict[str, VoiceInfo] = {}
    for info in voices:
        ident = info.attributes["identifier"]
        for alias in (info.name, ident, ident.rsplit("/", 1)[-1], info.attributes["display_name"]):
            by_alias.setdefault(alias.lower(), info)
    # A language goes to the voice that lists it with the best (lowest) priority, as espeak does;
    # the listing order is already espeak's, so the first wins ties.
    by_language: dict[str, VoiceInfo] = {}
    ranked = []
    for order, (info, raw) in enumerate(zip(voices, engine.voices, strict=True)):
        for lang in raw["languages"]:
            ranked.append((lang, raw["priorities"][lang], order, info))
    for lang, _prio, _order, info in sorted(ranked, key=lambda r: (r[0], r[1], r[2])):
        by_language.setdefault(lang, info)
    variants = {v.name.lower(): v for v in engine.variants}
    return VoiceCatalog(tuple(voices), by_alias, by_language, variants)


_CATALOG: VoiceCatalog | None = None


def catalog() -> VoiceCatalog:
    global _CATALOG
    with LOCK:
        if _CATALOG is None:
            _CATALOG = build_catalog(engine())
        return _CATALOG


def language_candidates(language: str) -> list[str]:
    """``de_DE.UTF-8`` -> ["de-de", "de"]: the exact tag first, then ever shorter prefixes."""
    tag = language.split(".", 1)[0].replace("_", "-").strip().lower()
    parts = tag.split("-")
    return ["-".join(parts[:n]) for n in range(len(parts), 0, -1) if parts[0]]


def resolve_voice(voice: str | None, language: str | None) -> tuple[VoiceInfo, bytes]:
    """The voice and the selector for espeak_SetVoiceByName (``<file>[+<variant file>]``)."""
    table = catalog()
    if voice:
        base_name, _, variant_name = voice.strip().partition("+")
        base = table.by_alias.get(base_name.strip().lower()) or table.by_language.get(
            base_name.strip().lower()
        )
        if base is None:
            raise UnknownVoiceError(f"unknown voice {voice!r} for generator 'espeak'")
    elif language:
        base = next(
            (
                table.by_language[tag]
                for tag in language_candidates(language)
                if tag in table.by_language
            ),
            None,
        )
        if base is None:
            raise UnknownVoiceError(f"no voice for language {language!r} in generator 'espeak'")
        variant_name = ""
    else:
        raise UnknownVoiceError("neither a voice nor a language was given")
    selector = base.attributes["identifier"]
    if not variant_name:
        return base, selector.encode()
    variant = table.variants.get(variant_name.strip().lower())
    if variant is None:
        # espeak silently ignores a variant it cannot load: refuse it here instead.
        raise UnknownVoiceError(f"unknown voice variant {variant_name!r} in voice {voice!r}")
    info = VoiceInfo(
        name=f"{base.name}+{variant.name}",
        language=base.language,
        gender=variant.gender,
        attributes={**base.attributes, "variant": variant.name, "base_voice": base.name},
    )
    return info, f"{selector}+{variant.name}".encode()
