"""Where things live under an output root. The only place that spells a path, so readers and
writers agree.

<root>/audio/<id[:2]>/<id>.<fmt>                  audio, content-addressed (shared by runs);
                                                  items record it relative (``audio_path``)
<root>/runs/<run_id>/plan/part-N.parquet          planned items of shard N
<root>/runs/<run_id>/items/part-N.parquet         item metadata of shard N (committed shard)
<root>/runs/<run_id>/validation/part-N.parquet    validator metrics + pass/fail of shard N
<root>/runs/<run_id>/changes.parquet              new / unchanged / gone ids versus the previous run
<root>/runs/<run_id>/reports/                     run reports
<root>/runs/<run_id>/decision/                    a compare run's table, decision and report
<root>/runs/<run_id>/manifest.json                written last: the run is complete when it exists
<root>/evaluations/<eval_id>/<label>/audio/...    a compare candidate's audio (shared by runs)
<root>/evaluations/<eval_id>/<label>/metrics.parquet   its per-prompt metrics (written last)
<root>/checkpoints/<train_id>/                    training checkpoints (resume)
<root>/models/<train_id>/                         a trained model (config.json written last)
<root>/quarantine/audio/...                       audio withheld by a validator (privacy) or a
                                                  revoked consent
<root>/registry/personas/<name>/v<N>.json         a voice persona version (written once)
<root>/registry/consent/<id>.json, audit/...      consent records; the audit log, a file per event
<root>/LATEST.json                                the last complete run
<root>/LEASE.json                                 who works on this output now (pipeline/lease.py)
<root>/REVOCATION_SWEEPS.json                     which runs each revoked consent's sweep covered
                                                  (voices/revocation.py)
"""

from __future__ import annotations

LATEST = "LATEST.json"
LEASE = "LEASE.json"
# Outside runs/: every name there is a run, and a run's own folder is covered by its signature.
REVOCATION_SWEEPS = "REVOCATION_SWEEPS.json"
RUNS = "runs"


def audio(item_id: str, fmt: str) -> str:
    """An item's audio, relative to the output root: what its ``audio_path`` column holds, so an
    output that is copied, moved or downloaded still finds it (``<root>/<audio_path>``)."""
    return f"audio/{item_id[:2]}/{item_id}.{fmt}"


def run_dir(run_id: str) -> str:
    return f"{RUNS}/{run_id}"


def plan_dir(run_id: str) -> str:
    return f"{run_dir(run_id)}/plan"


def plan_part(run_id: str, shard_name: str) -> str:
    return f"{plan_dir(run_id)}/{shard_name}.parquet"


def items_dir(run_id: str) -> str:
    return f"{run_dir(run_id)}/items"


def items_part(run_id: str, shard_name: str) -> str:
    return f"{items_dir(run_id)}/{shard_name}.parquet"


def validation_dir(run_id: str) -> str:
    return f"{run_dir(run_id)}/validation"


def validation_part(run_id: str, shard_name: str) -> str:
    return f"{validation_dir(run_id)}/{shard_name}.parquet"


def changes(run_id: str) -> str:
    return f"{run_dir(run_id)}/changes.parquet"


def reports_dir(run_id: str) -> str:
    return f"{run_dir(run_id)}/reports"


def decision_dir(run_id: str) -> str:
    return f"{run_dir(run_id)}/decision"


def manifest(run_id: str) -> str:
    return f"{run_dir(run_id)}/manifest.json"


def candidate_dir(eval_id: str, label: str) -> str:
    return f"evaluations/{eval_id}/{label}"


def candidate_audio(eval_id: str, label: str, name: str) -> str:
    return f"{candidate_dir(eval_id, label)}/audio/{name}"


def candidate_metrics(eval_id: str, label: str) -> str:
    """Written last: a candidate is evaluated exactly when this file exists."""
    return f"{candidate_dir(eval_id, label)}/metrics.parquet"


def checkpoints_dir(train_id: str) -> str:
    return f"checkpoints/{train_id}"


def model_dir(train_id: str) -> str:
    return f"models/{train_id}"


def quarantine(audio_rel: str) -> str:
    return f"quarantine/{audio_rel}"


# --- audiobook paths ---
# <root>/audiobooks/<book_id>/chapters/<chapter_key>/<slot>.{flac,mp3,vtt}   one chapter's files
#   (content-derived: an unchanged chapter is found, not rebuilt); chapter.json written last
# <root>/audiobooks/<book_id>/editions/<book_key>/{book.m4b,sample.*,book.json}  book.json last


def audiobook_dir(book_id: str) -> str:
    return f"audiobooks/{book_id}"


def audiobook_chapter_dir(book_id: str, chapter_key: str) -> str:
    return f"{audiobook_dir(book_id)}/chapters/{chapter_key}"


def audiobook_chapter_stem(book_id: str, chapter_key: str, slot: str) -> str:
    """Path without extension of a chapter's files (``-partN`` is added for split chapters)."""
    return f"{audiobook_chapter_dir(book_id, chapter_key)}/{slot}"


def audiobook_chapter_done(book_id: str, chapter_key: str) -> str:
    """Written last: a chapter is delivered exactly when this file exists."""
    return f"{audiobook_chapter_dir(book_id, chapter_key)}/chapter.json"


def audiobook_edition_dir(book_id: str, book_key: str) -> str:
    return f"{audiobook_dir(book_id)}/editions/{book_key}"


def audiobook_edition_file(book_id: str, book_key: str, name: str) -> str:
    return f"{audiobook_edition_dir(book_id, book_key)}/{name}"


def audiobook_book_json(book_id: str, book_key: str) -> str:
    """Written last: every file of the book with duration and sha256."""
    return audiobook_edition_file(book_id, book_key, "book.json")


