"""A regressor whose predictions change from call to call (unseeded noise).

Infra validation must refuse it: what the server answers differs from what the
training process computed. It lives in its own module so the server subprocess can
unpickle it (the test puts the repository root on the server's PYTHONPATH).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import Ridge


class NoisyRegressor(RegressorMixin, BaseEstimator):
    def fit(self, x, y):
        self.inner_ = Ridge().fit(x, y)
        return self

    def predict(self, x):
        noise = np.random.default_rng().normal(0.0, 5.0, size=len(x))
        return self.inner_.predict(x) + noise
