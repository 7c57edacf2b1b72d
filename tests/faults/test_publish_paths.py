"""Each publish path, with the S3 connection dropped or delayed at each of its steps.

moto's S3 server runs behind the fault proxy (``bench/faultkit/proxy.py``), bucket
``ml-bucket``. For every S3 request an operation makes (dataset version, schema, model
files and commit file, stage transition and its history records, rollback), on a fresh
prefix each time:

- an *outage* from that request on, with the request never reaching the server
  (``drop_before``) and with the server applying it but the answer lost
  (``drop_after``): the operation fails with a message that says truly what was and
  was not published, nothing is half visible or lost, and a rerun completes it;
- one *blip* at that request (dropped before or after, answered 503, or held past the
  client's timeout, in turn): the operation survives (retried with bounded backoff).

``bench/faults.py`` runs every fault kind at every step and prints the counts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.faultkit.harness import faulty_s3
from bench.faultkit.paths import BLIPS, PATHS, Tally, exercise, make_model_folder, steps

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    return make_model_folder(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def faulty():
    with faulty_s3(bucket="ml-bucket") as running:
        yield running


@pytest.mark.parametrize("path_class", PATHS, ids=[p.name for p in PATHS])
def test_faults_at_every_step(faulty, model_folder, path_class):
    path = path_class(model_folder)
    count = len(steps(faulty, path))
    assert count >= 2
    outages, blips = Tally(), Tally()
    for step in range(count):
        for action in ("drop_before", "drop_after"):
            exercise(faulty, path, action, step, outage=True, tally=outages)
        exercise(faulty, path, BLIPS[step % len(BLIPS)], step, outage=False, tally=blips)
    assert outages.violations == [] and blips.violations == []
    assert outages.runs == 2 * count and outages.faults >= outages.runs
    assert outages.failed_cleanly == outages.runs  # no outage goes unnoticed
    assert blips.survived == blips.runs == count, "a single dropped or slow request was not retried"
