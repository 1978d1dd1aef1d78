"""The plug-in registry: entry points, and classes registered in-process for a ``with`` block."""

from __future__ import annotations

import pytest

from audio_synth_core.errors import PluginError
from audio_synth_core.plugins import registry as plugins
from audio_synth_core.validators.quality import QualityValidator


class Fake:
    pass


class Other:
    pass


def test_entry_points_load_their_class():
    assert plugins.load(plugins.VALIDATORS, "quality") is QualityValidator
    assert {"quality", "privacy"} <= set(plugins.available(plugins.VALIDATORS))


def test_register_is_seen_by_available_and_load_and_undone_after():
    with plugins.register(plugins.VALIDATORS, "fake", Fake) as cls:
        assert cls is Fake
        assert plugins.available(plugins.VALIDATORS)["fake"] is Fake
        assert plugins.load(plugins.VALIDATORS, "fake") is Fake
        assert "fake" not in plugins.available(plugins.GENERATORS)
    assert "fake" not in plugins.available(plugins.VALIDATORS)
    with pytest.raises(PluginError, match=r"unknown plug-in 'fake'.*registered: .*quality"):
        plugins.load(plugins.VALIDATORS, "fake")


def test_register_shadows_and_restores_a_name():
    with plugins.register(plugins.VALIDATORS, "quality", Fake):
        assert plugins.load(plugins.VALIDATORS, "quality") is Fake
        with plugins.register(plugins.VALIDATORS, "quality", Other):
            assert plugins.load(plugins.VALIDATORS, "quality") is Other
        assert plugins.load(plugins.VALIDATORS, "quality") is Fake
    assert plugins.load(plugins.VALIDATORS, "quality") is QualityValidator


def test_register_is_undone_when_the_block_raises():
    with pytest.raises(RuntimeError), plugins.register(plugins.VALIDATORS, "fake", Fake):
        raise RuntimeError("boom")
    assert "fake" not in plugins.available(plugins.VALIDATORS)


def test_register_takes_classes_only():
    with (
        pytest.raises(PluginError, match="must be a class"),
        plugins.register(plugins.VALIDATORS, "fake", Fake()),
    ):
        pass
