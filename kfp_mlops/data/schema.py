"""Data schema: what a valid batch looks like, inferred from statistics, kept as YAML.

A schema is versioned in the store under ``schemas/<name>/<version>/schema.yaml``
(version 1, 2, ...). Users edit the YAML (widen a range, add a category, mark a column
nullable) and hand it back with :func:`save_schema`, which stores it as the next version.
Re-inferring from new data replaces what users edited, so it only happens when asked for
(``update=True`` in :func:`infer_or_load_schema`), never as a side effect.

Each numeric range is marked ``range: inferred`` (advisory: read from data, widened by
the data gate when a passing batch steps past it) or ``range: curated`` (blocking: a
person set it). A range without a mark is curated: it was written by hand, or kept from
a schema stored before the mark existed. As in TFDV, an inferred schema constrains
presence, type, nulls and the domain of low-cardinality categoricals; a change of
distribution is drift, for the drift comparison, not a schema violation.
"""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from kfp_mlops.data.kinds import CATEGORICAL, CATEGORICAL_KINDS, KINDS, NUMERIC_KINDS
from kfp_mlops.data.stats import ColumnStatistics, DatasetStatistics
from kfp_mlops.errors import KfpMlopsError
from kfp_mlops.storage import AlreadyExistsError, ConflictError, NotFoundError, Store, StoreError

_SAVE_ATTEMPTS = 100

SCHEMAS_PREFIX = "schemas"
SCHEMA_FILE = "schema.yaml"
DEFAULT_DOMAIN_CAP = 200
INFERRED = "inferred"  # advisory: a value past it is a warning
CURATED = "curated"  # blocking: a value past it is an error
RANGE_KINDS = (INFERRED, CURATED)
# Text with a distinct value for at least this share of its values is not a
# low-cardinality categorical but names, ids or free text: every batch brings new
# values, so a closed domain would block each one. At most the share at which training
# drops the column (kfp_mlops.model.features.IDENTIFIER_DISTINCT_SHARE, 0.9; a test
# keeps it so), so a column no model reads never gets a closed domain.
OPEN_DOMAIN_DISTINCT_SHARE = 0.5
OPEN_DOMAIN_MIN_ROWS = 20
_FIELDS = ("type", "nullable", "min", "max", "range", "domain")


class SchemaError(KfpMlopsError, ValueError):
    """A schema file is malformed; the message names the field and the fix."""


class SchemaNotFoundError(NotFoundError):
    """No schema (or no such version of it) is stored under the name."""


@dataclass
class ColumnSchema:
    """Expectations for one column."""

    type: str  # a kind: one of kinds.KINDS
    nullable: bool = True
    min: float | None = None  # numeric/integer range, inclusive
    max: float | None = None
    # "inferred" (advisory) or "curated" (blocking); YAML key "range". None: curated.
    range_kind: str | None = None
    domain: list[str] | None = None  # allowed categories; None means any value

    def __post_init__(self) -> None:
        if self.type not in KINDS:
            raise SchemaError(
                f"column type {self.type!r} is unknown; use one of {', '.join(KINDS)}"
            )
        if self.range_kind is not None and self.range_kind not in RANGE_KINDS:
            raise SchemaError(
                f"range {self.range_kind!r} is unknown; use 'inferred' (advisory: a value "
                "past min/max is a warning) or 'curated' (blocking: it is an error)"
            )

    @property
    def range_blocks(self) -> bool:
        """Whether a value past min/max fails the gate (curated, or unmarked)."""
        return self.range_kind != INFERRED

    def to_dict(self) -> dict[str, Any]:
        """The YAML mapping of this column, ``null`` fields left out."""
        raw = asdict(self)
        raw["range"] = raw.pop("range_kind")
        if self.min is None and self.max is None:
            raw["range"] = None
        return {k: raw[k] for k in _FIELDS if raw.get(k) is not None}


