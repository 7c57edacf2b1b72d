"""The releases of the support matrix (docs/cluster.md), as test dimensions.

Each Kubeflow release pins one KFP, one KServe and one Knative (the component table of
kubeflow/manifests' README at the release tag). Tests parametrize over ``RELEASES`` and
read what the suite emits with the rules of that release's code, vendored unmodified
under ``tests/fixtures/releases`` (provenance in ``tests/fixtures/crds/README.md``):
KServe's CRDs, KFP's ``pipeline-runner`` Role and the multi-user profile controller's
``sync.py``, and Knative Serving's field masks (``fieldmask.go``).

``NEWEST_KSERVE`` (the CRDs in ``tests/fixtures/crds``, a kserve/kserve commit after
v0.20.0) is checked too, so a field KServe drops after the newest release fails here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

RELEASES_DIR = Path(__file__).resolve().parent / "fixtures" / "releases"


@dataclass(frozen=True)
class Release:
    """One row of the support matrix: the versions a Kubeflow release ships."""

    name: str
    kfp: str
    kserve: str
    knative: str
    # Knative Serving tag whose pkg/apis/serving/fieldmask.go is vendored for this row.
    knative_rules: str

    @property
    def kfp_dir(self) -> Path:
        """``tests/fixtures/releases/kfp-<version>``."""
        return RELEASES_DIR / f"kfp-{self.kfp}"

    @property
    def knative_fieldmask(self) -> Path:
        """Knative Serving's ``fieldmask.go`` at the tag this release ships."""
        return RELEASES_DIR / f"knative-serving-v{self.knative_rules}" / "fieldmask.go"

    @property
    def multi_user_s3_policy(self) -> Path | None:
        """The profile controller's ``sync.py`` when it scopes each profile's S3 key.

        KFP 2.5.0's profile controller hands every namespace the installation's own
        MinIO key (no per-profile policy), so there is nothing to check there.
        """
        path = self.kfp_dir / "sync.py"
        return path if path.is_file() else None


KUBEFLOW_1_10 = Release("kubeflow-1.10", kfp="2.5.0", kserve="0.15.0", knative="1.16.2",
                        knative_rules="1.16.2")
KUBEFLOW_1_11 = Release("kubeflow-1.11", kfp="2.15.0", kserve="0.15.2", knative="1.16.2",
                        knative_rules="1.16.2")
KUBEFLOW_MASTER = Release("kubeflow-master", kfp="2.16.0", kserve="0.16.0", knative="1.21.1",
                          knative_rules="1.21.1")
RELEASES = (KUBEFLOW_1_10, KUBEFLOW_1_11, KUBEFLOW_MASTER)
# Every KServe whose CRDs the suite's objects must pass: the releases' and the newest.
NEWEST_KSERVE = "newest"
KSERVE_VERSIONS = tuple(r.kserve for r in RELEASES) + (NEWEST_KSERVE,)


def by_release(test_values=RELEASES):
    """``pytest.mark.parametrize`` over releases, with their names as test ids."""
    return pytest.mark.parametrize("release", test_values, ids=lambda r: r.name)


def by_kserve():
    """``pytest.mark.parametrize`` over every supported KServe version (and the newest)."""
    return pytest.mark.parametrize("kserve", KSERVE_VERSIONS, ids=lambda v: f"kserve-{v}")
