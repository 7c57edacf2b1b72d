"""Races: 50 concurrent publishers, and concurrent promotions and rollbacks.

Each race runs on a local folder and on S3 (moto's server on loopback, bucket
``ml-bucket``). The threads are released together by a barrier. Asserted: version
numbers are unique and none is lost, every version is whole, each writer is told the
number that holds its own content, and a stage change either counts (and the registry
shows it) or its writer is told it lost (and nothing of it counts).
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from bench.faultkit.paths import make_model_folder
from bench.s3server import s3_server
from kfp_mlops.data.schema import ColumnSchema, Schema, _versions, load_schema, save_schema
from kfp_mlops.data.versions import list_dataset_versions, write_dataset_version
from kfp_mlops.model.package import read_metadata
from kfp_mlops.model.registry import Registry, RegistryError, StageConflictError
from kfp_mlops.storage import LocalStore, Store, open_store

PUBLISHERS = 50


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    return make_model_folder(tmp_path_factory.mktemp("model"))


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.slow)])
def store(request, tmp_path) -> Iterator[Store]:
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
        return
    with s3_server(bucket="ml-bucket") as server:
        yield open_store(server.uri("races"))


def race(n: int, work: Callable[[int], object]) -> list[object]:
    """``work(i)`` on ``n`` threads released together; results (or exceptions) by index."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:  # returned to the test, which decides
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_50_concurrent_model_publishers(store, model_folder):
    def publish(i: int) -> int:
        meta = read_metadata(model_folder)
        return Registry(store).publish(
            "iris", model_folder, meta, blessed=True, reason=f"publisher {i}"
        ).version

    results = race(PUBLISHERS, publish)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    assert sorted(results) == list(range(1, PUBLISHERS + 1))  # unique, none lost
    registry = Registry(store)
    assert [v.version for v in registry.list_versions("iris")] == list(range(1, PUBLISHERS + 1))
    told = {version: i for i, version in enumerate(results)}
    with tempfile.TemporaryDirectory() as tmp:
        for v in (1, PUBLISHERS // 2, PUBLISHERS):  # whole, and holding its publisher's record
            _, metadata = registry.download(f"iris@{v}", Path(tmp) / str(v))
            assert metadata.version == v
    for v in registry.list_versions("iris"):
        record = registry._read_version("iris", v.version)[1]
        assert record.reason == f"publisher {told[v.version]}"


def test_50_concurrent_schema_savers(store):
    """Each saver gets its own version number, and that version holds its schema."""

    def save(i: int) -> int:
        schema = Schema(columns={"a": ColumnSchema(type="integer", min=0, max=i)})
        return save_schema(store, schema, "wine")

    results = race(PUBLISHERS, save)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    assert sorted(results) == list(range(1, PUBLISHERS + 1))
    assert _versions(store, "wine") == list(range(1, PUBLISHERS + 1))
    for i, version in enumerate(results):
        assert load_schema(store, "wine", version).columns["a"].max == i


def test_50_concurrent_dataset_publishers(store):
    """The same table from 50 writers is one version; 10 different tables are 10."""
    same = pd.DataFrame({"x": range(100)})

    def publish(i: int) -> tuple[str, bool]:
        frame = same if i % 5 else pd.DataFrame({"x": range(100), "writer": i})
        version, created = write_dataset_version(store, frame, f"memory://{i}")
        return version.version_id, created

    results = race(PUBLISHERS, publish)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    shared = {vid for i, (vid, _) in enumerate(results) if i % 5}
    assert len(shared) == 1
    assert sum(created for i, (_, created) in enumerate(results) if i % 5) == 1
    assert len(list_dataset_versions(store)) == 1 + PUBLISHERS // 5


def test_concurrent_promotions_and_rollbacks(store, model_folder):
    """Promotions and rollbacks racing: winners count, losers are told and leave nothing."""
    registry = Registry(store)
    for _ in range(6):
        registry.publish("iris", model_folder, read_metadata(model_folder), blessed=True)
    registry.transition("iris", 1, "production", reason="first", actor="setup")
    registry.transition("iris", 2, "production", reason="second", actor="setup")

    outcomes: dict[str, int] = {"won": 0, "lost": 0, "refused": 0}
    won_ids: list[str] = []
    lock = threading.Lock()

    def act(i: int) -> None:
        for round_ in range(3):
            reg = Registry(store)
            try:
                if (i + round_) % 3 == 0:
                    done = reg.rollback("iris", reason=f"r{i}", actor=f"bot{i}")
                else:
                    done = reg.transition("iris", 3 + (i + round_) % 4, "production",
                                          reason=f"p{i}", actor=f"bot{i}", force=True)
            except StageConflictError:
                result = "lost"
            except RegistryError:  # e.g. "already in stage", nothing left to roll back
                result = "refused"
            else:
                result = "won"
                with lock:
                    won_ids.append(done.id)
            with lock:
                outcomes[result] += 1

    race(8, act)
    assert outcomes["won"] >= 1
    history = Registry(store).history("iris")
    counted = [t.id for t in history if t.kind != "demotion"]
    # Exactly the winners' changes count (plus the two from the setup), once each.
    assert sorted(counted[2:]) == sorted(won_ids)
    # The counted changes form one chain: each follows the one before it.
    main = [t for t in history if t.kind != "demotion"]
    for before, after in zip(main, main[1:], strict=False):
        assert after.parent in (before.id, None)
    stages = {v.version: v.stage for v in Registry(store).list_versions("iris")}
    assert list(stages.values()).count("production") == 1
