"""A model registry kept in the store itself: no extra server, same layout everywhere.

Layout below the store root::

    models/<name>/<version>/model.joblib     the KServe-ready folder (storageUri)
    models/<name>/<version>/metadata.json    ModelMetadata plus a "registry" block (blessed,
                                             who published it and why); the commit file
    models/<name>/history/<time>-<uuid>.json one stage transition each, append-only
    models/<name>/next/<record id>|root      which record follows that one (the commit
                                             of a stage change; created once, atomically)
    models/<name>/claims/<version>           S3 only: who claimed a version number
    models/<name>/kubeflow-model-registry.json  a pending Kubeflow Model Registry sync
                                             (``kfp_mlops.model.kubeflow_registry``)

Versions are integers from 1. Published folders are immutable. The stage of a version
is not stored in the folder: it is the replay of the history records in key order
(timestamp, then uuid), so concurrent writers only ever add objects under unique keys
and every reader computes the same stages. Production is exclusive: replaying a
promotion archives the version that was in production, so the registry holds at most
one production version.

Who wins when writers race (a version number; the stage change after a history
record) is the concurrency protocol of :mod:`kfp_mlops.model.registry_protocol`: writers
only add objects under unique keys, one commit key per race, no lock and no server. The
loser of two racing promotions or rollbacks is told it lost
(:class:`StageConflictError`) and nothing of its change is applied.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from kfp_mlops.errors import KfpMlopsError
from kfp_mlops.model.blessing import Blessing
from kfp_mlops.model.package import (
    METADATA_FILE,
    MODEL_FILE,
    ModelIntegrityError,
    ModelMetadata,
    find_model_file,
    read_metadata,
    sha256_file,
)
from kfp_mlops.model.registry_protocol import (
    CLAIM_MODES,
    ROOT,
    WON,
    ClaimMode,
    Claims,
    commit_key,
    committed,
    is_commit,
    is_taken_claim,
    load_commit,
    next_time,
    record_id,
)
from kfp_mlops.storage import (
    AlreadyExistsError,
    ConflictError,
    Store,
    StoreError,
)

STAGES = ("none", "staging", "production", "archived")
REGISTRY_KEY = "registry"  # the block of metadata.json the registry owns
MODELS = "models"
MAX_NAME_LENGTH = 50
# KServe validates InferenceService names as DNS-1035 labels: a letter first.
_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_MAX_ATTEMPTS = 200

T = TypeVar("T")


class RegistryError(KfpMlopsError, RuntimeError):
    """A registry request names something that does not exist or breaks a rule."""


class StageConflictError(RegistryError, ConflictError):
    """Another stage change of the same model was recorded first; this one was not."""


@dataclass
class ModelVersion:
    """One published version and its current stage."""

    name: str
    version: int
    uri: str
    stage: str
    metadata: ModelMetadata
    blessed: bool

    @property
    def ref(self) -> str:
        """The ``NAME@VERSION`` reference of this version."""
        return f"{self.name}@{self.version}"


@dataclass
class Snapshot:
    """A model's versions with their stages, as of one history tip (``Registry.snapshot``).

    ``records`` are the versions' ``registry`` blocks (blessed, actor, reason, blessing),
    in the order of ``versions``.
    """

    versions: list[ModelVersion]
    tip: str
    records: list[dict[str, Any]]


@dataclass
class Transition:
    """One stage change, as stored in ``models/<name>/history/<id>.json``.

    ``kind`` is ``transition`` (asked for), ``rollback``, or ``demotion`` (the archive of
    the previous production version that a promotion implies; ``cause`` is the id of
    that promotion). ``from_stage`` is the stage the writer saw; under a race it may be
    stale, which is why stages are computed by replay rather than read from records.
    """

    id: str
    name: str
    version: int
    from_stage: str | None
    to_stage: str
    reason: str = ""
    actor: str = ""
    at: str = ""
    kind: str = "transition"
    cause: str | None = None
    # The record this one follows (``root``: none); None in records from before the
    # compare-and-set, which always count (kfp_mlops.model.registry_protocol).
    parent: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Transition:
        """Parse the stored form, ignoring keys written by newer versions."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in raw.items() if k in known})


