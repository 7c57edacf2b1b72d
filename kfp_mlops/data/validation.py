"""Validate a dataset's statistics against a schema: the data-validation gate.

Unlike TFX's validator, which records anomalies and blocks nothing, the result here is a
boolean plus a reason that a pipeline branches on. Every anomaly names the column and
the value, and says how to accept the change or fix the data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from kfp_mlops.data.kinds import BOOLEAN, CATEGORICAL_KINDS, INTEGER, NUMERIC, NUMERIC_KINDS
from kfp_mlops.data.log_columns import is_log_column
from kfp_mlops.data.schema import ColumnSchema, Schema
from kfp_mlops.data.stats import ColumnStatistics, DatasetStatistics

ERROR = "error"
WARNING = "warning"
_ACCEPT_SCHEMA = "edit schema.yaml and save it as a new version, or re-run with --update-schema"


@dataclass
class ValidationThresholds:
    """When an observation becomes an anomaly.

    Defaults are deliberately lenient on noise and strict on breakage.

    Attributes:
        min_rows: fewer rows is an error (an empty or truncated extract). A schema's own
            ``min_rows`` wins when set.
        max_missing_share: a nullable column missing more than this share of values is an
            error (0.3: a feature that is mostly imputed carries little signal).
        range_slack: a value past the schema's [min, max] by at most this fraction of
            the range width is a warning, further out an error (0.5: a new batch's extremes
            legitimately edge past the training ones, heavy tails most; unit errors,
            sentinels like -999 and sign flips land far outside).
        max_unseen_category_share: rows with categories outside the schema's domain above
            this share are an error, any share below it a warning (0.01: a rare new label
            is normal, a renamed label is not).
        max_duplicate_share: duplicate rows above this share are an error (0.05: a few
            repeats happen in real data; many mean a join or an ingestion ran twice).
        extra_columns_are_errors: a column the schema does not know is a warning by
            default, since models select their features by name.
        warn_only: report every anomaly as a warning and pass (observe before enforcing).

    """

    min_rows: int = 1
    max_missing_share: float = 0.3
    range_slack: float = 0.5
    max_unseen_category_share: float = 0.01
    max_duplicate_share: float = 0.05
    extra_columns_are_errors: bool = False
    warn_only: bool = False


@dataclass
class Anomaly:
    """One thing in the data that the schema does not expect."""

    column: str | None  # None for dataset-level anomalies (rows, duplicates)
    kind: str
    severity: str  # "error" or "warning"
    message: str  # names the column and the value
    fix: str  # how to accept the change or fix the data

    def __str__(self) -> str:
        return f"[{self.severity}] {self.message}; {self.fix}"


@dataclass
class ValidationResult:
    """The gate's verdict: passed, every anomaly, and a one-line reason."""

    passed: bool
    anomalies: list[Anomaly] = field(default_factory=list)
    reason: str = ""

    @property
    def errors(self) -> list[Anomaly]:
        """Anomalies that fail the gate."""
        return [a for a in self.anomalies if a.severity == ERROR]

    @property
    def warnings(self) -> list[Anomaly]:
        """Anomalies reported without failing the gate."""
        return [a for a in self.anomalies if a.severity == WARNING]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationResult:
        """Rebuild from :meth:`to_dict` output."""
        return cls(data["passed"], [Anomaly(**a) for a in data["anomalies"]], data["reason"])


def _compatible(expected: str, actual: str, col: ColumnStatistics) -> bool:
    if expected == actual:
        return True
    # pandas reads an integer column with missing values as floats: still integers.
    return expected == INTEGER and actual == NUMERIC and col.all_integral is not False


