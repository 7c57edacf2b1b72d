"""A regressor whose predict waits for the test's go-ahead (a file), after saying it started.

The health-probe test uses it to know, without timing, that a request is being scored
when it probes: predict touches ``$KFP_MLOPS_TEST_GATE/started`` and returns only once
``$KFP_MLOPS_TEST_GATE/release`` exists (or after 60 s). It lives in its own module so
the server subprocess can unpickle it (the test puts the repository root on PYTHONPATH).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import Ridge

GATE_ENV = "KFP_MLOPS_TEST_GATE"


class GatedRegressor(RegressorMixin, BaseEstimator):
    def fit(self, x, y):
        self.inner_ = Ridge().fit(x, y)
        return self

    def predict(self, x):
        gate = os.environ.get(GATE_ENV)
        if gate:
            Path(gate, "started").touch()
            deadline = time.monotonic() + 60
            while not Path(gate, "release").exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        return self.inner_.predict(x)
