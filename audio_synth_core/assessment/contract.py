"""The data contract of item metadata, as a Great Expectations 1.x suite.

``check_contract`` validates one metadata DataFrame (one row per item, as read from the run's
Parquet) in an ephemeral GX context: nothing is persisted except, when ``docs_dir`` is given, the
Data Docs HTML site written into that folder; ``ContractRunner`` runs the same suite over several
frames in one context (a run's chunks, ``contract_parts``). ``great_expectations`` costs ~3.5 s to
import, so it is imported inside the functions that need it.

Metric columns are bounded by the validators that write them: every present column whose
``MetricField`` (``validators.base.registered_fields``) has a ``valid_range`` gets a range
expectation, so a new validator brings its own.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from audio_synth_core.store.schema import (
    CHANGE_NEW,
    CHANGE_UNCHANGED,
    ITEM_SCHEMA,
    STATUS_FAILED,
    STATUS_OK,
    STATUSES,
)
from audio_synth_core.store.serialize import json_safe as _json_safe
from audio_synth_core.validators.base import registered_fields

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

DEFAULT_MAX_DURATION_S = 7200.0  # ACX's per-file limit (120 min); runs configure their own
DEFAULT_SAMPLE_RATES_HZ = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000)
AUDIO_FORMATS = ("flac", "wav")
CHANGES = (CHANGE_NEW, CHANGE_UNCHANGED)
NOT_NULL = ("id", "status", "generator", "catalog_id")
SHA256_REGEX = r"^[0-9a-f]{64}$"
SUITE_NAME = "item_metadata_contract"
SITE_NAME = "audio_synth_contract"

# Integer columns read from Parquet become float64 in pandas when they hold nulls (failed items),
# so numeric columns accept any numeric dtype; the ranges below pin the values.
NUMERIC_TYPES = [
    *("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"),
    *("float32", "float64", "Int32Dtype", "Int64Dtype", "Float32Dtype", "Float64Dtype"),
]
BOOL_TYPES = ["bool", "BooleanDtype"]


@dataclass
class ExpectationOutcome:
    """One expectation's result, small enough for JSON reports and MLflow."""

    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    partial_unexpected: list[Any] = field(default_factory=list)
    observed_value: Any = None
    condition: str | None = None  # the row condition, e.g. status == "ok"
    details: dict[str, Any] | None = None
    exception: str | None = None


@dataclass
class ContractResult:
    success: bool
    results: list[ExpectationOutcome]
    data_docs_index: str | None  # absolute path of the Data Docs site's index.html
    n_rows: int
    elapsed_s: float

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [r for r in self.results if not r.success]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["n_expectations"] = len(self.results)
        d["n_failed"] = len(self.failed)
        return _json_safe(d)


def _type_expectations(columns: Iterable[str]) -> list[Expectation]:
    import great_expectations.expectations as gxe

    exps: list[Expectation] = []
    infer_string = bool(pd.get_option("future.infer_string"))
    for name in columns:
        if name in ITEM_SCHEMA.names:
            typ = ITEM_SCHEMA.field(name).type
        elif name == "passed":
            typ = pa.bool_()
        elif name in ("failed_checks", "error"):
            typ = pa.string()
        else:
            continue
        if pa.types.is_string(typ):
            if infer_string:
                # GX's type-list check cannot match pandas 3's default "str" dtype (it builds
                # StringDtype() with NA and compares unequal), so name the exact dtype here.
                exps.append(gxe.ExpectColumnTypeToBe(column=name, type_="str"))
            else:  # pandas 2: object columns, checked value by value
                exps.append(gxe.ExpectColumnValuesToBeInTypeList(column=name, type_list=["str"]))
        elif pa.types.is_boolean(typ):
            exps.append(gxe.ExpectColumnValuesToBeInTypeList(column=name, type_list=BOOL_TYPES))
        else:
            exps.append(gxe.ExpectColumnValuesToBeInTypeList(column=name, type_list=NUMERIC_TYPES))
    return exps


