"""Assessment pieces that read what validators declare: sample ranking and privacy flags."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audio_synth_core.assessment.assess import count_flagged, sample_ranking
from audio_synth_core.validators.privacy import SIMILARITY_CHECK


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (["mos_ovrl", "wer", "snr_db", "rms_dbfs"], ("mos_ovrl", True)),
        (["wer", "snr_db", "rms_dbfs"], ("wer", False)),  # low WER is good: worst = highest
        (["snr_db", "rms_dbfs"], ("snr_db", True)),
        (["rms_dbfs", "peak_dbfs"], ("rms_dbfs", True)),  # no direction: quietest first
        (["peak_dbfs", "cer"], None),
        ([], None),
    ],
)
def test_sample_ranking_follows_the_declared_priorities(columns, expected):
    df = pd.DataFrame({c: [1.0, 2.0] for c in ["id", *columns]})
    assert sample_ranking(df) == expected


def test_a_metric_without_values_does_not_rank():
    df = pd.DataFrame({"mos_ovrl": [np.nan, np.nan], "wer": [0.1, 0.2]})
    assert sample_ranking(df) == ("wer", False)


def test_flagged_items_are_counted_once_by_exact_check_name():
    df = pd.DataFrame(
        {
            "failed_checks": [
                SIMILARITY_CHECK,
                f"max_wer,{SIMILARITY_CHECK}",
                "max_wer",
                f"{SIMILARITY_CHECK}_draft",  # another check that merely starts the same
                None,
            ]
        }
    )
    assert count_flagged(df) == 2
    assert count_flagged(df.drop(columns=["failed_checks"])) == 0
