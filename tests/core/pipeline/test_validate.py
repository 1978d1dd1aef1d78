"""One shard validated on a tmp_path store: metrics, checks, and per-item failures."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import pwd
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import pyarrow as pa
import pytest
import soundfile as sf

from audio_synth_core.audio import AudioDecodeError, decode
from audio_synth_core.inputs.datasets import discover
from audio_synth_core.pipeline import runs
from audio_synth_core.pipeline.validate import validate_row, validate_shard
from audio_synth_core.store import layout, schema
from audio_synth_core.store.audio_files import UnreadableAudio, is_per_file_error, read_audio
from audio_synth_core.store.storage import Store
from audio_synth_core.validators.base import build_validator
from tasks.retry import is_infrastructure_error
from tests.factories import SENTENCES, speech


def test_validate_shard_records_metrics_and_every_kind_of_failure(store, plan, generated):
    spec, rows = generated
    ok = [r for r in rows if r["status"] == "ok"]
    # One file goes missing, one is corrupted after generation.
    store.fs.rm(store.path(layout.audio(ok[0]["id"], "flac")))
    store.write_bytes(layout.audio(ok[1]["id"], "flac"), b"not audio at all")
    quality = build_validator("quality", {"min_duration_s": 0.2})
    summary = validate_shard(spec, store, [quality])
    assert summary.n_items == 4 and summary.n_passed == 0
    table = store.read_table(layout.validation_part(plan.run_id, spec.name))
    by_id = {r["id"]: r for r in table.to_pylist()}
    assert by_id[ok[0]["id"]]["failed_checks"] == "missing_audio"
    assert by_id[ok[1]["id"]]["failed_checks"] == "decode"
    failed = [r for r in rows if r["status"] != "ok"]
    assert all(by_id[r["id"]]["failed_checks"] == "generation" for r in failed)
    assert "snr_db" in table.column_names
    assert validate_shard(spec, store, [quality]).skipped


def test_validate_shard_measures_good_speech(store, plan, generated):
    spec, _ = generated
    validate_shard(spec, store, [build_validator("quality", {"min_duration_s": 0.2})])
    df = store.read_table(layout.validation_part(plan.run_id, spec.name)).to_pandas()
    good = df[df["failed_checks"] != "generation"]
    assert len(good) == 2 and good["passed"].all()
    assert (good["snr_db"] > 20).all() and (good["duration_s"] > 0.3).all()


# --- One bad path never fails a shard: each per-file problem is that file's failed row. ---------


@pytest.fixture
def hostile_folder(tmp_path):
    """Real espeak speech next to every kind of bad path a shared folder can hold."""
    root = tmp_path / "hostile"
    (root / "spk").mkdir(parents=True)
    for name, text in (("good.wav", SENTENCES[0]), ("spk/good2.flac", SENTENCES[1])):
        audio, rate = speech(text)
        sf.write(root / name, audio, rate)
    audio, rate = speech(SENTENCES[2])
    sf.write(root / "vanish.wav", audio, rate)  # deleted between listing and reading
    (root / "loop_a.wav").symlink_to("loop_b.wav")
    (root / "loop_b.wav").symlink_to("loop_a.wav")
    (root / "dangling.wav").symlink_to("gone.wav")
    (root / "x.wav").mkdir()
    os.mkfifo(root / "fifo.wav")  # opening it for reading would block forever
    (root / "zero.wav").symlink_to("/dev/zero")  # endless bytes: must not be read at all
    (root / "corrupt.flac").write_bytes(b"fLaC" + b"\x00" * 200)
    with open(os.fsencode(root) + b"/latin1-\xe9t\xe9.wav", "wb") as fh:  # a non-UTF-8 name
        fh.write(b"RIFF")
    return root


def _one_shard(items, out):
    """The validate flow's prepare step without Prefect: all items in one pending shard."""
    store = Store(str(out))
    (spec,) = runs.prepare(
        store,
        items,
        runs.make_shards("r1", items.num_rows, items.num_rows),
        layout.items_dir("r1"),
        lambda s: layout.validation_part(s.run_id, s.name),
    )
    return spec, store


def _validate_folder(folder, out, validators, before_validation=lambda: None):
    """Discover the folder, validate it as one shard: (summary, rows by id, discovered items)."""
    items = discover(str(folder))
    spec, store = _one_shard(items, out)
    before_validation()
    summary = validate_shard(spec, store, validators)
    table = store.read_table(layout.validation_part("r1", spec.name))
    return summary, {r["id"]: r for r in table.to_pylist()}, items.to_pylist()