@dataclass
class _VersionRecord:
    """The ``registry`` block of a version's ``metadata.json``."""

    blessed: bool
    published_at: str
    actor: str = ""
    reason: str = ""
    token: str = ""
    blessing: dict[str, Any] | None = None


@dataclass
class _State:
    """Stages after replaying a model's history."""

    stages: dict[int, str] = field(default_factory=dict)
    production: int | None = None
    # Production versions in the order they were promoted; rollback pops it.
    production_stack: list[int] = field(default_factory=list)


@dataclass
class _Listing:
    """One listing of ``models/<name>/``."""

    versions: list[int]
    history: list[str]  # history record keys, sorted
    claimed: set[int]  # version numbers taken by claims
    successions: list[str]  # keys below next/


@dataclass
class _History:
    """The committed records of a model, and the id a new record must follow."""

    records: list[Transition]
    tip: str  # id of the last committed record, or "root"


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid model (and InferenceService) name, else raise."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or len(name) > MAX_NAME_LENGTH:
        raise RegistryError(
            f"invalid model name {name!r}: use lowercase letters, digits and '-', starting "
            f"with a letter and ending with a letter or digit, at most {MAX_NAME_LENGTH} "
            "characters (it becomes the KServe InferenceService name), e.g. 'wine-quality'"
        )
    return name


def finish_command(name: str, version: int) -> str:
    """The command that records the promotion an interrupted release left undone."""
    return (f"kfp-mlops models promote {name} {version} --stage production "
            "--reason 'finish the interrupted release'")


def model_name_for(source: str) -> str:
    """A registry/InferenceService-safe model name derived from a data source."""
    stem = Path(source.rstrip("/").split("/")[-1]).stem or "model"
    name = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-") or "model"
    # InferenceService names are DNS-1035 labels: they start with a letter.
    if not name[0].isalpha():
        name = f"model-{name}"
    return name[:MAX_NAME_LENGTH].rstrip("-")


def validate_stage(stage: str) -> str:
    """Return ``stage`` if it is one of :data:`STAGES`, else raise."""
    if stage not in STAGES:
        raise RegistryError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    return stage


def parse_ref(ref: str) -> tuple[str, int | str | None]:
    """Split ``NAME``, ``NAME@VERSION`` or ``NAME@STAGE`` into name and selector."""
    name, sep, selector = ref.partition("@")
    validate_name(name)
    if not sep:
        return name, None
    if selector.isdigit():
        return name, int(selector)
    if selector in STAGES:
        return name, selector
    raise RegistryError(
        f"bad model reference {ref!r}: after '@' give a version number or a stage "
        f"({', '.join(STAGES)}), e.g. {name}@3 or {name}@production"
    )


