"""Parity torch vs ONNX vs int8 ONNX (``models.parity``, ``models.quantization``).

Tolerances (tiny untrained models, CPU): fp32 ONNX vs torch: same frame counts, log-mel max |diff|
< 1e-4, waveform max |diff| < 1e-3 and relative L2 < 1e-4 (measured ~1e-6, ~2e-5, ~1e-6). int8
(dynamic, QInt8 weights) vs torch: same frame counts, relative L2 < 0.1 (log-mel) and < 0.5
(waveform) (measured ~0.01 and 0.01-0.05), and smaller graphs.
"""

from __future__ import annotations

import json

import pytest

from audio_synth_core.models.parity import parity

from .conftest import DECODERS, TEXTS


@pytest.mark.parametrize("decoder", DECODERS)
def test_parity_torch_onnx_int8(bundles, decoder: str) -> None:
    tts, folder, int8 = bundles[decoder]
    report = parity(tts, folder, TEXTS, seed=3, int8_dir=int8)
    fp32, q8 = report["onnx"], report["int8"]
    assert fp32["frames"] == report["torch"]["frames"]
    assert fp32["mel"]["max_abs_diff"] < 1e-4
    assert fp32["wave"]["max_abs_diff"] < 1e-3 and fp32["wave"]["rel_l2"] < 1e-4
    assert fp32["duration_s_max_delta"] == 0.0 and fp32["rms_dbfs_max_delta"] < 1e-3
    assert fp32["copy_synthesis"]["mcd_db"] < 0.01
    assert q8["frames_equal"]
    assert q8["mel"]["rel_l2"] < 0.1 and q8["wave"]["rel_l2"] < 0.5
    assert q8["size_mb"] < fp32["size_mb"]
    json.dumps(report)  # a report goes to MLflow / JSON as it is
