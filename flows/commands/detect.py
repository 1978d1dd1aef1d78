"""``audio-synth detect PATH_OR_URL``: does a file (or every audio file under a folder or prefix)
carry this installation's watermark, with which payload, and which item does it name?

Exit 0 when every file was read (marked or not); exit 3 when any file could not be decoded;
exit 2 on bad input (no such path, no key).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer


def detect(
    path_or_url: Annotated[
        str, typer.Argument(help="An audio file, or a folder or prefix (local or s3://...).")
    ],
    lookup: Annotated[
        str | None,
        typer.Option(
            "--lookup", help="Output URL whose runs' watermark tables map payloads to items."
        ),
    ] = None,
    key_file: Annotated[
        str | None,
        typer.Option(
            "--key-file",
            help="File holding the key (wins over $AUDIO_SYNTH_WATERMARK_KEY; default: that "
            "variable, else the key runs created under $AUDIO_SYNTH_HOME/keys/).",
        ),
    ] = None,
    threshold_z: Annotated[
        float | None,
        typer.Option("--threshold-z", help="Sync z-score that counts as marked (default 5.0)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per file.")] = False,
) -> None:
    """Detect the watermark: per file detected, confidence, payload (and the item it maps to)."""
    from audio_synth_core.errors import AudioSynthError
    from flows.api import detect as detect_api
    from flows.cli import _crash, _fail

    try:
        results = detect_api(path_or_url, lookup, key_file, threshold_z)
    except AudioSynthError as exc:
        _fail(exc)
    except Exception as exc:
        _crash(exc)
    for r in results:
        if as_json:
            typer.echo(json.dumps(r, sort_keys=True))
            continue
        if r["error"]:
            typer.echo(f"{r['path']}: unreadable ({r['error']})")
            continue
        verdict = "MARKED" if r["detected"] else "not marked"
        line = f"{r['path']}: {verdict} (confidence {r['confidence']:.4f}, z {r['z']:.1f})"
        if r["payload"] is not None:
            line += f" payload {r['payload']:#010x}"
        elif r["detected"]:
            line += f" payload uncertain (margin {r['payload_margin']:.1f}: too little of the mark)"
        for m in r.get("matches", []):
            line += f" -> run {m['run_id']} item {m['id']}"
        if lookup and r["detected"] and not r.get("matches"):
            line += " -> no item in that output"
        typer.echo(line)
    if not as_json:
        marked = sum(r["detected"] for r in results)
        typer.echo(f"{marked} of {len(results)} files marked", err=True)
    if any(r["error"] for r in results):
        raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    app.command("detect")(detect)
