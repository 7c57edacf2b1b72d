"""Which tasks KFP's cache really reuses: two runs of each compiled pipeline on the same data.

The cache rule is ported in ``tests/kfp_cache.py`` (with its upstream provenance): the
key holds the MLMD ids of the input artifacts, so a task downstream of a task that ran
again (``ingest``, ``plan-shards``: uncached on purpose) gets new artifacts and misses,
whatever its own policy says. docs/cluster.md's table of what hits must be this result.
"""

import re
from pathlib import Path

import pytest
import yaml
from kfp import compiler, dsl
from kfp.dsl import Dataset, Input, Output

from kfp_mlops.pipelines import PIPELINES
from kfp_mlops.pipelines.compile import compile_pipelines
from tests.kfp_cache import simulate

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def second_runs(tmp_path_factory) -> dict[str, set[str]]:
    out = tmp_path_factory.mktemp("compiled")
    compile_pipelines(out)
    hits = {}
    for name in PIPELINES:
        first, second = simulate(next(yaml.safe_load_all((out / f"{name}.yaml").read_text())))
        assert first.hits() == set(), name  # an empty cache
        hits[name] = second.hits()
    return hits


def _documented() -> dict[str, set[str]]:
    text = (REPO / "docs" / "cluster.md").read_text()
    section = text.split("### What a second run takes from the cache", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z-]+)` \| (.*) \|$", section, re.M)
    return {name: set(re.findall(r"`([a-z-]+)`", cell)) for name, cell in rows}


def test_the_docs_table_is_what_the_cache_rule_gives(second_runs):
    assert _documented() == second_runs


def test_only_tasks_fed_by_parameters_alone_hit(second_runs):
    """The data path never hits: ingest and plan-shards run every time, by design."""
    assert second_runs["training"] == {"make-candidates", "fixed-params"}
    assert all(not hits for name, hits in second_runs.items()
               if name not in ("training", "continuous-training"))


# The rule itself, on pipelines small enough to reason about --------------------------

@dsl.component(base_image="python:3.11")
def _source(rows: Output[Dataset]):
    rows.path  # noqa: B018


@dsl.component(base_image="python:3.11")
def _derive(rows: Input[Dataset], derived: Output[Dataset]):
    derived.path  # noqa: B018


def _second_run_hits(pipeline, tmp_path) -> set[str]:
    path = tmp_path / "p.yaml"
    compiler.Compiler().compile(pipeline, str(path))
    return simulate(next(yaml.safe_load_all(path.read_text())))[1].hits()


def test_a_cached_chain_hits_all_along(tmp_path):
    @dsl.pipeline(name="pure")
    def pure():
        _derive(rows=_source().outputs["rows"])

    assert _second_run_hits(pure, tmp_path) == {"source", "derive"}


def test_after_an_uncached_task_nothing_downstream_hits(tmp_path):
    @dsl.pipeline(name="fresh-source")
    def fresh_source():
        _derive(rows=_source().set_caching_options(False).outputs["rows"])

    assert _second_run_hits(fresh_source, tmp_path) == set()
