"""``audio-synth personas list|show|create|export|import`` and ``audio-synth consent
grant|revoke|list|show``: the registry of voice personas and consent records on an output.

Every command takes ``--registry URL`` (an output root; the registry is its ``registry/`` folder)
or, for short, ``--output URL`` (the output a run writes to, whose registry runs read by default).
Bad input exits 2 with one ``error:`` line, like every other command.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer

personas_app = typer.Typer(help="Named, versioned voice personas.", no_args_is_help=True)
consent_app = typer.Typer(
    help="Consent records for voices that imitate real people.", no_args_is_help=True
)

RegistryOpt = Annotated[
    str | None,
    typer.Option(
        "--registry",
        "-r",
        help="Registry location: an output root (folder, s3://bucket/prefix or fsspec URL). "
        "Default: --output.",
    ),
]
OutputOpt = Annotated[
    str | None,
    typer.Option("--output", "-o", help="The output whose registry to use (runs read it there)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _call(action: Callable[[], Any]) -> Any:
    """Run ``action``: bad input exits 2 with one line, anything else 1 (flows.cli's rules)."""
    from audio_synth_core.errors import AudioSynthError
    from flows.cli import _crash, _fail

    try:
        return action()
    except typer.Exit:  # already reported (bad command-line input)
        raise
    except AudioSynthError as exc:
        _fail(exc)
    except Exception as exc:
        _crash(exc)


def _bad(message: str) -> NoReturn:
    """Bad command-line input: exit 2 with one line."""
    from audio_synth_core.errors import ConfigError
    from flows.cli import _fail

    _fail(ConfigError(message))


def _where(registry: str | None, output: str | None) -> str:
    if not (registry or output):
        _bad("give --registry URL or --output URL")
    return registry or output


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=1, default=str))


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


