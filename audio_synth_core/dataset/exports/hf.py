"""Hugging Face ``datasets`` export: Parquet shards with the audio bytes embedded.

``hf/data/<split>-00000-of-0000N.parquet`` plus ``hf/README.md`` whose YAML header maps splits to
files (the Hub's ``configs`` convention), so the folder loads as is, locally or pushed to the Hub:
``load_dataset("parquet", data_files={"train": ".../hf/data/train-*.parquet"})`` or
``load_dataset(".../hf")``. The Parquet schema carries the ``huggingface`` metadata that
``datasets`` itself writes (``Features.arrow_schema``), so the ``audio`` column comes back as the
``Audio`` feature and decodes (torchcodec) without any casting by the user. Rows are written in
small row groups (``ROW_GROUP_ITEMS``), as the Hub recommends for audio: a reader streams them.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from audio_synth_core.dataset.exports.files import AudioInfo, ExportWriter, StagedFile
from audio_synth_core.store import layout

ROW_GROUP_ITEMS = 64
STRING_COLUMNS = (
    "id",
    "text",
    "speaker_id",
    "language",
    "gender",
    "age_band",
    "accent",
    "clean_id",
    "augmentation",
    "source_id",
)


def features() -> Any:
    """The ``datasets.Features`` of an exported row."""
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ImportError("the Hugging Face export needs `pip install datasets`") from exc
    return datasets.Features(
        {
            "audio": datasets.Audio(),
            **{c: datasets.Value("string") for c in STRING_COLUMNS},
            "duration_s": datasets.Value("float64"),
            "sample_rate_hz": datasets.Value("int32"),
        }
    )


class HFWriter(ExportWriter):
    fmt = "hf"

    def __init__(self, store: Any, out: str, name: str) -> None:
        super().__init__(store, out, name)
        self.schema: pa.Schema = features().arrow_schema
        self._shard: StagedFile | None = None
        self._writer: pq.ParquetWriter | None = None
        self._rows: list[dict[str, Any]] = []
        self._splits: list[str] = []

    def begin_split(self, split: str, n_shards: int) -> None:
        super().begin_split(split, n_shards)
        self._splits.append(split)

    def begin_shard(self, split: str, index: int, n_shards: int) -> None:
        self._shard = self.stage(layout.export_hf_shard(self.out, split, index, n_shards))
        self._writer = pq.ParquetWriter(self._shard.handle, self.schema, compression="zstd")

    def add(self, split: str, row: dict[str, Any], audio: bytes | None, info: AudioInfo) -> None:
        ext = row.get("audio_format") or "flac"
        record = {c: _text(row.get(c)) for c in STRING_COLUMNS}
        record["audio"] = {"bytes": audio, "path": f"{row['id']}.{ext}"}
        record["duration_s"] = info.duration_s
        record["sample_rate_hz"] = info.sample_rate_hz
        self._rows.append(record)
        self.counts[split] += 1
        if len(self._rows) >= ROW_GROUP_ITEMS:
            self._flush()

    def _flush(self) -> None:
        if self._rows and self._writer is not None:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=self.schema))
        self._rows = []

    def end_shard(self, split: str) -> None:
        self._flush()
        if self._writer is not None and self._shard is not None:
            self._writer.close()
            self.publish(self._shard)
        self._writer, self._shard = None, None

    def finish(self) -> None:
        staged = self.stage(f"{layout.export_dir(self.out, self.fmt)}/README.md", "w")
        staged.handle.write(readme(self._splits))
        self.publish(staged)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        super().abort()


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def readme(splits: list[str]) -> str:
    """The Hub's dataset card header that maps each split to its shards, and how to load them."""
    lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    for split in splits:
        lines += [f"  - split: {split}", f"    path: data/{split}-*.parquet"]
    lines += [
        "---",
        "",
        "# Audio dataset (Parquet with embedded audio)",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        'ds = load_dataset("parquet", data_files={'
        + ", ".join(f'"{s}": "data/{s}-*.parquet"' for s in splits)
        + "})",
        "# or: load_dataset(<this folder>) ; the audio column decodes on access:",
        f'ds["{splits[0] if splits else "train"}"][0]["audio"]',
        "```",
        "",
    ]
    return "\n".join(lines)
