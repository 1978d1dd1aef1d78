"""The ``audio-synth`` command line.

Bad input exits 2 with one ``error: ...`` line, a failed gate exits 3, an unexpected failure exits 1
with one line too. Tracebacks go to ``$AUDIO_SYNTH_HOME/logs/errors.log`` (the line says where) and,
with ``--debug``, to the terminal as well.
"""

from __future__ import annotations

import datetime
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from audio_synth_core.config.secrets import redact_text
from audio_synth_core.errors import AudioSynthError
from flows.runtime import configure_environment, console_tracebacks, state_home

app = typer.Typer(
    help="Synthesize audio at scale and prove every file is fit for use.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


_DEBUG = {"on": False}


@app.callback()
def _environment(
    debug: Annotated[
        bool, typer.Option("--debug", help="Print full tracebacks of errors (always logged).")
    ] = False,
) -> None:
    """Safe defaults (state under ./.audio-synth, no telemetry) before Prefect is imported."""
    _DEBUG["on"] = debug
    configure_environment()
    console_tracebacks(debug)  # Prefect's own traceback of a failed flow: only with --debug


OutputOpt = Annotated[
    str | None,
    typer.Option(
        "--output",
        "-o",
        help="Where outputs go: a folder, s3://bucket/prefix or any fsspec URL. Overrides output.url.",
    ),
]
DaskOpt = Annotated[
    str | None,
    typer.Option(
        "--dask-address",
        help="Use an existing Dask scheduler (tcp://host:8786) instead of a LocalCluster.",
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers", "-w", min=1, help="LocalCluster worker processes (default: one per core)."
    ),
]


def _log_traceback(exc: BaseException) -> Path | None:
    """Append ``exc``'s traceback (credentials scrubbed) to the error log; its path, or None when
    the log cannot be written (the error line still appears)."""
    path = state_home() / "logs" / "errors.log"
    text = redact_text("".join(traceback.format_exception(exc)))
    stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"--- {stamp} {' '.join(sys.argv)}\n{text}\n")
    except OSError:
        return None
    return path


def _fail(exc: BaseException, code: int = 2, prefix: str = "error") -> NoReturn:
    """One line naming the problem (where the traceback went); the traceback with --debug."""
    where = _log_traceback(exc)
    first, newline, rest = redact_text(str(exc) or type(exc).__name__).partition("\n")
    # On the error line itself: a config error lists its bad fields on the lines below.
    message = f"{first} [traceback: {where}]{newline}{rest}" if where else f"{first}{newline}{rest}"
    if _DEBUG["on"]:
        traceback.print_exception(exc, file=sys.stderr)
    typer.secho(f"{prefix}: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _crash(exc: Exception) -> NoReturn:
    """An error that is not bad input (a bug, a crashed dependency): exit 1, still one line."""
    _fail(exc, 1, f"error: unexpected {type(exc).__name__}")


def _gate_failure(exc: AudioSynthError) -> dict | None:
    """The manifest of a failed gate, else None. flows.outcome is only imported by a flow run (its
    import costs seconds), so a GateFailed can only exist when that module is loaded."""
    outcome = sys.modules.get("flows.outcome")
    if outcome is not None and isinstance(exc, outcome.GateFailed):
        return exc.manifest
    return None


@app.command()
def run(
    config: Annotated[
        str, typer.Argument(help="YAML run configuration, e.g. configs/catalog-demo.yaml.")
    ],
    output: OutputOpt = None,
    dask_address: DaskOpt = None,
    workers: WorkersOpt = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Only plan: print what a run would do; write nothing."),
    ] = False,
) -> None:
    """Generate audio for a text catalog: audio files + Parquet metadata + an MLflow run."""
    from flows.api import preview_catalog, run_catalog

    if not dry_run:
        _report(lambda: run_catalog(config, output, dask_address=dask_address, workers=workers))
        return
    try:
        p = preview_catalog(config, output)
    except AudioSynthError as exc:
        _fail(exc)
    except Exception as exc:
        _crash(exc)
    state = "already complete" if p["complete"] else f"{p['to_generate']} items to generate"
    typer.echo(f"dry run {p['run_id']}: {state}, nothing written")
    typer.echo(f"items {p['items']} in {p['shards']} shards of {p['items_per_shard']}")
    typer.echo(f"changes {p['changes']} against {p['previous_run_id'] or 'no previous run'}")
    typer.echo(f"failed rows {p['failed']}" + (":" if p["failed_rows"] else ""))
    for row in p["failed_rows"]:
        typer.echo(f"  {row['catalog_id']}: {row['error']}")


