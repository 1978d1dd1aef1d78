"""The dataset spec: shipped specs load; bad specs fail before any work, naming the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from audio_synth_core.config.dataset import DatasetSpec, load_spec, parse_spec
from audio_synth_core.errors import ConfigError
from tests.conftest import REPO
from tests.core.dataset.specs import spec


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("dataset*.yaml")))
def test_shipped_specs_load(path: Path):
    cfg = load_spec(path)
    assert isinstance(cfg, DatasetSpec)
    assert abs(sum(cfg.splits.ratios.values()) - 1) < 1e-9


def test_defaults_of_a_minimal_spec():
    cfg = parse_spec(spec())
    assert cfg.splits.disjoint_by == ["speaker"]
    assert cfg.quality_filter.max_wer == 0.5
    assert cfg.output.exports == ["hf", "lhotse", "webdataset", "nemo"]
    assert cfg.watermark.enabled and cfg.provenance.sign


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"splits": {"ratios": {"train": 0.7, "dev": 0.2, "test": 0.2}}}, "must sum to 1"),
        ({"splits": {"ratios": {"train": 0.0, "dev": 0.5, "test": 0.5}}}, "train split"),
        ({"texts": [{"name": "a", "kind": "lines", "lines": ["", "  "]}]}, "every line is empty"),
        ({"texts": [{"name": "a", "kind": "lines"}]}, "needs 'lines' or 'path'"),
        ({"texts": [{"name": "s", "kind": "silence"}]}, "at least one must have speech"),
        ({"texts": []}, "texts"),
        (
            {
                "texts": [
                    {
                        "name": "t",
                        "kind": "template",
                        "template": "turn {x} {y}",
                        "slots": {"x": ["on"]},
                    }
                ]
            },
            "template slots without values: ['y']",
        ),
        ({"size": {"utterances": 10, "hours": 1.0}}, "exactly one"),
        ({"size": {}}, "exactly one"),
        (
            {
                "balance": {
                    "constraints": [
                        {
                            "attribute": "gender",
                            "value": "female",
                            "min_share": 0.7,
                            "max_share": 0.5,
                        }
                    ]
                }
            },
            "above max_share",
        ),
        (
            {
                "balance": {
                    "constraints": [
                        {"attribute": "accent", "value": "a", "min_share": 0.6},
                        {"attribute": "accent", "value": "b", "min_share": 0.6},
                    ]
                }
            },
            "sum above 1",
        ),
        ({"generator": {"name": "no-such-engine"}}, "unknown generator"),
        ({"speakers": {"voices": []}}, "speakers.voices"),
        ({"bogus": 1}, "bogus"),
        (
            {"speakers": {"voices": ["en-us"], "params": {"pitch": {"min": 60, "max": 40}}}},
            "above max",
        ),
    ],
)
def test_bad_specs_name_the_problem(changes, message):
    with pytest.raises(ConfigError, match="invalid configuration") as err:
        parse_spec(spec(**changes))
    assert message in str(err.value)


def test_relative_corpus_path_is_taken_from_the_spec_folder(tmp_path):
    (tmp_path / "corpus.txt").write_text("one line\nanother line\n", encoding="utf-8")
    (tmp_path / "s.yaml").write_text(
        "texts: [{name: c, kind: lines, path: corpus.txt}]\n"
        "speakers: {voices: [en-us]}\nsize: {utterances: 4}\n",
        encoding="utf-8",
    )
    cfg = load_spec(tmp_path / "s.yaml")
    assert cfg.texts[0].path == str((tmp_path / "corpus.txt").resolve())


def test_overrides():
    cfg = parse_spec(spec()).with_overrides(**{"output.url": "/x", "compute.n_workers": 1})
    assert (cfg.output.url, cfg.compute.n_workers) == ("/x", 1)