class Registry:
    """Model versions, stages and their history, kept in a :class:`Store`."""

    def __init__(self, store: Store, *, claims: ClaimMode = "auto"):
        """Open the registry in ``store``.

        ``claims`` chooses how S3 publishers claim a version number: ``auto`` probes the
        server once for conditional writes and falls back to ``listing`` claims.
        """
        if claims not in CLAIM_MODES:
            raise RegistryError(f"claims={claims!r}: use 'auto', 'conditional' or 'listing'")
        self.store = store
        self._claims = Claims(store, claims)
        # Published folders and history records never change: cache them by key.
        self._cache: dict[str, Any] = {}

    # ------------------------------------------------------------------ reading

    def list_models(self) -> list[str]:
        """Names of the models with at least one published version."""
        names = set()
        for key in self.store.list_folded(f"{MODELS}/", METADATA_FILE, _is_version_folder):
            parts = key.split("/")
            if len(parts) == 4 and parts[3] == METADATA_FILE and parts[2].isdigit():
                names.add(parts[1])
        return sorted(n for n in names if _NAME_RE.match(n))

    def list_versions(self, name: str) -> list[ModelVersion]:
        """Every published version of ``name``, oldest first, with its current stage."""
        listing = self._scan(name)
        state = self._replay(self._history(name, listing).records)
        return self._versions(name, listing.versions, state)

    def snapshot(self, name: str) -> Snapshot:
        """Every version of ``name`` with its stage, and the history tip, from one listing.

        The tip (the id of the last committed stage change, ``root`` before the first)
        names the state the stages belong to: a mirror of the registry (the Kubeflow
        Model Registry, ``kfp_mlops.model.kubeflow_registry``) records it to tell
        whether it shows the current state.
        """
        listing = self._scan(name)
        history = self._history(name, listing)
        state = self._replay(history.records)
        records = [asdict(r) for _, r in self._read_versions(name, listing.versions)]
        return Snapshot(self._versions(name, listing.versions, state), history.tip, records)

    def tip(self, name: str) -> str:
        """The id of the last committed stage change of ``name`` (``root``: none yet)."""
        return self._history(name, self._scan(name)).tip

    def history(self, name: str) -> list[Transition]:
        """Every stage transition of ``name`` in replay order."""
        return self._history(name, self._scan(name)).records

    def get(self, ref: str) -> ModelVersion:
        """Resolve ``NAME`` (latest), ``NAME@VERSION`` or ``NAME@STAGE`` (latest in it)."""
        name, selector = parse_ref(ref)
        listing = self._scan(name)
        versions = listing.versions
        state = self._replay(self._history(name, listing).records)
        if selector is None:
            chosen = versions[-1]
        elif isinstance(selector, int):
            if selector not in versions:
                raise RegistryError(
                    f"model {name!r} has no version {selector}; versions: "
                    f"{_ranges(versions)}"
                )
            chosen = selector
        else:
            in_stage = [v for v in versions if state.stages.get(v, "none") == selector]
            if not in_stage:
                raise RegistryError(
                    f"model {name!r} has no version in stage {selector!r}; current stages: "
                    f"{_stage_summary(versions, state)}"
                )
            chosen = in_stage[-1]
        return self._versions(name, [chosen], state)[0]

    def download(self, ref: str, local_dir: str | Path) -> tuple[Path, ModelMetadata]:
        """Fetch the version folder into ``local_dir`` and check the model's sha256."""
        found = self.get(ref)
        folder = self.store.download_dir(_version_prefix(found.name, found.version), local_dir)
        metadata = read_metadata(folder)
        model_file = find_model_file(folder)
        actual = sha256_file(model_file)
        if not metadata.model_sha256 or actual != metadata.model_sha256:
            raise ModelIntegrityError(
                f"{found.uri}/{model_file.name} has sha256 {actual} but its metadata records "
                f"{metadata.model_sha256}: the stored model was changed after publishing; "
                "publish a new version instead of editing one"
            )
        if metadata.name != found.name or metadata.version != found.version:
            raise ModelIntegrityError(
                f"{found.uri}/{METADATA_FILE} names {metadata.name}@{metadata.version}, not "
                f"{found.ref}: the folder was copied or edited by hand; re-publish it"
            )
        return folder, metadata

    # ------------------------------------------------------------------ writing

    def publish(
        self,
        name: str,
        model_dir: Path,
        metadata: ModelMetadata,
        *,
        stage: str = "none",
        reason: str = "",
        actor: str = "",
        blessed: bool | None = None,
        blessing: Blessing | None = None,
    ) -> ModelVersion:
        """Publish ``model_dir``'s model file as the next version of ``name``.

        Fills ``metadata.name``, ``version``, ``created_at`` and ``model_sha256`` (on the
        object passed in, as ``write_model_folder`` does). ``blessed`` (or ``blessing``,
        whose verdict it takes) records whether the version passed the blessing policy;
        a version never blessed needs ``force=True`` to reach production. A ``stage``
        other than ``none`` is applied as a transition right after publishing.
        """
        validate_name(name)
        validate_stage(stage)
        is_blessed = bool(blessing.blessed if blessing is not None else blessed)
        if stage == "production" and not is_blessed:
            raise RegistryError(
                f"cannot publish {name!r} straight to production: the version is not blessed. "
                "Publish it with blessed=True after the blessing gate passed, or publish to "
                "'staging' and promote it with force=True"
            )
        model_file = find_model_file(model_dir)
        actual = sha256_file(model_file)
        if metadata.model_sha256 and metadata.model_sha256 != actual:
            raise ModelIntegrityError(
                f"{model_file} has sha256 {actual} but the metadata records "
                f"{metadata.model_sha256}; rebuild the folder with write_model_folder"
            )
        metadata.model_sha256 = actual
        record = _VersionRecord(
            blessed=is_blessed,
            published_at="",
            actor=actor,
            reason=reason,
            token=uuid.uuid4().hex,
            blessing=blessing.to_dict() if blessing is not None else None,
        )
        with tempfile.TemporaryDirectory(prefix="kfp-mlops-publish-") as tmp:
            staged = Path(tmp)
            shutil.copyfile(model_file, staged / MODEL_FILE)
            version = self._publish_next(name, staged, metadata, record)
        published = ModelVersion(
            name=name,
            version=version,
            uri=self.store.uri_for(_version_prefix(name, version)),
            stage="none",
            metadata=metadata,
            blessed=is_blessed,
        )
        if stage != "none":
            try:
                self.transition(name, version, stage, reason=reason, actor=actor)
            except (StoreError, RegistryError) as exc:
                detail = (
                    f"{name}@{version} WAS published ({published.uri}, stage 'none'), but it "
                    f"was not moved to {stage!r}; move it with `kfp-mlops models promote "
                    f"{name} {version} --stage {stage} --reason ...`."
                )
                if isinstance(exc, StoreError):
                    raise exc.with_detail(detail) from exc
                raise RegistryError(f"{exc}. {detail}") from exc
            published.stage = stage
        return published

    def transition(
        self,
        name: str,
        version: int,
        stage: str,
        *,
        reason: str,
        actor: str,
        force: bool = False,
    ) -> Transition:
        """Move ``name@version`` to ``stage`` and record it.

        Promoting to production archives the previous production version (recorded as a
        ``demotion``). An archived or never-blessed version reaches production only with
        ``force=True``.
        """
        validate_stage(stage)
        change = f"{name}@{version} to {stage!r}"
        try:
            writes = self._plan_transition(name, version, stage, reason, actor, force)
        except StoreError as exc:
            raise exc.with_detail(f"The stage change ({change}) was not recorded.") from exc
        return self._commit(name, writes, change)

    def _plan_transition(
        self, name: str, version: int, stage: str, reason: str, actor: str, force: bool
    ) -> list[Transition]:
        """The records of a stage change, checked against the replayed history."""
        listing = self._scan(name)
        versions = listing.versions
        if version not in versions:
            raise RegistryError(
                f"model {name!r} has no version {version}; versions: {_ranges(versions)}"
            )
        history = self._history(name, listing)
        records = history.records
        state = self._replay(records)
        current = state.stages.get(version, "none")
        if current == stage:
            raise RegistryError(f"{name}@{version} is already in stage {stage!r}")
        if stage == "production" and not force:
            if current == "archived":
                raise RegistryError(
                    f"{name}@{version} is archived; bringing it back to production needs "
                    f"force=True (CLI: --force), or use rollback to return to the previous "
                    "production version"
                )
            if not self._read_version(name, version)[1].blessed:
                raise RegistryError(
                    f"{name}@{version} was never blessed (it did not pass the blessing policy "
                    "when published); promote it to production with force=True (CLI: --force) "
                    "if you accept it anyway"
                )
        start = next_time(records)
        promotion_id = record_id(start + timedelta(microseconds=1))
        writes = []
        if stage == "production" and state.production is not None:
            writes.append(
                Transition(
                    id=record_id(start), name=name, version=state.production,
                    from_stage="production", to_stage="archived",
                    reason=f"replaced by version {version}: {reason}".rstrip(": "),
                    actor=actor, at=_iso(start), kind="demotion", cause=promotion_id,
                    parent=history.tip,
                )
            )
        writes.append(
            Transition(
                id=promotion_id, name=name, version=version, from_stage=current,
                to_stage=stage, reason=reason, actor=actor,
                at=_iso(start + timedelta(microseconds=1)), parent=history.tip,
            )
        )
        return writes

    def rollback(self, name: str, *, reason: str, actor: str) -> Transition:
        """Return production to the version that was in production before the current one."""
        try:
            writes, change = self._plan_rollback(name, reason, actor)
        except StoreError as exc:
            raise exc.with_detail(f"The rollback of {name} was not recorded.") from exc
        return self._commit(name, writes, change)

    def _plan_rollback(self, name: str, reason: str, actor: str) -> tuple[list[Transition], str]:
        """The records of a rollback, checked against the replayed history."""
        listing = self._scan(name)
        versions = listing.versions
        history = self._history(name, listing)
        records = history.records
        state = self._replay(records)
        if state.production is None:
            raise RegistryError(
                f"model {name!r} has no production version, so there is nothing to roll back; "
                f"current stages: {_stage_summary(versions, state)}"
            )
        if len(state.production_stack) < 2:
            raise RegistryError(
                f"{name}@{state.production} is the first production version of {name!r}; "
                "there is no earlier production version to roll back to"
            )
        previous = state.production_stack[-2]
        start = next_time(records)
        rollback_id = record_id(start + timedelta(microseconds=1))
        writes = [
            Transition(
                id=record_id(start), name=name, version=state.production,
                from_stage="production", to_stage="archived",
                reason=f"rolled back to version {previous}: {reason}".rstrip(": "),
                actor=actor, at=_iso(start), kind="demotion", cause=rollback_id,
                parent=history.tip,
            ),
            Transition(
                id=rollback_id, name=name, version=previous,
                from_stage=state.stages.get(previous, "none"), to_stage="production",
                reason=reason, actor=actor, at=_iso(start + timedelta(microseconds=1)),
                kind="rollback", parent=history.tip,
            ),
        ]
        return writes, f"rollback of {name} from version {state.production} to {previous}"

    # ------------------------------------------------------------------ internals

    def _scan(self, name: str) -> _Listing:
        """One listing of ``name``; an error if it has no version."""
        listing = self._listing(name)
        if not listing.versions:
            known = self.list_models()
            raise RegistryError(
                f"no model named {name!r} in {self.store.uri}; models: "
                f"{', '.join(known) or 'none yet (publish one first)'}"
            )
        return listing

    def _listing(self, name: str) -> _Listing:
        """One listing of ``models/<name>/``: versions, history, claims, successions."""
        validate_name(name)
        base = f"{MODELS}/{name}/"
        versions: set[int] = set()
        claimed: set[int] = set()
        history: list[str] = []
        successions: list[str] = []
        for rel in self._model_keys(name):
            parts = rel.split("/")
            if len(parts) == 2 and parts[0].isdigit() and parts[1] == METADATA_FILE:
                versions.add(int(parts[0]))
            elif len(parts) == 2 and parts[0] == "history" and parts[1].endswith(".json"):
                history.append(base + rel)
            elif is_commit(parts):
                successions.append(base + rel)
            elif is_taken_claim(parts):
                claimed.add(int(parts[1]))
        return _Listing(sorted(versions), sorted(history), claimed, sorted(successions))

    def _model_keys(self, name: str) -> list[str]:
        """Keys below ``models/<name>/``, relative to it (a version folder: its metadata)."""
        base = f"{MODELS}/{name}/"
        keys = self.store.list_folded(base, METADATA_FILE, str.isdigit)
        return [key[len(base):] for key in keys]

    def _history(self, name: str, listing: _Listing) -> _History:
        """The committed history records of ``name``, in replay order, and its tip.

        Which records count is the commit protocol's answer
        (:func:`~kfp_mlops.model.registry_protocol.committed`).
        """
        records = self._load_history(listing.history)
        winners = set(self._cached_many(listing.successions, self._load_next))
        known = {r.id for r in records}
        # A commit seen without its record: the record was written between two pages of
        # the listing. It exists (it is written before its commit): read it by key.
        late = [f"{MODELS}/{name}/history/{w}.json" for w in sorted(winners - known)]
        if late:
            records = sorted([*records, *self._load_history(late)], key=lambda r: r.id)
        return _History(*committed(records, winners))

    def _load_next(self, key: str) -> str:
        return load_commit(self.store, key)

    def _commit(self, name: str, writes: list[Transition], change: str) -> Transition:
        """Write ``writes`` (the last is the change itself) and make them count, or not.

        The records go under unique keys first; then ``next/<parent>`` is created naming
        the change (:meth:`~kfp_mlops.model.registry_protocol.Claims.commit`). Only one
        writer can create it: a loser's records never count.
        """
        main = writes[-1]
        parent = main.parent or ROOT
        try:
            for transition in writes:
                self._append(transition)
        except StoreError as exc:
            raise exc.with_detail(f"The stage change ({change}) was not recorded.") from exc
        key = commit_key(f"{MODELS}/{name}", parent)
        try:
            won = self._claims.commit(f"{MODELS}/{name}", parent, main.id)
        except StoreError as exc:
            raise exc.with_detail(
                f"Whether the stage change ({change}) was recorded is unknown: the write "
                f"of its commit {self.store.uri_for(key)} failed in flight. "
                f"`kfp-mlops models list {name}` shows the stages as they are."
            ) from exc
        if not won:
            raise StageConflictError(
                f"another stage change of {name!r} was recorded at the same time "
                f"({self._describe_winner(name, parent)}); this one ({change}) was not "
                f"applied and nothing of it was recorded. Check the stages with "
                f"`kfp-mlops models list {name}` and repeat it if it is still wanted."
            )
        return main

    def _describe_winner(self, name: str, parent: str) -> str:
        """Who took ``next/<parent>`` (best effort: only for the loser's message)."""
        base = commit_key(f"{MODELS}/{name}", parent)
        for key in (base, f"{base}/{WON}"):
            try:
                winner = self._load_next(key)
                rec = self._load_history([f"{MODELS}/{name}/history/{winner}.json"])[0]
            except (StoreError, KeyError, ValueError):
                continue
            by = f" by {rec.actor}" if rec.actor else ""
            return f"{rec.name}@{rec.version} to {rec.to_stage!r}{by}"
        return "by another writer"

    def _scan_for_publish(self, name: str) -> int:
        """Highest version number published or claimed so far (0 when none)."""
        listing = self._listing(name)
        return max([0, *listing.versions, *listing.claimed])

    def _publish_next(
        self, name: str, staged: Path, metadata: ModelMetadata, record: _VersionRecord
    ) -> int:
        """Claim the next free version number and publish ``staged`` under it."""
        try:
            version = self._scan_for_publish(name) + 1
        except StoreError as exc:
            raise exc.with_detail(f"Nothing was published for model {name!r}.") from exc
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                claimed = self._claims.claim_version(f"{MODELS}/{name}", version, record.token)
                if not claimed:
                    # Taken: try the next number (a claim is cheaper than a listing), and
                    # list again every 5th time in case this publisher is far behind.
                    # Listing claims: contested, so retry the lowest number not taken.
                    if self._claims.listing or attempt % 5 == 0:
                        version = max(version, self._scan_for_publish(name) + 1)
                    else:
                        version += 1
                        # Back off a random while: spreads a crowd of publishers out.
                        time.sleep(random.uniform(0, 0.005 * 2 ** min(attempt, 6)))
                    continue
            except StoreError as exc:
                raise exc.with_detail(
                    f"Nothing was published for model {name!r} (version {version} was being "
                    "claimed; if the claim landed, that number stays unused)."
                ) from exc
            created = datetime.now(timezone.utc)
            metadata.name, metadata.version = name, version
            metadata.created_at = _iso(created)
            record.published_at = metadata.created_at
            # One file per version: listing 1,000 versions reads 1,000 files, not 2,000.
            document = json.loads(metadata.to_json())
            document[REGISTRY_KEY] = asdict(record)
            (staged / METADATA_FILE).write_text(json.dumps(document, indent=2, sort_keys=True))
            try:
                self.store.publish_dir(_version_prefix(name, version), staged, METADATA_FILE)
            except AlreadyExistsError:
                # Local store: the rename lost to another publisher; take the next number.
                try:
                    version = max(version + 1, self._scan_for_publish(name) + 1)
                except StoreError as exc:
                    raise exc.with_detail(
                        f"Nothing was published for model {name!r}."
                    ) from exc
                continue
            return version
        raise RegistryError(
            f"could not take a version number for {name!r} after {_MAX_ATTEMPTS} attempts; "
            "too many concurrent publishers, retry later. Nothing was published."
        )

    def _append(self, transition: Transition) -> Transition:
        key = f"{MODELS}/{transition.name}/history/{transition.id}.json"
        self.store.put_bytes(key, json.dumps(transition.to_dict(), indent=2).encode())
        self._cache[key] = transition
        return transition

    def _load_history(self, keys: list[str]) -> list[Transition]:
        def load(key: str) -> Transition:
            return Transition.from_dict(json.loads(self.store.get_bytes(key)))

        return self._cached_many(keys, load)

    def _read_version(self, name: str, version: int) -> tuple[ModelMetadata, _VersionRecord]:
        return self._read_versions(name, [version])[0]

    def _read_versions(
        self, name: str, versions: list[int]
    ) -> list[tuple[ModelMetadata, _VersionRecord]]:
        return self._cached_many(
            [f"{_version_prefix(name, v)}/{METADATA_FILE}" for v in versions], self._load_version
        )

    def _load_version(self, key: str) -> tuple[ModelMetadata, _VersionRecord]:
        raw = json.loads(self.store.get_bytes(key))
        # A folder published by hand has no registry block: it was never blessed.
        block = raw.get(REGISTRY_KEY) or {"blessed": False, "published_at": ""}
        known = set(_VersionRecord.__dataclass_fields__)
        record = _VersionRecord(**{k: v for k, v in block.items() if k in known})
        return ModelMetadata.from_dict(raw), record

    def _versions(self, name: str, versions: list[int], state: _State) -> list[ModelVersion]:
        return [
            ModelVersion(
                name=name,
                version=v,
                uri=self.store.uri_for(_version_prefix(name, v)),
                stage=state.stages.get(v, "none"),
                metadata=meta,
                blessed=record.blessed,
            )
            for v, (meta, record) in zip(
                versions, self._read_versions(name, versions), strict=True
            )
        ]

    def _cached_many(self, keys: list[str], load: Callable[[str], T]) -> list[T]:
        """Load ``keys`` not cached yet (in parallel on a remote store), keep order."""
        missing = [k for k in keys if k not in self._cache]
        if len(missing) > 4 and self.store.read_concurrency > 1:
            with ThreadPoolExecutor(max_workers=self.store.read_concurrency) as pool:
                loaded: Iterable[T] = list(pool.map(load, missing))
        else:
            loaded = [load(k) for k in missing]
        self._cache.update(zip(missing, loaded, strict=True))
        return [self._cache[k] for k in keys]

    @staticmethod
    def _replay(records: list[Transition]) -> _State:
        """Stages after applying ``records`` in key order.

        Demotion records are skipped: the promotion they belong to implies them, so a
        writer that died between the two, or two promotions racing, still leave exactly
        one production version (the last promoted).
        """
        state = _State()
        for rec in records:
            if rec.kind == "demotion":
                continue
            version = rec.version
            if rec.to_stage == "production":
                if state.production is not None and state.production != version:
                    state.stages[state.production] = "archived"
                stack = state.production_stack
                if rec.kind == "rollback" and version in stack:
                    while stack[-1] != version:
                        stack.pop()
                elif not stack or stack[-1] != version:
                    stack.append(version)
                state.production = version
            elif state.production == version:
                state.production = None
                if state.production_stack and state.production_stack[-1] == version:
                    state.production_stack.pop()
            state.stages[version] = rec.to_stage
        return state


def _is_version_folder(path: str) -> bool:
    """``<name>/<version>`` below ``models/``: a folder only ``publish_dir`` writes."""
    name, _, version = path.partition("/")
    return bool(name) and version.isdigit()


def _version_prefix(name: str, version: int) -> str:
    return f"{MODELS}/{name}/{version}"


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _ranges(versions: list[int]) -> str:
    """``1-4, 7`` for a sorted list of version numbers."""
    if not versions:
        return "none"
    parts, start, prev = [], versions[0], versions[0]
    for v in [*versions[1:], None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(parts)


def _stage_summary(versions: list[int], state: _State) -> str:
    by_stage: dict[str, list[int]] = {s: [] for s in STAGES}
    for v in versions:
        by_stage[state.stages.get(v, "none")].append(v)
    return "; ".join(f"{s}: {_ranges(vs)}" for s, vs in by_stage.items() if vs)
