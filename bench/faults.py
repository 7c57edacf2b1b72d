"""Fault injection and races against the store: how many faults, survived, lost.

1. Every publish path (dataset version, schema, model files and commit file, model
   published straight to a stage, promotion, rollback) on S3 through the fault proxy
   (``bench/faultkit/proxy.py``, moto behind it, bucket ``ml-bucket``): at every S3
   request of the operation, each blip (one request dropped before or after the server
   saw it, answered 503, or held past the client's timeout) and each outage (every
   request from there on dropped before, dropped after, or answered 503). The rules
   are those of ``bench/faultkit/paths.py``: a run is *lost* when anything is half
   visible or lost, a message is untrue, or the rerun fails.
2. ``--publishers`` (default 50) concurrent model publishers and schema savers on a
   local folder and on S3, and 8 threads racing promotions and rollbacks: versions
   lost or duplicated count as lost; stage changes that lost a race are counted as
   told (the writer got StageConflictError and nothing of it counts).

Prints one table and exits non-zero if anything was lost.

    .venv/bin/python bench/faults.py [--publishers 50] [--skip-races] [--paths model,promote]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench.faultkit

from bench.faultkit.harness import faulty_s3  # noqa: E402
from bench.faultkit.paths import PATHS, Tally, exercise_path, make_model_folder, steps  # noqa: E402
from bench.s3server import s3_server  # noqa: E402
from kfp_mlops.data.schema import ColumnSchema, Schema, _versions, save_schema  # noqa: E402
from kfp_mlops.model.package import read_metadata  # noqa: E402
from kfp_mlops.model.registry import Registry, RegistryError, StageConflictError  # noqa: E402
from kfp_mlops.storage import LocalStore, Store, open_store  # noqa: E402


def race(n: int, work) -> list[object]:
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # counted by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def race_publishers(store: Store, folder: Path, n: int) -> tuple[int, int]:
    """(published, lost) for n concurrent model publishers and n schema savers."""
    versions = race(n, lambda i: Registry(store).publish(
        "iris", folder, read_metadata(folder), blessed=True).version)
    schemas = race(n, lambda i: save_schema(
        store, Schema(columns={"a": ColumnSchema(type="integer", max=i)}), "wine"))
    ok_versions = [v for v in versions if isinstance(v, int)]
    ok_schemas = [v for v in schemas if isinstance(v, int)]
    listed = [v.version for v in Registry(store).list_versions("iris")]
    lost = (n - len(set(ok_versions))) + (n - len(set(ok_schemas)))
    lost += len(set(ok_versions) ^ set(listed)) + len(set(ok_schemas) ^ set(_versions(store, "wine")))
    return len(ok_versions) + len(ok_schemas), lost


def race_stages(store: Store, folder: Path) -> tuple[int, int, int]:
    """(won, told they lost, lost) for 8 threads promoting and rolling back, 3 rounds."""
    registry = Registry(store)
    for _ in range(6):
        registry.publish("stages", folder, read_metadata(folder), blessed=True)
    registry.transition("stages", 1, "production", reason="", actor="setup")
    registry.transition("stages", 2, "production", reason="", actor="setup")
    won: list[str] = []
    told = [0]
    lock = threading.Lock()

    def act(i: int) -> None:
        for r in range(3):
            reg = Registry(store)
            try:
                if (i + r) % 3 == 0:
                    done = reg.rollback("stages", reason="", actor=f"b{i}")
                else:
                    done = reg.transition("stages", 3 + (i + r) % 4, "production", reason="",
                                          actor=f"b{i}", force=True)
            except StageConflictError:
                with lock:
                    told[0] += 1
                continue
            except RegistryError:
                continue
            with lock:
                won.append(done.id)

    race(8, act)
    history = Registry(store).history("stages")
    counted = [t.id for t in history if t.kind != "demotion"][2:]
    stages = [v.stage for v in Registry(store).list_versions("stages")]
    lost = len(set(counted) ^ set(won)) + (stages.count("production") != 1)
    return len(won), told[0], lost


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--publishers", type=int, default=50)
    parser.add_argument("--skip-races", action="store_true")
    parser.add_argument("--paths", help="comma-separated subset of: "
                        + ", ".join(p.name for p in PATHS))
    args = parser.parse_args()
    wanted = set(args.paths.split(",")) if args.paths else None
    rows = []
    total = Tally()
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_model_folder(Path(tmp))
        with faulty_s3(bucket="ml-bucket") as faulty:
            for cls in PATHS:
                path = cls(folder)
                if wanted and path.name not in wanted:
                    continue
                start = time.perf_counter()
                count = len(steps(faulty, path))
                tally = exercise_path(faulty, path)
                total.add(tally)
                rows.append((path.name, count, tally, time.perf_counter() - start))
                print(f"  {path.name}: {tally.runs} runs in {rows[-1][3]:.0f} s", file=sys.stderr)
        print(f"{'path':<13} {'steps':>5} {'runs':>5} {'faults':>7} {'survived':>9} "
              f"{'failed cleanly':>15} {'lost':>5} {'seconds':>8}")
        for name, count, t, secs in rows:
            print(f"{name:<13} {count:>5} {t.runs:>5} {t.faults:>7} {t.survived:>9} "
                  f"{t.failed_cleanly:>15} {t.lost:>5} {secs:>8.1f}")
        print(f"{'total':<13} {'':>5} {total.runs:>5} {total.faults:>7} {total.survived:>9} "
              f"{total.failed_cleanly:>15} {total.lost:>5}")
        for violation in total.violations:
            print(f"LOST: {violation}")
        lost = total.lost
        if not args.skip_races:
            print()
            print(f"{'race':<40} {'published/won':>14} {'told they lost':>15} {'lost':>5} {'seconds':>8}")
            for label, make in (
                ("local folder", lambda: LocalStore(Path(tmp) / "local")),
                ("S3 (moto)", None),
            ):
                start = time.perf_counter()
                if make is None:
                    with s3_server(bucket="ml-bucket") as server:
                        store = open_store(server.uri("races"))
                        published, lost_p = race_publishers(store, folder, args.publishers)
                        won, told, lost_s = race_stages(store, folder)
                else:
                    store = make()
                    published, lost_p = race_publishers(store, folder, args.publishers)
                    won, told, lost_s = race_stages(store, folder)
                secs = time.perf_counter() - start
                print(f"{label + f': {args.publishers} publishers + savers':<40} "
                      f"{published:>14} {'':>15} {lost_p:>5} {secs:>8.1f}")
                print(f"{label + ': 8 threads promote/rollback':<40} {won:>14} {told:>15} "
                      f"{lost_s:>5}")
                lost += lost_p + lost_s
    print(f"\nfaults injected {total.faults}, operations survived {total.survived}, "
          f"failed cleanly {total.failed_cleanly}, lost {lost}")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
