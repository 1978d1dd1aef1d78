"""Where a run's watermark key comes from, and the settings every shard is marked with.

Order: the variable ``watermark.key_env`` names, else ``watermark.key_file``, else
``$AUDIO_SYNTH_HOME/keys/watermark.key``, created on first use with mode 0600. Logs say where the
key came from and its fingerprint, never the key. The settings travel to workers inside the
sealed ``ShardJob``; Prefect only ever sees their redacted view.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa

from audio_synth_core.config.responsible import WatermarkConfig
from audio_synth_core.errors import ConfigError
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from audio_synth_core.watermark import (
    SCHEME_ID,
    THRESHOLD_Z,
    Strength,
    WatermarkKey,
    WatermarkSettings,
    key_from_text,
    new_key_text,
)
from audio_synth_core.watermark.files import AUDIO_EXTENSIONS, FileDetection, detect_file
from audio_synth_core.watermark.lookup import lookup_table
from flows.runtime import state_home

DEFAULT_KEY_NAME = "watermark.key"


def default_key_path() -> Path:
    return state_home() / "keys" / DEFAULT_KEY_NAME


def _create_key(path: Path) -> None:
    """Write a new key with mode 0600 from the start; a concurrent creator that wins the race
    keeps its key (O_EXCL)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as fh:
        fh.write(new_key_text() + "\n")


def _read_key(path: Path, what: str) -> WatermarkKey:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {str(path)!r} is not text (hex or a passphrase)") from None
    return key_from_text(text)


def load_key(cfg: WatermarkConfig, logger: Any = None, create: bool = True) -> WatermarkKey:
    """The watermark key ``cfg`` points at (creating the default one on first use)."""
    value = os.environ.get(cfg.key_env)
    if value:
        key, source = key_from_text(value), f"environment variable {cfg.key_env}"
    elif cfg.key_file:
        path = Path(cfg.key_file).expanduser()
        key, source = _read_key(path, "watermark.key_file"), f"file {path}"
    else:
        path = default_key_path()
        if not path.exists():
            if not create:
                raise ConfigError(
                    f"no watermark key: set {cfg.key_env}, or pass a key file "
                    f"(the default {path} does not exist)"
                )
            _create_key(path)
            if logger is not None:
                logger.warning("created a new watermark key at %s (mode 0600)", path)
        key, source = _read_key(path, "the watermark key"), f"file {path}"
    if logger is not None:
        logger.warning(
            "watermarking with the key from %s (fingerprint %s)", source, key.fingerprint
        )
    return key


def detection_key(key_file: str | None = None) -> WatermarkKey:
    """The key to detect with: ``key_file`` when given (it wins over the environment), else the
    one a run would use. Never creates one."""
    if key_file:
        return _read_key(Path(key_file).expanduser(), "the key file")
    return load_key(WatermarkConfig(), create=False)


def watermark_settings(cfg: WatermarkConfig, logger: Any = None) -> WatermarkSettings | None:
    """What shards are marked with (None when ``cfg.enabled`` is off)."""
    if not cfg.enabled:
        return None
    strength = Strength(min_snr_db=cfg.min_snr_db)
    return WatermarkSettings(load_key(cfg, logger), strength, cfg.threshold_z)


def marks_of(settings: WatermarkSettings | None) -> str | None:
    """The ``marks`` identity of a run's items (planning.build_plan / plan_key)."""
    return None if settings is None else settings.marks


def preview_marks(cfg: WatermarkConfig) -> str | None:
    """The ``marks`` a run would use, without creating a key: a preview writes nothing (with no
    key yet, the run will create one, and every item is new)."""
    if not cfg.enabled:
        return None
    try:
        key = load_key(cfg, create=False)
    except ConfigError:
        return f"{SCHEME_ID}:new-key"
    strength = Strength(min_snr_db=cfg.min_snr_db)
    return WatermarkSettings(key, strength, cfg.threshold_z).marks


def write_lookup(
    store: Store, run_id: str, items: pd.DataFrame, settings: WatermarkSettings
) -> dict[str, Any]:
    """Write the run's payload -> item table; what the manifest says about the mark."""
    table = lookup_table(items, run_id, settings.fingerprint, SCHEME_ID)
    store.write_table(layout.watermarks(run_id), table)
    return {
        "scheme": SCHEME_ID,
        "key_fingerprint": settings.fingerprint,
        "items_marked": table.num_rows,
        "lookup": layout.watermarks(run_id),
    }


def _audio_paths(fs: Any, root: str) -> list[str]:
    """``root`` itself when it is a file, else every audio file under it (sorted)."""
    if fs.isfile(root):
        return [root]
    if not fs.exists(root):
        raise ConfigError(f"{root!r} does not exist")
    found = sorted(p for p in fs.find(root) if p.lower().endswith(AUDIO_EXTENSIONS))
    if not found:
        raise ConfigError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under {root!r}")
    return found


def read_lookups(output: str, storage_options: dict[str, Any] | None = None) -> pa.Table | None:
    """Every run's payload table under an output (None when it has none)."""
    store = Store(output, storage_options)
    tables = []
    for run_id in store.list(layout.RUNS):
        rel = layout.watermarks(run_id)
        if store.exists(rel):
            tables.append(store.read_table(rel))
    return pa.concat_tables(tables) if tables else None


def detect_paths(
    path_or_url: str,
    key: WatermarkKey,
    lookup: str | None = None,
    threshold_z: float = THRESHOLD_Z,
    storage_options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Detection on a file or on every audio file under a folder or prefix; with ``lookup`` (an
    output URL) each decoded payload is mapped to its run and item through the runs' tables."""
    fs, root = fsspec.core.url_to_fs(path_or_url, **(storage_options or {}))
    table = read_lookups(lookup, storage_options) if lookup else None
    results = []
    for path in _audio_paths(fs, root):
        try:
            data = fs.cat_file(path)
        except OSError as exc:
            found = FileDetection(path, False, 0.0, 0.0, None, None, f"cannot read: {exc}")
        else:
            found = detect_file(data, path, key, threshold_z, table)
        row = found.as_dict()
        if lookup is not None:
            row["matches"] = [
                {k: m[k] for k in ("run_id", "id", "audio_path")} for m in found.matches
            ]
        results.append(row)
    return results
