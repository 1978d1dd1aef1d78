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