# catalog id -> (failed_checks, words the reason must hold besides the file's own name)
BAD_PATHS = {
    "loop_a": ("unreadable", "too many levels of symbolic links"),
    "loop_b": ("unreadable", "symlink loop"),
    "dangling": ("missing_audio", "dangling symlink to 'gone.wav'"),
    "x": ("unreadable", "is a directory"),
    "fifo": ("unreadable", "fifo"),
    "zero": ("unreadable", "character device"),
    "vanish": ("missing_audio", "not found"),
    "corrupt": ("decode", "unreadable audio"),
    "latin1-\ufffdt\ufffd": ("unreadable", "not valid utf-8"),
}


@pytest.mark.timeout(60)
def test_every_bad_path_is_its_own_failed_row_and_good_speech_is_measured(hostile_folder, tmp_path):
    quality = build_validator("quality", {"min_duration_s": 0.2})
    summary, by_id, items = _validate_folder(
        hostile_folder,
        tmp_path / "out",
        [quality],
        before_validation=lambda: (hostile_folder / "vanish.wav").unlink(),
    )
    by_name = {i["catalog_id"]: (i, by_id[i["id"]]) for i in items}
    assert sorted(by_name) == sorted([*BAD_PATHS, "good", "spk/good2"])
    assert summary.n_items == 11 and summary.n_passed == 2
    for name in ("good", "spk/good2"):
        item, row = by_name[name]
        assert row["passed"] and row["failed_checks"] is None and row["validation_error"] is None
        assert row["duration_s"] > 1.0 and row["snr_db"] > 20 and row["sample_rate_hz"] == 22050
        data = Path(item["audio_uri"]).read_bytes()
        assert row["sha256"] == hashlib.sha256(data).hexdigest()
    for name, (check, words) in BAD_PATHS.items():
        item, row = by_name[name]
        reason = row["validation_error"]
        assert row["failed_checks"] == check, (name, reason)
        assert row["passed"] is False and row["status"] == "failed" and row["error"] == reason
        assert item["audio_uri"] in reason and words in reason.lower(), (name, reason)
        assert "BytesIO" not in reason
        assert row["duration_s"] is None and row["snr_db"] is None


def test_decode_error_names_the_file_not_a_buffer():
    with pytest.raises(AudioDecodeError, match=r"cannot decode /data/x\.wav: Format not recog"):
        decode(b"RIFF\x00\x00garbage" * 20, "/data/x.wav")
    with pytest.raises(AudioDecodeError, match=r"/data/e\.flac: empty file \(0 bytes\)"):
        decode(b"", "/data/e.flac")
    row = validate_row({"id": "i1", "audio_uri": "s3://b/k.wav"}, b"junk" * 10, [])
    assert row["failed_checks"] == "decode" and "s3://b/k.wav" in row["validation_error"]