@dataclass
class Schema:
    """Column expectations of a dataset, in column order."""

    columns: dict[str, ColumnSchema]
    version: int | None = None  # set when saved to or loaded from the store
    min_rows: int | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def to_yaml(self) -> str:
        """Human-readable YAML, in column order, with ``null`` fields left out."""
        columns = {name: col.to_dict() for name, col in self.columns.items()}
        body: dict[str, Any] = {"version": self.version, "min_rows": self.min_rows}
        body = {k: v for k, v in body.items() if v is not None}
        body["columns"] = columns
        if self.notes:
            body["notes"] = self.notes
        header = (
            "# kfp-mlops data schema. Edit to accept a change (widen min/max, add a value to\n"
            "# domain, set nullable: true), then save it: it becomes the next version.\n"
            "# range: inferred = advisory (past min/max warns; the gate widens it), range:\n"
            "# curated = blocking (past min/max fails). No domain: any value is allowed.\n"
        )
        return header + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)

    @classmethod
    def from_yaml(cls, text: str) -> Schema:
        """Parse :meth:`to_yaml` output (or a user's edit of it)."""
        try:
            body = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SchemaError(f"schema YAML does not parse: {exc}") from exc
        if not isinstance(body, dict) or not isinstance(body.get("columns"), dict):
            raise SchemaError("schema YAML needs a top-level 'columns:' mapping of column names")
        columns = {}
        for name, raw in body["columns"].items():
            if not isinstance(raw, dict) or "type" not in raw:
                raise SchemaError(f"column {name!r} in the schema needs a 'type:' field")
            unknown = set(raw) - set(_FIELDS)
            if unknown:
                raise SchemaError(
                    f"column {name!r} has unknown schema fields {sorted(unknown)}; allowed are "
                    f"{', '.join(_FIELDS)}"
                )
            domain = raw.get("domain")
            try:
                columns[str(name)] = ColumnSchema(
                    type=raw["type"],
                    nullable=bool(raw.get("nullable", True)),
                    min=raw.get("min"),
                    max=raw.get("max"),
                    range_kind=raw.get("range"),
                    domain=[str(v) for v in domain] if domain is not None else None,
                )
            except SchemaError as exc:
                raise SchemaError(f"column {name!r}: {exc}") from None
        return cls(
            columns=columns,
            version=body.get("version"),
            min_rows=body.get("min_rows"),
            notes=body.get("notes") or {},
        )


def infer_schema(stats: DatasetStatistics, domain_cap: int = DEFAULT_DOMAIN_CAP) -> Schema:
    """Infer the schema that the profiled data satisfies exactly.

    Ranges are the observed min/max, marked ``inferred`` (advisory). A categorical
    column gets its observed values as domain unless it has more than ``domain_cap`` of
    them, or is identifier-like (a distinct value for at least half of its values: names,
    ids, free text, which training drops at 90 %): then any value is allowed. A column
    with no missing values is not nullable.
    """
    columns = {}
    for name, col in stats.columns.items():
        schema_col = ColumnSchema(type=col.kind, nullable=col.missing > 0)
        if col.kind in NUMERIC_KINDS and isinstance(col.min, float | int):
            schema_col.min, schema_col.max = float(col.min), float(col.max)  # type: ignore[arg-type]
            schema_col.range_kind = INFERRED
        elif col.kind in CATEGORICAL_KINDS:
            capped = col.distinct_capped or (col.distinct or 0) > domain_cap
            if not capped and not (col.kind == CATEGORICAL and is_identifier_like(col)):
                schema_col.domain = sorted(v for v, _ in col.top_values or [])
        columns[name] = schema_col
    return Schema(columns=columns, notes={"inferred_from_rows": stats.rows})


def is_identifier_like(col: ColumnStatistics) -> bool:
    """Text with a distinct value for nearly every value: ids, names, free text."""
    return (
        col.count >= OPEN_DOMAIN_MIN_ROWS
        and (col.distinct or 0) >= OPEN_DOMAIN_DISTINCT_SHARE * col.count
    )


