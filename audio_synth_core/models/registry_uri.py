"""Which MLflow store this process's registry calls (``models:/`` URIs, aliases) go to.

Apart from ``registry.py`` so that pointing MLflow at a run's store does not import torch: the
driver of every flow does it, and torch is over a second of its start-up.
"""

from __future__ import annotations

import os


def use_registry(uri: str) -> None:
    """Point this process's MLflow client (models:/ URIs, aliases) at ``uri``.

    ``mlflow.set_tracking_uri`` also exports MLFLOW_TRACKING_URI, which would make every later run
    of this process (a notebook running two outputs) use the first run's store: restore it.
    """
    import mlflow

    saved = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    if saved is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = saved
