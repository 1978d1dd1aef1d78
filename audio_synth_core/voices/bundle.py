"""Persona bundles: every version of all (or named) personas in one YAML or JSON document, with
the consent records they link to, so a registry can be copied, reviewed or kept in git.

Import checks everything before writing anything: one invalid persona, a link to a consent that is
neither in the bundle nor in the registry, or a version that already exists with other content
rejects the whole bundle, naming each problem. Versions keep their numbers (``name@2`` names the
same voice in every registry); an identical version already present is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from audio_synth_core.errors import AudioSynthError
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from audio_synth_core.voices import consent
from audio_synth_core.voices.personas import (
    Persona,
    PersonaError,
    check_buildable,
    dump_persona,
    names,
    parse_persona,
    parse_ref,
    read_version,
    resolve,
    versions,
    write_new,
)

BUNDLE_FORMAT = "audio-synth-personas"
BUNDLE_VERSION = 1


def export_bundle(
    store: Store, refs: Iterable[str] | None = None, with_consent: bool = True
) -> dict[str, Any]:
    """A bundle of personas: every version of every persona, or of the ``refs`` given (``name``
    for all its versions, ``name@N`` for one). With ``with_consent`` the consent records the
    personas link to travel along, so the bundle imports into a fresh registry."""
    chosen: dict[tuple[str, int], Persona] = {}
    wanted = list(refs) if refs else names(store)
    for ref in wanted:
        name, version = parse_ref(ref)
        if version is None:
            resolve(store, name)  # an unknown name is an error naming the known ones
            for persona in (read_version(store, name, v) for v in versions(store, name)):
                chosen[(name, persona.version)] = persona
        else:
            chosen[(name, version)] = resolve(store, ref)
    bundle: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_VERSION,
        "personas": [chosen[k].as_json() for k in sorted(chosen)],
    }
    if with_consent:
        linked = sorted({p.consent_id for p in chosen.values() if p.consent_id})
        bundle["consent"] = [consent.show(store, cid).as_json() for cid in linked]
    return bundle


def dump_bundle(bundle: Mapping[str, Any], path: str) -> bytes:
    """The bundle as YAML (``.yaml``/``.yml``) or JSON (anything else), by ``path``'s extension."""
    if path.lower().endswith((".yaml", ".yml")):
        return yaml.safe_dump(dict(bundle), sort_keys=False, allow_unicode=True).encode()
    return json.dumps(bundle, indent=2).encode()


def load_bundle(data: bytes | str) -> dict[str, Any]:
    """A bundle from YAML or JSON text (JSON is YAML)."""
    try:
        bundle = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise PersonaError(f"persona bundle is neither YAML nor JSON: {exc}") from None
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise PersonaError(f"not a persona bundle: expected a mapping with format: {BUNDLE_FORMAT}")
    if not isinstance(bundle.get("personas"), list):
        raise PersonaError("persona bundle has no 'personas' list")
    return bundle


def _check_bundle(store: Store, bundle: Mapping[str, Any]) -> tuple[list[Persona], list[Any]]:
    """Every persona and consent record of the bundle, validated against each other and the
    registry; one PersonaError listing every problem."""
    problems: list[str] = []
    personas: list[Persona] = []
    records = []
    for i, raw in enumerate(bundle.get("consent") or []):
        try:
            records.append(consent.parse_record(raw, f"#{i + 1} of the bundle"))
        except AudioSynthError as exc:
            problems.append(str(exc))
    for i, raw in enumerate(bundle["personas"]):
        if not isinstance(raw, dict):
            problems.append(f"persona #{i + 1}: expected a mapping")
            continue
        try:
            persona = parse_persona(raw, f"#{i + 1} ({raw.get('name')}@{raw.get('version')})")
            check_buildable(persona)
        except PersonaError as exc:
            problems.append(str(exc))
            continue
        personas.append(persona)
    refs = [p.ref for p in personas]
    problems += [
        f"persona {r} appears twice" for r in sorted({r for r in refs if refs.count(r) > 1})
    ]
    bundled = {r.id: r for r in records}
    for record in records:
        if store.exists(layout.consent(record.id)):
            mine = consent.show(store, record.id)
            if mine != record:
                problems.append(f"consent {record.id!r} differs from the one in the registry")
    for persona in personas:
        linked = persona.consent_id
        if linked and linked not in bundled and not store.exists(layout.consent(linked)):
            problems.append(
                f"persona {persona.ref} links to consent {linked!r}, which is "
                "neither in the bundle nor in the registry"
            )
        rel = layout.persona(persona.name, persona.version)
        if store.exists(rel) and read_version(store, persona.name, persona.version) != persona:
            problems.append(f"persona {persona.ref} already exists in the registry and differs")
    if problems:
        raise PersonaError("persona bundle rejected, nothing imported:\n  " + "\n  ".join(problems))
    return personas, records


def import_bundle(store: Store, bundle: Mapping[str, Any] | bytes | str) -> dict[str, list[str]]:
    """Import a bundle: everything is validated before anything is written (a PersonaError lists
    every invalid persona or consent record and every conflicting existing version). Identical
    versions already present are skipped. Returns the refs and consent ids written and skipped."""
    if not isinstance(bundle, Mapping):
        bundle = load_bundle(bundle)
    else:
        bundle = load_bundle(json.dumps(dict(bundle), default=str))
    personas, records = _check_bundle(store, bundle)
    written: list[str] = []
    skipped: list[str] = []
    new_records = [r for r in records if not store.exists(layout.consent(r.id))]
    if new_records:
        consent.store_imported(store, new_records)
    skipped += [r.id for r in records if r not in new_records]
    written += [r.id for r in new_records]
    for persona in personas:
        if write_new(store, layout.persona(persona.name, persona.version), dump_persona(persona)):
            written.append(persona.ref)
        elif read_version(store, persona.name, persona.version) == persona:
            skipped.append(persona.ref)
        else:  # written by someone else since the check
            raise PersonaError(f"persona {persona.ref} was written concurrently and differs")
    return {"written": written, "skipped": skipped}
