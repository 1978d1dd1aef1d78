"""Sub-command groups of the ``audio-synth`` CLI, one module per job (audiobook, dataset, ...).

Each module here defines ``register(app: typer.Typer) -> None`` adding its commands; ``flows.cli``
registers every module of this package, so a new job adds its commands without editing the core
command file.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer


def register_all(app: typer.Typer) -> None:
    """Add the commands of every module in this package to ``app``."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(app)
