"""Training corpora: a pipeline-made one (a generator speaks catalog texts) or an existing dataset."""

from __future__ import annotations

import numpy as np

from audio_synth_core import audio
from audio_synth_core.config.models import CatalogConfig, CorpusConfig
from audio_synth_core.errors import ConfigError
from audio_synth_core.generators.base import SynthesisRequest, build_generator
from audio_synth_core.inputs import text
from audio_synth_core.inputs.catalog import read_catalog
from audio_synth_core.store.storage import read_uri

Example = tuple[str, np.ndarray, int]


def corpus_texts(cfg: CorpusConfig) -> list[str]:
    """Sentence-sized texts: the given ones, else chunks of the catalog's rows (in order)."""
    texts = list(cfg.texts)
    if cfg.texts_path:
        for row in read_catalog(CatalogConfig(path=cfg.texts_path)):
            if row.error is None and (cfg.language is None or row.language in (None, cfg.language)):
                texts.extend(text.chunk(row.text, cfg.language, max_chars=cfg.max_chunk_chars))
    # Deduplicate, keep order: repeated prompts teach nothing and skew the held-out split.
    return list(dict.fromkeys(t for t in texts if t.strip()))[: cfg.max_utterances]


def build_corpus(cfg: CorpusConfig) -> list[Example]:
    """(text, float32 audio, rate) examples for training."""
    if cfg.dataset_url:
        from audio_synth_core.inputs.datasets import discover

        items = discover(cfg.dataset_url).to_pylist()
        examples = []
        for item in items:
            if not item.get("text"):
                continue
            try:
                samples, rate = audio.decode(read_uri(item["audio_uri"]))
            except Exception:  # unreadable files are skipped; validation reports them
                continue
            examples.append((item["text"], samples, rate))
            if len(examples) >= cfg.max_utterances:
                break
        if not examples:
            raise ConfigError(
                f"corpus.dataset_url {cfg.dataset_url!r} has no readable audio with text"
            )
        return examples
    texts = corpus_texts(cfg)
    if not texts:
        raise ConfigError("corpus has no texts: set corpus.texts or corpus.texts_path")
    generator = build_generator(cfg.generator.name, cfg.generator.params)
    results = generator.generate([SynthesisRequest(t, cfg.voice) for t in texts])
    examples = [
        (t, r, generator.sample_rate_hz)
        for t, r in zip(texts, results, strict=True)
        if not isinstance(r, Exception)
    ]
    if not examples:
        raise ConfigError(
            f"corpus generator {cfg.generator.name!r} produced no audio (voice {cfg.voice!r})"
        )
    return examples
