"""WebDataset export: tar shards per split, ``shard_items`` samples each.

``webdataset/<split>/<name>-<split>-000000.tar``; a sample is ``<id>.flac`` (the stored bytes,
unchanged) and ``<id>.json`` (text and metadata). Written with ``webdataset.TarWriter`` with a
fixed mtime, so the same items give the same tar bytes. Items are in id order within a split, and
ids are content hashes, so shards are already shuffled with respect to speaker and text.
Load with ``webdataset.WebDataset(".../train/<name>-train-{000000..00000N}.tar")``.
"""

from __future__ import annotations

import json
from typing import Any

from audio_synth_core.dataset.exports.files import AudioInfo, ExportWriter, StagedFile
from audio_synth_core.store import layout

METADATA_COLUMNS = (
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
    "split",
)


class WebDatasetWriter(ExportWriter):
    fmt = "webdataset"

    def __init__(self, store: Any, out: str, name: str) -> None:
        super().__init__(store, out, name)
        self._shard: StagedFile | None = None
        self._tar: Any = None

    def begin_shard(self, split: str, index: int, n_shards: int) -> None:
        import webdataset

        self._shard = self.stage(layout.export_wds_shard(self.out, self.name, split, index))
        self._tar = webdataset.TarWriter(self._shard.handle, encoder=False, mtime=0.0)

    def add(self, split: str, row: dict[str, Any], audio: bytes | None, info: AudioInfo) -> None:
        meta = {c: row.get(c) for c in METADATA_COLUMNS}
        meta.update(duration_s=info.duration_s, sample_rate_hz=info.sample_rate_hz)
        ext = row.get("audio_format") or "flac"
        sample = {
            "__key__": row["id"],
            ext: audio,
            "json": json.dumps(meta, ensure_ascii=False, sort_keys=True).encode(),
        }
        self._tar.write(sample)
        self.counts[split] += 1

    def end_shard(self, split: str) -> None:
        if self._tar is not None and self._shard is not None:
            self._tar.close()
            self.publish(self._shard)
        self._tar, self._shard = None, None

    def abort(self) -> None:
        self._tar = None
        super().abort()
