"""Peak memory and CPU seconds of every pipeline task, as the users' commands run them.

Runs ``kfp-mlops run`` (with tuning), ``kfp-mlops score`` and ``kfp-mlops monitor`` on
generated rows; a ``sitecustomize`` probe (bench/rss_probe) records each task process's
peak RSS (its own and its children's: infra validation's model server). The figures are
what components/policy.py sizes the Kubernetes requests and limits from.

    .venv/bin/python bench/bench_task_memory.py --rows 1000000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_pipeline import generate  # noqa: E402

PROBE = Path(__file__).parent / "rss_probe"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    cli = str(Path(sys.executable).parent / "kfp-mlops")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "generated.csv"
        generate(args.rows, data)
        log = work / "rss.tsv"
        env = {**os.environ, "KFP_MLOPS_RSS_LOG": str(log),
               "PYTHONPATH": os.pathsep.join([str(PROBE), os.environ.get("PYTHONPATH", "")])}
        common = ["--store", str(work / "store"), "--runs-dir", str(work / "runs"),
                  "--output", "json"]
        commands = [
            [cli, "run", "--data", str(data), "--target", "label", "--model-name", "gen",
             "--n-trials", "2", *common],
            [cli, "score", "gen@production", "--data", str(data), *common],
            [cli, "monitor", "--data", str(data), "--model-name", "gen", *common],
        ]
        for command in commands:
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        peaks: dict[str, list[int]] = defaultdict(list)
        for line in log.read_text().splitlines():
            name, own, children = line.split("\t")
            peaks[name].append(max(int(own), int(children)) // 1024)
        print(f"{args.rows:,} generated rows, {data.stat().st_size / 2**20:.0f} MiB CSV")
        print(f"{'task function':<22} peak RSS MiB (each run)")
        for name, mib in sorted(peaks.items(), key=lambda kv: -max(kv[1])):
            print(f"{name:<22} {max(mib):6d}   {mib}")


if __name__ == "__main__":
    main()
