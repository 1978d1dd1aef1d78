"""Flaky and hostile object storage: a real S3 API (moto server) behind a fault-injecting proxy.

Transient faults (500, 503, SlowDown, dropped connections before and after the store applied the
request) are retried to success with nothing lost or half-written; denied access (403) and a missing
bucket fail before any work, quickly, naming the URL; a run interrupted between its audio writes and
its metadata write leaves no metadata pointing at missing audio.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import time

import pytest
import soundfile as sf

from audio_synth_core.config.models import parse_config
from audio_synth_core.errors import StorageError
from audio_synth_core.generators.base import build_generator
from audio_synth_core.pipeline import planning, runs
from audio_synth_core.pipeline.generate import generate_shard
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from flows.api import read_items, run_catalog
from flows.outcome import GateFailed
from tests.conftest import REPO, small_config, write_catalog
from tests.s3_proxy import FaultProxy, Rule

TRANSIENT = ("500", "503", "slowdown", "drop", "drop_after")


def _via(proxy: FaultProxy) -> dict:
    return {"client_kwargs": {"endpoint_url": proxy.url}}


def _objects(url: str) -> set[str]:
    """Every object under ``url``, relative to it (read directly, not through the proxy)."""
    store = Store(url)
    root = store.path("")
    return {p[len(root) + 1 :] for p in store.fs.find(root)}


def _assert_audio_matches(url: str, items) -> None:
    """Every ok item's audio exists, hashes to its sha256 and decodes to its sample count."""
    store = Store(url)
    for row in items[items["status"] == "ok"].itertuples():
        data = store.read_bytes(layout.audio(row.id, row.audio_format))
        assert hashlib.sha256(data).hexdigest() == row.sha256, row.id
        audio, _ = sf.read(io.BytesIO(data))
        assert len(audio) == row.num_samples, row.id


def test_transient_faults_on_put_and_get_are_retried_to_success(s3_server, s3_bucket):
    url = f"s3://{s3_bucket}/flaky"
    names = {f"f{i}-{action}": action for i, action in enumerate(TRANSIENT)}
    rules = [
        Rule(method, rf"/flaky/{name}$", action)
        for name, action in names.items()
        for method in ("PUT", "GET")
    ]
    # One request that meets three faults in a row: the client's backoff, not luck, carries it.
    names["burst"] = "503"
    rules += [
        Rule("PUT", r"/flaky/burst$", "503", times=3),
        Rule("GET", r"/flaky/burst$", "slowdown", times=3),
    ]
    with FaultProxy(s3_server, rules, max_in_a_row=3) as proxy:
        store = Store(url, _via(proxy))
        for name in names:
            store.write_bytes(name, name.encode() * 1000)
        for name in names:
            assert store.read_bytes(name) == name.encode() * 1000
    assert proxy.count() == sum(r.times for r in rules)  # every fault was injected...
    assert _objects(url) == set(names)  # ...and nothing extra or half-written is left


def test_retry_configuration_reaches_the_client(s3_server, s3_bucket):
    url = f"s3://{s3_bucket}/conf"
    no_retries = {"config_kwargs": {"retries": {"max_attempts": 0, "mode": "standard"}}}
    with FaultProxy(s3_server, [Rule("PUT", r"/conf/", "503", times=2)], max_in_a_row=2) as proxy:
        with pytest.raises(OSError, match="ServiceUnavailable|unable to handle"):
            Store(url, {**_via(proxy), **no_retries}).write_bytes("a", b"a")  # the user's setting
        Store(url, _via(proxy)).write_bytes("b", b"b")  # the default retries it
    assert proxy.injected == [("PUT", f"/{s3_bucket}/conf/{n}", "503") for n in "ab"]
    assert _objects(url) == {"b"}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("denied", "access denied"),
        ("missing bucket", "bucket does not exist"),
        # Nothing listens there: the check's own short retry budget, not the run's minute.
        ("unreachable", "cannot reach the storage endpoint"),
    ],
)
def test_denied_missing_or_unreachable_fail_fast_naming_the_url(
    s3_server, s3_bucket, case, expected
):
    bucket = "no-such-bucket-zz" if case == "missing bucket" else s3_bucket
    url = f"s3://{bucket}/out"
    rules = [Rule("*", "", "403", times=1000)] if case == "denied" else []
    with FaultProxy(s3_server, rules) as proxy:
        options = _via(proxy)
        if case == "unreachable":
            options = {"client_kwargs": {"endpoint_url": f"http://127.0.0.1:{_closed_port()}"}}
        start = time.monotonic()
        with pytest.raises(StorageError) as err:
            Store(url, options).check_writable()
        elapsed = time.monotonic() - start
    print(f"{case}: StorageError after {elapsed:.2f} s")
    assert url in str(err.value) and expected in str(err.value)
    assert not [f for f in proxy.forwarded if f[0] == "PUT" and f[2] < 300]  # nothing written


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the check connects


