"""The data sets that ship inside installed packages, by name (nothing is downloaded).

Names only, no pandas: the CLI lists them in ``--help`` and picks the default without
paying for pandas; :mod:`kfp_mlops.data.sources` loads them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BundledDataset:
    """A data set that ships inside an installed package (nothing is downloaded)."""

    name: str
    target: str
    description: str


BUNDLED: dict[str, BundledDataset] = {
    d.name: d
    for d in [
        BundledDataset("breast_cancer", "target", "scikit-learn, binary, 569 rows, 30 numbers"),
        BundledDataset("wine", "target", "scikit-learn, 3 classes, 178 rows, 13 numbers"),
        BundledDataset("iris", "target", "scikit-learn, 3 classes, 150 rows, 4 numbers"),
        BundledDataset("diabetes", "target", "scikit-learn, regression, 442 rows, 10 numbers"),
        BundledDataset(
            "penguins", "species",
            "palmerpenguins, 3 classes, 344 rows, missing values and categorical columns",
        ),
    ]
}
DEFAULT_DATASET = "penguins"


def default_target(source: str) -> str | None:
    """The target column of a bundled data set, else ``None``."""
    bundled = BUNDLED.get(source)
    return bundled.target if bundled else None
