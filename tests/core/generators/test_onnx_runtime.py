"""The ONNX runtime (``generators.onnx_runtime``): its numpy steps equal torch's bit for bit, noise
is drawn per item, a padding-dependent graph runs item by item, and a tampered graph is refused."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from audio_synth_core.errors import PluginError
from audio_synth_core.generators.onnx_runtime import (
    OnnxTTS,
    durations_from_exp,
    expand,
    per_item_noise,
)
from audio_synth_core.models import alignment
from audio_synth_core.models.acoustic import AcousticModel
from tests.core.models.conftest import TEXTS


@pytest.mark.parametrize("length_scale", [1.0, 0.8, 1.37])
def test_numpy_durations_and_expand_equal_torch(length_scale: float) -> None:
    rng = np.random.default_rng(0)
    log_dur = rng.uniform(-1.0, 3.5, (6, 40)).astype(np.float32)
    # Values whose frame count lands on (or next to) .5: round half to even must agree.
    log_dur[0, :8] = np.log1p(np.array([0.5, 1.5, 2.5, 3.5, 4.5, 0.0, 1.0, 7.5]) / length_scale)
    lengths = rng.integers(1, 41, 6)
    mask = np.arange(40)[None, :] < lengths[:, None]
    want = AcousticModel.durations_from_log(
        torch.from_numpy(log_dur), torch.from_numpy(mask), length_scale
    ).numpy()
    got = durations_from_exp(torch.exp(torch.from_numpy(log_dur)).numpy(), mask, length_scale)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.int64 and (got[~mask] == 0).all() and (got[mask] >= 1).all()

    # Exact ties, as torch.round rounds them (half to even), and the one-frame minimum.
    ties = np.float32([[1.5, 2.5, 3.5, 4.5, 5.5, 0.2]])
    np.testing.assert_array_equal(
        durations_from_exp(ties, np.ones((1, 6), bool)), [[1, 2, 2, 4, 4, 1]]
    )
    assert torch.round(torch.tensor([0.5, 1.5, 2.5, 3.5, 4.5])).tolist() == [0, 2, 2, 4, 4]

    hidden = rng.standard_normal((6, 40, 5)).astype(np.float32)
    frames, frame_mask = expand(hidden, got)
    t_frames, t_mask = alignment.expand(torch.from_numpy(hidden), torch.from_numpy(got))
    np.testing.assert_array_equal(frame_mask, t_mask.numpy())
    np.testing.assert_array_equal(frames, t_frames.numpy())


def test_per_item_noise_ignores_the_batch() -> None:
    spec = [5, "batch", "frames", 3]
    alone = per_item_noise(spec, [7])(np.array([4]))
    batch = per_item_noise(spec, [1, 7, 2])(np.array([9, 4, 6]))
    assert batch.shape == (5, 3, 9, 3)
    np.testing.assert_array_equal(batch[:, 1, :4], alone[:, 0])
    assert (batch[:, 1, 4:] == 0).all()
    assert per_item_noise([0], [1, 2])(np.array([3, 4])).shape == (0,)


def test_item_by_item_graphs_match_the_batched_ones(onnx_bundles) -> None:
    # A graph the export finds padding-dependent runs item by item; for a padding-invariant model
    # both ways must agree, which checks the item-by-item path (slicing ids, features and noise).
    tts, folder, _ = onnx_bundles["vae"]
    manifest = json.loads((folder / "tts.json").read_text())
    assert manifest["padding_invariant"] == {"encoder": True, "decoder": True}
    ids = [tts.frontend.encode(t) for t in TEXTS]
    batched = OnnxTTS(folder).synthesize(ids, [1, 2, 3, 4])
    runtime = OnnxTTS(folder)
    runtime.manifest["padding_invariant"] = {"encoder": False, "decoder": False}
    for a, b in zip(runtime.synthesize(ids, [1, 2, 3, 4]), batched, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_tampered_graph_is_refused(onnx_bundles, tmp_path) -> None:
    folder = shutil.copytree(onnx_bundles["vae"][1], tmp_path / "copy")
    with open(folder / "decoder.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(PluginError, match="sha256"):
        OnnxTTS(folder)
