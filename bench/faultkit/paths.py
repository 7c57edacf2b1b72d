"""Every publish path of the store, failed at each of its S3 requests in turn.

A :class:`PublishPath` knows how to set up its preconditions, run the operation, tell
whether the operation's result became visible (checking on the way that nothing is
half visible or lost), and finish the operation after the fault is gone.
:func:`exercise` runs one path on a fresh prefix with one :class:`Fault` armed on the
proxy, at one step (the n-th S3 request of the operation), and judges the outcome:

- the operation succeeded: its result must be fully visible (the fault was survived);
- it failed: its message must say what was published (``NOT_PUBLISHED``,
  ``PUBLISHED`` or ``UNKNOWN`` phrases) and the store must agree with it;
- either way nothing published before is lost, every visible version is whole, version
  numbers are unique, and a rerun after the fault completes the operation.

A broken rule is a *violation*; :class:`Tally` counts runs, faults, survivals, clean
failures and violations (``lost``). ``tests/faults/test_publish_paths.py`` asserts no
violations; ``bench/faults.py`` prints the counts.
"""

from __future__ import annotations

import tempfile
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.faultkit.harness import DELAY, FaultyS3
from bench.faultkit.proxy import Fault
from kfp_mlops.data.schema import ColumnSchema, Schema, _versions, load_schema, save_schema
from kfp_mlops.data.versions import (
    download_dataset,
    get_dataset_version,
    list_dataset_versions,
    write_dataset_version,
)
from kfp_mlops.model.package import Feature, ModelMetadata, read_metadata, write_model_folder
from kfp_mlops.model.registry import Registry, RegistryError
from kfp_mlops.storage import Store, StoreError, open_store

# What a failure message says about the operation's result (checked against the store).
NOT_PUBLISHED = ("Nothing was published", "was not recorded")
PUBLISHED = ("WAS published",)
UNKNOWN = ("is unknown",)
MODEL = "iris"


class Violation(AssertionError):
    """The store or a message broke a rule of the suite."""


def make_model_folder(root: Path) -> Path:
    """A tiny real scikit-learn model folder."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris(as_frame=True)
    model = LogisticRegression(max_iter=200).fit(data.data, data.target)
    metadata = ModelMetadata(
        task="classification", target="target",
        features=[Feature(c, "float64", "numeric") for c in data.data.columns],
        estimator="LogisticRegression", classes=[0, 1, 2], metrics={"accuracy": 0.97},
    )
    folder = root / "model"
    write_model_folder(model, metadata, folder)
    return folder


class PublishPath(ABC):
    """One publish operation, its preconditions and its checks."""

    name: str

    def __init__(self, model_folder: Path):
        self.model_folder = model_folder

    def setup(self, store: Store) -> None:  # noqa: B027 - most paths need nothing first
        """Preconditions, written without faults."""

    @abstractmethod
    def run(self, store: Store) -> None:
        """The operation under test."""

    @abstractmethod
    def visible(self, store: Store) -> bool:
        """Whether the operation's result is visible; a Violation if anything is partial."""

    @abstractmethod
    def rerun(self, store: Store, visible: bool) -> None:
        """Finish the operation after the fault is gone; a Violation if the end state is wrong."""

    # helpers -------------------------------------------------------------

    def publish(self, store: Store, **kwargs) -> int:
        meta = read_metadata(self.model_folder)
        kwargs.setdefault("blessed", True)
        return Registry(store).publish(MODEL, self.model_folder, meta, **kwargs).version

    def check_models(self, store: Store) -> dict[int, str]:
        """Every listed version downloads whole and is its own; stages as a dict."""
        registry = Registry(store)
        versions = registry.list_versions(MODEL)
        numbers = [v.version for v in versions]
        if len(set(numbers)) != len(numbers):
            raise Violation(f"duplicate version numbers {numbers}")
        with tempfile.TemporaryDirectory() as tmp:
            for v in versions:
                _, metadata = registry.download(v.ref, Path(tmp) / str(v.version))
                if metadata.version != v.version:
                    raise Violation(f"{v.ref} holds the metadata of version {metadata.version}")
        stages = {v.version: v.stage for v in versions}
        if list(stages.values()).count("production") > 1:
            raise Violation(f"more than one production version: {stages}")
        return stages


