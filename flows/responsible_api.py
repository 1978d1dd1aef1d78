"""The Python API of responsible synthesis: watermark detection, run verification, voice personas
and consent records. ``flows.api`` re-exports every public name here (what a notebook imports)."""

from __future__ import annotations

from typing import Any

from audio_synth_core.store.storage import Store
from flows.redaction import redacting


def detect(
    path_or_url: str,
    lookup: str | None = None,
    key_file: str | None = None,
    threshold_z: float | None = None,
    **storage_options: Any,
) -> list[dict[str, Any]]:
    """Look for this installation's watermark in a file or every audio file under a folder or
    prefix: per file ``detected``, ``confidence``, ``z``, ``payload``; with ``lookup`` (an output
    URL) also ``matches``, the run and item each payload names. The key comes from ``key_file``,
    else $AUDIO_SYNTH_WATERMARK_KEY, else the one runs created under $AUDIO_SYNTH_HOME/keys/
    (never created here)."""
    from audio_synth_core.watermark import THRESHOLD_Z
    from flows.watermarking import detect_paths, detection_key

    key = detection_key(key_file)
    with redacting(path_or_url, lookup):
        return detect_paths(
            path_or_url, key, lookup, threshold_z or THRESHOLD_Z, storage_options or None
        )


# Personas and consent (audio_synth_core/voices/): ``registry`` is an output root (the registry
# lives under its registry/ folder), local or any fsspec URL.


def _registry(registry: str, storage_options: dict[str, Any]) -> Store:
    return Store(registry, storage_options)


def personas_list(registry: str, all_versions: bool = False, **storage_options: Any) -> list:
    """The latest version of every persona (``all_versions``: every version), by name."""
    from audio_synth_core.voices import personas

    with redacting(storage_options):
        return personas.list_personas(_registry(registry, storage_options), all_versions)


def personas_show(registry: str, ref: str, **storage_options: Any):
    """The persona ``ref`` names (``name@2``, ``name@latest``, ``name``); a PersonaError names an
    unknown name or version and lists the known ones."""
    from audio_synth_core.voices import personas

    with redacting(storage_options):
        return personas.resolve(_registry(registry, storage_options), ref)


def personas_create(registry: str, spec: dict[str, Any] | str, **storage_options: Any):
    """Save a new version of a persona (a mapping, or a YAML/JSON file of one): name, generator,
    voice, params, attributes, imitates_real_person, consent_id. Returns the stored Persona."""
    from audio_synth_core.voices import personas

    if isinstance(spec, str):
        spec = _read_yaml_file(spec)
    with redacting(storage_options):
        return personas.create(_registry(registry, storage_options), spec)


def personas_export(
    registry: str,
    path: str | None = None,
    refs: list[str] | None = None,
    with_consent: bool = True,
    **storage_options: Any,
) -> dict[str, Any]:
    """A bundle of all personas (or of ``refs``: ``name`` or ``name@N``) with the consent records
    they link to; written to ``path`` too when given (YAML for .yaml/.yml, else JSON)."""
    from audio_synth_core.voices import bundle as bundles

    with redacting(storage_options):
        bundle = bundles.export_bundle(_registry(registry, storage_options), refs, with_consent)
        if path:
            _write_file(path, bundles.dump_bundle(bundle, path))
    return bundle


def personas_import(
    registry: str, bundle: dict[str, Any] | str, **storage_options: Any
) -> dict[str, list[str]]:
    """Import a bundle (a mapping or a YAML/JSON file): everything is validated first, and one
    invalid persona or conflicting version rejects the whole bundle, writing nothing."""
    from audio_synth_core.voices import bundle as bundles

    with redacting(storage_options):
        data = bundles.load_bundle(_read_file(bundle)) if isinstance(bundle, str) else bundle
        return bundles.import_bundle(_registry(registry, storage_options), data)


