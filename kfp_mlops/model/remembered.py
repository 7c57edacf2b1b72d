"""The settings a model name was first trained with, kept in the store and reused.

A team sets its bar once (``kfp-mlops run --quality-metric r2 --quality-threshold 0.3``)
and expects every later retrain of that model to be judged by it. ``continuous``
builds its own pipeline arguments, so without this it judged with the default r2 >= 0.2.
The first run that publishes a version of a model name records the settings it ran
with (:func:`remember`, written once: later runs never overwrite it); ``continuous``
reads them back (:func:`recall`) for every flag the user did not give, and says so.

One small JSON object at ``training-settings/<name>.json``, beside (not inside) the
registry's own records.
"""

from __future__ import annotations

import json
from typing import Any

PREFIX = "training-settings"
# What is remembered: the training settings and the model gate's policy as applied.
FIELDS = ("target", "task", "estimator", "params", "test_size", "seed", "n_trials",
          "blessing_policy")


def key(name: str) -> str:
    """The store key of ``name``'s remembered settings."""
    return f"{PREFIX}/{name}.json"


def remember(store, name: str, settings: dict[str, Any]) -> bool:
    """Record ``settings`` for ``name`` unless some are recorded already; True if written."""
    kept = {k: settings[k] for k in FIELDS if settings.get(k) is not None}
    data = json.dumps(kept, indent=2, sort_keys=True).encode()
    return store.create_if_absent(key(name), data)


def recall(store, name: str) -> dict[str, Any]:
    """The settings recorded for ``name`` (empty when none are)."""
    if not store.exists(key(name)):
        return {}
    raw = json.loads(store.get_bytes(key(name)))
    return {k: v for k, v in raw.items() if k in FIELDS}
