"""The pronunciation lexicon: words or regexes -> respellings or espeak phonemes ``[[...]]``.

Applied to each chunk's normalized text before synthesis, so the text an item records is exactly
what the engine was given, and its content id changes only when a rule touches it: editing the
lexicon regenerates just the chunks containing the words it changes. Its version is a hash of its
rules (plus the user's label), recorded in the run manifest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from audio_synth_core.config.audiobook import LexiconEntry
from audio_synth_core.errors import ConfigError
from audio_synth_core.store import ids

PHONEMES = re.compile(r"\[\[[^\[\]]*\]\]")


@dataclass(frozen=True)
class Lexicon:
    rules: tuple[tuple[re.Pattern[str], str], ...]
    version: str  # content hash of the rules (12 hex), prefixed with the user's label if any

    def apply(self, text: str) -> str:
        """``text`` with every rule applied in order (phoneme strings already in it are kept)."""
        for pattern, say in self.rules:
            # A replacement is literal: backslashes in phoneme strings are not group references.
            text = _outside_phonemes(text, lambda part, p=pattern, s=say: p.sub(lambda _m: s, part))
        return text

    def touches(self, text: str) -> bool:
        return self.apply(text) != text

    def __len__(self) -> int:
        return len(self.rules)


def _outside_phonemes(text: str, fn: Callable[[str], str]) -> str:
    """Apply ``fn`` to the parts of ``text`` outside ``[[...]]`` (a rule never rewrites phonemes)."""
    out, last = [], 0
    for m in PHONEMES.finditer(text):
        out.append(fn(text[last : m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(fn(text[last:]))
    return "".join(out)


def build_lexicon(entries: Sequence[LexiconEntry], label: str | None = None) -> Lexicon:
    """Compile the rules (a bad regex is a ConfigError naming it)."""
    rules = []
    for entry in entries:
        flags = 0 if entry.case_sensitive else re.IGNORECASE
        if entry.word is not None:
            source = rf"(?<![\w\[]){re.escape(entry.word)}(?![\w\]])"
        else:
            source = entry.regex or ""
        try:
            pattern = re.compile(source, flags)
        except re.error as exc:
            raise ConfigError(f"lexicon regex {entry.regex!r} is invalid: {exc}") from None
        say = entry.say
        if "[[" in say and not PHONEMES.fullmatch(say.strip()):
            raise ConfigError(f"lexicon entry {entry.word or entry.regex!r}: unbalanced [[...]]")
        rules.append((pattern, say))
    dumped = [e.model_dump(mode="json") for e in entries]
    digest = ids.digest("lexicon", dumped)[:12]
    return Lexicon(tuple(rules), f"{label}-{digest}" if label else digest)


def speakable(text: str) -> str:
    """``text`` with phoneme strings removed: what an ASR transcript of it can be compared with."""
    return " ".join(PHONEMES.sub(" ", text).split())
