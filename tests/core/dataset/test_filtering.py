"""The quality filter: keep/drop from clean-clip metrics, speaker similarity to the intended
synthetic speaker, and the rejection rate per group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audio_synth_core.config.dataset import QualityFilter
from audio_synth_core.dataset import filtering


def _items() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    centre_a, centre_b = rng.normal(size=8), rng.normal(size=8)

    def near(centre, noise=0.05):
        v = centre + noise * rng.normal(size=8)
        return (v / np.linalg.norm(v)).astype(np.float32).tolist()

    rows = []
    for i in range(6):
        rows.append(
            {
                "clean_id": f"a{i}",
                "speaker_id": "A",
                "gender": "female",
                "split": "train",
                "speaker_embedding": near(centre_a),
                "wer": 0.0,
                "snr_db": 40.0,
            }
        )
    for i in range(6):
        rows.append(
            {
                "clean_id": f"b{i}",
                "speaker_id": "B",
                "gender": "male",
                "split": "test",
                "speaker_embedding": near(centre_b),
                "wer": 0.1,
                "snr_db": 40.0,
            }
        )
    rows[5]["speaker_embedding"] = near(centre_b)  # sounds like B, meant to be A
    rows[6]["wer"] = 0.9  # unintelligible
    rows[7]["snr_db"] = 3.0  # noisy
    rows.append(
        {
            "clean_id": "s0",
            "speaker_id": None,
            "gender": None,
            "split": "train",
            "speaker_embedding": None,
            "wer": None,
            "snr_db": None,
        }
    )  # silence
    df = pd.DataFrame(rows)
    df["status"] = "ok"
    df.loc[8, "status"] = "failed"
    df["duration_s"] = 1.0
    df["source"] = "s"
    return df


def test_speaker_similarity_finds_the_outlier():
    sims = filtering.speaker_similarity(_items())
    assert sims.iloc[5] == sims.iloc[:6].min() and sims.iloc[5] < 0.8
    assert (sims.drop([5, 12]) > 0.9).all()
    assert np.isnan(sims.iloc[12])  # silence: no speaker


def test_decide_drops_by_each_rule_and_keeps_unmeasured_items():
    cfg = QualityFilter(max_wer=0.5, min_snr_db=10, min_speaker_similarity=0.8)
    out = filtering.decide(_items(), cfg)
    dropped = dict(zip(out.index[~out["kept"]], out.loc[~out["kept"], "drop_reasons"], strict=True))
    assert dropped == {
        5: "min_speaker_similarity",
        6: "max_wer",
        7: "min_snr_db",
        8: "failed",
    }
    assert out.loc[12, "kept"]  # silence: nothing to judge, kept
    assert filtering.reason_counts(out) == {
        "min_speaker_similarity": 1, "max_wer": 1, "min_snr_db": 1, "failed": 1,
    }  # fmt: skip


def test_disabled_filter_drops_only_failures():
    out = filtering.decide(_items(), QualityFilter(enabled=False))
    assert (~out["kept"]).sum() == 1 and out.loc[8, "drop_reasons"] == "failed"


def test_augmented_copies_share_their_clean_clip_fate():
    items = _items()
    copy = items.iloc[[6]].assign(duration_s=40.0)  # a long augmented copy of a dropped clip
    items = pd.concat([items, copy], ignore_index=True)
    out = filtering.decide(items, QualityFilter(max_wer=0.5, max_duration_s=30))
    assert out.loc[13, "drop_reasons"] == "max_wer"  # the clean clip's duration decides


def test_rejection_rates_per_group():
    out = filtering.decide(_items(), QualityFilter(max_wer=0.5, min_snr_db=10))
    rates = filtering.rejection_rates(out).set_index(["attribute", "group"])
    assert rates.loc[("speaker_id", "B"), "rejection_rate"] == pytest.approx(3 / 6)
    assert rates.loc[("speaker_id", "A"), "rejection_rate"] == 0
    assert rates.loc[("split", "train"), "items"] == 7
    assert rates.loc[("gender", "-"), "dropped"] == 0


def test_streaming_similarity_matches_the_in_memory_one():
    items = _items()
    halves = [items.iloc[:7], items.iloc[7:]]
    streamed = filtering.similarity_by_clip(lambda: iter(halves))
    direct = filtering.speaker_similarity(items)
    for i, clean in items["clean_id"].items():
        if clean in streamed:
            assert streamed[clean] == pytest.approx(direct[i])
        else:
            assert np.isnan(direct[i])
    assert len(streamed) == 12
