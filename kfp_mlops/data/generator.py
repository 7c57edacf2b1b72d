"""Reference and drifted batches of a credit-risk-like table for the local drift loop.

They let the whole monitor -> retrain -> promote loop run with nothing downloaded.

``reference`` batches come from one fixed world. ``drifted`` batches move it: incomes
fall, debt rises, regions and employment mix change (data drift), and the link between
debt and default strengthens (concept drift), so a model trained on the reference world
loses accuracy and a retrained one wins it back. Values stay inside the ranges a
reference schema accepts, so drift is caught by the drift check, not the data gate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KINDS = ("reference", "drifted")
TARGET = "default"
REGIONS = ["north", "south", "east", "west"]
EMPLOYMENT = ["salaried", "self-employed", "contract", "retired"]


def make_batch(kind: str = "reference", rows: int = 2000, seed: int = 0) -> pd.DataFrame:
    """One batch of ``rows`` loan applications with a ``default`` label (yes/no)."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is unknown; use one of {', '.join(KINDS)}")
    if rows < 1:
        raise ValueError(f"rows must be positive, got {rows}")
    drifted = kind == "drifted"
    rng = np.random.default_rng(seed + (1000 if drifted else 0))
    region_p = [0.1, 0.2, 0.3, 0.4] if drifted else [0.4, 0.3, 0.2, 0.1]
    employment_p = [0.3, 0.35, 0.3, 0.05] if drifted else [0.6, 0.15, 0.1, 0.15]
    frame = pd.DataFrame({
        "age": np.clip(rng.normal(47 if drifted else 42, 11, rows), 18, 90).round(),
        "income": np.clip(
            rng.lognormal(10.45 if drifted else 10.8, 0.45, rows), 5e3, 4e5
        ).round(-2),
        "debt_ratio": np.clip(rng.beta(3.2 if drifted else 2, 4, rows), 0, 1).round(3),
        "credit_lines": rng.poisson(4.5 if drifted else 3, rows),
        "region": rng.choice(REGIONS, rows, p=region_p),
        "employment": rng.choice(EMPLOYMENT, rows, p=employment_p),
    })
    # Concept drift: in the drifted world debt matters far more and income less.
    debt_weight, income_weight = (9.0, 0.4) if drifted else (3.0, 1.4)
    logit = (
        debt_weight * (frame["debt_ratio"] - 0.4)
        - income_weight * (np.log(frame["income"]) - 10.7)
        + 0.6 * (frame["employment"] == "contract")
        - 0.02 * (frame["age"] - 42)
        + (0.8 if drifted else 0.0) * (frame["region"] == "east")
    )
    frame[TARGET] = np.where(rng.random(rows) < 1 / (1 + np.exp(-2 * logit)), "yes", "no")
    # Real extracts have holes.
    for column, share in (("income", 0.03), ("employment", 0.02)):
        frame.loc[rng.random(rows) < share, column] = None
    return frame
