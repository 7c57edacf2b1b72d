"""The data validation gate as one step: statistics in, schema from the store, report out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kfp_mlops.data.report import html_report, markdown_summary
from kfp_mlops.data.schema import (
    Schema,
    SchemaNotFoundError,
    infer_schema,
    load_schema,
    save_schema,
    widen_inferred_ranges,
)
from kfp_mlops.data.stats import DatasetStatistics
from kfp_mlops.data.validation import (
    ValidationResult,
    ValidationThresholds,
    labels_pending,
    validate,
)
from kfp_mlops.storage import open_store


@dataclass(frozen=True)
class DataGateResult:
    """The gate's decision, the validation details, and whether the schema is new."""

    passed: bool
    reason: str
    validation: ValidationResult | None  # None: check-only and no schema stored
    schema_created: bool
    # Columns whose inferred range this batch widened (saved as a new schema version).
    widened: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    schema_version: int | None = None


def validate_against_store(
    stats: DatasetStatistics,
    store_uri: str,
    schema_name: str,
    *,
    update_schema: bool = False,
    warn_only: bool = False,
    report_path: str | Path | None = None,
    summary_path: str | Path | None = None,
    run_id: str | None = None,
    check_only: bool = False,
    pending_target: Callable[[], str | None] | None = None,
) -> DataGateResult:
    """Validate ``stats`` against the stored schema ``schema_name``; write the reports.

    The schema is inferred the first time and re-inferred only with ``update_schema``.
    When a batch passes with values past inferred (advisory) ranges, the widened ranges
    are saved as the next schema version, recording ``run_id`` as the run that widened
    them; curated ranges never move. With ``warn_only`` nothing is saved, since that
    pass does not mean the data was accepted.

    ``check_only`` (monitoring a batch) stores nothing: no schema is inferred, none
    widened; without a stored schema there is nothing to check, the batch passes and
    ``validation`` is None. ``pending_target`` answers the production model's target
    (which a monitored batch usually lacks), asked only when a stored schema is checked;
    that column's missing values become one ``labels_pending`` warning.
    """
    store = open_store(store_uri)
    if check_only:
        return _check_only(stats, store, schema_name, warn_only, report_path, summary_path,
                           pending_target)
    widened: dict[str, dict[str, list[float]]] = {}
    try:
        schema = None if update_schema else load_schema(store, schema_name)
    except SchemaNotFoundError:  # no schema yet: this data defines it (an outage raises)
        schema = None
    created = schema is None
    if schema is None:
        schema = _keep_curated(store, schema_name, infer_schema(stats)) if update_schema \
            else infer_schema(stats)
    result = validate(stats, schema, ValidationThresholds(warn_only=warn_only))
    if result.passed:
        reason = result.reason
        if created:
            # Only data that passes becomes the reference schema.
            save_schema(store, schema, schema_name)
            reason = f"{reason} (schema '{schema_name}' v{schema.version} inferred from this data)"
        elif not warn_only and not result.errors:
            wider, widened = widen_inferred_ranges(schema, stats, run_id)
            if widened:
                old = schema.version
                save_schema(store, wider, schema_name)
                schema = wider
                reason = (f"{reason}; inferred ranges of {', '.join(sorted(widened))} widened: "
                          f"schema '{schema_name}' v{old} -> v{schema.version}")
    else:
        reason = _blocking_reason(result)
    _write_reports(stats, result, schema_name, report_path, summary_path)
    return DataGateResult(result.passed, reason, result, created, widened, schema.version)


def _check_only(
    stats: DatasetStatistics, store, schema_name: str, warn_only: bool,
    report_path: str | Path | None, summary_path: str | Path | None,
    pending_target: Callable[[], str | None] | None,
) -> DataGateResult:
    try:
        schema = load_schema(store, schema_name)
    except SchemaNotFoundError:  # nothing to check against (an outage raises)
        _write_reports(stats, None, schema_name, report_path, summary_path)
        return DataGateResult(True, f"no schema '{schema_name}' stored: nothing checked",
                              None, False)
    result = validate(stats, schema, ValidationThresholds(warn_only=warn_only))
    # Checking a batch is monitoring it: its labels are usually not in yet.
    result = labels_pending(result, pending_target() if pending_target else None)
    reason = result.reason if result.passed else _blocking_reason(result)
    _write_reports(stats, result, schema_name, report_path, summary_path)
    return DataGateResult(result.passed, reason, result, False, schema_version=schema.version)


def _blocking_reason(result: ValidationResult) -> str:
    errors = result.errors
    reason = f"{len(errors)} blocking anomal{'y' if len(errors) == 1 else 'ies'}: " + "; ".join(
        f"{a.message} (fix: {a.fix})" for a in errors[:5]
    )
    if len(errors) > 5:
        reason += f"; and {len(errors) - 5} more in the report"
    return reason


def _write_reports(
    stats: DatasetStatistics, result: ValidationResult | None, schema_name: str,
    report_path: str | Path | None, summary_path: str | Path | None,
) -> None:
    if report_path:
        Path(report_path).write_text(
            html_report(stats, validation=result, title=f"Data report: {schema_name}")
        )
    if summary_path:
        Path(summary_path).write_text(markdown_summary(stats, validation=result))


def _keep_curated(store, schema_name: str, inferred: Schema) -> Schema:
    """Return ``inferred`` with the stored schema's curated ranges kept.

    Re-inferring replaces what the data showed, never what a person decided.
    """
    try:
        previous = load_schema(store, schema_name)
    except SchemaNotFoundError:
        return inferred
    for name, old in previous.columns.items():
        new = inferred.columns.get(name)
        if new is not None and old.range_blocks and (old.min, old.max) != (None, None) \
                and new.type == old.type:
            new.min, new.max, new.range_kind = old.min, old.max, old.range_kind
    return inferred