def build_expectations(
    columns: Sequence[str],
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
    sample_rates_hz: Iterable[int] = DEFAULT_SAMPLE_RATES_HZ,
    allowed_changes: Iterable[str] = CHANGES,
) -> list[Expectation]:
    """The contract's expectations for a table with these ``columns``.

    Every item-schema column is expected (and type-checked) whatever ``columns`` holds, so a
    missing column fails the suite; metric ranges (``metric_ranges``) apply to present columns.
    """
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    ok = Column("status") == STATUS_OK
    failed = Column("status") == STATUS_FAILED
    exps: list[Expectation] = [
        gxe.ExpectTableColumnsToMatchSet(column_set=list(ITEM_SCHEMA.names), exact_match=False),
        *_type_expectations(
            [*ITEM_SCHEMA.names, *(c for c in columns if c not in ITEM_SCHEMA.names)]
        ),
        *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in NOT_NULL),
        gxe.ExpectColumnValuesToBeUnique(column="id"),
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(STATUSES)),
        gxe.ExpectColumnValuesToBeInSet(column="audio_format", value_set=list(AUDIO_FORMATS)),
        gxe.ExpectColumnValuesToBeInSet(column="change", value_set=list(allowed_changes)),
        # ok rows describe a stored file: it has a length, a known rate, a location and a hash
        gxe.ExpectColumnValuesToNotBeNull(column="duration_s", row_condition=ok),
        gxe.ExpectColumnValuesToBeBetween(
            column="duration_s",
            min_value=0,
            max_value=float(max_duration_s),
            strict_min=True,
            row_condition=ok,
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="sample_rate_hz",
            value_set=sorted({int(r) for r in sample_rates_hz}),
            row_condition=ok,
        ),
        gxe.ExpectColumnValuesToNotBeNull(column="audio_uri", row_condition=ok),
        gxe.ExpectColumnValuesToNotBeNull(column="sha256", row_condition=ok),
        gxe.ExpectColumnValuesToMatchRegex(column="sha256", regex=SHA256_REGEX),
        # a failed row says why
        gxe.ExpectColumnValuesToNotBeNull(column="error", row_condition=failed),
    ]
    for name, (lo, hi) in metric_ranges(columns).items():
        exps.append(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=lo, max_value=hi))
    return exps


def metric_ranges(columns: Iterable[str]) -> dict[str, tuple[float | None, float | None]]:
    """Column -> (min, max) of every column in ``columns`` a registered validator bounds."""
    present = set(columns)
    return {
        name: f.valid_range
        for name, f in registered_fields().items()
        if f.valid_range is not None and name in present
    }


def _condition_text(cond: Any) -> str | None:
    """A row condition as text: 'status == "ok"' (GX returns objects or their dict form)."""
    if not cond:
        return None
    if hasattr(cond, "dict"):
        cond = cond.dict()
    if isinstance(cond, dict) and {"column", "operator", "parameter"} <= cond.keys():
        col = cond["column"].get("name") if isinstance(cond["column"], dict) else cond["column"]
        return f"{col} {cond['operator']} {json.dumps(cond['parameter'], default=str)}"
    return str(cond)


def _outcome(r: Any) -> ExpectationOutcome:
    cfg = r.expectation_config
    kwargs = cfg.kwargs
    res = r.result or {}
    exc = r.exception_info or {}
    # GX keys exception_info by metric when several metrics fail; take the first message.
    if exc and "raised_exception" not in exc:
        exc = next(iter(exc.values()), {})
    cond = kwargs.get("row_condition")
    details = res.get("details")
    return ExpectationOutcome(
        expectation=cfg.type,
        column=kwargs.get("column"),
        success=bool(r.success),
        unexpected_count=res.get("unexpected_count"),
        unexpected_percent=res.get("unexpected_percent"),
        partial_unexpected=list(res.get("partial_unexpected_list") or [])[:10],
        observed_value=res.get("observed_value"),
        condition=_condition_text(cond),
        details=_json_safe(details) if details else None,
        exception=exc.get("exception_message") if exc.get("raised_exception") else None,
    )


def _raw_counts(r: Any) -> int | None:
    """Rows an expectation judged (GX's denominator of ``unexpected_percent``), None when it
    does not count rows: what merging the results of several chunks needs."""
    res = r.result or {}
    if res.get("element_count") is None:
        return None
    return int(res["element_count"]) - int(res.get("missing_count") or 0)


