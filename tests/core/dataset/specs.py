"""Small dataset specs shared by the dataset tests (mappings: each test changes what it needs)."""

from __future__ import annotations

import copy
from typing import Any

BASE: dict[str, Any] = {
    "name": "t",
    "seed": 3,
    "texts": [
        {"name": "cmds", "kind": "lines", "lines": ["yes", "no", "stop", "go", "left", "right"],
         "weight": 6},
        {"name": "silence", "kind": "silence", "weight": 1},
    ],
    "speakers": {
        "voices": ["en-us", "en-gb", "en-029"],
        "variants": ["m1", "m3", "f1", "f2"],
        "count": 12,
        "params": {"pitch": {"min": 35, "max": 65}, "rate_wpm": {"min": 150, "max": 190}},
    },
    "size": {"utterances": 420},
    "balance": {"by": ["speaker", "gender"], "tolerance": 0.05},
    "splits": {"ratios": {"train": 0.7, "dev": 0.15, "test": 0.15}, "disjoint_by": ["speaker"]},
}  # fmt: skip

SENTENCES = [
    f"Sentence {word} number {i} is spoken here."
    for i, word in enumerate(["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
                              "hotel", "india", "juliet", "kilo", "lima", "mike", "november",
                              "oscar", "papa", "quebec", "romeo", "sierra", "tango"])
]  # fmt: skip


def spec(**changes: Any) -> dict[str, Any]:
    """A deep copy of BASE with top-level sections replaced."""
    out = copy.deepcopy(BASE)
    out.update(copy.deepcopy(changes))
    return out
