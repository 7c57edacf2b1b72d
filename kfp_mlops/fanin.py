"""Fan-in over a loop through the store: iterations write, the gathering task lists.

Why not ``dsl.Collected``: KFP's driver resolves the outputs of a ``dsl.ParallelFor``
only from KFP 2.14.0 on; Kubeflow 1.10 ships KFP 2.5.0, whose driver skips loop DAGs
when it looks for producers (backend/src/v2/driver/driver.go, ``getDAGTasks``), so a
task reading a collected list fails there. Instead each loop iteration of the cluster
form writes its result under a run-scoped prefix of the store,
``fan-in/<run id>/<step>/<item>``, and the gathering task, which runs after the loop's
DAG task (docs/cluster.md, "Fan-in over a loop"), reads the items it expects there.

An item is a small text (a trial's JSON result) or a folder (a shard's partial scan);
a folder is complete once its marker file, written last and listing the folder's files,
exists, so a half-written folder of a killed pod is never read. A retried iteration
rewrites its item. Nothing here lists a prefix: the gathering task knows the names it
expects, and a Kubeflow profile's S3 key may read and write objects under its prefix
without being allowed to list the bucket.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

from kfp_mlops.errors import KfpMlopsError
from kfp_mlops.storage import NotFoundError, PermissionDeniedError, open_store

FANIN_PREFIX = "fan-in"
DONE_MARKER = "_DONE"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class FanInError(KfpMlopsError, RuntimeError):
    """The gathering task did not find every item the loop should have written."""


def _checked(value: str, what: str) -> str:
    if not _NAME.match(value or ""):
        raise ValueError(
            f"the fan-in {what} {value!r} is not a plain name (letters, digits, '.', '_', "
            "'-'); on a cluster pass dsl.PIPELINE_JOB_ID_PLACEHOLDER as the run id")
    return value


def fanin_prefix(run_id: str, step: str) -> str:
    """The store key below which ``step``'s iterations of run ``run_id`` write."""
    return f"{FANIN_PREFIX}/{_checked(run_id, 'run id')}/{_checked(step, 'step')}"


def item_name(text: str) -> str:
    """A stable file name for a loop item given as text (a candidate's JSON)."""
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def put_text(store: str, run_id: str, step: str, name: str, text: str) -> str:
    """Write one iteration's result; return its URI."""
    key = f"{fanin_prefix(run_id, step)}/{_checked(name, 'item')}.json"
    handle = open_store(store)
    handle.put_bytes(key, text.encode())
    return handle.uri_for(key)


def gather_texts(store: str, run_id: str, step: str, names: Sequence[str]) -> list[str]:
    """Every expected result, in the order of ``names``; :class:`FanInError` if any is missing."""
    prefix = fanin_prefix(run_id, step)
    handle = open_store(store)
    found = {name: _read(handle, f"{prefix}/{name}.json") for name in names}
    _refuse_missing(handle.uri_for(prefix), [n for n, text in found.items() if text is None],
                    len(names))
    return [found[name].decode() for name in names]  # type: ignore[union-attr]


def put_folder(store: str, run_id: str, step: str, name: str, local_dir: str | Path) -> str:
    """Upload one iteration's folder, then its marker (the list of its files); return its URI."""
    key = f"{fanin_prefix(run_id, step)}/{_checked(name, 'item')}"
    handle = open_store(store)
    handle.delete(f"{key}/{DONE_MARKER}")  # a retry: incomplete until the marker is back
    files = sorted(p.relative_to(local_dir).as_posix()
                   for p in Path(local_dir).rglob("*") if p.is_file())
    for file in files:
        handle.upload_file(f"{key}/{file}", Path(local_dir) / file)
    handle.put_bytes(f"{key}/{DONE_MARKER}", json.dumps(files).encode())
    return handle.uri_for(key)


def fetch_folders(store: str, run_id: str, step: str, names: Sequence[str],
                  local_root: str | Path) -> list[Path]:
    """Download every expected folder below ``local_root``, in the order of ``names``."""
    prefix = fanin_prefix(run_id, step)
    handle = open_store(store)
    markers = {name: _read(handle, f"{prefix}/{name}/{DONE_MARKER}") for name in names}
    _refuse_missing(handle.uri_for(prefix), [n for n, m in markers.items() if m is None],
                    len(names))
    folders = []
    for name in names:
        target = Path(local_root) / name
        for file in json.loads(markers[name]):  # type: ignore[arg-type]
            (target / file).parent.mkdir(parents=True, exist_ok=True)
            handle.download_file(f"{prefix}/{name}/{file}", target / file)
        folders.append(target)
    return folders


def drop_folders(store: str, run_id: str, step: str, names: Sequence[str]) -> int:
    """Delete the folders ``names`` of ``step``, files then marker; return how many files."""
    prefix = fanin_prefix(run_id, step)
    handle = open_store(store)
    deleted = 0
    for name in names:
        marker = _read(handle, f"{prefix}/{name}/{DONE_MARKER}")
        files = json.loads(marker) if marker is not None else []
        for file in [*files, DONE_MARKER]:
            handle.delete(f"{prefix}/{name}/{file}")
        deleted += len(files)
    return deleted


def _read(handle, key: str) -> bytes | None:
    """The object, or None when it is absent.

    Where the key may not list the bucket (a Kubeflow profile's, whose policy names
    object ARNs only), S3 answers a missing object with AccessDenied rather than
    NoSuchKey, so both count as absent here; the error then says "or not readable".
    """
    try:
        return handle.get_bytes(key)
    except (NotFoundError, PermissionDeniedError):
        return None


def _refuse_missing(where: str, missing: list[str], expected: int) -> None:
    if missing:
        raise FanInError(
            f"{where} lacks {len(missing)} of the {expected} results the loop should have "
            f"written ({', '.join(missing[:5])}; or they are not readable with this key): an "
            "iteration failed, or the prefix was removed (a lifecycle rule?) between the "
            "loop and this task; rerun the pipeline")