def consent_grant(
    registry: str,
    subject: str,
    scope: list[str],
    evidence: str | None = None,
    evidence_sha256: str | None = None,
    expires_at: Any = None,
    consent_id: str | None = None,
    **storage_options: Any,
):
    """Record a subject's consent for the uses in ``scope``; ``evidence`` is the signed release's
    file (its sha256 is stored, not the file) or give ``evidence_sha256``. Audited."""
    import hashlib

    from audio_synth_core.voices import consent

    if (evidence is None) == (evidence_sha256 is None):
        raise consent.ConsentError("give exactly one of evidence (a file) or evidence_sha256")
    if evidence is not None:
        evidence_sha256 = hashlib.sha256(_read_file(evidence)).hexdigest()
    if isinstance(expires_at, str):
        expires_at = _parse_time(expires_at, "expires_at")
    with redacting(storage_options):
        return consent.grant(
            _registry(registry, storage_options),
            subject,
            scope,
            evidence_sha256,
            expires_at=expires_at,
            consent_id=consent_id,
        )


def consent_revoke(
    registry: str, consent_id: str, reason: str | None = None, **storage_options: Any
):
    """Revoke a consent from now on (audited). The next catalog run into an output with audio
    made with it quarantines or removes that audio (``consent.on_revoked``)."""
    from audio_synth_core.voices import consent

    with redacting(storage_options):
        return consent.revoke(_registry(registry, storage_options), consent_id, reason)


def consent_list(registry: str, **storage_options: Any) -> list:
    """Every consent record in the registry, by id."""
    from audio_synth_core.voices import consent

    with redacting(storage_options):
        return consent.list_records(_registry(registry, storage_options))


def consent_show(registry: str, consent_id: str, **storage_options: Any):
    """One consent record; an unknown id is a ConsentError listing the known ones."""
    from audio_synth_core.voices import consent

    with redacting(storage_options):
        return consent.show(_registry(registry, storage_options), consent_id)


def _read_file(url: str) -> bytes:
    import fsspec

    from audio_synth_core.errors import ConfigError

    try:
        with fsspec.open(url, "rb") as fh:
            return fh.read()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {url!r}: {exc}") from None


def _read_yaml_file(url: str) -> Any:
    import yaml

    from audio_synth_core.errors import ConfigError

    try:
        return yaml.safe_load(_read_file(url))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{url!r} is not valid YAML or JSON: {exc}") from None


def _write_file(url: str, data: bytes) -> None:
    """Write a whole file atomically (local: temporary name then rename; else one PUT)."""
    parent, _, name = url.rstrip("/").rpartition("/")
    Store(parent or ".").write_bytes(name, data)


def _parse_time(value: str, what: str) -> Any:
    import datetime as dt

    from audio_synth_core.errors import ConfigError

    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{what}: {value!r} is not an ISO 8601 date or time") from None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed


def verify_output(
    output: str,
    run_id: str | None = None,
    public_key: str | bytes | None = None,
    **storage_options: Any,
) -> dict[str, Any]:
    """Check a run under ``output`` (default: its last complete run) against its signed listing:
    the Ed25519 signature, every listed file's sha256, and files under the run that are not
    listed. ``public_key``: PEM bytes or text, or a PEM file's path (default: the key stored with the
    run, which proves integrity but not who signed). Returns ``ok`` plus the ``tampered``, ``missing``
    and ``extra`` files and one line per ``problems``."""
    from pathlib import Path

    from audio_synth_core.errors import ConfigError
    from audio_synth_core.provenance.verify import verify_run

    pem = (
        public_key.encode()
        if isinstance(public_key, str) and "-----BEGIN" in public_key
        else public_key
    )
    if isinstance(pem, str):
        try:
            pem = Path(public_key).expanduser().read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read public key {public_key!r}: {exc.strerror}") from None
    with redacting(storage_options):
        store = Store(output, storage_options)
        return verify_run(store, run_id, pem).as_dict()
