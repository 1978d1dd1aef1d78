import pickle

import pyarrow as pa
import pytest

from audio_synth_core.errors import StorageError
from audio_synth_core.store.storage import Store


def test_local_atomic_writes_and_tables(tmp_path):
    store = Store(str(tmp_path / "root"))
    store.write_bytes("a/b/c.bin", b"data")
    assert store.read_bytes("a/b/c.bin") == b"data"
    assert not list((tmp_path / "root").rglob("*.tmp-*"))
    table = pa.table({"x": [1, 2, 3]})
    store.write_table("t/part-00000.parquet", table)
    store.write_table("t/part-00001.parquet", table)
    assert store.read_tables("t").num_rows == 6
    assert store.list("t") == ["part-00000.parquet", "part-00001.parquet"]
    assert store.list("missing") == [] and store.read_tables("missing") is None
    again = pickle.loads(pickle.dumps(store))
    assert again.read_bytes("a/b/c.bin") == b"data"
    assert store.uri("a/b/c.bin") == f"{tmp_path}/root/a/b/c.bin"


def test_unwritable_local_output_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError, match="cannot write to output"):
        Store(str(blocker / "out")).check_writable()


def test_s3_round_trip_and_missing_bucket(s3_bucket):
    store = Store(f"s3://{s3_bucket}/prefix")
    store.check_writable()
    store.write_json("m.json", {"a": 1})
    assert store.read_json("m.json") == {"a": 1}
    store.write_table("t/p.parquet", pa.table({"x": [1]}))
    assert store.read_tables("t").num_rows == 1
    with pytest.raises(StorageError, match="no-such-bucket-zz"):
        Store("s3://no-such-bucket-zz/p").check_writable()


def test_check_writable_leaves_nothing_behind(tmp_path):
    existing = tmp_path / "existing"
    existing.mkdir()
    Store(str(existing)).check_writable()
    assert list(existing.iterdir()) == []  # no _probe/ folder, no probe file
    Store(str(tmp_path / "new" / "nested" / "out")).check_writable()
    assert not (tmp_path / "new").exists()  # folders made for the probe are removed again


def test_unknown_protocol_is_named(tmp_path):
    with pytest.raises(StorageError, match="unknown URL protocol.*nosuchproto"):
        Store("nosuchproto://bucket/out").check_writable()


def test_object_store_retries_are_configured_and_the_users_win():
    from audio_synth_core.store.storage import CHECK_RETRIES, S3_RETRIES, object_store_options

    assert object_store_options("/local/out", {}) == {}
    filled = object_store_options("s3://b/out", {"key": "k"})
    assert filled == {"key": "k", "config_kwargs": {"retries": S3_RETRIES}}
    own = {"config_kwargs": {"retries": {"max_attempts": 3}}}
    assert object_store_options("s3://b/out", own) == own
    quick = object_store_options("s3://b/out", own, fail_fast=True)["config_kwargs"]
    assert quick["retries"] == CHECK_RETRIES and quick["connect_timeout"] <= 3


@pytest.mark.parametrize(
    ("exc", "meaning"),
    [
        (PermissionError(13, "Permission denied", "/out"), "permission denied"),
        (PermissionError("Access Denied"), "access denied: check the credentials"),
        (FileNotFoundError("The specified bucket does not exist"), "the bucket does not exist"),
        (FileNotFoundError(2, "No such file or directory", "/out"), "bucket or folder does not"),
        (NotADirectoryError(20, "Not a directory", "/f/out"), "a file is in the way"),
        (ValueError("Protocol not known: nosuch"), "unknown URL protocol"),
        (ConnectionError("connection refused"), "cannot reach the storage endpoint"),
    ],
)
def test_storage_errors_say_what_is_wrong_and_where(exc, meaning):
    from audio_synth_core.store.storage import storage_error

    message = str(storage_error("s3://b/out", exc))
    assert message.startswith("cannot write to output 's3://b/out': ") and meaning in message
