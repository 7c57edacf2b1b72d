"""Observability components."""

from kfp_mlops.components.monitoring.drift import detect_drift
from kfp_mlops.components.monitoring.monitor import monitor

COMPONENTS = [detect_drift, monitor]

__all__ = ["COMPONENTS", "detect_drift", "monitor"]
