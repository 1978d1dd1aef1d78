"""``CheckpointStore``: atomic writes, newest wins, old ones pruned."""

from __future__ import annotations

import os

import torch

from audio_synth_core.models.training.checkpoints import CheckpointStore


def test_checkpoint_store_writes_atomically_and_prunes(tmp_path) -> None:
    store = CheckpointStore(str(tmp_path / "ckpt"), keep=2)
    assert store.steps() == [] and store.load_latest(torch.device("cpu")) is None
    for step in (1, 2, 3):
        store.save(step, {"step": step})
    assert store.steps() == [2, 3]
    assert store.load_latest(torch.device("cpu")) == {"step": 3}
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["ckpt-00000002.pt", "ckpt-00000003.pt"]
