"""The ``audio-synth`` command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated

import typer

from audio_synth_core.errors import AudioSynthError
from flows.runtime import configure_environment

app = typer.Typer(
    help="Synthesize audio at scale and prove every file is fit for use.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _environment() -> None:
    """Safe defaults (state under ./.audio-synth, no telemetry) before Prefect is imported."""
    configure_environment()


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


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@app.command()
def run(
    config: Annotated[
        str, typer.Argument(help="YAML run configuration, e.g. configs/catalog-demo.yaml.")
    ],
    output: OutputOpt = None,
    dask_address: DaskOpt = None,
    workers: WorkersOpt = None,
) -> None:
    """Generate audio for a text catalog: audio files + Parquet metadata + an MLflow run."""
    from flows.api import run_catalog
    from flows.catalog import resolve_config

    _report(
        lambda: run_catalog(config, output=output, dask_address=dask_address, workers=workers),
        lambda: resolve_config(config, output, dask_address, workers),
    )


def _report(run: Callable[[], dict], precheck: Callable[[], object]) -> None:
    """Check the config (before any server starts), run a flow and summarize its manifest; bad
    input exits 2, a failed gate exits 3."""
    from flows.outcome import GateFailed

    try:
        precheck()
        manifest = run()
    except GateFailed as exc:
        _summarize(exc.manifest)
        typer.secho(f"gate failed: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(3) from None
    except AudioSynthError as exc:
        _fail(exc)
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
    from audio_synth_core.config.models import load_validate_config
    from flows.api import validate_dataset

    _report(
        lambda: validate_dataset(
            input_url, output, config, dask_address=dask_address, workers=workers
        ),
        lambda: load_validate_config(config),
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
    from audio_synth_core.config.models import load_train_config
    from flows.api import train_model

    try:
        load_train_config(config)  # fail fast, before any server starts
        result = train_model(config, output, dask_address=dask_address)
    except AudioSynthError as exc:
        _fail(exc)
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
    from flows.compare import resolve_compare_config

    try:
        resolve_compare_config(config)  # fail fast, before any server starts
        result = compare_generators(config, output, dask_address=dask_address, workers=workers)
    except AudioSynthError as exc:
        _fail(exc)
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
