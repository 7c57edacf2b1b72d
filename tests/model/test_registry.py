"""The model registry on a local folder and on S3 over HTTP (moto's server on loopback)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from kfp_mlops.model.blessing import BlessingPolicy, bless
from kfp_mlops.model.package import (
    METADATA_FILE,
    MODEL_FILE,
    Feature,
    ModelIntegrityError,
    ModelMetadata,
    load_model_folder,
    read_metadata,
    write_model_folder,
)
from kfp_mlops.model.registry import (
    REGISTRY_KEY,
    Registry,
    RegistryError,
    StageConflictError,
)
from kfp_mlops.storage import LocalStore, S3Store, Store, open_store
from tests.s3server import s3_server


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    """A real, tiny scikit-learn model written with ``write_model_folder``."""
    data = load_iris(as_frame=True)
    model = LogisticRegression(max_iter=200).fit(data.data, data.target)
    metadata = ModelMetadata(
        task="classification",
        target="target",
        features=[Feature(c, "float64", "numeric") for c in data.data.columns],
        estimator="LogisticRegression",
        classes=[0, 1, 2],
        metrics={"accuracy": 0.97, "f1_macro": 0.96},
    )
    folder = tmp_path_factory.mktemp("model")
    write_model_folder(model, metadata, folder)
    return folder


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.slow)])
def store(request, tmp_path) -> Iterator[Store]:
    """Each test runs against a local folder and against S3 over HTTP."""
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
        return
    with s3_server() as server:
        yield open_store(server.uri("team"))


@pytest.fixture
def publish(store: Store, model_folder: Path) -> Callable[..., int]:
    """Publish the test model to ``store`` and return the new version number."""

    def run(name: str = "iris", registry: Registry | None = None, **kwargs) -> int:
        registry = registry or Registry(store)
        kwargs.setdefault("blessed", True)
        published = registry.publish(name, model_folder, read_metadata(model_folder), **kwargs)
        return published.version

    return run


def stages(registry: Registry, name: str = "iris") -> dict[int, str]:
    return {v.version: v.stage for v in registry.list_versions(name)}


def test_publish_get_and_list(store, model_folder, publish, tmp_path):
    registry = Registry(store)
    metadata = read_metadata(model_folder)
    first = registry.publish("iris", model_folder, metadata, reason="first", actor="ana")
    assert (first.version, first.stage, first.blessed) == (1, "none", False)
    assert (metadata.name, metadata.version) == ("iris", 1) and metadata.created_at
    assert first.uri == store.uri_for("models/iris/1")
    assert publish() == 2
    assert publish("wine") == 1

    assert registry.list_models() == ["iris", "wine"]
    assert [v.version for v in registry.list_versions("iris")] == [1, 2]
    latest = registry.get("iris")
    assert latest.version == 2 and latest.metadata.version == 2 and latest.blessed
    assert registry.get("iris@1").metadata.created_at == metadata.created_at
    assert store.children("models/iris/1") == [METADATA_FILE, MODEL_FILE]  # KServe-ready
    record = json.loads(store.get_bytes(f"models/iris/1/{METADATA_FILE}"))[REGISTRY_KEY]
    assert record["actor"] == "ana" and record["reason"] == "first"

    folder, downloaded = registry.download("iris@1", tmp_path / "dl")
    model, loaded = load_model_folder(folder)
    assert downloaded.version == loaded.version == 1
    assert list(model.predict(load_iris(as_frame=True).data.head(3))) == [0, 0, 0]


def test_stages_promotion_archives_previous_and_history(store, publish):
    registry = Registry(store)
    for _ in range(3):
        publish()
    registry.transition("iris", 1, "staging", reason="smoke tests", actor="ci")
    assert registry.get("iris@staging").version == 1
    registry.transition("iris", 1, "production", reason="canary ok", actor="ana")
    assert registry.get("iris@production").version == 1
    registry.transition("iris", 2, "production", reason="better f1", actor="ana")

    assert stages(registry) == {1: "archived", 2: "production", 3: "none"}
    assert registry.get("iris@archived").version == 1
    steps = [(t.version, t.to_stage, t.kind) for t in registry.history("iris")]
    assert steps == [
        (1, "staging", "transition"),
        (1, "production", "transition"),
        (1, "archived", "demotion"),
        (2, "production", "transition"),
    ]
    demotion = registry.history("iris")[2]
    assert demotion.cause == registry.history("iris")[3].id
    # A second reader (no cache) computes the same stages from the stored records.
    assert stages(Registry(store)) == stages(registry)


def test_rollback_returns_to_previous_production(store, publish):
    registry = Registry(store)
    for _ in range(3):
        publish()
    with pytest.raises(RegistryError, match="no production version"):
        registry.rollback("iris", reason="oops", actor="ana")
    registry.transition("iris", 1, "production", reason="", actor="ana")
    with pytest.raises(RegistryError, match="first production version"):
        registry.rollback("iris", reason="oops", actor="ana")
    registry.transition("iris", 2, "production", reason="", actor="ana")
    registry.transition("iris", 3, "production", reason="", actor="ana")

    back = registry.rollback("iris", reason="latency regression", actor="oncall")
    assert (back.version, back.kind, back.from_stage) == (2, "rollback", "archived")
    assert stages(registry) == {1: "archived", 2: "production", 3: "archived"}
    registry.rollback("iris", reason="still bad", actor="oncall")
    assert stages(registry) == {1: "production", 2: "archived", 3: "archived"}
    with pytest.raises(RegistryError, match="no earlier production version"):
        registry.rollback("iris", reason="", actor="oncall")


def test_archived_or_unblessed_needs_force(store, publish):
    registry = Registry(store)
    publish()
    publish()
    unblessed = publish(blessed=False)
    registry.transition("iris", 1, "archived", reason="superseded", actor="ana")

    with pytest.raises(RegistryError, match=r"iris@1 is archived.*force=True"):
        registry.transition("iris", 1, "production", reason="", actor="ana")
    with pytest.raises(RegistryError, match=r"iris@3 was never blessed.*force=True"):
        registry.transition("iris", unblessed, "production", reason="", actor="ana")
    assert "production" not in stages(registry).values()

    registry.transition("iris", unblessed, "production", reason="hotfix", actor="ana", force=True)
    registry.transition("iris", 1, "production", reason="revert", actor="ana", force=True)
    assert stages(registry) == {1: "production", 2: "none", 3: "archived"}
    with pytest.raises(RegistryError, match="already in stage 'production'"):
        registry.transition("iris", 1, "production", reason="", actor="ana")


def test_blessing_verdict_is_kept_and_gates_direct_production(store, model_folder, publish):
    registry = Registry(store)
    policy = BlessingPolicy.parse("accuracy>=0.99")
    verdict = bless({"accuracy": 0.97}, None, policy)
    with pytest.raises(RegistryError, match="not blessed"):
        registry.publish(
            "iris", model_folder, read_metadata(model_folder), stage="production", blessing=verdict
        )
    assert registry.list_models() == []  # refused before anything was written

    good = bless({"accuracy": 0.97}, None, BlessingPolicy.parse("accuracy>=0.9"))
    published = registry.publish(
        "iris", model_folder, read_metadata(model_folder), stage="production", blessing=good
    )
    assert (published.stage, published.blessed) == ("production", True)
    record = json.loads(store.get_bytes(f"models/iris/1/{METADATA_FILE}"))[REGISTRY_KEY]
    assert record["blessing"]["comparisons"][0]["metric"] == "accuracy"


def test_unknown_name_version_stage_errors(store, publish):
    registry = Registry(store)
    with pytest.raises(RegistryError, match="models: none yet"):
        registry.get("iris")
    publish()
    publish()
    with pytest.raises(RegistryError, match=r"no model named 'wine'.*models: iris"):
        registry.get("wine")
    with pytest.raises(RegistryError, match=r"no version 7; versions: 1-2"):
        registry.get("iris@7")
    with pytest.raises(RegistryError, match=r"no version in stage 'production'.*none: 1-2"):
        registry.get("iris@production")
    with pytest.raises(RegistryError, match=r"version number or a stage"):
        registry.get("iris@prod")
    with pytest.raises(RegistryError, match="unknown stage 'live'"):
        registry.transition("iris", 1, "live", reason="", actor="")
    with pytest.raises(RegistryError, match="no version 9"):
        registry.transition("iris", 9, "staging", reason="", actor="")
    with pytest.raises(RegistryError, match="no model named 'wine'"):
        registry.history("wine")
    for bad in ("Iris", "iris_v2", "2iris", "iris-", "a" * 51, ""):
        with pytest.raises(RegistryError, match="invalid model name"):
            publish(bad)


def test_tampered_model_is_refused(store, publish, tmp_path):
    registry = Registry(store)
    publish()
    store.put_bytes(f"models/iris/1/{MODEL_FILE}", b"not the published model")
    with pytest.raises(ModelIntegrityError, match="changed after publishing"):
        registry.download("iris@1", tmp_path / "dl")


def test_publish_refuses_metadata_of_another_model(store, model_folder, tmp_path):
    folder = tmp_path / "edited"
    shutil.copytree(model_folder, folder)
    (folder / MODEL_FILE).write_bytes(b"retrained elsewhere")
    with pytest.raises(ModelIntegrityError, match="sha256"):
        Registry(store).publish("iris", folder, read_metadata(model_folder))


def concurrently(n: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` on ``n`` threads released together; re-raise the first error."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def check_concurrent_publish(store: Store, publish, registry_factory, tmp_path: Path) -> None:
    publish()  # version 1 exists, so everyone races for 2..9
    versions = concurrently(8, lambda i: publish(registry=registry_factory()))
    assert sorted(versions) == list(range(2, 10))
    registry = Registry(store)
    assert [v.version for v in registry.list_versions("iris")] == list(range(1, 10))
    for v in range(1, 10):  # every folder is whole and its own
        _, metadata = registry.download(f"iris@{v}", tmp_path / str(v))
        assert metadata.version == v


def test_concurrent_publishers_get_distinct_versions(store, publish, tmp_path):
    check_concurrent_publish(store, publish, lambda: Registry(store), tmp_path)


@pytest.mark.slow
def test_concurrent_publishers_with_listing_claims(model_folder, tmp_path):
    """The fallback for S3 servers that ignore ``If-None-Match`` is safe too."""
    with s3_server() as server:
        store = open_store(server.uri())

        def publish(registry: Registry | None = None) -> int:
            registry = registry or Registry(store, claims="listing")
            meta = read_metadata(model_folder)
            return registry.publish("iris", model_folder, meta, blessed=True).version

        check_concurrent_publish(
            store, publish, lambda: Registry(store, claims="listing"), tmp_path
        )
        assert any(k.startswith("models/iris/claims/2/") for k in store.list("models/iris/"))


@pytest.mark.slow
def test_s3_server_honours_conditional_put():
    with s3_server() as server:
        store = open_store(server.uri())
        assert isinstance(store, S3Store)
        assert store.supports_conditional_writes()
        assert store.list() == []  # the probe cleans up


def test_racing_promotions_leave_one_production(store, publish):
    """Racing promotions: each one either counts or is told it lost; one production."""
    registry = Registry(store)
    for _ in range(6):
        publish()
    registry.transition("iris", 1, "production", reason="", actor="ana")

    def promote(i: int) -> str:
        try:
            Registry(store).transition(
                "iris", i + 2, "production", reason=f"racer {i}", actor=f"bot{i}"
            )
        except StageConflictError as exc:
            assert "was not applied" in str(exc)
            return "lost"
        return "won"

    outcomes = concurrently(5, promote)
    assert "won" in outcomes
    final = stages(Registry(store))
    assert list(final.values()).count("production") == 1
    history = registry.history("iris")
    promoted = [t.version for t in history if t.to_stage == "production"]
    # Exactly the winners (and version 1) are in the history, each once: losers left nothing.
    winners = [i + 2 for i, outcome in enumerate(outcomes) if outcome == "won"]
    assert sorted(promoted) == sorted([1, *winners])
    assert final[promoted[-1]] == "production"
    assert all(final[v] == "archived" for v in promoted[:-1])
    assert all(final[i + 2] == "none" for i, o in enumerate(outcomes) if o == "lost")