def _check_column(
    name: str, expected: ColumnSchema, col: ColumnStatistics, t: ValidationThresholds
) -> list[Anomaly]:
    found: list[Anomaly] = []
    if not _compatible(expected.type, col.kind, col):
        return [Anomaly(
            name, "type_change", ERROR,
            f"column {name!r} is {col.kind} ({col.arrow_type}) in the data but {expected.type} "
            "in the schema",
            f"cast the column back to {expected.type} in the source, or {_ACCEPT_SCHEMA}",
        )]
    if col.count == 0:
        return [Anomaly(
            name, "all_null", ERROR,
            f"column {name!r} has no values: all {col.missing} rows are missing",
            "check the extract that fills this column (a broken join or a renamed source field)",
        )]
    if col.missing and not expected.nullable:
        found.append(Anomaly(
            name, "unexpected_nulls", ERROR,
            f"column {name!r} has {col.missing} missing values ({col.missing_share:.1%}) but is "
            "not nullable in the schema",
            f"fill the missing values, or set 'nullable: true' for {name!r}: {_ACCEPT_SCHEMA}",
        ))
    elif col.missing_share > t.max_missing_share:
        found.append(Anomaly(
            name, "missing_values", ERROR,
            f"column {name!r} misses {col.missing_share:.1%} of its values, above the "
            f"{t.max_missing_share:.1%} allowed",
            "fix the source, or raise max_missing_share if this much is expected",
        ))
    if col.kind in NUMERIC_KINDS:
        found += _check_range(name, expected, col, t)
    if col.kind in CATEGORICAL_KINDS and expected.domain is not None:
        found += _check_domain(name, expected.domain, col, t)
    return found


def _check_range(
    name: str, expected: ColumnSchema, col: ColumnStatistics, t: ValidationThresholds
) -> list[Anomaly]:
    found = []
    both = expected.min is not None and expected.max is not None
    width = abs(expected.max - expected.min) if both else 0.0  # type: ignore[operator]
    slack = t.range_slack * width  # a one-sided range has no width: no slack
    if expected.range_blocks:
        kind, severity = "curated", ERROR
        fix = (f"fix the source, or widen the curated range of {name!r} in schema.yaml "
               "(kfp-mlops data schema NAME --set FILE)")
    else:
        # Inferred ranges only describe the data seen so far: values moving past them
        # is drift (the drift comparison judges it), not a broken batch.
        kind, severity = "inferred", WARNING
        fix = (f"advisory: the data gate widens the inferred range of {name!r} when the "
               "batch passes; to make a range blocking, set 'range: curated' in schema.yaml")
    for label, value, bound, past in (
        ("minimum", col.min, expected.min, lambda v, b: v < b),
        ("maximum", col.max, expected.max, lambda v, b: v > b),
    ):
        if bound is None or value is None or not past(float(value), bound):
            continue
        side = "below" if label == "minimum" else "above"
        far = abs(float(value) - bound) > slack and kind == "inferred"
        note = (f"; more than {t.range_slack:.0%} of the range width away: a unit change or "
                "a sentinel value?") if far else ""
        found.append(Anomaly(
            name, "out_of_range", severity,
            f"column {name!r} has {label} {value:g}, {side} the schema's {kind} "
            f"{label[:3]} {bound:g}{note}",
            fix,
        ))
    return found


def _check_domain(
    name: str, domain: list[str], col: ColumnStatistics, t: ValidationThresholds
) -> list[Anomaly]:
    allowed = {v.lower() for v in domain} if col.kind == BOOLEAN else set(domain)
    counts = col.category_counts()
    if col.kind == BOOLEAN:
        counts = {k.lower(): v for k, v in counts.items()}
    seen = sum(n for v, n in counts.items() if v in allowed)
    unseen = col.count - seen  # values past the category cap count as unseen
    if unseen <= 0:
        return []
    share = unseen / col.count
    examples = [v for v, _ in sorted(counts.items(), key=lambda kv: -kv[1]) if v not in allowed]
    shown = ", ".join(repr(v) for v in examples[:5]) or "(values past the category cap)"
    severity = ERROR if share > t.max_unseen_category_share else WARNING
    return [Anomaly(
        name, "unseen_categories", severity,
        f"column {name!r} has {share:.1%} of rows with values not in the schema's domain: {shown}",
        f"add the values to the domain of {name!r} in schema.yaml, or re-run with "
        "--update-schema; or map them to known values in the source",
    )]


def _infinite_values(stats: DatasetStatistics) -> list[Anomaly]:
    """An error for every column holding +inf or -inf, whatever the schema says.

    No schema can accept them: scikit-learn refuses infinite inputs (in training and in
    serving alike), so they are refused here, by column, rather than deep in a fit.
    Reading them as missing values instead would train a model whose server still
    fails on the same values, and would hide an upstream bug (usually a division by
    zero) behind imputation.
    """
    found = []
    for name, col in stats.columns.items():
        if col.infinite:
            share = col.infinite / stats.rows if stats.rows else 0.0
            found.append(Anomaly(
                name, "infinite_values", ERROR,
                f"column {name!r} has {col.infinite} infinite values (inf or -inf, "
                f"{share:.1%} of rows); no model can learn from or score them",
                "replace them in the source (they often come from a division by zero): with "
                "an empty value if unknown (the model imputes it), or a finite bound",
            ))
    return found