def _read_as_nobody(paths: list[str]) -> dict:
    """read_audio on each path in a forked child that dropped root for the 'nobody' user."""
    uid = pwd.getpwnam("nobody").pw_uid
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no exec needed (root's interpreter is out of nobody's reach)
        code = 1
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            out = {}
            for path in paths:
                try:
                    out[path] = len(read_audio(path))
                except UnreadableAudio as exc:
                    out[path] = [exc.check, exc.reason]
            os.write(w, json.dumps(out).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as fh:
        data = fh.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return json.loads(data)


@pytest.mark.timeout(60)
def test_permission_denied_is_a_failed_row_not_a_crash(tmp_path):
    """Root reads a mode-000 file anyway (checked below), so as root the reads run in a forked
    child that became the unprivileged 'nobody' user, where the kernel really answers EACCES."""
    shared = Path(tempfile.mkdtemp(prefix="audio-synth-perm-"))
    try:
        shared.chmod(0o755)  # nobody must reach the folder, just not the one file
        audio, rate = speech(SENTENCES[3])
        for name in ("open.wav", "locked.wav"):
            sf.write(shared / name, audio, rate)
        (shared / "open.wav").chmod(0o644)
        (shared / "locked.wav").chmod(0o000)
        paths = [str(shared / "open.wav"), str(shared / "locked.wav")]
        if os.geteuid() == 0:
            assert len(read_audio(paths[1])) > 1000  # root is not denied: the check must drop it
            result = _read_as_nobody(paths)
        else:
            result = {paths[0]: len(read_audio(paths[0]))}
            with pytest.raises(UnreadableAudio) as denied:
                read_audio(paths[1])
            result[paths[1]] = [denied.value.check, denied.value.reason]
        assert result[paths[0]] == (shared / "open.wav").stat().st_size
        assert result[paths[1]] == ["unreadable", f"cannot read {paths[1]}: Permission denied"]
    finally:
        shutil.rmtree(shared, ignore_errors=True)


class _Answers(http.server.BaseHTTPRequestHandler):
    """A loopback HTTP server that answers each path with the status it is named after."""

    body = b""

    def do_GET(self) -> None:
        status = int(self.path.strip("/").split(".")[0])
        self.send_response(status)
        self.send_header("Content-Length", str(len(self.body) if status == 200 else 0))
        self.end_headers()
        if status == 200 and self.command == "GET":
            self.wfile.write(self.body)

    do_HEAD = do_GET

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_audio():
    audio, rate = speech(SENTENCES[4])
    buf = io.BytesIO()
    sf.write(buf, audio, rate, format="WAV")
    handler = type("Handler", (_Answers,), {"body": buf.getvalue()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("status", [500, 503, 429, "refused"])
def test_errors_a_retry_may_cure_propagate(http_audio, status):
    """A refused connection, a 5xx or throttling is not the file's fault: fsspec's HTTP filesystem
    calls them all "not found", but they propagate as errors tasks.retry retries."""
    if status == "refused":
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/clip.wav"  # closed below: refused
    else:
        url = f"{http_audio}/{status}.wav"
    with pytest.raises(OSError) as raised:
        read_audio(url)
    assert not isinstance(raised.value, UnreadableAudio) and not is_per_file_error(raised.value)
    assert is_infrastructure_error(raised.value) and url in str(raised.value)


@pytest.mark.timeout(60)
def test_a_transient_error_fails_the_shard_and_commits_nothing(http_audio, tmp_path):
    """Next to good and missing files, a 503 fails the whole shard (to be retried); the good
    file is measured and the missing one recorded once the store answers again."""
    rows = [
        {**_http_item(http_audio, "200"), "id": "good"},
        {**_http_item(http_audio, "404"), "id": "missing"},
        {**_http_item(http_audio, "503"), "id": "busy"},
    ]
    items = pa.Table.from_pylist(rows, schema=schema.ITEM_SCHEMA)
    spec, store = _one_shard(items, tmp_path / "out")
    quality = build_validator("quality", {"min_duration_s": 0.2})
    with pytest.raises(ConnectionError, match="503"):
        validate_shard(spec, store, [quality])
    assert not store.exists(layout.validation_part("r1", spec.name))
    # The retry, once the server is well again (the busy item now answers 403: denied).
    items = items.set_column(
        items.schema.get_field_index("audio_uri"),
        "audio_uri",
        pa.array([r["audio_uri"].replace("/503", "/403") for r in rows]),
    )
    spec, store = _one_shard(items, tmp_path / "out2")
    validate_shard(spec, store, [quality])
    by_id = {
        r["id"]: r for r in store.read_table(layout.validation_part("r1", spec.name)).to_pylist()
    }
    assert by_id["good"]["passed"] and by_id["good"]["duration_s"] > 1.0
    assert by_id["missing"]["failed_checks"] == "missing_audio"
    assert by_id["busy"]["failed_checks"] == "missing_audio"
    assert f"{http_audio}/403.wav" in by_id["busy"]["validation_error"]


def _http_item(base: str, status: str) -> dict:
    return {
        "id": status,
        "catalog_id": status,
        "chunk_index": 0,
        "generator": "imported",
        "attributes": "{}",
        "audio_uri": f"{base}/{status}.wav",
        "audio_format": "wav",
        "status": "ok",
        "change": "new",
    }


@pytest.mark.timeout(60)
def test_missing_objects_on_s3_are_failed_rows(s3_server, s3_bucket, tmp_path):
    """On a real S3 API (moto) a key deleted after listing, or a bucket that does not exist, is
    that item's missing_audio row (s3fs's NoSuchKey is not mistaken for a transient error); the
    good object next to them is measured."""
    import s3fs

    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_server})
    audio, rate = speech(SENTENCES[5])
    buf = io.BytesIO()
    sf.write(buf, audio, rate, format="FLAC")
    for name in ("good.flac", "gone.flac"):
        fs.pipe_file(f"{s3_bucket}/in/{name}", buf.getvalue())
    items = discover(f"s3://{s3_bucket}/in").to_pylist()
    fs.rm(f"{s3_bucket}/in/gone.flac")  # vanishes between listing and reading
    nobucket = {**items[0], "id": "nobucket", "audio_uri": "s3://no-such-bucket-x/a.flac"}
    table = pa.Table.from_pylist([*items, nobucket], schema=schema.ITEM_SCHEMA)
    spec, store = _one_shard(table, tmp_path / "o")
    validate_shard(spec, store, [build_validator("quality", {"min_duration_s": 0.2})])
    rows = store.read_table(layout.validation_part("r1", spec.name)).to_pylist()
    by_name = dict(zip([i["catalog_id"] for i in items] + ["nobucket"], rows, strict=True))
    assert by_name["good"]["passed"] and by_name["good"]["duration_s"] > 1.0
    assert by_name["gone"]["failed_checks"] == "missing_audio"
    assert f"s3://{s3_bucket}/in/gone.flac" in by_name["gone"]["validation_error"]
    assert by_name["nobucket"]["failed_checks"] == "missing_audio"
