"""Numbers with placeholders: a text column of numbers plus a few ``?`` or ``-`` is numeric.

A CSV export often writes a missing number as ``?``, ``-`` or ``n/a``. The CSV reader
already reads ``NA``, ``N/A``, ``n/a``, ``null`` and empty cells as missing (pandas'
list), but one ``?`` makes the whole column text, and a model then one-hot encodes
hundreds of distinct numbers (a 439-category "mean radius"), silently.

Ingest watches every text column while it writes (:class:`PlaceholderScan`): a column
whose values are numbers except for at most :data:`MAX_TOKENS` distinct other values,
making up at most :data:`MAX_SHARE` of its non-empty cells, is rewritten as float64 with
those values missing, and the run says how many of which values it turned into missing
in which column. Past either bound the column is really text and stays text.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa

# At most this share of a column's non-empty cells may be placeholders for it to be
# read as numbers: a column with more non-numbers than that is text (a code, a grade).
MAX_SHARE = 0.1
# At most this many distinct placeholder values (``?``, ``-``, ``missing``, ...).
MAX_TOKENS = 5
# What batch scoring reads as a missing number (beside empty cells and pandas' NA list):
# the placeholders CSV exports use. Ingest accepts any few values (MAX_TOKENS) instead.
PLACEHOLDERS = frozenset({"", "?", "-", "--", ".", "n/a", "na", "nan", "null", "none",
                          "missing", "unknown", "#n/a"})
# A number as text: optional sign, digits with an optional fraction, optional exponent
# (what Arrow's string -> float64 cast accepts).
NUMBER = r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$"


@dataclass
class _Column:
    numbers: int = 0
    tokens: Counter = field(default_factory=Counter)
    text: bool = False  # past the bounds: not a numeric column


class PlaceholderScan:
    """Count numbers and other values in each text column of the batches it sees."""

    def __init__(self, schema: pa.Schema):
        self._columns = {f.name: _Column() for f in schema
                         if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)}

    def update(self, batch: pa.RecordBatch) -> None:
        """Count one batch (cheap once a column is known to be text: it is skipped)."""
        import pyarrow.compute as pc  # here: drift's CLI imports this module

        for name, seen in self._columns.items():
            if seen.text:
                continue
            values = pc.utf8_trim_whitespace(pc.drop_null(batch.column(name)))
            numeric = pc.match_substring_regex(values, NUMBER)
            seen.numbers += pc.sum(numeric).as_py() or 0
            others = pc.filter(values, pc.invert(numeric))
            if len(others):
                counts = pc.value_counts(others)
                for item in counts.to_pylist():
                    seen.tokens[item["values"]] += item["counts"]
                if len(seen.tokens) > MAX_TOKENS:
                    seen.text = True

    def numeric_columns(self) -> dict[str, dict[str, int]]:
        """The columns to read as numbers: name -> {placeholder: cells}, most first."""
        found = {}
        for name, seen in self._columns.items():
            placeholders = sum(seen.tokens.values())
            if (seen.text or not seen.numbers or not placeholders
                    or placeholders > MAX_SHARE * (seen.numbers + placeholders)):
                continue
            found[name] = dict(seen.tokens.most_common())
        return found


def as_numbers(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A text column as float64, every value that is not a number missing."""
    import pyarrow.compute as pc  # here: drift's CLI imports this module

    trimmed = pc.utf8_trim_whitespace(column)
    kept = pc.if_else(pc.match_substring_regex(trimmed, NUMBER), trimmed,
                      pa.scalar(None, pa.string()))
    return pc.cast(kept, pa.float64())


def non_numbers(column: pa.Array | pa.ChunkedArray) -> list[str]:
    """The distinct non-empty values of a text column that are not numbers."""
    import pyarrow.compute as pc  # here: drift's CLI imports this module

    values = pc.utf8_trim_whitespace(pc.drop_null(column))
    others = pc.filter(values, pc.invert(pc.match_substring_regex(values, NUMBER)))
    return pc.unique(others).to_pylist()


def convert_table(table: pa.Table, columns: dict[str, dict[str, int]]) -> pa.Table:
    """``table`` with each of ``columns`` read as numbers (see :func:`as_numbers`)."""
    for name in columns:
        index = table.schema.get_field_index(name)
        table = table.set_column(index, pa.field(name, pa.float64()),
                                 as_numbers(table.column(name)))
    return table


def describe(columns: dict[str, dict[str, int]]) -> str:
    """``'mean radius': 28 '?' read as missing; ...`` for the run's messages."""
    said = []
    for name, tokens in columns.items():
        values = ", ".join(f"{n} {token!r}" for token, n in tokens.items())
        said.append(f"{name!r}: {values}")
    return "; ".join(said)
