"""The provenance record of one item: what made its audio, with which settings, and when.

Built from the item's metadata row alone (a pure function), so a worker calls it right after a clip
is encoded and the record lands in the row's ``provenance`` column (and, for deliverables, in their
C2PA manifest). Canonical JSON: the same row always gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

RECORD_SCHEMA = "audio-synth.provenance/1"
# Parameter keys that name a model the generator loaded (neural: model_uri, hf-vits: model_url).
_MODEL_PARAM_KEYS = ("model_uri", "model_url", "model_path", "bundle")


def _params(value: Any) -> dict[str, Any]:
    """Generator parameters as a dict: rows hold them as JSON text."""
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    parsed = json.loads(value)
    if not isinstance(parsed, dict):
        raise ValueError(f"generator_params must be a JSON object, got {type(parsed).__name__}")
    return parsed


def _persona(value: Any) -> dict[str, Any] | None:
    """``name@version`` (as planning writes it) split into its parts; None for a plain voice."""
    if not value:
        return None
    name, sep, version = str(value).rpartition("@")
    if not sep:
        return {"name": str(value), "version": None}
    return {"name": name, "version": int(version) if version.isdigit() else version}


def model_of(version: str | None, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """The model behind a generator, when it is one: its concrete URI and version.

    ``generator_version`` holds ``models:/tts/3`` (or ``tts/3`` with ``model_uri`` in the params,
    as the neural generator records an alias it resolved), a bundle's ``sha256:...``, or an
    engine's release (``1.52``: no model)."""
    version = version or None
    given = next((str(params[k]) for k in _MODEL_PARAM_KEYS if params.get(k)), None)
    if version and version.startswith("models:/"):
        return {"uri": version, "version": version.rsplit("/", 1)[-1]}
    if given is None:
        return None
    uri = given
    if given.startswith("models:/") and version and "/" in version:
        uri = f"models:/{version}"  # an alias (models:/tts@champion) pinned to what it named
    return {"uri": uri, "version": version.rsplit("/", 1)[-1] if version else None}


def item_record(row: Mapping[str, Any]) -> str:
    """The provenance record of one generated item as canonical JSON (sorted keys, compact).

    ``row`` is an item metadata row (store/schema.py ITEM_SCHEMA) after its audio was encoded:
    ``sha256`` and ``created_at`` set, ``watermark_payload`` set when the audio is marked. Names
    the generator (name, version, model URI and version when it is a model), the voice or persona
    (name and version), seed, parameters, watermark payload, content hash and creation time."""
    for key in ("id", "generator"):
        if not row.get(key):
            raise ValueError(f"item row has no {key!r}: cannot build its provenance record")
    params = _params(row.get("generator_params"))
    version = row.get("generator_version")
    payload = row.get("watermark_payload")
    record = {
        "schema": RECORD_SCHEMA,
        "item_id": row["id"],
        "run_id": row.get("run_id"),
        "generator": {
            "name": row["generator"],
            "version": version,
            "model": model_of(version, params),
        },
        "voice": row.get("voice"),
        "language": row.get("language"),
        "persona": _persona(row.get("persona")),
        "seed": None if row.get("seed") is None else int(row["seed"]),
        "params": params,
        "watermark": None
        if payload is None
        else {"payload": int(payload), "scheme": row.get("watermark_scheme")},
        "audio": {
            "sha256": row.get("sha256"),
            "format": row.get("audio_format"),
            "sample_rate_hz": row.get("sample_rate_hz"),
            "num_samples": row.get("num_samples"),
        },
        "created_at": row.get("created_at"),
        "digital_source_type": "trainedAlgorithmicMedia",
    }
    return json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)


def parse_record(text: str) -> dict[str, Any]:
    """A record read back from an item's ``provenance`` column."""
    record = json.loads(text)
    if not isinstance(record, dict) or record.get("schema") != RECORD_SCHEMA:
        raise ValueError(f"not an audio-synth provenance record (schema {RECORD_SCHEMA!r})")
    return record
