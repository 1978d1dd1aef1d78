"""Text sources of a dataset: plain-text corpora (one sentence a line), catalog files (via
``inputs/catalog``), templates with slot lists, and ``silence`` (no text: noise clips).

Every source becomes a ``SourceTexts``: distinct normalized texts, each with the document it came
from (the unit a leak-free split keeps together) and its class label. Texts are de-duplicated by
their normalized form across all sources (the first source and document keep it), so one spoken
text never lands in two splits through two documents.
"""

from __future__ import annotations

import itertools
import re
import string
from dataclasses import dataclass

import fsspec

from audio_synth_core.config.dataset import DatasetSpec, TextSource
from audio_synth_core.errors import CatalogError, ConfigError
from audio_synth_core.inputs import text as textnorm
from audio_synth_core.inputs.catalog import iter_catalog

_PUNCT = re.compile(r"[^\w\s']", re.UNICODE)


def normalize_for_match(text: str) -> str:
    """The form two texts are compared in (leak checks, de-duplication): NFKC, lower case, no
    punctuation, single spaces. "Turn on!" and "turn on" are the same text."""
    return " ".join(_PUNCT.sub(" ", textnorm.normalize(text).lower()).split())


@dataclass(frozen=True)
class SourceTexts:
    """One source's texts: parallel lists (``docs[i]`` is the document of ``texts[i]``)."""

    name: str
    kind: str
    language: str
    weight: float
    texts: list[str]
    docs: list[str]
    labels: list[str]

    @property
    def is_silence(self) -> bool:
        return self.kind == "silence"


def _read_lines(source: TextSource) -> list[tuple[str, str]]:
    if source.lines:
        return [(line, f"{source.name}:{i}") for i, line in enumerate(source.lines)]
    try:
        with fsspec.open(source.path, "rt", encoding="utf-8") as fh:
            raw = fh.read().splitlines()
    except FileNotFoundError:
        raise CatalogError(f"texts[{source.name}]: corpus {source.path!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"texts[{source.name}]: cannot read {source.path!r}: {exc}") from None
    if source.document_per_file:
        return [(line, f"{source.name}:{source.path}") for line in raw]
    return [(line, f"{source.name}:{i}") for i, line in enumerate(raw)]


def _read_catalog(source: TextSource) -> list[tuple[str, str]]:
    from audio_synth_core.config.models import CatalogConfig

    cfg = source.catalog or CatalogConfig(path=source.path or "")
    out = []
    for batch in iter_catalog(cfg):
        for row in batch:
            if row.error is None:
                # A catalog row may hold a paragraph: each sentence is a text of that document.
                for sentence in textnorm.split_sentences(row.text, row.language):
                    out.append((sentence, f"{source.name}:{row.catalog_id}"))
    return out


def _expand_template(source: TextSource) -> list[tuple[str, str]]:
    fields = [f for _, f, _, _ in string.Formatter().parse(source.template or "") if f]
    names = list(dict.fromkeys(fields))
    values = [[v for v in source.slots[n] if v.strip()] for n in names]
    out = []
    for combo in itertools.islice(itertools.product(*values), source.max_texts):
        filled = source.template.format(**dict(zip(names, combo, strict=True)))
        out.append((filled, f"{source.name}:{filled}"))
    return out


def load_source(source: TextSource, language: str) -> SourceTexts:
    """One source's distinct texts (normalized), documents and labels; an empty source fails."""
    if source.kind == "silence":
        label = source.label or source.name
        return SourceTexts(source.name, "silence", language, source.weight, [""], [""], [label])
    reader = {"lines": _read_lines, "catalog": _read_catalog, "template": _expand_template}
    pairs = reader[source.kind](source)
    texts, docs, labels, seen = [], [], [], set()
    for raw, doc in pairs:
        spoken = textnorm.normalize(raw)
        key = normalize_for_match(spoken)
        if not key or key in seen:
            continue
        seen.add(key)
        texts.append(spoken)
        docs.append(doc)
        labels.append(source.label or key)
    if not texts:
        raise ConfigError(f"texts[{source.name}]: the source has no non-empty text")
    return SourceTexts(source.name, source.kind, language, source.weight, texts, docs, labels)


def load_sources(spec: DatasetSpec) -> list[SourceTexts]:
    """Every source of ``spec``, texts de-duplicated across sources (first source keeps a text)."""
    loaded = [load_source(s, spec.language_of(s)) for s in spec.texts]
    seen: set[str] = set()
    out = []
    for src in loaded:
        if src.is_silence:
            out.append(src)
            continue
        keep = [i for i, t in enumerate(src.texts) if normalize_for_match(t) not in seen]
        seen.update(normalize_for_match(src.texts[i]) for i in keep)
        if not keep:
            raise ConfigError(f"texts[{src.name}]: every text already appears in an earlier source")
        out.append(
            SourceTexts(
                src.name,
                src.kind,
                src.language,
                src.weight,
                [src.texts[i] for i in keep],
                [src.docs[i] for i in keep],
                [src.labels[i] for i in keep],
            )
        )
    return out


def estimated_duration_s(text: str, rate_wpm: float = 175.0) -> float:
    """Rough spoken length of ``text`` (for a size target in hours): words at ``rate_wpm``, plus
    the engine's lead-in and tail. Only used to size the plan; real durations are measured."""
    words = max(1, len(text.split()))
    return 0.35 + words * 60.0 / rate_wpm
