"""Intelligibility of a chapter's chunks, each against its own text, with one regeneration.

The ``intelligibility`` validator (pocketsphinx, LM from the chapter's texts) scores every chunk
against the text as written (before the lexicon: a respelling is how a word should sound, not what
a listener should hear). A chunk over the WER limit is synthesized once more with the configured
retry parameters (e.g. a slower rate), as a new content-addressed item, and scored again; the
better take is used, and a chunk still over the limit is flagged in the report.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from audio_synth_core import audio
from audio_synth_core.audiobook.lexicon import speakable
from audio_synth_core.audiobook.plan import AUDIO_FORMAT, ChunkRef
from audio_synth_core.generators.base import Generator, SynthesisRequest
from audio_synth_core.pipeline.validate import validate_rows
from audio_synth_core.store import ids, layout
from audio_synth_core.store.storage import Store
from audio_synth_core.validators.base import ValidationContext, Validator
from audio_synth_core.watermark import WatermarkSettings, mark

BATCH = 32


@dataclass(frozen=True)
class ChunkCheck:
    item_id: str  # the planned chunk
    used_id: str  # the take assembled (the planned one, or its regeneration)
    wer: float | None
    retried: bool = False
    retry_wer: float | None = None
    flagged: bool = False
    asr_text: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def retry_id(item_id: str, params: Mapping[str, Any]) -> str:
    """The content id of a chunk's regeneration with ``params``."""
    return ids.content_id("retry", item_id, json.dumps(dict(params), sort_keys=True))


def _score(
    store: Store, rows: Sequence[tuple[str, ChunkRef]], validators: Sequence[Validator]
) -> dict[str, dict[str, Any]]:
    """Validation row per audio id of ``rows`` ((audio id, chunk) pairs), in batches."""
    out: dict[str, dict[str, Any]] = {}
    for begin in range(0, len(rows), BATCH):
        batch = []
        for audio_id, ref in rows[begin : begin + BATCH]:
            rel = layout.audio(audio_id, AUDIO_FORMAT)
            row = {
                "id": audio_id,
                "text": speakable(ref.script),
                "language": ref.language,
                "attributes": "{}",
            }
            batch.append((row, store.read_bytes(rel), rel))
        for (audio_id, _), result in zip(
            rows[begin : begin + BATCH], validate_rows(batch, validators), strict=True
        ):
            out[audio_id] = result
    return out


def _regenerate(
    store: Store,
    ref: ChunkRef,
    generator: Generator,
    params: Mapping[str, Any],
    watermark: WatermarkSettings | None,
) -> str | None:
    """Synthesize ``ref`` with ``params`` once (kept if already made); its id, or None."""
    # The chunk's own voice settings (a persona's pitch and rate) stay; the retry's override them.
    own = json.loads(ref.params) if ref.params else {}
    params = {**{k: v for k, v in own.items() if generator.params.get(k) != v}, **params}
    new_id = retry_id(ref.item_id, params)
    rel = layout.audio(new_id, AUDIO_FORMAT)
    if store.exists(rel):
        return new_id
    request = SynthesisRequest(ref.text, ref.voice, ref.language, 0, dict(params))
    result = generator.generate([request])[0]
    if isinstance(result, Exception):
        return None
    if watermark is not None:  # a regenerated take is marked like every narrated chunk
        result = mark(result, generator.sample_rate_hz, watermark, new_id)[0]
    store.write_bytes(rel, audio.encode(result, generator.sample_rate_hz, AUDIO_FORMAT))
    return new_id


def check_chunks(
    store: Store,
    chunks: Sequence[ChunkRef],
    validators: Sequence[Validator],
    generator: Generator,
    retry_params: Mapping[str, Any],
    watermark: WatermarkSettings | None = None,
) -> list[ChunkCheck]:
    """Score each chunk; regenerate those that fail once; the take to assemble for each."""
    if not validators:
        return [ChunkCheck(c.item_id, c.item_id, None) for c in chunks]
    texts = [speakable(c.script) for c in chunks]
    for v in validators:
        v.prepare(ValidationContext(texts=[t for t in texts if t]))
    first = _score(store, [(c.item_id, c) for c in chunks], validators)
    failed = [c for c in chunks if not first[c.item_id].get("passed", False)]
    retried: dict[str, str | None] = {
        c.item_id: _regenerate(store, c, generator, retry_params, watermark) for c in failed
    }
    second = _score(
        store, [(rid, c) for c in failed if (rid := retried[c.item_id]) is not None], validators
    )
    out = []
    for c in chunks:
        r1 = first[c.item_id]
        if c.item_id not in retried:
            out.append(ChunkCheck(c.item_id, c.item_id, r1.get("wer"), asr_text=r1.get("asr_text")))
            continue
        rid = retried[c.item_id]
        r2 = second.get(rid) if rid else None
        better = r2 is not None and (r2.get("wer") or 0.0) <= (r1.get("wer") or float("inf"))
        out.append(
            ChunkCheck(
                c.item_id,
                rid if better and rid else c.item_id,
                r1.get("wer"),
                retried=True,
                retry_wer=r2.get("wer") if r2 else None,
                flagged=not (r2 is not None and r2.get("passed", False)),
                asr_text=(r2 or r1).get("asr_text"),
            )
        )
    return out