@personas_app.command("list")
def personas_list(
    registry: RegistryOpt = None,
    output: OutputOpt = None,
    all_versions: Annotated[
        bool, typer.Option("--all", help="Every version, not only the latest.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List personas (latest versions)."""
    from flows import api

    found = _call(lambda: api.personas_list(_where(registry, output), all_versions))
    if as_json:
        _echo_json([p.as_json() for p in found])
        return
    rows = [
        [
            p.ref,
            p.generator,
            p.voice,
            json.dumps(p.params, sort_keys=True),
            p.attributes.gender or "",
            p.attributes.language or "",
            p.consent_id or ("-" if not p.imitates_real_person else "MISSING"),
        ]
        for p in found
    ]
    columns = ["persona", "generator", "voice", "params", "gender", "language", "consent"]
    _table(f"{len(found)} personas", columns, rows)


@personas_app.command("show")
def personas_show(
    ref: Annotated[str, typer.Argument(help="name, name@N or name@latest.")],
    registry: RegistryOpt = None,
    output: OutputOpt = None,
) -> None:
    """Print one persona version as JSON."""
    from flows import api

    _echo_json(_call(lambda: api.personas_show(_where(registry, output), ref)).as_json())


def _param(text: str) -> tuple[str, Any]:
    """``key=value``; the value is read as YAML (``60`` is a number, ``true`` a boolean)."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        _bad(f"--param {text!r}: expected key=value")
    return key.strip(), yaml.safe_load(value)


@personas_app.command("create")
def personas_create(
    name: Annotated[str | None, typer.Argument(help="Persona name (lowercase).")] = None,
    voice: Annotated[str | None, typer.Option(help="Generator voice, e.g. en-us+f3.")] = None,
    generator: Annotated[str, typer.Option(help="Generator plug-in.")] = "espeak",
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Generator parameter key=value (repeatable)."),
    ] = None,
    gender: Annotated[str | None, typer.Option()] = None,
    age_band: Annotated[str | None, typer.Option("--age-band")] = None,
    accent: Annotated[str | None, typer.Option()] = None,
    language: Annotated[str | None, typer.Option()] = None,
    description: Annotated[str | None, typer.Option()] = None,
    real_person: Annotated[
        bool,
        typer.Option("--imitates-real-person", help="The voice imitates a real person."),
    ] = False,
    consent_id: Annotated[
        str | None, typer.Option("--consent", help="Consent id (required for a real person).")
    ] = None,
    from_file: Annotated[
        str | None,
        typer.Option("--from", help="YAML/JSON file with the whole spec (options override it)."),
    ] = None,
    edit: Annotated[
        bool,
        typer.Option(
            "--edit",
            help="Start from the latest version of NAME (options change only what they name).",
        ),
    ] = False,
    registry: RegistryOpt = None,
    output: OutputOpt = None,
) -> None:
    """Save a new version of a persona (version 1 for a new name, else latest + 1)."""
    from flows import api, responsible_api

    spec: dict[str, Any] = {}
    where = _where(registry, output)
    if edit:
        if not name:
            _bad("--edit needs the persona NAME")
        latest = _call(lambda: api.personas_show(where, f"{name}@latest")).as_json()
        spec = {k: v for k, v in latest.items() if k not in ("version", "created_at")}
    if from_file:
        loaded = _call(lambda: responsible_api._read_yaml_file(from_file))
        spec |= dict(loaded) if isinstance(loaded, dict) else {}
    attributes = dict(spec.get("attributes") or {})
    given = {
        "gender": gender,
        "age_band": age_band,
        "accent": accent,
        "language": language,
        "description": description,
    }
    attributes |= {k: v for k, v in given.items() if v is not None}
    params = dict(spec.get("params") or {}) | dict(_param(p) for p in param or [])
    overrides = {"name": name, "voice": voice, "consent_id": consent_id}
    spec |= {k: v for k, v in overrides.items() if v is not None}
    spec.setdefault("generator", generator)
    spec |= {"params": params, "attributes": attributes}
    if real_person:
        spec["imitates_real_person"] = True
    persona = _call(lambda: api.personas_create(where, spec))
    typer.echo(f"created {persona.ref}")


@personas_app.command("export")
def personas_export(
    path: Annotated[
        str, typer.Argument(help="Bundle file to write (.yaml/.yml: YAML, else JSON).")
    ],
    refs: Annotated[
        list[str] | None, typer.Argument(help="Personas to export: name or name@N (default: all).")
    ] = None,
    no_consent: Annotated[
        bool, typer.Option("--no-consent", help="Leave out the linked consent records.")
    ] = False,
    registry: RegistryOpt = None,
    output: OutputOpt = None,
) -> None:
    """Write all (or the named) personas, every version, to one bundle file."""
    from flows import api

    where = _where(registry, output)
    bundle = _call(lambda: api.personas_export(where, path, refs or None, not no_consent))
    typer.echo(
        f"exported {len(bundle['personas'])} persona versions and "
        f"{len(bundle.get('consent', []))} consent records to {path}"
    )


@personas_app.command("import")
def personas_import(
    path: Annotated[str, typer.Argument(help="Bundle file (YAML or JSON).")],
    registry: RegistryOpt = None,
    output: OutputOpt = None,
) -> None:
    """Import a bundle; it is checked whole first and nothing is written if any part is invalid."""
    from flows import api

    result = _call(lambda: api.personas_import(_where(registry, output), path))
    typer.echo(
        f"imported {len(result['written'])} ({', '.join(result['written']) or 'nothing new'}); "
        f"already present {len(result['skipped'])}"
    )


@consent_app.command("grant")
def consent_grant(
    subject: Annotated[str, typer.Option(help="Whose voice (name or handle).")],
    scope: Annotated[
        list[str],
        typer.Option(help="Allowed use (repeatable or comma-separated): catalog, audiobook, ..."),
    ],
    evidence: Annotated[
        str | None, typer.Option(help="The signed release file (only its sha256 is stored).")
    ] = None,
    evidence_sha256: Annotated[
        str | None, typer.Option("--evidence-sha256", help="sha256 of the evidence file.")
    ] = None,
    expires: Annotated[
        str | None, typer.Option(help="Expiry, ISO 8601 (e.g. 2027-12-31T00:00:00Z).")
    ] = None,
    consent_id: Annotated[str | None, typer.Option("--id", help="Id (default: derived).")] = None,
    registry: RegistryOpt = None,
    output: OutputOpt = None,
) -> None:
    """Record a consent (audited)."""
    from flows import api

    uses = [u.strip() for s in scope for u in s.split(",") if u.strip()]
    record = _call(
        lambda: api.consent_grant(
            _where(registry, output), subject, uses, evidence, evidence_sha256, expires, consent_id
        )
    )
    typer.echo(f"granted {record.id} for {record.subject}: {', '.join(record.scope)}")


@consent_app.command("revoke")
def consent_revoke(
    consent_id: Annotated[str, typer.Argument(help="Consent id.")],
    reason: Annotated[str | None, typer.Option(help="Why (goes into the audit log).")] = None,
    registry: RegistryOpt = None,
    output: OutputOpt = None,
) -> None:
    """Revoke a consent (audited); the next run quarantines or removes audio made with it."""
    from flows import api

    record = _call(lambda: api.consent_revoke(_where(registry, output), consent_id, reason))
    typer.echo(f"revoked {record.id} ({record.subject}) at {record.revoked_at.isoformat()}")


@consent_app.command("list")
def consent_list(
    registry: RegistryOpt = None, output: OutputOpt = None, as_json: JsonOpt = False
) -> None:
    """List consent records and whether each is valid now."""
    import datetime as dt

    from flows import api

    records = _call(lambda: api.consent_list(_where(registry, output)))
    if as_json:
        _echo_json([r.as_json() for r in records])
        return
    now = dt.datetime.now(dt.UTC)

    def state(r: Any) -> str:
        return "valid" if r.active(now) else r.problem(r.scope[0], now)

    def when(t: Any) -> str:
        return t.isoformat(timespec="seconds") if t else ""

    rows = [
        [r.id, r.subject, ", ".join(r.scope), when(r.granted_at), when(r.expires_at), state(r)]
        for r in records
    ]
    columns = ["id", "subject", "scope", "granted", "expires", "state"]
    _table(f"{len(records)} consent records", columns, rows)


@consent_app.command("show")
def consent_show(
    consent_id: Annotated[str, typer.Argument(help="Consent id.")],
    registry: RegistryOpt = None,
    output: OutputOpt = None,
) -> None:
    """Print one consent record as JSON."""
    from flows import api

    _echo_json(_call(lambda: api.consent_show(_where(registry, output), consent_id)).as_json())


def register(app: typer.Typer) -> None:
    app.add_typer(personas_app, name="personas")
    app.add_typer(consent_app, name="consent")
