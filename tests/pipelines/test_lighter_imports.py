"""The fork server's lighter imports (app/local/lighter_imports.py) change no result.

Each side runs in a fresh interpreter: pytest may have imported SciPy already.
"""

import json
import subprocess
import sys

SIDE = """
import json, sys
applied = None
if sys.argv[1] == "lighter":
    from kfp_mlops.app.local.lighter_imports import skip_scipy_docstring_notes
    applied = skip_scipy_docstring_notes()
import numpy as np
import scipy.stats
from sklearn.ensemble import HistGradientBoostingClassifier
rng = np.random.default_rng(0)
X = rng.normal(size=(300, 4))
y = (X[:, 0] + rng.normal(scale=0.5, size=300) > 0).astype(int)
model = HistGradientBoostingClassifier(random_state=0, max_iter=20).fit(X, y)
test = scipy.stats.ttest_ind(X[:, 0], X[:, 1])
print(json.dumps({
    "applied": applied,
    "proba": model.predict_proba(X).round(12).tolist(),
    "ttest": [float(test.statistic), float(test.pvalue)],
    "summary": scipy.stats.ttest_ind.__doc__.strip().splitlines()[0],
}))
"""


def run_side(side: str) -> dict:
    done = subprocess.run([sys.executable, "-c", SIDE, side], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_skipping_scipys_docstring_notes_changes_no_result_and_keeps_the_docstrings():
    lighter, plain = run_side("lighter"), run_side("plain")
    assert lighter["applied"] is True  # SciPy 1.17's decorator, as read
    assert {k: v for k, v in lighter.items() if k != "applied"} == \
        {k: v for k, v in plain.items() if k != "applied"}