class DatasetPath(PublishPath):
    name = "dataset"
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})

    def run(self, store: Store) -> None:
        write_dataset_version(store, self.frame, "memory://frame")

    def visible(self, store: Store) -> bool:
        found = list_dataset_versions(store)
        if len(found) > 1:
            raise Violation(f"one table became {len(found)} dataset versions")
        if not found:
            return False
        with tempfile.TemporaryDirectory() as tmp:
            download_dataset(store, found[0].version_id, Path(tmp))  # checks the sha256
        return True

    def rerun(self, store: Store, visible: bool) -> None:
        version, _ = write_dataset_version(store, self.frame, "memory://frame")
        get_dataset_version(store, version.version_id)
        if not self.visible(store):
            raise Violation("the dataset version is not visible after a rerun")


class SchemaPath(PublishPath):
    name = "schema"
    first = Schema(columns={"a": ColumnSchema(type="integer", min=0, max=9)})
    second = Schema(columns={"a": ColumnSchema(type="integer", min=0, max=99)})

    def setup(self, store: Store) -> None:
        save_schema(store, self.first, "wine")

    def run(self, store: Store) -> None:
        save_schema(store, self.second, "wine")

    def _check(self, store: Store) -> list[int]:
        versions = _versions(store, "wine")
        if versions != list(range(1, len(versions) + 1)):
            raise Violation(f"schema versions are not 1..n: {versions}")
        if load_schema(store, "wine", 1).columns != self.first.columns:
            raise Violation("schema version 1 was overwritten")
        for v in versions[1:]:
            if load_schema(store, "wine", v).columns != self.second.columns:
                raise Violation(f"schema version {v} does not hold the schema saved as it")
        return versions

    def visible(self, store: Store) -> bool:
        versions = self._check(store)
        if len(versions) > 2:
            raise Violation(f"one save made versions {versions}")
        return len(versions) == 2

    def rerun(self, store: Store, visible: bool) -> None:
        version = save_schema(store, self.second, "wine")
        if self._check(store)[-1] != version:
            raise Violation(f"the rerun was told version {version}, not the latest")


class ModelPath(PublishPath):
    name = "model"

    def setup(self, store: Store) -> None:
        self.publish(store)

    def run(self, store: Store) -> None:
        self.publish(store)

    def visible(self, store: Store) -> bool:
        stages = self.check_models(store)
        if 1 not in stages:
            raise Violation("version 1 was lost")
        if len(stages) > 2:
            raise Violation(f"one publish made versions {sorted(stages)}")
        return len(stages) == 2

    def rerun(self, store: Store, visible: bool) -> None:
        before = set(self.check_models(store))
        version = self.publish(store)
        after = set(self.check_models(store))
        if version in before or after != before | {version}:
            raise Violation(f"rerun got version {version}; before {before}, after {after}")


class ModelStagePath(ModelPath):
    """Publish straight to staging: the folder, then a stage transition."""

    name = "model+stage"

    def run(self, store: Store) -> None:
        self.publish(store, stage="staging")

    def visible(self, store: Store) -> bool:
        # "Visible" is "the version exists": its stage is checked by rerun.
        return super().visible(store)

    def rerun(self, store: Store, visible: bool) -> None:
        stages = self.check_models(store)
        if visible and stages[2] == "none":
            Registry(store).transition(MODEL, 2, "staging", reason="rerun", actor="test")
        elif not visible:
            self.publish(store, stage="staging")
        stages = self.check_models(store)
        if "staging" not in stages.values():
            raise Violation(f"no version reached staging after the rerun: {stages}")


class PromotePath(PublishPath):
    name = "promote"

    def setup(self, store: Store) -> None:
        self.publish(store)
        self.publish(store)
        Registry(store).transition(MODEL, 1, "production", reason="setup", actor="test")

    def run(self, store: Store) -> None:
        Registry(store).transition(MODEL, 2, "production", reason="test", actor="test")

    def visible(self, store: Store) -> bool:
        stages = self.check_models(store)
        production = [v for v, s in stages.items() if s == "production"]
        if production not in ([1], [2]):
            raise Violation(f"production is {production}, expected 1 or 2: {stages}")
        return production == [2]

    def rerun(self, store: Store, visible: bool) -> None:
        if not visible:
            self.run(store)
        if not self.visible(store):
            raise Violation("version 2 is not in production after the rerun")


