"""``audio-synth dataset SPEC --output URL``: build a training dataset from a dataset spec."""

from __future__ import annotations

from typing import Annotated

import typer

from audio_synth_core.errors import AudioSynthError
from flows.cli import DaskOpt, OutputOpt, WorkersOpt, _crash, _fail


def _print_plan(p: dict) -> None:
    state = "already complete" if p["complete"] else "nothing written"
    typer.echo(f"dry run {p['run_id']}: {state}")
    typer.echo(
        f"rows {p['rows']} ({p['clean_clips']} clean clips to make) in {p['shards']} shards, "
        f"{p['speakers']} synthetic speakers"
    )
    typer.echo(f"{'attribute':<10} {'group':<24} {'target':>8} {'planned':>8} {'n':>7}  ok")
    for g in p["report"]["groups"]:
        target = "-" if g["target_share"] is None else f"{g['target_share']:.3f}"
        ok = {None: "", True: "yes", False: "NO"}[g["within_tolerance"]]
        typer.echo(
            f"{g['attribute']:<10} {str(g['group'])[:24]:<24} {target:>8} "
            f"{g['planned_share']:>8.3f} {g['planned']:>7}  {ok}"
        )


def _summarize(manifest: dict) -> None:
    m = manifest.get("metrics", {})
    typer.echo(
        f"dataset run {manifest['run_id']}: {m.get('items_kept')} items kept of "
        f"{m.get('items_total')} ({100 * (m.get('rejection_rate') or 0):.1f}% rejected), "
        f"{m.get('hours', 0):.3f} hours; leaks {manifest.get('leak_check', {}).get('totals')}"
    )
    for fmt, where in (manifest.get("exports") or {}).items():
        typer.echo(f"  {fmt}: {where['path']} {where.get('counts')}")
    if manifest.get("card"):
        typer.echo(f"card: {manifest['card']}")
    if manifest.get("reports"):
        typer.echo(f"report: {manifest['reports']['html']}")


def register(app: typer.Typer) -> None:
    @app.command()
    def dataset(
        spec: Annotated[
            str, typer.Argument(help="YAML dataset spec, e.g. configs/dataset-demo.yaml.")
        ],
        output: OutputOpt = None,
        dask_address: DaskOpt = None,
        workers: WorkersOpt = None,
        dry_run: Annotated[
            bool,
            typer.Option(
                "--dry-run",
                help="Only plan: print target vs planned share per group; write nothing.",
            ),
        ] = False,
    ) -> None:
        """Synthesize a balanced, augmented, filtered, leak-free training dataset and export it
        (Hugging Face Parquet, Lhotse, WebDataset, NeMo) with a dataset card."""
        from flows.api import preview_dataset, synthesize_dataset

        try:
            if dry_run:
                _print_plan(preview_dataset(spec, output))
                return
            manifest = synthesize_dataset(spec, output, dask_address=dask_address, workers=workers)
        except AudioSynthError as exc:
            _fail(exc)
        except Exception as exc:
            _crash(exc)
        _summarize(manifest)
