"""``audio-synth verify OUTPUT_URL``: is a run exactly what its signer wrote?

Exit 0 when the signature is valid and every listed file is intact with nothing extra; exit 3 when
anything is tampered, missing or extra or the signature fails (each problem on its own line); exit 2
on bad input (no such run, an unreadable public key).
"""

from __future__ import annotations

from typing import Annotated

import typer


def verify(
    output: Annotated[str, typer.Argument(help="Output URL of a run (folder or s3://...).")],
    run_id: Annotated[
        str | None, typer.Option("--run", help="Run id (default: the last complete run).")
    ] = None,
    public_key: Annotated[
        str | None,
        typer.Option(
            "--public-key",
            help="PEM file of the Ed25519 public key you trust (default: the key stored with the "
            "run, which proves the run is intact but not who signed it).",
        ),
    ] = None,
) -> None:
    """Check a run's signature and every file's sha256; report tampered, missing and extra files."""
    from audio_synth_core.errors import AudioSynthError
    from flows.api import verify_output
    from flows.cli import _crash, _fail

    try:
        result = verify_output(output, run_id, public_key)
    except AudioSynthError as exc:
        _fail(exc)
    except Exception as exc:
        _crash(exc)
    key = f"{result['key_source']} key {result['public_key_fingerprint']}"
    if result["ok"]:
        typer.echo(
            f"run {result['run_id']}: intact, {result['files_checked']} files match the listing "
            f"signed by the {key}"
        )
        return
    for problem in result["problems"]:
        typer.echo(problem)
    counts = ", ".join(f"{len(result[k])} {k}" for k in ("tampered", "missing", "extra"))
    typer.secho(
        f"run {result['run_id']}: NOT intact (signature {result['signature']}; {counts}; "
        f"{result['files_checked']} files checked)",
        fg=typer.colors.RED,
        err=True,
    )
    raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
