"""``audio-synth audiobook BOOK_OR_FOLDER --output URL [--config ...]``."""

from __future__ import annotations

from typing import Annotated

import typer

from audio_synth_core.errors import AudioSynthError
from flows.cli import DaskOpt, OutputOpt, WorkersOpt, _crash, _fail, _gate_failure


def _summarize(manifest: dict) -> None:
    m = manifest.get("metrics", {})
    typer.echo(
        f"audiobook run {manifest['run_id']}: {len(manifest.get('books', []))} books, "
        f"{m.get('audio_hours', 0) * 60:.1f} audio minutes, {m.get('chunks_generated')} of "
        f"{m.get('chunks_total')} chunks narrated, {m.get('chapters_assembled')} chapters "
        f"assembled, {m.get('chapters_reused')} reused; ACX {m.get('acx_files_passed')}/"
        f"{m.get('acx_files')} files pass; {m.get('chunks_flagged')} chunks flagged"
    )
    for book in manifest.get("books", []):
        typer.echo(f"  {book['book_id']} ({book['state']}): {book['title']!r}")
        for c in book["chapters"]:
            typer.echo(
                f"    {c['slot']:>7} {c['title'][:48]:48} {c['words']:6d} words "
                f"{c['duration_s']:7.1f} s  {c['state']}"
            )
        for c in book["not_narrated"]:
            typer.echo(f"    {c['number']:>7} {c['title'][:48]:48} NOT NARRATED: {c['reason']}")
        for w in book.get("warnings", []):
            typer.echo(f"    warning: {w}")
        typer.echo(f"    m4b: {book['m4b']}  book.json: {book['book_json']}")
    if manifest.get("reports"):
        typer.echo(f"report: {manifest['reports']['html']}")


def audiobook(
    book_or_folder: Annotated[
        str,
        typer.Argument(
            help="A manuscript (.epub, .md, .txt), a folder with book.yaml, or a folder/bucket "
            "of books (e.g. datasets/books)."
        ),
    ],
    output: OutputOpt = None,
    config: Annotated[
        str | None,
        typer.Option(
            "--config", "-c", help="YAML audiobook run config (configs/audiobook-demo.yaml)."
        ),
    ] = None,
    dask_address: DaskOpt = None,
    workers: WorkersOpt = None,
) -> None:
    """Narrate books into ACX-checked chapter MP3s and FLAC masters, credits, a retail sample,
    an M4B and WebVTT subtitles; exit 3 when a delivered file fails ACX."""
    from flows.api import narrate_books

    try:
        manifest = narrate_books(book_or_folder, output, config, dask_address, workers)
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


def register(app: typer.Typer) -> None:
    app.command(name="audiobook")(audiobook)