def _report(run: Callable[[], dict]) -> None:
    """Run a flow (the API checks its input before any server starts) and summarize its manifest;
    bad input exits 2, a failed gate exits 3."""
    try:
        manifest = run()
    except AudioSynthError as exc:
        failed = _gate_failure(exc)
        if failed is None:
            _fail(exc)
        _summarize(failed)
        typer.secho(f"gate failed: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(3) from None
    except Exception as exc:
        _crash(exc)
    _summarize(manifest)


def _summarize(manifest: dict) -> None:
    m = manifest.get("metrics", {})
    line = f"run {manifest['run_id']}:"
    if "items_ok" in m:
        line += (
            f" {m['items_ok']} ok, {m['items_failed']} failed, {m['items_generated']} generated,"
        )
        line += f" changes {manifest.get('changes')}"
    if "assessment" in manifest:
        a = manifest["assessment"]
        line += f"; pass rate {a.get('pass_rate')}, gate {'passed' if manifest['gate']['passed'] else 'FAILED'}"
    typer.echo(line)
    if manifest.get("reports"):
        typer.echo(f"report: {manifest['reports']['html']}")


@app.command()
def validate(
    input_url: Annotated[
        str,
        typer.Argument(
            help="Dataset to validate: an audio-synth output, an LJSpeech-style folder, a folder with metadata.csv/parquet (path, text columns), or any folder/bucket of audio files."
        ),
    ],
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help="Where metrics, reports and the manifest go (folder or fsspec URL).",
        ),
    ],
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            "-c",
            help="YAML with validators, thresholds and gate (see configs/validate-demo.yaml).",
        ),
    ] = None,
    dask_address: DaskOpt = None,
    workers: WorkersOpt = None,
) -> None:
    """Measure every file of a dataset, write metrics + report, and exit 3 if the gate fails."""
    from flows.api import validate_dataset

    _report(
        lambda: validate_dataset(
            input_url, output, config, dask_address=dask_address, workers=workers
        )
    )


@app.command()
def train(
    config: Annotated[
        str, typer.Argument(help="YAML training configuration, e.g. configs/train-demo.yaml.")
    ],
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help="Where checkpoints and the trained model go (folder or fsspec URL).",
        ),
    ],
    dask_address: DaskOpt = None,
) -> None:
    """Train a generator model, log it to MLflow (MLFLOW_TRACKING_URI), register it, set its alias."""
    from flows.api import train_model

    try:
        result = train_model(config, output, dask_address=dask_address)
    except AudioSynthError as exc:
        _fail(exc)
    except Exception as exc:
        _crash(exc)
    typer.echo(
        f"registered {result['model_uri']} aliases {result['aliases']} (MLflow run {result['mlflow_run_id']})"
    )


@app.command()
def compare(
    config: Annotated[
        str,
        typer.Argument(
            help="YAML comparison: prompts, candidates, validators, decision metric, promotion rule (configs/compare-demo.yaml)."
        ),
    ],
    output: Annotated[
        str,
        typer.Option(
            "--output", "-o", help="Where candidate audio, metrics, the table and the report go."
        ),
    ],
    dask_address: DaskOpt = None,
    workers: WorkersOpt = None,
) -> None:
    """Compare generators or model versions, log parent/child MLflow runs, promote by alias."""
    from flows.api import compare_generators

    try:
        result = compare_generators(config, output, dask_address=dask_address, workers=workers)
    except AudioSynthError as exc:
        _fail(exc)
    except Exception as exc:
        _crash(exc)
    typer.echo(f"decision: {result['decision']['reason']}")
    typer.echo(f"report: {result['report']}")