def validate(
    stats: DatasetStatistics, schema: Schema, thresholds: ValidationThresholds | None = None
) -> ValidationResult:
    """Check ``stats`` against ``schema``; ``passed`` is False when any error is found."""
    t = thresholds or ValidationThresholds()
    found: list[Anomaly] = []
    min_rows = schema.min_rows if schema.min_rows is not None else t.min_rows
    if stats.rows < min_rows:
        found.append(Anomaly(
            None, "too_few_rows", ERROR,
            f"the dataset has {stats.rows} rows, fewer than the {min_rows} required",
            "check that the extract is complete, or lower min_rows",
        ))
    share = stats.duplicate_share
    if share is not None and share > t.max_duplicate_share:
        found.append(Anomaly(
            None, "duplicate_rows", ERROR,
            f"{stats.duplicate_rows} rows ({share:.1%}) repeat an earlier row, above the "
            f"{t.max_duplicate_share:.1%} allowed",
            "de-duplicate the source (a join or an ingestion that ran twice), or raise "
            "max_duplicate_share",
        ))
    for name, expected in schema.columns.items():
        if name not in stats.columns:
            found.append(Anomaly(
                name, "missing_column", ERROR,
                f"column {name!r} is in the schema but not in the data",
                f"restore the column in the source, or remove {name!r} from schema.yaml",
            ))
            continue
        found += _check_column(name, expected, stats.columns[name], t)
    found += _infinite_values(stats)
    for name in stats.columns:
        # The prediction log's own columns (_request_id, _prediction, ...) are the
        # suite's: known, never a feature, never an unknown column.
        if name not in schema.columns and not is_log_column(name):
            found.append(Anomaly(
                name, "extra_column", ERROR if t.extra_columns_are_errors else WARNING,
                f"column {name!r} ({stats.columns[name].kind}) is in the data but not in the "
                "schema",
                f"add {name!r} to schema.yaml, or re-run with --update-schema",
            ))
    if t.warn_only:
        for anomaly in found:
            anomaly.severity = WARNING
    return _verdict(found, schema)


def _verdict(found: list[Anomaly], schema: Schema) -> ValidationResult:
    errors = [a for a in found if a.severity == ERROR]
    warnings = len(found) - len(errors)
    version = f" v{schema.version}" if schema.version is not None else ""
    if errors:
        more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
        reason = f"data does not match schema{version}: {errors[0].message}{more}"
    else:
        reason = f"data matches schema{version} ({warnings} warnings)"
    return ValidationResult(passed=not errors, anomalies=found, reason=reason)


LABELS_PENDING = "labels_pending"


def labels_pending(result: ValidationResult | None, target: str | None) -> ValidationResult | None:
    """A batch without its labels is the normal case of monitoring, not bad data.

    Production batches (a file, a Parquet folder, a prediction log window) carry no
    target, or an empty one until the labels are joined. The schema, inferred from
    complete training data, expects the target and no nulls in it; those anomalies on
    the target become one warning, ``labels_pending``. Every other anomaly stands.
    """
    from dataclasses import replace

    if result is None or target is None:
        return result
    pending = ("missing_column", "unexpected_nulls", "all_null", "missing_values")
    anomalies = []
    for a in result.anomalies:
        if a.column == target and a.kind in pending:
            what = ("the batch has no target column" if a.kind == "missing_column"
                    else "the batch's target is empty on some rows")
            a = replace(a, kind=LABELS_PENDING, severity=WARNING,
                        message=f"labels pending: {what} {target!r} (not in yet)",
                        fix="nothing to fix: performance is estimated until the labels come "
                            "(kfp-mlops labels add joins them to a prediction log)")
        anomalies.append(a)
    if anomalies == result.anomalies:
        return result
    errors = [a for a in anomalies if a.severity == ERROR]
    if errors:
        more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
        reason = f"data does not match the schema: {errors[0].message}{more}"
    else:
        reason = (f"data matches the schema; labels pending ({target!r} not in yet), "
                  f"{len(anomalies) - 1} other warnings")
    return ValidationResult(not errors, anomalies, reason)
