"""Voice personas: named, versioned voice presets (generator, voice, parameters, attributes, and the
consent that lets a voice imitating a real person be used), kept in a registry on any fsspec store.

A persona version is written once and never changed (``registry/personas/<name>/v<N>.json``):
editing a persona creates version N+1, so ``name@N`` names the same voice forever and items made
with it stay reproducible. ``name@latest`` (or ``name``) follows the newest version.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from audio_synth_core.errors import AudioSynthError, UnknownVoiceError
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_VERSION_FILE = re.compile(r"^v([1-9][0-9]*)\.json$")
# How often ``create`` retries when another writer took the version number it chose.
_CREATE_ATTEMPTS = 5


class PersonaError(AudioSynthError):
    """A persona is unknown, invalid, or conflicts with one already in the registry."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PersonaAttributes(_Strict):
    """Who the voice sounds like: what fairness breakdowns and voice pickers read."""

    gender: str | None = None
    age_band: str | None = None
    accent: str | None = None
    language: str | None = None
    description: str | None = None


class PersonaSpec(_Strict):
    """What a user gives to create a persona (the registry assigns version and time)."""

    name: str = Field(pattern=NAME_PATTERN)
    generator: str = "espeak"
    voice: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    attributes: PersonaAttributes = PersonaAttributes()
    imitates_real_person: bool = False
    consent_id: str | None = None

    @model_validator(mode="after")
    def _consent_for_real_people(self) -> PersonaSpec:
        if self.imitates_real_person and not self.consent_id:
            raise ValueError(
                f"persona {self.name!r} imitates a real person: it needs a consent_id "
                "(grant one with `audio-synth consent grant`)"
            )
        return self


class Persona(PersonaSpec):
    """One stored version of a persona."""

    version: int = Field(ge=1)
    created_at: dt.datetime

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)

    @property
    def ref(self) -> str:
        """``name@version``: what items record and ids include."""
        return f"{self.name}@{self.version}"

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _describe(exc: ValidationError, what: str) -> str:
    problems = "; ".join(
        f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors()
    )
    return f"invalid persona {what}: {problems}"


def parse_spec(data: Mapping[str, Any] | PersonaSpec, what: str = "") -> PersonaSpec:
    """A PersonaSpec from a mapping; a PersonaError names every bad field."""
    if isinstance(data, PersonaSpec):
        return data
    try:
        return PersonaSpec.model_validate(dict(data))
    except ValidationError as exc:
        raise PersonaError(_describe(exc, what or repr(dict(data).get("name")))) from None


def parse_persona(data: Mapping[str, Any], what: str = "") -> Persona:
    """A stored Persona from a mapping; a PersonaError names every bad field."""
    try:
        return Persona.model_validate(dict(data))
    except ValidationError as exc:
        name = dict(data).get("name")
        label = what or f"{name}@{dict(data).get('version')}" if name else what or "(unnamed)"
        raise PersonaError(_describe(exc, label)) from None


