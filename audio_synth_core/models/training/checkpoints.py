"""Training checkpoints: ``ckpt-00001234.pt`` files under any fsspec URL, and the RNG state that
goes into them.

A checkpoint holds model, optimizer, scheduler, step, data order and every RNG state. The bytes are
made in memory and written in one go (temp name + rename on a local disk, a single put elsewhere),
so a checkpoint is either complete or absent; the newest one wins.
"""

from __future__ import annotations

import io
import os
import re
import uuid
from typing import Any

import fsspec
import torch
from fsspec.implementations.local import LocalFileSystem

from audio_synth_core.errors import StorageError

_CKPT = re.compile(r"ckpt-(\d{8})\.pt$")


class CheckpointStore:
    """``ckpt-<step>.pt`` files under an fsspec URL, written atomically, newest wins."""

    def __init__(self, url: str, keep: int = 2) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(url)
        self.keep = keep

    def _path(self, step: int) -> str:
        return f"{self.root.rstrip('/')}/ckpt-{step:08d}.pt"

    def steps(self) -> list[int]:
        try:
            names = self.fs.ls(self.root, detail=False) if self.fs.exists(self.root) else []
        except OSError as exc:
            raise StorageError(f"cannot list checkpoints at {self.root}: {exc}") from exc
        found = (_CKPT.search(str(n)) for n in names)
        return sorted(int(m.group(1)) for m in found if m)

    def save(self, step: int, state: dict[str, Any]) -> None:
        buf = io.BytesIO()
        torch.save(state, buf)
        data, path = buf.getvalue(), self._path(step)
        if isinstance(self.fs, LocalFileSystem):
            os.makedirs(self.root, exist_ok=True)
            tmp = f"{path}.tmp-{uuid.uuid4().hex}"
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        else:
            self.fs.pipe_file(path, data)  # one PUT: the object appears whole or not at all
        for old in self.steps()[: -self.keep]:
            self.fs.rm(self._path(old))

    def load(self, step: int, map_location: torch.device | str = "cpu") -> dict[str, Any]:
        """The checkpoint saved at ``step``."""
        data = self.fs.cat_file(self._path(step))
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=False)

    def load_latest(self, map_location: torch.device) -> dict[str, Any] | None:
        steps = self.steps()
        return self.load(steps[-1], map_location) if steps else None


def rng_state(device: torch.device) -> dict[str, Any]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
