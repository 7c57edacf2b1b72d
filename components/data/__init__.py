"""Data life-cycle components."""

from kfp_mlops.components.data.check import check_data
from kfp_mlops.components.data.ingest import ingest
from kfp_mlops.components.data.split import split_data

COMPONENTS = [ingest, check_data, split_data]

__all__ = ["COMPONENTS", "check_data", "ingest", "split_data"]
