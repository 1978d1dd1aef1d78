"""Consent for voices that imitate real people: records, the check a run makes before any work, the
append-only audit log, and what a revocation does to audio already made.

A record (``registry/consent/<id>.json``) says whose voice (``subject``), for which uses
(``scope``: catalog, audiobook, dataset, commercial, ...), from when until when, whether it was
revoked, and the sha256 of the evidence (the signed release form; the file itself stays with
legal). Object stores cannot append, so the audit log is one small JSON file per event
(``registry/audit/<UTC time>-<random>.json``): grant, revoke, import and quarantine/remove.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from audio_synth_core.errors import AudioSynthError
from audio_synth_core.store import ids, layout
from audio_synth_core.store.storage import Store

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
USES = ("catalog", "audiobook", "dataset", "commercial", "research", "training")


class ConsentError(AudioSynthError):
    """A voice lacks a valid consent for a use, or a consent record is unknown or invalid."""


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class ConsentRecord(BaseModel):
    """One subject's consent to the use of their voice."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_PATTERN)
    subject: str = Field(min_length=1, description="whose voice (a person's name or handle)")
    scope: list[str] = Field(min_length=1, description="allowed uses, e.g. catalog, audiobook")
    granted_at: dt.datetime
    expires_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    revocation_reason: str | None = None
    evidence_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @field_validator("granted_at", "expires_at", "revoked_at")
    @classmethod
    def _in_utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        return _utc(value)  # naive times are taken as UTC

    @field_validator("scope")
    @classmethod
    def _uses(cls, value: list[str]) -> list[str]:
        bad = [u for u in value if not re.match(r"^[a-z][a-z0-9_-]*$", u)]
        if bad:
            raise ValueError(f"uses must be lowercase words (e.g. {', '.join(USES)}); got {bad}")
        return sorted(set(value))

    @model_validator(mode="after")
    def _order(self) -> ConsentRecord:
        if self.expires_at is not None and self.expires_at <= self.granted_at:
            raise ValueError("expires_at must be after granted_at")
        return self

    def problem(self, use: str, now: dt.datetime) -> str | None:
        """Why this record does not allow ``use`` at ``now`` (None: it does)."""
        now = _utc(now)
        if self.revoked_at is not None and self.revoked_at <= now:
            return f"was revoked at {self.revoked_at.isoformat()}"
        if self.expires_at is not None and self.expires_at <= now:
            return f"expired at {self.expires_at.isoformat()}"
        if self.granted_at > now:
            return f"is only valid from {self.granted_at.isoformat()}"
        if use not in self.scope:
            return f"does not cover the use {use!r} (scope: {', '.join(self.scope)})"
        return None

    def active(self, now: dt.datetime) -> bool:
        """Granted, not expired and not revoked at ``now`` (for some use)."""
        return self.problem(self.scope[0], now) is None

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def parse_record(data: Any, what: str = "") -> ConsentRecord:
    """A ConsentRecord from a mapping; a ConsentError names every bad field."""
    if not isinstance(data, Mapping):
        raise ConsentError(f"consent record {what}: expected a mapping")
    try:
        return ConsentRecord.model_validate(dict(data))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise ConsentError(
            f"invalid consent record {what or data.get('id')!r}: {problems}"
        ) from None


def _now(now: dt.datetime | None) -> dt.datetime:
    return _utc(now) or dt.datetime.now(dt.UTC)


# --- registry ---


def list_records(store: Store) -> list[ConsentRecord]:
    """Every consent record in the registry, by id."""
    out = []
    for name in store.list(layout.consent_dir()):
        if name.endswith(".json") and ".tmp-" not in name:
            out.append(show(store, name.removesuffix(".json")))
    return out


def show(store: Store, consent_id: str) -> ConsentRecord:
    """One record; an unknown id is a ConsentError listing the known ones."""
    rel = layout.consent(consent_id)
    if not re.match(ID_PATTERN, consent_id) or not store.exists(rel):
        known = [
            n.removesuffix(".json") for n in store.list(layout.consent_dir()) if n.endswith(".json")
        ]
        raise ConsentError(
            f"unknown consent {consent_id!r} in registry {store.url}; known: {', '.join(known) or 'none'}"
        )
    return parse_record(store.read_json(rel), consent_id)


def audit(store: Store, action: str, **details: Any) -> str:
    """Append one entry to the audit log (a new file; never rewritten), stamped with the time it
    is written (so names sort in the order things happened); returns its path."""
    when = dt.datetime.now(dt.UTC)
    stamp = when.strftime("%Y%m%dT%H%M%S.%fZ")
    rel = layout.audit_entry(stamp, uuid.uuid4().hex[:8])
    store.write_json(rel, {"at": when.isoformat(), "action": action, **details})
    return rel


def audit_log(store: Store) -> list[dict[str, Any]]:
    """Every audit entry, oldest first."""
    folder = layout.audit_dir()
    return [store.read_json(f"{folder}/{n}") for n in store.list(folder) if n.endswith(".json")]


