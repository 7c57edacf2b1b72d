"""How the registry's writers agree without a server: version claims and stage commits.

The registry (:mod:`kfp_mlops.model.registry`) keeps no lock and no server; concurrent
writers only add objects under unique keys, and where one of them must win, they race
for one key that :meth:`~kfp_mlops.storage.Store.create_if_absent` (or, on a store
without conditional writes, the listing claim below) lets exactly one writer create.
This module is that race; the registry's API decides what is written and why.

How a version number is taken (see ``docs/registry.md``):

- local folder: the folder is built beside its target and renamed into place; rename
  refuses a taken name, and the loser retries with the next number (no claim here:
  :attr:`~kfp_mlops.storage.Store.exclusive_publish`);
- S3 with conditional writes (AWS S3, MinIO, moto): a claim object
  ``models/<name>/claims/<version>`` is created with ``If-None-Match: *``; the server
  refuses a second create, the loser takes the next;
- S3 without them: each publisher writes a uniquely named claim and lists the claims
  for the number; it wins only when its claim is the only one (then marks the number
  ``won``), else it withdraws and retries after a random pause. Safe on any store with
  read-after-write listing, as S3 has had since 2020.

A stage change is a compare-and-set on the history: its record names the last record
its writer replayed (``parent``) and counts only once ``models/<name>/next/<parent>``
names it, which one writer alone can create (the same race as a claim). The loser of
two racing promotions or rollbacks is told it lost and nothing of its change is applied;
a writer that dies before the commit leaves a record that never counts. Records written
before this scheme (no ``parent``) count as they always did.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Literal, Protocol, TypeVar

from kfp_mlops.model.package import METADATA_FILE
from kfp_mlops.storage import Store

ClaimMode = Literal["auto", "conditional", "listing"]
CLAIM_MODES = ("auto", "conditional", "listing")
WON = "won"
NEXT = "next"  # models/<name>/next/<record id>: the commit of the record after it
ROOT = "root"  # the parent of a model's first stage change
CLAIMS = "claims"  # models/<name>/claims/<version>: who claimed a version number (S3)
_TIME_FORMAT = "%Y%m%dT%H%M%S%fZ"


class Record(Protocol):
    """What the commit reads of a history record (the registry's ``Transition``)."""

    id: str
    kind: str
    cause: str | None
    parent: str | None


R = TypeVar("R", bound=Record)


class Claims:
    """The races of one registry's writers on one store."""

    def __init__(self, store: Store, mode: ClaimMode = "auto"):
        self.store = store
        self._mode: ClaimMode = mode

    @property
    def listing(self) -> bool:
        """Whether claims are known to go by listing (contested claims retry low)."""
        return self._mode == "listing"

    def mode(self) -> ClaimMode:
        """``conditional`` or ``listing``: ``auto`` probes the store once."""
        if self._mode == "auto":
            conditional = self.store.supports_conditional_writes()
            self._mode = "conditional" if conditional else "listing"
        return self._mode

    def claim_version(self, model_prefix: str, version: int, token: str) -> bool:
        """Take ``version`` for this publisher; ``False`` if someone else has it."""
        if self.store.exclusive_publish:
            return True  # publish_dir alone decides: a loser leaves no file behind
        body = json.dumps({"token": token}).encode()
        return self.take(
            f"{model_prefix}/{CLAIMS}/{version}", token, body,
            taken=lambda: self.store.exists(f"{model_prefix}/{version}/{METADATA_FILE}"),
        )

    def commit(self, model_prefix: str, parent: str, record_id: str) -> bool:
        """Make ``record_id`` the record after ``parent``: ``True`` for the one that did."""
        return self.take(commit_key(model_prefix, parent), record_id,
                         json.dumps({"id": record_id}).encode())

    def take(
        self, key: str, token: str, body: bytes, taken: Callable[[], bool] | None = None
    ) -> bool:
        """Create ``key`` once for all writers: ``True`` for the one that did."""
        if self.mode() == "conditional":
            return self.store.create_if_absent(key, body)
        return self._listing_claim(key, token, body, taken)

    def _listing_claim(
        self, key: str, token: str, body: bytes, taken: Callable[[], bool] | None
    ) -> bool:
        """Claim by unique key then listing: win only if ours is the only claim.

        Claims go under ``<key>/<token>``; the winner marks ``<key>/won`` with ``body``.
        Two claimants that see each other both withdraw and back off at random; one that
        saw only its own claim keeps it, and every later claimant will see it.
        """
        prefix = f"{key}/"
        mine = f"{prefix}{token}"
        self.store.put_bytes(mine, body)
        if self.store.list(prefix) == [mine] and not (taken and taken()):
            # Tell the others the key is taken (our claim alone already keeps them out).
            self.store.put_bytes(f"{prefix}{WON}", body)
            return True
        self.store.delete(mine)
        time.sleep(random.uniform(0.01, 0.1))
        return False


def commit_key(model_prefix: str, parent: str) -> str:
    """The key whose creation commits the stage change after ``parent``."""
    return f"{model_prefix}/{NEXT}/{parent}"


def load_commit(store: Store, key: str) -> str:
    """The record id a commit key names."""
    return str(json.loads(store.get_bytes(key))["id"])


def is_commit(parts: Sequence[str]) -> bool:
    """``next/<id>`` (conditional) or ``next/<id>/won`` (listing), below a model."""
    return parts[0] == NEXT and (len(parts) == 2 or (len(parts) == 3 and parts[2] == WON))


def is_taken_claim(parts: Sequence[str]) -> bool:
    """``claims/<v>`` (conditional) or ``claims/<v>/won`` (listing): ``v`` is taken.

    A bare listing claim ``claims/<v>/<token>`` may be withdrawn, so it does not count.
    """
    if len(parts) < 2 or parts[0] != CLAIMS or not parts[1].isdigit():
        return False
    return len(parts) == 2 or (len(parts) == 3 and parts[2] == WON)


def committed(records: list[R], winners: set[str]) -> tuple[list[R], str]:
    """The records that count, in order, and the id a new record must follow.

    A record with a ``parent`` counts only if a commit names it (a demotion: if the
    promotion it belongs to counts). Records without one predate the compare-and-set
    and always count.
    """
    counted = [
        r for r in records
        if r.parent is None or r.id in winners
        or (r.kind == "demotion" and r.cause in winners)
    ]
    return counted, counted[-1].id if counted else ROOT


def record_id(moment: datetime) -> str:
    """A history record's id: its time first, so key order is replay order."""
    return f"{moment.strftime(_TIME_FORMAT)}-{uuid.uuid4().hex}"


def next_time(records: Sequence[Record]) -> datetime:
    """Now, but after every record read: a new record sorts after what it saw."""
    now = datetime.now(timezone.utc)
    if records:
        last = datetime.strptime(records[-1].id.split("-", 1)[0], _TIME_FORMAT)
        last = last.replace(tzinfo=timezone.utc) + timedelta(microseconds=2)
        now = max(now, last)
    return now
