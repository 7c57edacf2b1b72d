"""Data and a model for timing sharded batch scoring (docs/serving.md, "Measured figures").

Trains the suite's penguins model (``train_model``, estimator ``auto``), publishes it as
``penguins@production`` in ``ROOT/store``, and writes ``--rows`` penguin rows (repeated,
an ``id`` column first) as ``--files`` Parquet files under ``ROOT/in/day=K/`` (4 hive
folders, 100,000-row row groups) and as one file ``ROOT/whole.parquet``. Then::

    kfp-mlops score penguins@production ROOT/in/ --out ROOT/out --keep-columns id \\
        --shard-rows 250000 --workers 2 --store ROOT/store
    kfp-mlops score penguins@production --data ROOT/whole.parquet \\
        --out ROOT/whole-out.parquet --keep-columns id --store ROOT/store

Usage: ``python bench/make_sharded.py ROOT --rows 2000000 --files 8``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kfp_mlops.data.sources import load_table
from kfp_mlops.model.package import write_model_folder
from kfp_mlops.model.registry import Registry
from kfp_mlops.model.settings import TrainingSettings
from kfp_mlops.model.train import train_model
from kfp_mlops.storage import open_store


def main() -> None:
    """Write the model, the sharded folder and the single file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=8)
    args = parser.parse_args()
    root: Path = args.root
    data = load_table("penguins")
    model, metadata = train_model(data, TrainingSettings(target="species",
                                                         task="classification"))
    write_model_folder(model, metadata, root / "m")
    Registry(open_store(str(root / "store"))).publish(
        "penguins", root / "m", metadata, stage="production", blessed=True)
    rows = data.drop(columns=["species"])
    big = pd.concat([rows] * -(-args.rows // len(rows)), ignore_index=True).iloc[:args.rows]
    big.insert(0, "id", np.arange(len(big)))
    for i, chunk in enumerate(np.array_split(np.arange(len(big)), args.files)):
        folder = root / "in" / f"day={i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(big.iloc[chunk], preserve_index=False),
                       folder / f"f{i}.parquet", row_group_size=100_000)
    pq.write_table(pa.Table.from_pandas(big, preserve_index=False), root / "whole.parquet",
                   row_group_size=100_000)
    print(f"{len(big)} rows -> {root}/in/ ({args.files} files) and {root}/whole.parquet")


if __name__ == "__main__":
    main()
