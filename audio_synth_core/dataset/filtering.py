"""The quality filter: keep or drop each dataset item from the validator metrics of its clean clip.

A synthetic utterance is rejected (rejection sampling, as in Synt++) when it is not intelligible
(ASR WER against its own text above ``max_wer``), noisy or broken (blind SNR under ``min_snr_db``,
DNSMOS OVRL under ``min_dnsmos_ovrl``), too short or long, or does not sound like the synthetic
speaker it was meant to be (cosine similarity of its speaker embedding to the centroid of that
speaker's clips under ``min_speaker_similarity``). A missing metric is not a reason to drop
(silence has no text to recognize and no speaker). Every augmented copy shares its clean clip's
fate, so one decision is made per clean clip.

The rejection rate per group (split, source, speaker, gender, ...) is what the report and MLflow
show: a filter that drops one accent far more than another changes the dataset's balance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from audio_synth_core.config.dataset import QualityFilter
from audio_synth_core.store import schema

GROUP_COLUMNS = (
    "split",
    "source",
    "label",
    "speaker_id",
    "gender",
    "age_band",
    "accent",
    "language",
)


def similarity_by_clip(parts: Callable[[], Iterable[pd.DataFrame]]) -> dict[str, float]:
    """Cosine of every clean clip's embedding to its speaker's centroid, streaming: ``parts()``
    yields frames with ``clean_id``, ``speaker_id``, ``speaker_embedding`` and is read twice
    (speaker sums, then similarities), so no more than one part's embeddings are in memory."""
    sums: dict[str, np.ndarray] = {}
    for df in parts():
        for spk, vecs in _unit_vectors(df):
            sums[spk] = sums.get(spk, 0) + vecs.sum(axis=0)
    centroids = {k: v / max(float(np.linalg.norm(v)), 1e-12) for k, v in sums.items()}
    out: dict[str, float] = {}
    for df in parts():
        for spk, vecs, clean in _unit_vectors(df, with_ids=True):
            out.update(zip(clean, (vecs @ centroids[spk]).tolist(), strict=True))
    return out


def _unit_vectors(df: pd.DataFrame, with_ids: bool = False) -> Iterator[tuple]:
    has = df["speaker_embedding"].map(lambda v: v is not None and len(v) > 0)
    sub = df[has & df["speaker_id"].notna()].drop_duplicates("clean_id")
    for spk, group in sub.groupby("speaker_id"):
        vecs = np.stack(group["speaker_embedding"].map(np.asarray).to_list()).astype(np.float64)
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        yield (spk, vecs, group["clean_id"].to_list()) if with_ids else (spk, vecs)


def speaker_similarity(items: pd.DataFrame) -> pd.Series:
    """Cosine similarity of each item's clean-clip embedding to its speaker's centroid (the mean
    of that speaker's unit embeddings, one per clean clip); NaN without an embedding."""
    out = pd.Series(np.nan, index=items.index, dtype=np.float64)
    if "speaker_embedding" not in items.columns:
        return out
    has = items["speaker_embedding"].map(lambda v: v is not None and len(v) > 0)
    has &= items["speaker_id"].notna()
    if not has.any():
        return out
    sub = items[has].drop_duplicates("clean_id")
    vectors = np.stack(sub["speaker_embedding"].map(np.asarray).to_list()).astype(np.float64)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    frame = pd.DataFrame(vectors, index=sub["speaker_id"].to_numpy())
    centroids = frame.groupby(level=0).mean()
    norms = np.linalg.norm(centroids.to_numpy(), axis=1, keepdims=True)
    centroids = pd.DataFrame(centroids.to_numpy() / np.maximum(norms, 1e-12), index=centroids.index)
    sims = np.einsum("ij,ij->i", vectors, centroids.loc[sub["speaker_id"]].to_numpy())
    by_clean = pd.Series(sims, index=sub["clean_id"].to_numpy())
    out[has] = items.loc[has, "clean_id"].map(by_clean).astype(np.float64)
    return out


def decide(items: pd.DataFrame, cfg: QualityFilter) -> pd.DataFrame:
    """``items`` with ``speaker_similarity``, ``kept`` (bool) and ``drop_reasons`` (comma-separated
    rule names; empty when kept). Failed items are dropped with reason ``failed``."""
    df = items.copy()
    if "speaker_similarity" not in df.columns:  # else computed by similarity_by_clip
        df["speaker_similarity"] = speaker_similarity(df)
    reasons = pd.Series([[] for _ in range(len(df))], index=df.index, dtype=object)

    def rule(name: str, bad: pd.Series) -> None:
        for i in bad[bad.fillna(False).astype(bool)].index:
            reasons[i].append(name)

    rule("failed", df["status"] != schema.STATUS_OK)
    if cfg.enabled:
        checks = (
            ("max_wer", "wer", lambda v, t: v > t, cfg.max_wer),
            ("min_snr_db", "snr_db", lambda v, t: v < t, cfg.min_snr_db),
            ("min_dnsmos_ovrl", "mos_ovrl", lambda v, t: v < t, cfg.min_dnsmos_ovrl),
            (
                "min_speaker_similarity",
                "speaker_similarity",
                lambda v, t: v < t,
                cfg.min_speaker_similarity,
            ),
            ("min_duration_s", "duration_s", lambda v, t: v < t, cfg.min_duration_s),
            ("max_duration_s", "duration_s", lambda v, t: v > t, cfg.max_duration_s),
        )
        for name, column, fails, threshold in checks:
            if threshold is not None and column in df.columns:
                values = pd.to_numeric(df[column], errors="coerce")
                if name.endswith("duration_s"):  # the clean clip decides, not its copies
                    values = values.groupby(df["clean_id"]).transform("first")
                rule(name, values.notna() & fails(values, threshold))
    df["drop_reasons"] = reasons.map(",".join)
    df["kept"] = df["drop_reasons"] == ""
    return df


def rejection_rates(decided: pd.DataFrame, columns: Sequence[str] = GROUP_COLUMNS) -> pd.DataFrame:
    """Items, dropped and rejection rate per group of each column (one row per group)."""
    rows = []
    for column in columns:
        if column not in decided.columns:
            continue
        grouped = decided.groupby(decided[column].fillna("-"), sort=True)["kept"]
        for value, kept in grouped:
            n = len(kept)
            dropped = int((~kept).sum())
            rows.append(
                {"attribute": column, "group": value, "items": n, "dropped": dropped,
                 "rejection_rate": dropped / n if n else 0.0}
            )  # fmt: skip
    return pd.DataFrame(rows, columns=["attribute", "group", "items", "dropped", "rejection_rate"])


def reason_counts(decided: pd.DataFrame) -> dict[str, int]:
    """How many items each rule dropped (an item may be dropped by several)."""
    reasons = decided["drop_reasons"].str.split(",").explode()
    return {str(k): int(v) for k, v in reasons[reasons != ""].value_counts().items()}
