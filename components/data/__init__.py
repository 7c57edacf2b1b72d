"""Data life-cycle components."""

from kfp_mlops.components.data.check import check_data
from kfp_mlops.components.data.ingest import ingest
from kfp_mlops.components.data.shards import plan_shards
from kfp_mlops.components.data.split import split_data
from kfp_mlops.components.data.statistics import compute_statistics
from kfp_mlops.components.data.validate import validate_data

COMPONENTS = [ingest, check_data, compute_statistics, validate_data, split_data, plan_shards]

__all__ = ["COMPONENTS", "check_data", "compute_statistics", "ingest", "plan_shards",
           "split_data", "validate_data"]