@dataclass
class ContractRunner:
    """One ephemeral GX context with the contract's suite and checkpoint, run once per batch.

    ``columns`` are the metadata's columns (the suite depends on them); each ``validate`` call
    is one checkpoint run, stored as one validation result in the Data Docs site (when
    ``docs_dir`` is given)."""

    checkpoint: Any
    docs_dir: str | None

    @classmethod
    def create(
        cls,
        columns: Sequence[str],
        docs_dir: str | None,
        max_duration_s: float = DEFAULT_MAX_DURATION_S,
        *,
        sample_rates_hz: Iterable[int] = DEFAULT_SAMPLE_RATES_HZ,
        allowed_changes: Iterable[str] = CHANGES,
        partial_unexpected_count: int = 10,
    ) -> ContractRunner:
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        sites = {}
        if docs_dir is not None:
            docs_dir = os.path.abspath(docs_dir)
            sites[SITE_NAME] = {
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": docs_dir,
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            data_docs_sites=sites,
            analytics_enabled=False,  # no telemetry, and no network to send it to
            progress_bars=ProgressBarsConfig(globally=False),
        )
        # GX logs every store and site it builds at INFO; a pipeline log only needs our summary.
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        context = gx.get_context(mode="ephemeral", project_config=config)
        batch_definition = (
            context.data_sources.add_pandas("item_metadata")
            .add_dataframe_asset("items")
            .add_batch_definition_whole_dataframe("all_items")
        )
        # Built whole, then added once: suite.add_expectation re-serializes the stored suite per call.
        expectations = build_expectations(
            list(columns), max_duration_s, sample_rates_hz, allowed_changes
        )
        suite = context.suites.add(gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations))
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(name="item_metadata", data=batch_definition, suite=suite)
        )
        actions = [gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[SITE_NAME])]
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name="item_metadata_contract",
                validation_definitions=[validation],
                actions=actions if docs_dir is not None else [],
                result_format={
                    "result_format": "SUMMARY",
                    "partial_unexpected_count": partial_unexpected_count,
                },
            )
        )
        return cls(checkpoint, docs_dir)

    def validate(
        self, df: pd.DataFrame, run_name: str | None = None
    ) -> tuple[bool, list[tuple[ExpectationOutcome, int | None]]]:
        """One checkpoint run over ``df``: success, and each expectation's outcome with the
        number of rows it judged (``_raw_counts``)."""
        from great_expectations.core.run_identifier import RunIdentifier

        run_id = RunIdentifier(run_name=run_name) if run_name else None
        result = self.checkpoint.run(batch_parameters={"dataframe": df}, run_id=run_id)
        outcomes = [
            (_outcome(r), _raw_counts(r)) for vr in result.run_results.values() for r in vr.results
        ]
        return bool(result.success), outcomes

    @property
    def data_docs_index(self) -> str | None:
        """Absolute path of the Data Docs site's index.html, once written."""
        if self.docs_dir is None:
            return None
        index = os.path.join(self.docs_dir, "index.html")
        return index if os.path.exists(index) else None


def check_contract(
    df: pd.DataFrame,
    docs_dir: str | None,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
    *,
    sample_rates_hz: Iterable[int] = DEFAULT_SAMPLE_RATES_HZ,
    allowed_changes: Iterable[str] = CHANGES,
    partial_unexpected_count: int = 10,
) -> ContractResult:
    """Validate item metadata against the contract; write Data Docs into ``docs_dir`` if given.

    ``docs_dir`` must be a local folder (created if missing); upload it afterwards for remote
    outputs. GX's in-memory stores keep everything else off the disk. A run too large for one
    frame is validated part by part (``contract_parts.check_contract_parts``).
    """
    t0 = time.perf_counter()
    runner = ContractRunner.create(
        list(df.columns),
        docs_dir,
        max_duration_s,
        sample_rates_hz=sample_rates_hz,
        allowed_changes=allowed_changes,
        partial_unexpected_count=partial_unexpected_count,
    )
    success, outcomes = runner.validate(df)
    return ContractResult(
        success=success,
        results=[o for o, _ in outcomes],
        data_docs_index=runner.data_docs_index,
        n_rows=len(df),
        elapsed_s=time.perf_counter() - t0,
    )