class RollbackPath(PromotePath):
    name = "rollback"

    def setup(self, store: Store) -> None:
        super().setup(store)
        Registry(store).transition(MODEL, 2, "production", reason="setup", actor="test")

    def run(self, store: Store) -> None:
        Registry(store).rollback(MODEL, reason="test", actor="test")

    def visible(self, store: Store) -> bool:
        return not super().visible(store)  # rolled back: version 1 in production again

    def rerun(self, store: Store, visible: bool) -> None:
        if not visible:
            self.run(store)
        if not self.visible(store):
            raise Violation("version 1 is not in production after the rerun")


PATHS = (DatasetPath, SchemaPath, ModelPath, ModelStagePath, PromotePath, RollbackPath)
BLIPS = ("drop_before", "drop_after", "delay", "respond")  # one request hit: to survive
OUTAGES = ("drop_before", "drop_after", "respond")  # every request from the step on


@dataclass
class Tally:
    """Counts over many :func:`exercise` runs."""

    runs: int = 0
    faults: int = 0  # requests the proxy failed
    survived: int = 0  # operations that succeeded despite the fault
    failed_cleanly: int = 0  # failed with a true message, store consistent, rerun fine
    lost: int = 0  # runs that broke a rule (see violations)
    violations: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        """Add ``other``'s counts to these."""
        self.runs += other.runs
        self.faults += other.faults
        self.survived += other.survived
        self.failed_cleanly += other.failed_cleanly
        self.lost += other.lost
        self.violations += other.violations


def steps(faulty: FaultyS3, path: PublishPath) -> list[tuple[str, str]]:
    """The S3 requests (method, path) the operation makes, from a run without faults."""
    store = open_store(faulty.uri(f"trace-{path.name}-{uuid.uuid4().hex[:8]}"))
    path.setup(store)
    faulty.proxy.reset_trace()
    path.run(store)
    return [(method, target.split("?", 1)[0]) for method, target, _ in faulty.proxy.trace]


def exercise(faulty: FaultyS3, path: PublishPath, action: str, step: int, *, outage: bool,
             tally: Tally) -> None:
    """Run ``path`` with ``action`` at request ``step`` (and after, if ``outage``)."""
    store = open_store(faulty.uri(f"{path.name}-{action}-{step}-{uuid.uuid4().hex[:8]}"))
    label = f"{path.name}: {'outage' if outage else 'blip'} {action} at step {step}"
    path.setup(store)
    proxy = faulty.proxy
    before = proxy.faults_injected
    proxy.inject(Fault(action, skip=step, times=None if outage else 1, delay=DELAY))
    error: BaseException | None = None
    try:
        path.run(store)
    except (StoreError, RegistryError) as exc:
        error = exc
    finally:
        proxy.clear()
    tally.runs += 1
    tally.faults += proxy.faults_injected - before
    try:
        visible = path.visible(store)
        if error is None:
            if not visible:
                raise Violation("succeeded, but its result is not visible")
        else:
            message = str(error)
            said_not = any(p in message for p in NOT_PUBLISHED)
            said_yes = any(p in message for p in PUBLISHED)
            said_unknown = any(p in message for p in UNKNOWN)
            if not (said_not or said_yes or said_unknown):
                raise Violation(f"the message does not say what was published: {message}")
            # "X WAS published (but Y was not recorded)": the version is what is visible.
            if said_yes and not visible:
                raise Violation(f"said it was published, but it is not visible: {message}")
            if said_not and not said_yes and visible:
                raise Violation(f"said nothing was published, but it was: {message}")
        path.rerun(store, visible)
    except Violation as exc:
        tally.lost += 1
        tally.violations.append(f"{label}: {exc}")
        return
    except (StoreError, RegistryError) as exc:
        tally.lost += 1
        tally.violations.append(f"{label}: checking or rerunning failed: {exc}")
        return
    if error is None:
        tally.survived += 1
    else:
        tally.failed_cleanly += 1


def exercise_path(faulty: FaultyS3, path: PublishPath, *, blips=BLIPS, outages=OUTAGES,
                  every: int = 1) -> Tally:
    """Every fault kind at every ``every``-th step of ``path``."""
    tally = Tally()
    count = len(steps(faulty, path))
    for step in range(0, count, every):
        for action in blips:
            exercise(faulty, path, action, step, outage=False, tally=tally)
        for action in outages:
            exercise(faulty, path, action, step, outage=True, tally=tally)
    return tally