def audiobook_report(run_id: str) -> str:
    return f"{reports_dir(run_id)}/audiobook.html"


def audiobook_chapters_report(run_id: str) -> str:
    """The run's chapter list with word counts (written before narration starts)."""
    return f"{reports_dir(run_id)}/chapters.json"


# --- dataset paths ---
# <root>/runs/<run_id>/dataset_plan/part-N.parquet  dataset items of shard N (speech + silence)
# <root>/runs/<run_id>/dataset/part-N.parquet       made dataset items of shard N (done marker)
# <root>/runs/<run_id>/export/                      exports (hf, lhotse, webdataset, nemo), card
# <root>/dataset_audio/<id[:2]>/<id>.<fmt>         silence and augmented clips, content-addressed
#                                                  (clean speech is ``audio(id, fmt)``, shared)


def dataset_audio(item_id: str, fmt: str) -> str:
    """A clip a dataset run makes after generation (silence, augmented copies). Outside
    ``audio/``: no run's items list them, so catalog garbage collection must not see them."""
    return f"dataset_audio/{item_id[:2]}/{item_id}.{fmt}"


def dataset_plan_dir(run_id: str) -> str:
    return f"{run_dir(run_id)}/dataset_plan"


def dataset_plan_part(run_id: str, shard_name: str) -> str:
    return f"{dataset_plan_dir(run_id)}/{shard_name}.parquet"


def dataset_dir(run_id: str) -> str:
    return f"{run_dir(run_id)}/dataset"


def dataset_part(run_id: str, shard_name: str) -> str:
    return f"{dataset_dir(run_id)}/{shard_name}.parquet"


def dataset_export_dir(run_id: str) -> str:
    """A dataset run's export folder (``export_dir(<this>, fmt)`` per format) and its card."""
    return f"{run_dir(run_id)}/export"


def dataset_card(run_id: str) -> str:
    return f"{dataset_export_dir(run_id)}/README.md"


def dataset_report(run_id: str) -> str:
    return f"{reports_dir(run_id)}/dataset.html"


def dataset_plan_report(run_id: str) -> str:
    """Target vs planned share per group: written before any generation."""
    return f"{reports_dir(run_id)}/plan.json"


def dataset_decisions(run_id: str) -> str:
    """Keep/drop of every dataset item with the rules that dropped it."""
    return f"{run_dir(run_id)}/filter.parquet"


# Dataset exports under an export folder ``out`` (dataset/exports/): one sub-folder per format.


def export_dir(out: str, fmt: str) -> str:
    return f"{out}/{fmt}"


def export_hf_shard(out: str, split: str, index: int, count: int) -> str:
    """Hugging Face's own shard naming (``data/train-00000-of-00002.parquet``)."""
    return f"{export_dir(out, 'hf')}/data/{split}-{index:05d}-of-{count:05d}.parquet"


def export_lhotse(out: str, name: str, kind: str, split: str) -> str:
    """Lhotse recipe naming: ``<corpus>_<recordings|supervisions|cuts>_<split>.jsonl.gz``."""
    return f"{export_dir(out, 'lhotse')}/{name}_{kind}_{split}.jsonl.gz"


def export_wds_shard(out: str, name: str, split: str, index: int) -> str:
    return f"{export_dir(out, 'webdataset')}/{split}/{name}-{split}-{index:06d}.tar"


def export_nemo(out: str, split: str) -> str:
    """NeMo's naming: ``<split>_manifest.json`` (JSON lines)."""
    return f"{export_dir(out, 'nemo')}/{split}_manifest.json"


# --- responsible synthesis paths (watermark, provenance, consent, personas) ---


def watermarks(run_id: str) -> str:
    """A run's watermark lookup table: payload -> item id (and the key's fingerprint)."""
    return f"{run_dir(run_id)}/watermarks.parquet"


def provenance_dir(run_id: str) -> str:
    """A run's signed listing: every file under the run plus the audio its items reference."""
    return f"{run_dir(run_id)}/provenance"


def provenance_files(run_id: str) -> str:
    """The listing (path, sha256, size): what the signature covers."""
    return f"{provenance_dir(run_id)}/files.parquet"


def provenance_signature(run_id: str) -> str:
    return f"{provenance_dir(run_id)}/files.sig"


def provenance_public_key(run_id: str) -> str:
    return f"{provenance_dir(run_id)}/public_key.pem"


def c2pa_sidecar(audio_rel: str) -> str:
    """A deliverable's C2PA manifest store next to it (formats that do not embed one: FLAC)."""
    return f"{audio_rel.rsplit('.', 1)[0]}.c2pa"


# The registry of voice personas and consent records (audio_synth_core/voices/): under the output
# root by default, or any root of its own (``consent.registry_url``).
REGISTRY = "registry"


def personas_dir() -> str:
    return f"{REGISTRY}/personas"


def persona_dir(name: str) -> str:
    return f"{personas_dir()}/{name}"


def persona(name: str, version: int) -> str:
    """One version of a persona, never overwritten once written."""
    return f"{persona_dir(name)}/v{version}.json"


def consent_dir() -> str:
    return f"{REGISTRY}/consent"


def consent(consent_id: str) -> str:
    return f"{consent_dir()}/{consent_id}.json"


def consent_table() -> str:
    """Every consent record as one Parquet table, rewritten on each grant, revoke or import."""
    return f"{REGISTRY}/consent.parquet"


def audit_dir() -> str:
    return f"{REGISTRY}/audit"


def audit_entry(stamp: str, unique: str) -> str:
    """One audit entry per file (object stores cannot append): names sort by time."""
    return f"{audit_dir()}/{stamp}-{unique}.json"