def consent_table(records: Sequence[ConsentRecord]) -> pa.Table:
    """Records as an Arrow table (what MLflow gets as Parquet, and ``registry/consent.parquet``)."""
    ts = pa.timestamp("us", tz="UTC")
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("subject", pa.string()),
            ("scope", pa.list_(pa.string())),
            ("granted_at", ts),
            ("expires_at", ts),
            ("revoked_at", ts),
            ("revocation_reason", pa.string()),
            ("evidence_sha256", pa.string()),
        ]
    )
    rows = [r.model_dump() for r in records]
    return pa.Table.from_pylist(rows, schema=schema)


def consent_parquet(records: Sequence[ConsentRecord]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(consent_table(records), buf)
    return buf.getvalue()


def _save(store: Store, record: ConsentRecord) -> None:
    store.write_bytes(
        layout.consent(record.id), json.dumps(record.as_json(), indent=2, sort_keys=True).encode()
    )


def _refresh_table(store: Store) -> None:
    store.write_table(layout.consent_table(), consent_table(list_records(store)))


def grant(
    store: Store,
    subject: str,
    scope: Iterable[str],
    evidence_sha256: str,
    expires_at: dt.datetime | None = None,
    granted_at: dt.datetime | None = None,
    consent_id: str | None = None,
    actor: str | None = None,
) -> ConsentRecord:
    """Record a consent (never overwriting one with the same id) and audit it."""
    from audio_synth_core.voices.personas import write_new

    granted = _now(granted_at)
    scope = list(scope)
    cid = (
        consent_id or f"consent-{ids.content_id(subject, sorted(scope), granted, evidence_sha256)}"
    )
    record = parse_record(
        {
            "id": cid,
            "subject": subject,
            "scope": scope,
            "granted_at": granted,
            "expires_at": expires_at,
            "evidence_sha256": evidence_sha256.lower(),
        },
        cid,
    )
    data = json.dumps(record.as_json(), indent=2, sort_keys=True).encode()
    if not write_new(store, layout.consent(record.id), data):
        raise ConsentError(f"consent {record.id!r} already exists in registry {store.url}")
    audit(store, "grant", consent_id=record.id, subject=subject, scope=record.scope, actor=actor)
    _refresh_table(store)
    return record


def revoke(
    store: Store,
    consent_id: str,
    reason: str | None = None,
    now: dt.datetime | None = None,
    actor: str | None = None,
) -> ConsentRecord:
    """Mark a consent revoked from ``now`` on and audit it. The next run into an output that holds
    audio made with it quarantines (or removes) that audio."""
    record = show(store, consent_id)
    if record.revoked_at is not None:
        raise ConsentError(f"consent {consent_id!r} was already revoked at {record.revoked_at}")
    when = _now(now)
    revoked = record.model_copy(update={"revoked_at": when, "revocation_reason": reason})
    _save(store, revoked)
    audit(
        store,
        "revoke",
        consent_id=consent_id,
        revoked_at=when.isoformat(),
        subject=record.subject,
        reason=reason,
        actor=actor,
    )
    _refresh_table(store)
    return revoked


def store_imported(store: Store, records: Sequence[ConsentRecord]) -> None:
    """Write consent records that came in a persona bundle (already checked) and audit them."""
    for record in records:
        _save(store, record)
        audit(store, "import", consent_id=record.id, subject=record.subject, scope=record.scope)
    _refresh_table(store)


# --- the checks a run makes ---


def require(
    records: Mapping[str, ConsentRecord] | Iterable[ConsentRecord],
    personas: Iterable[Any],
    use: str,
    now: dt.datetime | None = None,
) -> None:
    """Raise a ConsentError naming every persona (and its voice) that imitates a real person
    without a valid consent for ``use`` at ``now``: missing, expired, revoked, out of scope."""
    if not isinstance(records, Mapping):
        records = {r.id: r for r in records}
    when = _now(now)
    problems = []
    for persona in sorted(personas, key=lambda p: p.ref):
        if not persona.imitates_real_person:
            continue
        label = f"persona {persona.ref} (voice {persona.voice!r}, imitates a real person)"
        record = records.get(persona.consent_id or "")
        if record is None:
            problems.append(f"{label}: consent {persona.consent_id!r} does not exist")
            continue
        why = record.problem(use, when)
        if why:
            problems.append(f"{label}: consent {record.id!r} of {record.subject!r} {why}")
    if problems:
        raise ConsentError(
            f"no valid consent for the use {use!r}; nothing was generated:\n  "
            + "\n  ".join(problems)
        )


def revoked_at(
    records: Iterable[ConsentRecord], now: dt.datetime | None = None
) -> dict[str, dt.datetime]:
    """consent id -> when it was revoked, for the records revoked at ``now`` (a persona whose
    record is missing altogether is not revoked: the next plan's consent check names it)."""
    when = _now(now)
    return {
        r.id: r.revoked_at for r in records if r.revoked_at is not None and r.revoked_at <= when
    }


def registry_digest(store: Store, now: dt.datetime | None = None) -> str:
    """A hash of the registry's state as a plan sees it: which persona versions exist and which
    consent records are valid now. A run whose plan key includes it re-plans when a persona gets a
    version or a consent expires or is revoked."""
    from audio_synth_core.voices import personas

    listing = {name: personas.versions(store, name) for name in personas.names(store)}
    when = _now(now)
    states = {r.id: [r.as_json(), r.active(when)] for r in list_records(store)}
    return ids.digest(listing, states)
