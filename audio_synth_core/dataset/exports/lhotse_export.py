"""Lhotse export: recordings, supervisions and cuts manifests per split (JSONL.gz), the layout of
Lhotse's own recipes (``<name>_recordings_<split>.jsonl.gz`` ...), so ``CutSet.from_file`` (or
``load_manifest_lazy``) reads them and ``cut.load_audio()`` decodes.

Recording sources point at the audio files where they already are (no copy): an absolute path for
a local output (``type: file``) and the object URL (``s3://...``, ``type: url``) for object
storage; Lhotse opens URLs through ``smart_open`` (``pip install smart_open[s3]`` on the training
side). Why not Lhotse Shar: Shar copies every byte of audio once more into tar shards, which the
WebDataset export already does; Shar readers open object URLs through the same ``smart_open``, so
it would gain no reach, only duplicate storage. One supervision per recording carries the text,
speaker, language and gender; age band, accent, clean id, augmentation and source id go in
``custom``. Manifests are built from Lhotse's own dataclasses (``to_dict``), streamed line by line.
"""

from __future__ import annotations

import gzip
import io
import json
from typing import Any

from audio_synth_core.dataset.exports.files import AudioInfo, ExportWriter, StagedFile
from audio_synth_core.store import layout

KINDS = ("recordings", "supervisions", "cuts")
CUSTOM_COLUMNS = ("age_band", "accent", "clean_id", "augmentation", "source_id")


class LhotseWriter(ExportWriter):
    fmt = "lhotse"
    needs_bytes = False

    def __init__(self, store: Any, out: str, name: str) -> None:
        super().__init__(store, out, name)
        self._files: dict[str, tuple[StagedFile, io.TextIOWrapper]] = {}

    def begin_split(self, split: str, n_shards: int) -> None:
        super().begin_split(split, n_shards)
        for kind in KINDS:
            staged = self.stage(layout.export_lhotse(self.out, self.name, kind, split))
            # No name, mtime 0: the same items give the same bytes (the temp name would differ).
            gz = gzip.GzipFile(filename="", fileobj=staged.handle, mode="wb", mtime=0)
            self._files[kind] = (staged, io.TextIOWrapper(gz, encoding="utf-8"))

    def add(self, split: str, row: dict[str, Any], audio: bytes | None, info: AudioInfo) -> None:
        from lhotse import AudioSource, MonoCut, Recording, SupervisionSegment

        location = self.store.path(row["audio_path"])
        if self.store.is_local:
            source = AudioSource(type="file", channels=[0], source=location)
        else:
            source = AudioSource(type="url", channels=[0], source=self.store.uri(row["audio_path"]))
        recording = Recording(
            id=row["id"],
            sources=[source],
            sampling_rate=info.sample_rate_hz,
            num_samples=info.num_samples,
            duration=info.duration_s,
        )
        custom = {c: row[c] for c in CUSTOM_COLUMNS if row.get(c) is not None}
        supervision = SupervisionSegment(
            id=row["id"],
            recording_id=row["id"],
            start=0.0,
            duration=info.duration_s,
            channel=0,
            text=row.get("text"),
            language=row.get("language"),
            speaker=row.get("speaker_id"),
            gender=row.get("gender"),
            custom=custom or None,
        )
        cut = MonoCut(
            id=row["id"],
            start=0.0,
            duration=info.duration_s,
            channel=0,
            recording=recording,
            supervisions=[supervision],
        )
        for kind, manifest in zip(KINDS, (recording, supervision, cut), strict=True):
            self._files[kind][1].write(json.dumps(manifest.to_dict(), ensure_ascii=False) + "\n")
        self.counts[split] += 1

    def end_split(self, split: str) -> None:
        for staged, text in self._files.values():
            text.close()  # closes the gzip stream (writes its trailer), not the staged file
            self.publish(staged)
        self._files = {}

    def abort(self) -> None:
        self._files = {}
        super().abort()
