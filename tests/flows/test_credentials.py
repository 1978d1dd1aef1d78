"""The in-process hand-off of credentials: flow parameters are redacted, flows get the real ones."""

from __future__ import annotations

import pickle

import pytest
from fastapi.encoders import jsonable_encoder

from audio_synth_core.config.models import parse_config
from audio_synth_core.config.secrets import REDACTED
from audio_synth_core.errors import ConfigError
from audio_synth_core.store.storage import Store
from flows.credentials import handoff, public_view, restore, seal

CONFIG = {
    "catalog": {"path": "https://reader:pw-123456@host/catalog.csv"},
    "output": {"url": "s3://b/out", "storage_options": {"key": "AKIA0001", "secret": "s-0001abc"}},
}


def test_handoff_yields_a_redacted_copy_and_restore_returns_the_real_one():
    with handoff(CONFIG) as public:
        assert public["output"]["storage_options"] == {"key": REDACTED, "secret": REDACTED}
        assert public["catalog"]["path"] == f"https://reader:{REDACTED}@host/catalog.csv"
        # Prefect validates parameters into a new but equal mapping: that still restores.
        assert restore(dict(public)) is CONFIG
    # After the run, the real value is gone from the process registry.
    with pytest.raises(ConfigError, match=r"output\.storage_options\.key"):
        restore(public)


def test_values_without_credentials_pass_unchanged():
    plain = {"output": {"url": "out/demo", "storage_options": {}}}
    with handoff(plain) as public, handoff("configs/catalog-demo.yaml") as path:
        assert public is plain and path == "configs/catalog-demo.yaml"
        assert restore(public) is plain and restore(path) == path
    assert restore(None) is None


def test_a_url_with_a_password_is_handed_over_too():
    url = "ftp://me:pw-98765@host/out"
    with handoff(url) as public:
        assert public == f"ftp://me:{REDACTED}@host/out"
        assert restore(public) == url


def test_sealed_values_serialize_redacted_but_pickle_whole():
    store = Store("s3://b/out", {"key": "AKIA0001", "secret": "s-0001abc"})
    cfg = parse_config(CONFIG)
    for value in (store, cfg):
        encoded = str(jsonable_encoder(seal(value)))  # what Prefect stores for a subflow
        assert (
            "AKIA0001" not in encoded and "s-0001abc" not in encoded and "pw-123456" not in encoded
        )
        assert REDACTED in encoded
    assert jsonable_encoder(seal(store)) == {
        "type": "Store",
        "url": "s3://b/out",
        "storage_options": {"key": REDACTED, "secret": REDACTED},
    }
    back = pickle.loads(pickle.dumps(seal(store))).value  # what a Dask worker receives
    assert back.storage_options == {"key": "AKIA0001", "secret": "s-0001abc"}
    assert pickle.loads(pickle.dumps(seal(cfg))).value == cfg


def test_public_view_of_unknown_objects_names_only_their_type():
    assert public_view(object()) == "<object>"
    assert public_view({"a": [1, None, "x"]}) == {"a": [1, None, "x"]}
