from pathlib import Path

import pytest

from audio_synth_core.config.models import load_config, parse_config
from audio_synth_core.errors import ConfigError
from tests.conftest import REPO


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    from audio_synth_core.config.audiobook import load_audiobook_config
    from audio_synth_core.config.compare import load_compare_config
    from audio_synth_core.config.dataset import load_spec
    from audio_synth_core.config.models import load_train_config, load_validate_config

    loaders = {
        "validate": load_validate_config,
        "train": load_train_config,
        "compare": load_compare_config,
        "audiobook": load_audiobook_config,
        "dataset": load_spec,
    }
    cfg = loaders.get(path.stem.split("-")[0], load_config)(path)
    assert cfg.name


def test_demo_catalog_path_is_resolved_relative_to_the_config():
    cfg = load_config(REPO / "configs" / "catalog-demo.yaml")
    assert Path(cfg.catalog.path).is_file()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"catalog": {"path": "x.csv"}, "sharding": {"items_per_shard": 0}},
            "sharding.items_per_shard",
        ),
        (
            {"catalog": {"path": "x.csv"}, "sharding": {"items_per_shrd": 5}},
            "sharding.items_per_shrd: Extra inputs",
        ),
        ({"catalog": {"path": "x.csv"}, "output": {"audio_format": "mp4"}}, "output.audio_format"),
        ({"catalog": {"path": "x.csv"}, "generator": {"name": "nope"}}, "unknown generator 'nope'"),
        ({"catalog": {}}, "catalog.path: Field required"),
        ({"catalog": {"path": "x.csv"}, "name": "has spaces"}, "name"),
        ({"catalog": {"path": "x.csv"}, "compute": {"n_workers": "many"}}, "compute.n_workers"),
    ],
)
def test_bad_config_names_the_field(data, expected):
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.")):
        parse_config(data)


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("catalog: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_config(tmp_path / "missing.yaml")


def test_overrides_are_validated():
    cfg = parse_config({"catalog": {"path": "x.csv"}})
    assert cfg.with_overrides(**{"output.url": "s3://b/p"}).output.url == "s3://b/p"
    with pytest.raises(ConfigError, match="compute.n_workers"):
        cfg.with_overrides(**{"compute.n_workers": 0})