def test_run_interrupted_before_its_metadata_write_leaves_no_dangling_metadata(
    s3_server, s3_bucket, tmp_path
):
    url = f"s3://{s3_bucket}/cut"
    rows = [{"id": f"m{i}", "text": f"Line {i} of the notice.", "language": "en"} for i in range(3)]
    cfg = parse_config(small_config(write_catalog(tmp_path / "c.csv", rows), url))
    espeak = build_generator("espeak", {})
    store = Store(url)
    plan = planning.build_plan(cfg, espeak, store)
    (spec,) = runs.prepare(
        store,
        plan.items,
        plan.shards,
        layout.plan_dir(plan.run_id),
        lambda s: layout.items_part(s.run_id, s.name),
    )
    # The store refuses the metadata PUT: the shard dies after writing its audio.
    refuse = [Rule("PUT", r"/items/part-", "403", times=1000)]
    with FaultProxy(s3_server, refuse) as proxy, pytest.raises(PermissionError):
        generate_shard(spec, Store(url, _via(proxy)), espeak)
    written = {o for o in _objects(url) if o.startswith("audio/")}
    assert len(written) == 3 and proxy.count("403") == 1
    assert not store.exists(layout.items_part(plan.run_id, spec.name))
    assert runs.pending(store, plan.shards, lambda s: layout.items_part(s.run_id, s.name)) == [spec]
    # The next attempt commits metadata that names only audio that exists and matches.
    summary = generate_shard(spec, store, espeak)
    assert summary.n_ok == 3
    items = store.read_table(layout.items_part(plan.run_id, spec.name)).to_pandas()
    assert {layout.audio(i, "flac") for i in items["id"]} == written
    _assert_audio_matches(url, items)


@pytest.mark.slow
def test_catalog_run_through_flaky_s3_is_complete(prefect_api, s3_server, s3_bucket, tmp_path):
    url = f"s3://{s3_bucket}/run"
    rows = [
        {"id": f"s{i}", "text": f"Item {i}: the tide is out.", "language": "en"} for i in range(24)
    ]
    rules = [
        *(Rule("PUT", r"/audio/", action, times=2) for action in TRANSIENT),
        Rule("PUT", r"/items/part-", "503", times=2),
        Rule("PUT", r"/validation/part-", "drop", times=1),
        Rule("GET", r"/plan/part-", "slowdown", times=2),
        Rule("GET", r"/audio/", "drop", times=2),
        Rule("GET", r"/audio/", "500", times=1),
    ]
    cfg = small_config(write_catalog(tmp_path / "c.csv", rows), url)
    with FaultProxy(s3_server, rules) as proxy:
        cfg["output"]["storage_options"] = _via(proxy)
        manifest = committed_run(cfg)
    assert proxy.count() == sum(r.times for r in rules), proxy.injected
    items = read_items(url)
    assert len(items) == 24 and items["id"].is_unique and (items["status"] == "ok").all()
    assert manifest["metrics"]["items_generated"] == 24  # each item generated once, counted once
    _assert_audio_matches(url, items)
    audio = {o for o in _objects(url) if o.startswith("audio/")}
    expected = {layout.audio(i, "flac") for i in items["id"]}
    expected |= {layout.c2pa_sidecar(rel) for rel in expected}  # each FLAC's C2PA sidecar
    assert audio == expected  # no strays, none missing
    assert not [o for o in _objects(url) if ".tmp-" in o]


def committed_run(cfg: dict, **kwargs) -> dict:
    """The manifest of a committed run; a failed gate judges the data, not the storage, so its
    manifest counts here too."""
    try:
        return run_catalog(cfg, **kwargs)
    except GateFailed as exc:
        return exc.manifest


def _cli_run(cfg: dict, tmp_path, env: dict) -> tuple[subprocess.CompletedProcess, float]:
    path = tmp_path / "cfg.yaml"
    path.write_text(json.dumps(cfg))  # JSON is YAML
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", "from flows.cli import app; app()", "run", str(path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc, time.monotonic() - start


@pytest.mark.slow
@pytest.mark.parametrize("case", ["denied", "missing bucket"])
def test_cli_exits_2_quickly_naming_the_url(s3_server, s3_bucket, tmp_path, case):
    bucket = s3_bucket if case == "denied" else "no-such-bucket-zz"
    url = f"s3://{bucket}/out"
    rows = [{"id": "x1", "text": "Hello.", "language": "en"}]
    cfg = small_config(write_catalog(tmp_path / "c.csv", rows), url)
    # As a new user runs it: no Prefect API exported, state in a fresh folder.
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["AUDIO_SYNTH_HOME"] = str(tmp_path / "home")
    rules = [Rule("*", "", "403", times=1000)] if case == "denied" else []
    with FaultProxy(s3_server, rules) as proxy:
        cfg["output"]["storage_options"] = _via(proxy)
        proc, elapsed = _cli_run(cfg, tmp_path, env)
    print(f"{case}: exit {proc.returncode} after {elapsed:.1f} s")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert url in proc.stderr and "error:" in proc.stderr