def check_buildable(spec: PersonaSpec) -> None:
    """The persona's generator exists, accepts its parameters and offers its voice (what its
    generator's own parameter model says, via ``build_generator``)."""
    from audio_synth_core.generators.base import build_generator

    label = f"{spec.name!r}"
    try:
        generator = build_generator(spec.generator, spec.params)
    except (TypeError, ValueError, AudioSynthError) as exc:
        raise PersonaError(f"persona {label}: {exc}") from None
    try:
        generator.resolve_voice(spec.voice, None)
    except UnknownVoiceError as exc:
        raise PersonaError(f"persona {label}: {exc}") from None


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``name@2`` -> (name, 2); ``name@latest`` and ``name`` -> (name, None)."""
    name, _, version = ref.strip().partition("@")
    if not re.match(NAME_PATTERN, name):
        raise PersonaError(
            f"invalid persona reference {ref!r}: expected name, name@N or name@latest "
            "(names: lowercase letters, digits, '.', '_', '-')"
        )
    if version in ("", "latest"):
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise PersonaError(
            f"invalid persona reference {ref!r}: the version must be a number >= 1 or 'latest'"
        )
    return name, int(version)


def names(store: Store) -> list[str]:
    """Names of the personas in the registry."""
    return [n for n in store.list(layout.personas_dir()) if re.match(NAME_PATTERN, n)]


def versions(store: Store, name: str) -> list[int]:
    """Versions of ``name``, ascending (empty when unknown)."""
    found = (_VERSION_FILE.match(n) for n in store.list(layout.persona_dir(name)))
    return sorted(int(m.group(1)) for m in found if m)


def read_version(store: Store, name: str, version: int) -> Persona:
    rel = layout.persona(name, version)
    try:
        data = store.read_json(rel)
    except json.JSONDecodeError as exc:
        raise PersonaError(f"persona file {store.uri(rel)} is not valid JSON: {exc}") from None
    persona = parse_persona(data, f"{name}@{version} ({store.uri(rel)})")
    if (persona.name, persona.version) != (name, version):
        raise PersonaError(
            f"persona file {store.uri(rel)} holds {persona.ref}, not {name}@{version}"
        )
    return persona


def resolve(store: Store, ref: str) -> Persona:
    """The persona ``ref`` names (``name@2``, ``name@latest``, ``name``); a PersonaError names an
    unknown name (listing the known ones) or an unknown version (listing its versions)."""
    name, version = parse_ref(ref)
    have = versions(store, name)
    if not have:
        known = ", ".join(names(store)) or "none"
        raise PersonaError(f"unknown persona {name!r} in registry {store.url}; known: {known}")
    if version is None:
        version = have[-1]
    elif version not in have:
        listed = ", ".join(f"{name}@{v}" for v in have)
        raise PersonaError(f"persona {name!r} has no version {version}; versions: {listed}")
    return read_version(store, name, version)


def show(store: Store, ref: str) -> Persona:
    return resolve(store, ref)


def list_personas(store: Store, all_versions: bool = False) -> list[Persona]:
    """The latest version of every persona (``all_versions``: every version), by name."""
    out = []
    for name in names(store):
        have = versions(store, name)
        out.extend(read_version(store, name, v) for v in (have if all_versions else have[-1:]))
    return out


def write_new(store: Store, rel: str, data: bytes) -> bool:
    """Write ``rel`` only if it does not exist yet; False when it does. Locally the bytes go to a
    temporary name and are hard-linked into place (linking never replaces an existing file); on
    object stores one PUT follows an existence check (there, two writers racing for the same
    name within milliseconds can both succeed: the last one wins)."""
    if not store.is_local:
        if store.exists(rel):
            return False
        store.write_bytes(rel, data)
        return True
    target = store.path(rel)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = f"{target}.tmp-{uuid.uuid4().hex}"
    with open(tmp, "wb") as fh:
        fh.write(data)
    try:
        os.link(tmp, target)
    except FileExistsError:
        return False
    finally:
        os.remove(tmp)
    return True


def dump_persona(persona: Persona) -> bytes:
    return json.dumps(persona.as_json(), indent=2, sort_keys=True).encode()


def create(
    store: Store,
    spec: Mapping[str, Any] | PersonaSpec,
    now: dt.datetime | None = None,
    check_consent: bool = True,
) -> Persona:
    """Save a new version of a persona (latest + 1; version 1 for a new name) and return it.

    The spec is checked first: its generator builds with its parameters and offers its voice, and
    a persona imitating a real person links to a consent record that exists in this registry."""
    spec = parse_spec(spec)
    check_buildable(spec)
    if check_consent and spec.consent_id:
        from audio_synth_core.voices import consent

        consent.show(store, spec.consent_id)  # a ConsentError names an unknown id
    created_at = now or dt.datetime.now(dt.UTC)
    for _ in range(_CREATE_ATTEMPTS):
        have = versions(store, spec.name)
        version = have[-1] + 1 if have else 1
        persona = Persona(**spec.model_dump(), version=version, created_at=created_at)
        if write_new(store, layout.persona(spec.name, version), dump_persona(persona)):
            return persona
    raise PersonaError(f"persona {spec.name!r}: could not claim a new version (concurrent writers)")


def registry_store(url: str | None, output: Store) -> Store:
    """The registry a run reads: its own URL (with the output's storage options) or the output."""
    return Store(url, output.storage_options) if url else output


def apply(persona: Persona, generator: Any) -> tuple[str, str, dict[str, Any]]:
    """What a persona means for one run's ``generator``: (voice, language, generator parameters:
    the generator's own overlaid with the persona's). A PersonaError when the persona belongs to
    another generator, its voice is not offered, or it sets a parameter the generator cannot vary
    per item (items are generated with the run's generator, one request at a time)."""
    if persona.generator != generator.name:
        raise PersonaError(
            f"persona {persona.ref} is made for generator {persona.generator!r}, but this run "
            f"uses {generator.name!r}"
        )
    try:
        info = generator.resolve_voice(persona.voice, None)
    except UnknownVoiceError as exc:
        raise PersonaError(f"persona {persona.ref}: {exc}") from None
    base = dict(generator.describe()["params"])
    changed = sorted(k for k, v in persona.params.items() if base.get(k) != v)
    fixed = [k for k in changed if k not in generator.per_request_params]
    if fixed:
        raise PersonaError(
            f"persona {persona.ref} sets {fixed}, which generator {generator.name!r} cannot vary "
            f"per item (it can vary: {sorted(generator.per_request_params) or 'nothing'})"
        )
    language = persona.attributes.language or info.language
    return info.name, language, {**base, **persona.params}


# (persona, voice, language, generator params as canonical JSON)
Choice = tuple[Persona, str, str, str]


class PersonaChoices:
    """What each persona reference of one plan means for its generator, resolved once per
    reference (so ``name@latest`` is one version for the whole plan): a ``Choice`` or the reason
    it cannot be used (a row naming it becomes a failed item). Every planner uses this."""

    def __init__(self, registry: Store | None, generator: Any) -> None:
        self.registry = registry
        self.generator = generator
        self._choices: dict[str, Choice | str] = {}

    def choose(self, ref: str) -> Choice | str:
        if ref not in self._choices:
            try:
                if self.registry is None:
                    raise PersonaError("no persona registry is configured")
                persona = resolve(self.registry, ref)
                voice, language, params = apply(persona, self.generator)
                self._choices[ref] = (persona, voice, language, json.dumps(params, sort_keys=True))
            except PersonaError as exc:
                self._choices[ref] = str(exc)
        return self._choices[ref]

    def used(self) -> list[Persona]:
        """Every persona chosen so far (what the consent check looks at)."""
        return [c[0] for c in self._choices.values() if not isinstance(c, str)]

    def require_consent(self, use: str) -> None:
        """A ConsentError naming every chosen persona that imitates a real person without a
        valid consent for ``use`` (missing, expired, revoked, out of scope)."""
        from audio_synth_core.voices import consent

        used = self.used()
        if self.registry is not None and any(p.imitates_real_person for p in used):
            consent.require(consent.list_records(self.registry), used, use)
