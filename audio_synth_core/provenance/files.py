"""A run's files with their sha256, written as one Parquet listing and signed.

What the listing covers: every file under ``runs/<run_id>/`` (except the listing, its signature
and the public key) plus every audio file the run's items reference (``audio/`` is shared by runs
and content-addressed, so only the referenced files belong to a run) and, for a run whose items
carry C2PA manifests, each FLAC's sidecar (``layout.c2pa_sidecar``). An item's audio is listed
with the sha256 its metadata recorded when the file was written from those very bytes, so signing
never reads the audio back (a 1,000,000-item run on S3 would download all of it): only its size is
looked up, which also finds files already gone. A file that differs from its record, tampered
before or after signing, is then what ``verify`` reports. The run's own files, sidecars and
audio without a recorded hash are hashed in 1 MiB chunks on a few threads. The listing is
written batch by batch: a run never holds its audio bytes, nor one Python object per file, in
memory at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from audio_synth_core.pipeline.stats import column_parts
from audio_synth_core.provenance.c2pa import takes_sidecar
from audio_synth_core.provenance.signing import ALGORITHM, Signer, listing_message
from audio_synth_core.store import layout, schema
from audio_synth_core.store.storage import Store

CHUNK_BYTES = 1 << 20
# Enough threads to hide an object store's per-GET latency; local disks are hashed at memory speed.
HASH_THREADS = 8
BATCH_ROWS = 2048
KIND_RUN = "run"
KIND_AUDIO = "audio"
KIND_C2PA = "c2pa"  # the C2PA sidecar of an item's audio (FLAC)
# How a referenced file that was already gone at signing is listed.
ABSENT_SHA256 = ""
ABSENT_SIZE = -1

LISTING_SCHEMA = pa.schema(
    [
        pa.field("path", pa.string(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),
        pa.field("size_bytes", pa.int64(), nullable=False),
        # run: under runs/<id>/; audio: referenced; c2pa: a referenced audio file's sidecar
        pa.field("kind", pa.string(), nullable=False),
        pa.field("item_id", pa.string()),
    ],
    metadata={"audio_synth.schema": "provenance-listing", "audio_synth.schema_version": "1"},
)


def signature_files(run_id: str) -> frozenset[str]:
    """The files a listing cannot contain: itself, its signature and the public key."""
    return frozenset(
        {
            layout.provenance_files(run_id),
            layout.provenance_signature(run_id),
            layout.provenance_public_key(run_id),
        }
    )


def hash_file(store: Store, rel: str) -> tuple[str, int]:
    """(sha256 hex, size in bytes) of one stored file, read in chunks (FileNotFoundError when
    it does not exist)."""
    h = hashlib.sha256()
    size = 0
    with store.fs.open(store.path(rel), "rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def run_files(store: Store, run_id: str) -> list[str]:
    """Paths (relative to the root) of every file under the run's folder except the signature
    files, sorted. A run's own files number in the thousands at most (parts, reports)."""
    skip = signature_files(run_id)
    return [r for r in store.files_under(layout.run_dir(run_id)) if r not in skip]


def _quarantined(store: Store, run_id: str, part: str) -> set[str]:
    """Ids of a shard's items whose audio validation moved under quarantine/."""
    rel = layout.validation_part(run_id, part.removesuffix(".parquet"))
    if not store.exists(rel):
        return set()
    table = store.read_table(rel)
    if "quarantined" not in table.column_names:
        return set()
    flags = table.column("quarantined").to_pylist()
    return {i for i, q in zip(table.column("id").to_pylist(), flags, strict=True) if q}


def audio_refs(store: Store, run_id: str) -> Iterator[tuple[str, str, str | None]]:
    """(item id, audio path, recorded sha256 or None) of every ok item with audio under the
    output, one part at a time (only those columns read); quarantined audio is listed where it
    now is (``quarantine/audio/...``)."""
    folder = layout.items_dir(run_id)
    names = ("id", "status", "audio_path", "sha256")
    for name, table in column_parts(store, folder, names):
        if "audio_path" not in table.column_names:
            continue
        quarantined = _quarantined(store, run_id, name)
        columns = [
            table.column(c).to_pylist() if c in table.column_names else [None] * table.num_rows
            for c in names
        ]
        for item_id, status, rel, sha in zip(*columns, strict=True):
            if status == schema.STATUS_OK and rel:
                yield item_id, layout.quarantine(rel) if item_id in quarantined else rel, sha


