import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from audio_synth_core.config.models import CatalogConfig
from audio_synth_core.errors import CatalogError
from audio_synth_core.inputs.catalog import iter_catalog, read_catalog


def test_csv_rows_and_broken_rows(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(
        "id,text,language,gender\n"
        "a,Hello world.,en,female\n"
        "b,,en,\n"
        ",No id here.,en,\n"
        "a,Duplicate.,en,\n"
        "c,too,many,fields,here\n"
        "\n"
        "d,Bonjour.,fr,male\n",
        encoding="utf-8",
    )
    rows = read_catalog(CatalogConfig(path=str(path)))
    by_id = {r.catalog_id: r for r in rows}
    assert by_id["a"].error is None and by_id["a"].attributes == {"gender": "female"}
    assert by_id["b"].error == "empty text"
    assert by_id["row-4"].error == "row 4: missing 'id'"
    assert by_id["a#row-5"].error == "duplicate id 'a' (first at row 2)"
    assert by_id["row-6"].error == "line 6: expected 4 fields, found 5"
    assert by_id["d"].language == "fr" and by_id["d"].error is None
    assert len(rows) == 6


def test_jsonl_and_parquet(tmp_path):
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text(
        json.dumps({"id": "x", "text": "One.", "voice": "de"}) + "\n{not json\n[1,2]\n",
        encoding="utf-8",
    )
    rows = read_catalog(CatalogConfig(path=str(jsonl)))
    assert rows[0].voice == "de" and rows[0].error is None
    assert rows[1].error.startswith("line 2: invalid JSON")
    assert rows[2].error == "line 3: expected a JSON object, got list"
    pq.write_table(pa.table({"sku": ["p"], "blurb": ["Text."]}), tmp_path / "c.parquet")
    rows = read_catalog(
        CatalogConfig(path=str(tmp_path / "c.parquet"), id_column="sku", text_column="blurb")
    )
    assert rows[0].catalog_id == "p" and rows[0].text == "Text."


def test_whole_catalog_errors(tmp_path):
    with pytest.raises(CatalogError, match="does not exist"):
        read_catalog(CatalogConfig(path=str(tmp_path / "nope.csv")))
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(CatalogError, match="is empty"):
        read_catalog(CatalogConfig(path=str(tmp_path / "e.csv")))
    (tmp_path / "n.csv").write_text("sku,blurb\n1,x\n")
    with pytest.raises(CatalogError, match="no column 'id'"):
        read_catalog(CatalogConfig(path=str(tmp_path / "n.csv")))
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(CatalogError, match="cannot tell the format"):
        read_catalog(CatalogConfig(path=str(tmp_path / "x.txt")))


def test_huge_text_is_one_failed_row(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("id,text\nbig," + "a" * 2000 + "\n")
    (row,) = read_catalog(CatalogConfig(path=str(path), max_text_chars=1000))
    assert "2000 characters" in row.error


def test_batches_stream_every_format_with_the_same_rows(tmp_path):
    records = [{"id": f"r{i}", "text": f"Line {i}."} for i in range(7)]
    records[3] = {"id": "r1", "text": "Duplicate,\nwith a quoted newline."}
    csv_path = tmp_path / "c.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", "text"])
        writer.writeheader()
        writer.writerows(records)
    jsonl_path = tmp_path / "c.jsonl"
    jsonl_path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    parquet_path = tmp_path / "c.parquet"
    pq.write_table(pa.Table.from_pylist(records), parquet_path, row_group_size=2)
    for path in (csv_path, jsonl_path, parquet_path):
        batches = list(iter_catalog(CatalogConfig(path=str(path)), batch_rows=3))
        assert [len(b) for b in batches] == [3, 3, 1]
        rows = [r for b in batches for r in b]
        assert rows == read_catalog(CatalogConfig(path=str(path)))
        # A duplicate is found across batches, and a quoted newline stays inside its field.
        assert rows[3].error.startswith("duplicate id 'r1' (first at row")
        assert rows[3].text == "Duplicate,\nwith a quoted newline."


def test_invalid_utf8_is_a_catalog_error(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(b"id,text\na,caf\xe9\n")
    with pytest.raises(CatalogError, match="not UTF-8"):
        read_catalog(CatalogConfig(path=str(path)))
