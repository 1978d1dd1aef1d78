"""NeMo export: one JSON-lines manifest per split (``nemo/<split>_manifest.json``), the format
NeMo's ASR and TTS datasets read: ``audio_filepath``, ``text``, ``duration`` (seconds, from the
audio header), plus ``speaker``, ``lang``, ``gender``, ``age_band``, ``accent`` and ``id``.

``audio_filepath`` is the absolute path of a local output's file, or the object URL (``s3://...``)
on object storage, which NeMo reads through its Lhotse data loading or after a download.
"""

from __future__ import annotations

import json
from typing import Any

from audio_synth_core.dataset.exports.files import AudioInfo, ExportWriter, StagedFile
from audio_synth_core.store import layout

EXTRA = {
    "speaker_id": "speaker",
    "language": "lang",
    "gender": "gender",
    "age_band": "age_band",
    "accent": "accent",
    "id": "id",
}


class NemoWriter(ExportWriter):
    fmt = "nemo"
    needs_bytes = False

    def __init__(self, store: Any, out: str, name: str) -> None:
        super().__init__(store, out, name)
        self._file: StagedFile | None = None

    def begin_split(self, split: str, n_shards: int) -> None:
        super().begin_split(split, n_shards)
        self._file = self.stage(layout.export_nemo(self.out, split), "w")

    def add(self, split: str, row: dict[str, Any], audio: bytes | None, info: AudioInfo) -> None:
        rel = row["audio_path"]
        entry: dict[str, Any] = {
            "audio_filepath": self.store.path(rel) if self.store.is_local else self.store.uri(rel),
            "text": row.get("text") or "",
            "duration": round(info.duration_s, 6),
        }
        entry.update({key: row[col] for col, key in EXTRA.items() if row.get(col) is not None})
        if self._file is None:
            raise RuntimeError("NemoWriter.add called outside a split")
        self._file.handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self.counts[split] += 1

    def end_split(self, split: str) -> None:
        if self._file is not None:
            self.publish(self._file)
        self._file = None