def widen_inferred_ranges(
    schema: Schema, stats: DatasetStatistics, run: str | None = None
) -> tuple[Schema, dict[str, dict[str, list[float]]]]:
    """A copy of ``schema`` whose inferred ranges also cover ``stats``; what widened.

    Curated ranges are kept as they are. The returned mapping names each widened
    column with its old and new ``[min, max]``; ``notes`` of the copy record them and
    ``run`` (the run that widened them) so the next version says why it exists.
    """
    columns: dict[str, ColumnSchema] = {}
    widened: dict[str, dict[str, list[float]]] = {}
    for name, expected in schema.columns.items():
        col = stats.columns.get(name)
        new = replace(expected)
        if (
            col is not None and expected.range_kind == INFERRED
            and col.kind in NUMERIC_KINDS and isinstance(col.min, float | int)
            and expected.min is not None and expected.max is not None
        ):
            new.min = min(expected.min, float(col.min))
            new.max = max(expected.max, float(col.max))  # type: ignore[arg-type]
            if (new.min, new.max) != (expected.min, expected.max):
                widened[name] = {"from": [expected.min, expected.max], "to": [new.min, new.max]}
        columns[name] = new
    notes = dict(schema.notes)
    if widened:
        notes["widened"] = {
            "run": run or "unknown",
            "from_version": schema.version,
            "rows": stats.rows,
            "columns": widened,
        }
    return Schema(columns=columns, min_rows=schema.min_rows, notes=notes), widened


def _versions(store: Store, name: str) -> list[int]:
    """Committed versions of schema ``name`` (its ``schema.yaml`` exists), from one listing."""
    _check_name(name)
    prefix = f"{SCHEMAS_PREFIX}/{name}/"
    found = set()
    for key in store.list(prefix):
        parts = key[len(prefix):].split("/")
        if len(parts) == 2 and parts[0].isdigit() and parts[1] == SCHEMA_FILE:
            found.add(int(parts[0]))
    return sorted(found)


def _check_name(name: str) -> None:
    if not name or "/" in name or name.startswith("."):
        raise SchemaError(f"schema name {name!r} is invalid; use a plain name like 'wine'")


def save_schema(store: Store, schema: Schema, name: str) -> int:
    """Store ``schema`` as the next version of ``name``; return that version number.

    The version's commit file is created atomically (``Store.publish_dir``): of two
    writers racing for one number, one gets it and the other takes the next.
    """
    version = 0
    for attempt in range(_SAVE_ATTEMPTS):
        if attempt:
            # Lost a race: back off a random while (spreading a crowd of writers out).
            time.sleep(random.uniform(0, 0.005 * 2 ** min(attempt, 6)))
        if attempt % 5 == 0:
            try:
                latest = (_versions(store, name) or [0])[-1]
            except StoreError as exc:
                raise exc.with_detail(f"Nothing was published (schema {name!r}).") from exc
            version = max(version + 1, latest + 1)
        else:
            version += 1  # the number after the one just lost (a listing costs more)
        to_store = Schema(
            columns=schema.columns, version=version, min_rows=schema.min_rows, notes=schema.notes
        )
        with tempfile.TemporaryDirectory(prefix="kfp-mlops-schema-") as tmp:
            (Path(tmp) / SCHEMA_FILE).write_text(to_store.to_yaml())
            try:
                store.publish_dir(f"{SCHEMAS_PREFIX}/{name}/{version}", tmp, SCHEMA_FILE)
            except AlreadyExistsError:
                continue  # another writer took this number
        schema.version = version
        return version
    raise ConflictError(
        f"could not save schema {name!r}: the version number was taken {_SAVE_ATTEMPTS} "
        "times by other writers; nothing was saved, retry later"
    )


def load_schema(store: Store, name: str, version: int | None = None) -> Schema:
    """Load version ``version`` (default: the latest) of schema ``name``."""
    versions = _versions(store, name)
    if not versions:
        raise SchemaNotFoundError(
            f"no schema named {name!r} in the store {store.uri}; infer one first "
            "(re-run with --update-schema) or save an edited schema.yaml"
        )
    chosen = versions[-1] if version is None else version
    if chosen not in versions:
        raise SchemaNotFoundError(
            f"schema {name!r} has no version {chosen}; stored versions are {versions}"
        )
    text = store.get_bytes(f"{SCHEMAS_PREFIX}/{name}/{chosen}/{SCHEMA_FILE}").decode()
    schema = Schema.from_yaml(text)
    schema.version = chosen
    return schema


def infer_or_load_schema(
    store: Store, name: str, stats: DatasetStatistics, update: bool = False
) -> tuple[Schema, bool]:
    """Load the stored schema, or infer and save one; say whether it is new.

    The first call for ``name`` infers and saves version 1. Later calls return the
    latest stored version untouched unless ``update=True``, which infers from ``stats``
    and saves it as the next version.
    """
    if not update and _versions(store, name):
        return load_schema(store, name), False
    schema = infer_schema(stats)
    save_schema(store, schema, name)
    return schema, True