Entry = tuple[str, str, str | None, str | None]  # path, kind, item id, recorded sha256


def batches(entries: Iterable[Entry], size: int) -> Iterator[list[Entry]]:
    batch: list[Entry] = []
    for entry in entries:
        batch.append(entry)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _entries(store: Store, run_id: str, sidecars: bool = False) -> Iterator[Entry]:
    """(path, kind, item id, recorded sha256): the run's own files first, then the audio its
    items reference, each followed by its C2PA sidecar when ``sidecars`` (the run's items carry
    manifests)."""
    for rel in run_files(store, run_id):
        yield rel, KIND_RUN, None, None
    for item_id, rel, sha in audio_refs(store, run_id):
        yield rel, KIND_AUDIO, item_id, sha
        if sidecars and takes_sidecar(rel):
            yield layout.c2pa_sidecar(rel), KIND_C2PA, item_id, None


def _hash_or_absent(store: Store, entry: Entry) -> tuple[str, int]:
    """(sha256, size) of a listed file: its recorded hash when it has one (only its size is
    looked up), else its bytes hashed. A referenced file that is already gone when the run is
    signed is listed as absent (the signature states it; verify reports it missing) rather than
    failing a finished run."""
    rel, _kind, _item, recorded = entry
    try:
        if recorded:
            return recorded, int(store.fs.size(store.path(rel)))
        return hash_file(store, rel)
    except FileNotFoundError:
        return ABSENT_SHA256, ABSENT_SIZE


def build_listing(
    store: Store, run_id: str, threads: int = HASH_THREADS, sidecars: bool = False
) -> tuple[bytes, int, int, int]:
    """The listing as Parquet bytes, with its file count, total size and count of files absent
    at signing (``sidecars``: list FLAC items' C2PA sidecars too). Sizes and hashes are taken on
    ``threads`` threads; rows are written batch by batch."""
    buf = io.BytesIO()
    n_files = total = absent = 0
    with (
        ThreadPoolExecutor(threads, thread_name_prefix="provenance-hash") as pool,
        pq.ParquetWriter(buf, LISTING_SCHEMA, compression="zstd") as writer,
    ):
        for batch in batches(_entries(store, run_id, sidecars), BATCH_ROWS):
            hashed = list(pool.map(lambda e: _hash_or_absent(store, e), batch))
            columns = {
                "path": [e[0] for e in batch],
                "sha256": [h for h, _ in hashed],
                "size_bytes": [s for _, s in hashed],
                "kind": [e[1] for e in batch],
                "item_id": [e[2] for e in batch],
            }
            writer.write_table(pa.table(columns, schema=LISTING_SCHEMA))
            n_files += len(batch)
            total += sum(s for _, s in hashed if s > 0)
            absent += sum(s == ABSENT_SIZE for _, s in hashed)
    return buf.getvalue(), n_files, total, absent


def sign_run(
    store: Store, run_id: str, signer: Signer, threads: int = HASH_THREADS, sidecars: bool = False
) -> dict[str, Any]:
    """Write the run's listing, the public key, then the signature (last: a run is signed exactly
    when ``files.sig`` exists). Returns the signature document (no secret in it)."""
    listing, n_files, total, absent = build_listing(store, run_id, threads, sidecars)
    digest = hashlib.sha256(listing).hexdigest()
    store.write_bytes(layout.provenance_files(run_id), listing)
    store.write_bytes(layout.provenance_public_key(run_id), signer.public_key_pem)
    document = {
        "algorithm": ALGORITHM,
        "run_id": run_id,
        "listing": layout.provenance_files(run_id),
        "listing_sha256": digest,
        "files": n_files,
        "bytes": total,
        "absent_at_signing": absent,
        "public_key_fingerprint": signer.public_fingerprint,
        "signed_message": "audio-synth run listing v1 + run_id + listing_sha256",
        "signature": signer.sign(listing_message(run_id, digest)),
        "signed_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    store.write_json(layout.provenance_signature(run_id), document)
    return document
