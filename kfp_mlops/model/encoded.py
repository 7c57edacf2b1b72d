"""A classifier wrapper that trains on integer labels and answers with the original ones.

XGBoost's ``XGBClassifier`` takes class labels 0..n-1 only ("Invalid classes inferred
from unique values of `y`"), while the suite's targets are text (``"Adelie"``,
``"1"``). The wrapper encodes the labels before fitting and decodes the predictions, so
``predict`` and ``classes_`` give back the original labels, and ``predict_proba``'s
columns follow ``classes_`` as scikit-learn's own classifiers do. Every classifier
named by import path is wrapped (LightGBM would cope alone; one rule is simpler).

It lives in the core library because a pickled model refers to it by import path: the
suite's image (and any environment with kfp-mlops) can load it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.metaestimators import available_if


def _inner_has(method: str):
    return lambda self: hasattr(self.estimator, method)


class LabelEncoded(ClassifierMixin, BaseEstimator):
    """Fit ``estimator`` on label-encoded targets; predict the original labels."""

    def __init__(self, estimator: Any = None):
        self.estimator = estimator

    def fit(self, X, y, **fit_params):
        """Encode ``y`` as 0..n-1, fit a clone of ``estimator`` on it."""
        self.encoder_ = LabelEncoder().fit(y)
        self.classes_ = self.encoder_.classes_
        self.estimator_ = clone(self.estimator).fit(X, self.encoder_.transform(y), **fit_params)
        if hasattr(self.estimator_, "n_features_in_"):
            self.n_features_in_ = self.estimator_.n_features_in_
        return self

    def predict(self, X):
        """The original labels of the predicted classes."""
        codes = np.asarray(self.estimator_.predict(X)).astype(np.int64).ravel()
        return self.classes_[codes]

    @available_if(_inner_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities, one column per entry of ``classes_``."""
        return self.estimator_.predict_proba(X)

    @property
    def feature_importances_(self):
        """The wrapped estimator's importances (when it has them)."""
        return self.estimator_.feature_importances_
