"""Observability components."""

from kfp_mlops.components.monitoring.drift import detect_drift, detect_drift_sharded
from kfp_mlops.components.monitoring.monitor import monitor

COMPONENTS = [detect_drift, detect_drift_sharded, monitor]

__all__ = ["COMPONENTS", "detect_drift", "detect_drift_sharded", "monitor"]
