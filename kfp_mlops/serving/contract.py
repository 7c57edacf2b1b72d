"""The input contract shared by online (V1, V2) and batch scoring.

The same rows are accepted everywhere:

- every feature the model uses must be present (a missing one is refused by name);
- the target column and the columns training dropped (both recorded in the model's
  ``metadata.json``) are accepted and ignored, so a client can send rows shaped like
  the training data without knowing what training dropped;
- any other column is refused by name: a field the model has never heard of is
  usually a mistake (a misspelt duplicate, a field meant for another model version),
  and ignoring it would hide that.
  ``KFP_MLOPS_IGNORE_UNKNOWN_COLUMNS=true`` (or ``--ignore_unknown_columns`` on the
  server, ``--ignore-unknown-columns`` on ``kfp-mlops serve`` and ``score``) ignores
  them instead.

No KServe import here: batch scoring uses it too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

IGNORE_UNKNOWN_ENV = "KFP_MLOPS_IGNORE_UNKNOWN_COLUMNS"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def ignore_unknown_from_env() -> bool:
    """Whether ``KFP_MLOPS_IGNORE_UNKNOWN_COLUMNS`` asks to ignore unknown columns."""
    value = os.environ.get(IGNORE_UNKNOWN_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{IGNORE_UNKNOWN_ENV}={os.environ[IGNORE_UNKNOWN_ENV]!r} is not a boolean; set it "
        "to true or false"
    )


@dataclass(frozen=True)
class InputContract:
    """Which columns a model requires, accepts and ignores, and refuses."""

    features: tuple[str, ...]
    ignored: frozenset[str]  # the target and the columns training dropped
    ignore_unknown: bool = False

    @classmethod
    def for_model(cls, metadata, ignore_unknown: bool | None = None) -> InputContract:
        """The contract of a model from its metadata; ``None`` reads the environment."""
        features = tuple(metadata.feature_names)
        ignored = {metadata.target, *metadata.dropped_columns} - set(features)
        if ignore_unknown is None:
            ignore_unknown = ignore_unknown_from_env()
        return cls(features, frozenset(c for c in ignored if c), ignore_unknown)

    def missing(self, columns: Iterable[str]) -> list[str]:
        """Features absent from ``columns``, in feature order."""
        present = set(columns)
        return [f for f in self.features if f not in present]

    def unknown(self, columns: Iterable[str]) -> list[str]:
        """Columns that are neither features nor ignored, in the order given.

        Empty when unknown columns are ignored on request.
        """
        if self.ignore_unknown:
            return []
        known = set(self.features) | self.ignored
        return [c for c in columns if c not in known]

    def unknown_message(self, name: str, where: str) -> str:
        """Why ``name`` is refused, and the two ways out."""
        ignored = f"; the target and dropped columns {sorted(self.ignored)} are ignored" \
            if self.ignored else ""
        return (
            f"{where} has unknown field '{name}'; the model's features are "
            f"{list(self.features)}{ignored}. Fix the name if it is a typo, drop the field, "
            f"or start the server with {IGNORE_UNKNOWN_ENV}=true (--ignore-unknown-columns) "
            "to ignore unknown fields"
        )
