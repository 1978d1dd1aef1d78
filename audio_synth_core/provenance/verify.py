"""Checking a run against its signed listing: the signature, then every listed file's hash, then
files under the run that the listing does not name.

- tampered: a listed file whose bytes changed (for audio: the file at the item's audio path is not
  the one listed);
- missing: a listed file that is gone;
- extra: a file under ``runs/<run_id>/`` the listing does not name (``audio/`` is shared by runs,
  so files there that a run does not reference are not its extras).

Without ``public_key_pem`` the signature is checked against the public key stored with the run,
which proves the run is intact as its signer left it, not who the signer was: pass the key you
trust to prove that too.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from audio_synth_core.errors import ConfigError
from audio_synth_core.pipeline import runs
from audio_synth_core.provenance import files
from audio_synth_core.provenance.signing import fingerprint, listing_message, verify_signature
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store

SIGNATURE_VALID = "valid"
SIGNATURE_INVALID = "invalid"
SIGNATURE_MISSING = "missing"


@dataclass
class Verification:
    """The outcome of checking one run. ``ok`` exactly when nothing below is wrong."""

    run_id: str
    signature: str = SIGNATURE_MISSING
    key_source: str = ""
    public_key_fingerprint: str | None = None
    files_checked: int = 0
    tampered: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.signature == SIGNATURE_VALID and not (
            self.tampered or self.missing or self.extra or self.problems
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _listing_rows(store: Store, rel: str) -> Iterator[tuple[str, str, str]]:
    """(path, sha256, kind) of each listed file, read batch by batch."""
    with store.fs.open(store.path(rel), "rb") as fh:
        for batch in pq.ParquetFile(fh).iter_batches(columns=["path", "sha256", "kind"]):
            cols = [batch.column(i).to_pylist() for i in range(3)]
            yield from zip(*cols, strict=True)


def _check_file(store: Store, rel: str, expected: str) -> tuple[str, str | None]:
    """("ok" | "missing" | "tampered", actual sha256)."""
    try:
        actual, _ = files.hash_file(store, rel)
    except FileNotFoundError:
        return "missing", None
    return ("ok" if actual == expected else "tampered"), actual


def _check_signature(
    store: Store, run_id: str, result: Verification, public_key_pem: bytes | None
) -> None:
    sig_rel = layout.provenance_signature(run_id)
    if not store.exists(sig_rel):
        manifest = runs.completed(store, run_id) or {}
        expected = " although its manifest says it was signed" if manifest.get("provenance") else ""
        result.problems.append(f"signature: run {run_id} is not signed (no {sig_rel}){expected}")
        return
    document = store.read_json(sig_rel)
    if public_key_pem is None:
        key_rel = layout.provenance_public_key(run_id)
        if not store.exists(key_rel):
            result.signature = SIGNATURE_INVALID
            result.problems.append(f"signature: no public key given and {key_rel} is missing")
            return
        public_key_pem, result.key_source = store.read_bytes(key_rel), f"run ({key_rel})"
    else:
        result.key_source = "given"
    result.public_key_fingerprint = fingerprint(public_key_pem)
    listing_rel = layout.provenance_files(run_id)
    if not store.exists(listing_rel):
        result.signature = SIGNATURE_INVALID
        result.problems.append(f"signature: the signed listing {listing_rel} is missing")
        return
    digest, _ = files.hash_file(store, listing_rel)
    message = listing_message(run_id, digest)
    if document.get("run_id") == run_id and verify_signature(
        public_key_pem, message, str(document.get("signature", ""))
    ):
        result.signature = SIGNATURE_VALID
        return
    result.signature = SIGNATURE_INVALID
    signed_by = document.get("public_key_fingerprint")
    if signed_by and signed_by != result.public_key_fingerprint:
        why = f"signed by key {signed_by}, not by the {result.key_source} key"
    elif digest != document.get("listing_sha256"):
        why = "the listing was altered after signing"
    else:
        why = "the signature does not match the listing and run id"
    result.problems.append(
        f"signature: invalid for run {run_id} ({why}; checked with {result.public_key_fingerprint})"
    )


def verify_run(
    store: Store,
    run_id: str | None = None,
    public_key_pem: bytes | None = None,
    threads: int = files.HASH_THREADS,
) -> Verification:
    """Check ``run_id`` (default: the last complete run) under ``store``: signature, every listed
    file's sha256, and files under the run that are not listed. Reports every problem found;
    never stops at the first."""
    run_id = run_id or runs.latest_run_id(store)
    if run_id is None:
        raise ConfigError(f"no complete run under {store.url!r} to verify")
    if not store.exists(layout.run_dir(run_id)) and not store.exists(layout.manifest(run_id)):
        raise ConfigError(f"no run {run_id!r} under {store.url!r}")
    result = Verification(run_id)
    _check_signature(store, run_id, result, public_key_pem)
    listing_rel = layout.provenance_files(run_id)
    if not store.exists(listing_rel):
        return result
    try:
        listed_run_files = _check_listed(store, listing_rel, result, threads)
    except (pa.ArrowException, KeyError) as exc:  # not a listing any more: nothing to compare
        result.tampered.append(listing_rel)
        result.problems.append(f"tampered: {listing_rel} is not a readable listing ({exc})")
        return result
    for rel in files.run_files(store, run_id):
        if rel not in listed_run_files:
            result.extra.append(rel)
            result.problems.append(f"extra: {rel} (not in the signed listing)")
    return result


def _check_listed(store: Store, listing_rel: str, result: Verification, threads: int) -> set[str]:
    """Hash every listed file into ``result``; returns the listed paths under the run."""
    listed_run_files: set[str] = set()
    absent: list[str] = []
    with ThreadPoolExecutor(threads, thread_name_prefix="provenance-verify") as pool:
        for batch in files.batches(_listing_rows(store, listing_rel), files.BATCH_ROWS):
            outcomes = pool.map(lambda r: _check_file(store, r[0], r[1]), batch)
            for (rel, expected, kind), (state, actual) in zip(batch, outcomes, strict=True):
                result.files_checked += 1
                if kind == files.KIND_RUN:
                    listed_run_files.add(rel)
                if expected == files.ABSENT_SHA256:  # gone before the run was signed
                    result.missing.append(rel)
                    absent.append(rel)
                elif state == "missing":
                    result.missing.append(rel)
                elif state == "tampered":
                    result.tampered.append(rel)
                    result.problems.append(
                        f"tampered: {rel} (sha256 {actual[:16]}…, signed {expected[:16]}…)"
                    )
    gone = set(absent)
    result.problems.extend(
        f"missing: {rel}" + (" (already missing when the run was signed)" if rel in gone else "")
        for rel in result.missing
    )
    return listed_run_files
