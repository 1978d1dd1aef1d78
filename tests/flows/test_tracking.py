"""Opening a run's MLflow store while its shards run (flows/tracking.py)."""

from __future__ import annotations

import sqlite3

import mlflow

from flows import tracking


def test_store_opened_in_background_is_complete_before_it_is_in_place(tmp_path):
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    tracking.open_in_background(uri)
    tracking.open_in_background(uri)  # once per store, however often it is asked
    with tracking.start_run(uri, "bg", "run-1") as run:
        tracking.log_metrics({"x": 1.0})
    assert mlflow.get_run(run.info.run_id).data.metrics == {"x": 1.0}
    # Linked into place only once migrated: MLflow's schema version is there, no temp file left.
    with sqlite3.connect(db) as con:
        (version,) = con.execute("select version_num from alembic_version").fetchone()
    assert version
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("mlflow.db")] == ["mlflow.db"]


def test_an_unreachable_store_fails_in_start_run_not_in_the_background(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    uri = f"sqlite:///{blocker / 'mlflow.db'}"
    tracking.open_in_background(uri)  # its error is swallowed
    try:
        tracking.start_run(uri, "bg", "run-2")
    except Exception as exc:  # MLflow's own error, raised where the run is logged
        assert str(blocker) in str(exc)
    else:
        raise AssertionError("start_run opened a store under a file")
