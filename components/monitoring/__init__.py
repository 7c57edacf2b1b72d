"""Observability components."""

from kfp_mlops.components.monitoring.monitor import monitor

COMPONENTS = [monitor]

__all__ = ["COMPONENTS", "monitor"]