@app.command()
def voices(
    generator: Annotated[str, typer.Option(help="Generator plug-in name.")] = "espeak",
    language: Annotated[
        str | None, typer.Option(help="Only voices of this language (prefix match).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the voices a generator offers."""
    from flows.api import voices as list_voices

    try:
        found = [
            v for v in list_voices(generator) if not language or v.language.startswith(language)
        ]
    except AudioSynthError as exc:
        _fail(exc)
    if as_json:
        typer.echo(
            json.dumps([v.__dict__ | {"attributes": dict(v.attributes)} for v in found], indent=1)
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("voice", "language", "gender", title=f"{generator}: {len(found)} voices")
    for v in found:
        table.add_row(v.name, v.language, v.gender or "")
    Console().print(table)


@app.command()
def show(
    output: Annotated[str, typer.Argument(help="Output URL of a run (folder or s3://...).")],
    run_id: Annotated[
        str | None, typer.Option(help="Run id (default: the last complete run).")
    ] = None,
    failures: Annotated[int, typer.Option(help="How many failed items to list.")] = 10,
) -> None:
    """Summarize a run's outputs (any kind: catalog, validate, train, compare): manifest, counts,
    changes, failures, the decision or the registered model."""
    from flows.api import list_runs, read_items, read_manifest

    try:
        manifest = read_manifest(output, run_id)
    except (FileNotFoundError, AudioSynthError) as exc:
        _fail(exc)
    kind = manifest.get("kind", "catalog")
    typer.echo(f"runs: {', '.join(list_runs(output))}")
    typer.echo(f"{kind} run {manifest['run_id']} completed {manifest['completed_at']}")
    typer.echo(json.dumps(manifest.get("metrics", {}), indent=1))
    if manifest.get("changes"):
        typer.echo(f"changes: {manifest['changes']}")
    if manifest.get("gate"):
        typer.echo(f"gate: {'passed' if manifest['gate']['passed'] else 'FAILED'}")
    if kind == "train":
        typer.echo(f"model: {manifest['model_uri']} aliases {manifest['aliases']}")
    if kind == "compare":
        typer.echo(f"decision: {manifest['decision']['reason']}")
    if manifest.get("reports") or manifest.get("report"):
        typer.echo(f"report: {manifest.get('report') or manifest['reports']['html']}")
    if not manifest.get("items"):
        return
    items = read_items(output, manifest["run_id"])
    typer.echo(f"status: {items['status'].value_counts().to_dict()}")
    failed = items[items["status"] != "ok"]
    for row in failed.head(failures).itertuples():
        typer.echo(f"  failed {row.catalog_id} [{row.id}]: {row.error}")


@app.command()
def gc(
    output: Annotated[str, typer.Argument(help="Output URL (folder or s3://...).")],
    keep_runs: Annotated[
        int,
        typer.Option(
            "--keep-runs", min=1, help="Keep the audio of the last N complete catalog runs."
        ),
    ] = 1,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only report what would be deleted.")
    ] = False,
    tmp_grace_s: Annotated[
        float,
        typer.Option("--tmp-grace-s", min=0, help="Delete *.tmp-* files older than this."),
    ] = 3600.0,
    wait_s: Annotated[
        float,
        typer.Option(
            "--wait-s", min=0, help="Wait this long for a run in progress (default: none)."
        ),
    ] = 0.0,
) -> None:
    """Free storage: delete audio no longer referenced by the last N complete catalog runs and
    stale temporary files; never while a run holds the output (exits 1 naming that run)."""
    from audio_synth_core.pipeline.lease import LeaseError
    from flows.api import collect_garbage

    try:
        r = collect_garbage(
            output, keep_runs=keep_runs, dry_run=dry_run, tmp_grace_s=tmp_grace_s, wait_s=wait_s
        )
    except LeaseError as exc:  # a run in progress: not bad input, try again later
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    except AudioSynthError as exc:
        _fail(exc)
    verb = "would free" if dry_run else "freed"
    typer.echo(
        f"{verb} {r['files']} files, {r['bytes']} bytes ({r['bytes'] / 2**20:.1f} MiB): "
        f"{r['audio_files']} audio, {r['tmp_files']} temporary; "
        f"kept {r['audio_kept']} audio files of runs {', '.join(r['kept_runs']) or '-'}"
    )
    if r["in_use"]:
        typer.echo(f"note: a {r['in_use']} holds this output; gc would wait for it")


# Job-specific command groups (audiobook, dataset, ...) live in flows/commands/, one module each;
# registered last, since they reuse this module's options and error handling.
from flows.commands import register_all  # noqa: E402

register_all(app)
